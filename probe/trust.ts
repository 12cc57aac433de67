/**
 * Whom the probe trusts (PRODUCT.md §8, DESIGN.md §7.6): a gateway only through an out-of-band anchor —
 *  - a pinned identity key (`--entry-identity`, `--exit-identity`): the descriptor must be signed by it;
 *  - a signed directory document (`--directory SRC --directory-key KEY`): the gateway's identity must be
 *    listed, and its descriptor must match the listed record (addresses, KEM key hash, roles, WireGuard);
 *  - or, explicitly, trust on first use (`--trust-on-first-use`, localnets only): any validly self-signed
 *    descriptor at the URL.
 * Every refusal is coded and happens before any LP packet is sent. With `--state FILE` the probe remembers
 * the newest descriptor per identity and the highest directory version per key, and refuses older ones
 * (rollback) on later runs.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ClientError, fetchDescriptor } from '../src/client/index.js';
import { defaultSuite, fromHex } from '../src/core/index.js';
import { canonicalJson, recordOf } from '../src/gateway/descriptor.js';
import { type DirectoryDocument, verifyDirectory } from '../src/gateway/directory-document.js';
import type { FetchedGateway } from './steps.js';

export type Anchor = 'pinned' | 'directory' | 'trust-on-first-use';

export interface TrustOptions {
  entryIdentity: string | null;
  exitIdentity: string | null;
  /** A directory document: a URL or a file path. */
  directory: string | null;
  directoryKeys: string[];
  trustOnFirstUse: boolean;
  stateFile: string | null;
}

interface ProbeState {
  descriptors: Record<string, number>;
  directories: Record<string, number>;
}

const MAX_DIRECTORY_BYTES = 1024 * 1024;

async function readSource(src: string, timeoutMs: number): Promise<unknown> {
  if (/^https?:\/\//.test(src)) {
    let res: Response;
    try {
      res = await fetch(src, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    } catch (e) {
      throw new ClientError('LPC_ERR_DIRECTORY_UNREACHABLE', `cannot fetch ${src}: ${(e as Error).message}`);
    }
    if (!res.ok) throw new ClientError('LPC_ERR_DIRECTORY_UNREACHABLE', `${src} answered HTTP ${res.status}`);
    const text = await res.text();
    if (text.length > MAX_DIRECTORY_BYTES) throw new ClientError('LPC_ERR_DIRECTORY_INVALID', `${src}: larger than ${MAX_DIRECTORY_BYTES} bytes`);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ClientError('LPC_ERR_DIRECTORY_INVALID', `${src} did not return JSON`);
    }
  }
  try {
    return JSON.parse(readFileSync(src, 'utf8')) as unknown;
  } catch (e) {
    throw new ClientError('LPC_ERR_DIRECTORY_INVALID', `cannot read the directory document ${src}: ${(e as Error).message}`);
  }
}

export class ProbeTrust {
  private constructor(
    private readonly o: TrustOptions,
    readonly directory: DirectoryDocument | null,
    private readonly state: ProbeState,
  ) {}

  /** Loads and verifies the directory document, if any (coded ClientError on failure). */
  static async load(o: TrustOptions, timeoutMs: number): Promise<ProbeTrust> {
    const state: ProbeState = { descriptors: {}, directories: {} };
    if (o.stateFile && existsSync(o.stateFile)) {
      try {
        const s = JSON.parse(readFileSync(o.stateFile, 'utf8')) as Partial<ProbeState>;
        Object.assign(state.descriptors, s.descriptors ?? {});
        Object.assign(state.directories, s.directories ?? {});
      } catch (e) {
        throw new ClientError('LPC_ERR_STATE_FILE', `cannot read the state file ${o.stateFile}: ${(e as Error).message}`);
      }
    }
    let directory: DirectoryDocument | null = null;
    if (o.directory !== null) {
      const json = await readSource(o.directory, timeoutMs);
      const key = (json as { directory_key?: unknown } | null)?.directory_key;
      const minVersion = typeof key === 'string' ? state.directories[key] : undefined;
      try {
        directory = verifyDirectory(json, o.directoryKeys.map((k) => fromHex(k)), defaultSuite, minVersion !== undefined ? { minVersion } : {});
      } catch (e) {
        throw ClientError.from(e);
      }
      state.directories[directory.directory_key] = directory.version;
    }
    return new ProbeTrust(o, directory, state);
  }

  /** Whether any anchor could vouch for a gateway (else the run refuses at once). */
  hasAnchor(role: 'entry' | 'exit'): boolean {
    return (role === 'entry' ? this.o.entryIdentity : this.o.exitIdentity) !== null || this.directory !== null || this.o.trustOnFirstUse;
  }

  /** Fetches the gateway's descriptor at `url` and checks it against the anchors; returns it with the anchor used. */
  async resolve(role: 'entry' | 'exit', url: string, timeoutMs: number): Promise<FetchedGateway & { anchor: Anchor }> {
    const pinned = role === 'entry' ? this.o.entryIdentity : this.o.exitIdentity;
    if (!this.hasAnchor(role)) {
      throw new ClientError('LPC_ERR_NO_TRUST_ANCHOR', `nothing vouches for the ${role} gateway: give --${role}-identity KEY, or --directory SRC with --directory-key KEY (or, for a localnet, --trust-on-first-use)`);
    }
    const fetched = await fetchDescriptor(url, timeoutMs, defaultSuite, pinned !== null ? { identity: pinned } : {});
    const d = fetched.descriptor;
    const listed = this.directory?.gateways.find((g) => g.identity_key === d.identity_key) ?? null;
    if (listed && canonicalJson(listed) !== canonicalJson(recordOf(d))) {
      throw new ClientError('LPC_ERR_DIRECTORY_MISMATCH', `the ${role}'s descriptor does not match its record in directory version ${this.directory?.version}: refusing it`);
    }
    let anchor: Anchor;
    if (pinned !== null) anchor = 'pinned';
    else if (listed) anchor = 'directory';
    else if (this.o.trustOnFirstUse) anchor = 'trust-on-first-use';
    else throw new ClientError('LPC_ERR_NOT_IN_DIRECTORY', `the ${role} gateway ${d.identity_key} is not listed in directory version ${this.directory?.version ?? '?'}`);
    const newest = this.state.descriptors[d.identity_key];
    if (newest !== undefined && d.issued_at < newest) {
      throw new ClientError('LPGW_ERR_DESCRIPTOR_ROLLBACK', `the ${role}'s descriptor was issued at ${d.issued_at}, before one already seen (${newest}): refusing a rollback`);
    }
    this.state.descriptors[d.identity_key] = d.issued_at;
    return { ...fetched, anchor };
  }

  /** Writes the state file (0600), if one was given. */
  save(): void {
    if (!this.o.stateFile) return;
    writeFileSync(this.o.stateFile, `${JSON.stringify(this.state, null, 1)}\n`, { mode: 0o600 });
    chmodSync(this.o.stateFile, 0o600);
  }
}

/** `--directory-key` values: 64 hex each (throws a message for the usage error). */
export function checkKeyHex(flag: string, v: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new Error(`${flag} must be an Ed25519 public key as 64 hex characters, not '${v}'`);
  return v.toLowerCase();
}

