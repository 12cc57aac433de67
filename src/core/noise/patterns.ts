/**
 * Noise handshake patterns (revision 34, sections 7.4-7.6) and the psk modifier (section 9), for the one
 * suite this engine implements. Parsed patterns are cached: callers may parse on every handshake.
 */
import { LpErrorCode, fail } from '../errors.js';

export const NOISE_SUITE = '25519_ChaChaPoly_SHA256';

export type PreToken = 'e' | 's';
export type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';

export interface HandshakePattern {
  /** Pattern name with modifiers, e.g. `XKpsk3`. */
  readonly name: string;
  /** `Noise_<name>_25519_ChaChaPoly_SHA256`, the input to InitializeSymmetric. */
  readonly protocolName: string;
  readonly initiatorPreMessage: readonly PreToken[];
  readonly responderPreMessage: readonly PreToken[];
  /** Message i is sent by the initiator when i is even. */
  readonly messages: readonly (readonly Token[])[];
  /** N, K, X and their modified forms: one handshake message, transport only initiator → responder. */
  readonly oneWay: boolean;
  /** Number of `psk` tokens; non-zero switches on the psk rule for `e` tokens. */
  readonly pskCount: number;
}

/** [initiator pre-message, responder pre-message, ...messages], as written in the spec. */
const BASE: Readonly<Record<string, readonly string[]>> = {
  // 7.4 one-way
  N: ['', 's', 'e, es'],
  K: ['s', 's', 'e, es, ss'],
  X: ['', 's', 'e, es, s, ss'],
  // 7.5 fundamental interactive
  NN: ['', '', 'e', 'e, ee'],
  NK: ['', 's', 'e, es', 'e, ee'],
  NX: ['', '', 'e', 'e, ee, s, es'],
  KN: ['s', '', 'e', 'e, ee, se'],
  KK: ['s', 's', 'e, es, ss', 'e, ee, se'],
  KX: ['s', '', 'e', 'e, ee, se, s, es'],
  XN: ['', '', 'e', 'e, ee', 's, se'],
  XK: ['', 's', 'e, es', 'e, ee', 's, se'],
  XX: ['', '', 'e', 'e, ee, s, es', 's, se'],
  IN: ['', '', 'e, s', 'e, ee, se'],
  IK: ['', 's', 'e, es, s, ss', 'e, ee, se'],
  IX: ['', '', 'e, s', 'e, ee, se, s, es'],
  // 7.6 deferred
  NK1: ['', 's', 'e', 'e, ee, es'],
  NX1: ['', '', 'e', 'e, ee, s', 'es'],
  X1N: ['', '', 'e', 'e, ee', 's', 'se'],
  X1K: ['', 's', 'e, es', 'e, ee', 's', 'se'],
  XK1: ['', 's', 'e', 'e, ee, es', 's, se'],
  X1K1: ['', 's', 'e', 'e, ee, es', 's', 'se'],
  X1X: ['', '', 'e', 'e, ee, s, es', 's', 'se'],
  XX1: ['', '', 'e', 'e, ee, s', 'es, s, se'],
  X1X1: ['', '', 'e', 'e, ee, s', 'es, s', 'se'],
  K1N: ['s', '', 'e', 'e, ee', 'se'],
  K1K: ['s', 's', 'e, es', 'e, ee', 'se'],
  KK1: ['s', 's', 'e', 'e, ee, se, es'],
  K1K1: ['s', 's', 'e', 'e, ee, es', 'se'],
  K1X: ['s', '', 'e', 'e, ee, s, es', 'se'],
  KX1: ['s', '', 'e', 'e, ee, se, s', 'es'],
  K1X1: ['s', '', 'e', 'e, ee, s', 'se, es'],
  I1N: ['', '', 'e, s', 'e, ee', 'se'],
  I1K: ['', 's', 'e, es, s', 'e, ee', 'se'],
  IK1: ['', 's', 'e, s', 'e, ee, se, es'],
  I1K1: ['', 's', 'e, s', 'e, ee, es', 'se'],
  I1X: ['', '', 'e, s', 'e, ee, s, es', 'se'],
  IX1: ['', '', 'e, s', 'e, ee, se, s', 'es'],
  I1X1: ['', '', 'e, s', 'e, ee, s', 'se, es'],
};

const ONE_WAY = new Set(['N', 'K', 'X']);
const TOKENS = new Set<string>(['e', 's', 'ee', 'es', 'se', 'ss', 'psk']);

function splitTokens(s: string): string[] {
  return s === '' ? [] : s.split(', ');
}

const cache = new Map<string, HandshakePattern>();

function buildPattern(name: string): HandshakePattern {
  const pskAt = name.indexOf('psk');
  const baseName = pskAt < 0 ? name : name.slice(0, pskAt);
  const base = Object.hasOwn(BASE, baseName) ? BASE[baseName] : undefined;
  if (!base) fail(LpErrorCode.NOISE_STATE, `unknown Noise pattern ${name}`);
  const [iPre = '', rPre = '', ...msgs] = base;
  const messages: Token[][] = msgs.map((m) => splitTokens(m) as Token[]);
  let pskCount = 0;
  if (pskAt >= 0) {
    for (const mod of name.slice(pskAt).split('+')) {
      const m = /^psk(\d{1,2})$/.exec(mod);
      if (!m) fail(LpErrorCode.NOISE_STATE, `unsupported Noise modifier ${mod} in ${name}`);
      const k = Number(m[1]);
      // psk0 leads the first message; pskN (N >= 1) ends message N
      const target = messages[k === 0 ? 0 : k - 1];
      if (!target) fail(LpErrorCode.NOISE_STATE, `modifier ${mod} out of range for ${name}`);
      if (k === 0) target.unshift('psk');
      else target.push('psk');
      pskCount++;
    }
  }
  for (const m of messages) for (const t of m) if (!TOKENS.has(t)) fail(LpErrorCode.NOISE_STATE, `bad token ${t}`);
  return Object.freeze({
    name,
    protocolName: `Noise_${name}_${NOISE_SUITE}`,
    initiatorPreMessage: Object.freeze(splitTokens(iPre) as PreToken[]),
    responderPreMessage: Object.freeze(splitTokens(rPre) as PreToken[]),
    messages: Object.freeze(messages.map((m) => Object.freeze(m))),
    oneWay: ONE_WAY.has(baseName),
    pskCount,
  });
}

/**
 * Parse `XKpsk3` or `Noise_XKpsk3_25519_ChaChaPoly_SHA256`. Throws LP_ERR_NOISE_STATE for an unknown
 * pattern, modifier or suite.
 */
export function parsePattern(nameOrProtocol: string): HandshakePattern {
  const hit = cache.get(nameOrProtocol);
  if (hit) return hit;
  let name = nameOrProtocol;
  if (name.startsWith('Noise_')) {
    const suffix = `_${NOISE_SUITE}`;
    if (!name.endsWith(suffix)) fail(LpErrorCode.NOISE_STATE, `unsupported Noise protocol ${nameOrProtocol}`);
    name = name.slice('Noise_'.length, name.length - suffix.length);
  }
  const pattern = cache.get(name) ?? buildPattern(name);
  cache.set(name, pattern);
  cache.set(nameOrProtocol, pattern);
  return pattern;
}

/** Base pattern names in the table (without modifiers). */
export const BASE_PATTERN_NAMES: readonly string[] = Object.freeze(Object.keys(BASE));
