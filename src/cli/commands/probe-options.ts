/**
 * Option specs, help text and number parsing shared by `gateway-probe run` and `gateway-probe load`: no imports
 * beyond the CLI's own, so a `--help` loads nothing else (the checks themselves are in ./probe-common.ts).
 */
import { UsageError } from '../command.js';

/** parseArgs option specs common to both commands. */
export const COMMON_OPTIONS = {
  entry: { type: 'string' },
  exit: { type: 'string' },
  'entry-identity': { type: 'string' },
  'exit-identity': { type: 'string' },
  directory: { type: 'string' },
  'directory-key': { type: 'string', multiple: true },
  'trust-on-first-use': { type: 'boolean', default: false },
  state: { type: 'string' },
  transport: { type: 'string', default: 'tcp' },
  mode: { type: 'string', default: 'dvpn' },
  'mock-ecash': { type: 'boolean', default: false },
  ticket: { type: 'string' },
  'source-address': { type: 'string' },
  compact: { type: 'boolean', default: false },
} as const;

export interface CommonValues {
  entry?: string | undefined;
  exit?: string | undefined;
  'entry-identity'?: string | undefined;
  'exit-identity'?: string | undefined;
  directory?: string | undefined;
  'directory-key'?: string[] | undefined;
  'trust-on-first-use': boolean;
  state?: string | undefined;
  transport: string;
  mode: string;
  'mock-ecash': boolean;
  ticket?: string | undefined;
  'source-address'?: string | undefined;
}

/** The trust-anchor options (help text shared by run and load). */
export const TRUST_HELP = `Trust (one is required: a self-signed descriptor alone is never trusted):
  --entry-identity KEY  the entry's identity key (64 hex, as 'lp-gateway init'
                        prints it): its descriptor must be signed by it
  --exit-identity KEY   the same for --exit
  --directory SRC       a signed directory document (URL or file, from
                        'lp-gateway directory sign') listing the gateways; their
                        descriptors must match their records
  --directory-key KEY   the directory key that must have signed it; repeatable
  --trust-on-first-use  accept whatever self-signed descriptor the URLs serve
                        (anyone on the path could pose as the gateway: localnets
                        and tests only)
  --state FILE          remember the newest descriptor per gateway and the
                        highest directory version, and refuse older ones later`;

/** A decimal number greater than 0 and at most `max`. */
export function positiveOption(flag: string, v: string, max: number, what = 'a number'): number {
  const n = /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : NaN;
  if (!(n > 0 && n <= max)) throw new UsageError(`${flag} must be ${what} greater than 0 and at most ${max}, not '${v}'`);
  return n;
}

/** A positive number of seconds → ms. */
export function secondsOption(flag: string, v: string, max: number): number {
  return Math.max(1, Math.round(positiveOption(flag, v, max, 'a number of seconds') * 1000));
}

/** An integer in [min, max]. */
export function intOption(flag: string, v: string, min: number, max: number): number {
  const n = /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!(Number.isSafeInteger(n) && n >= min && n <= max)) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, not '${v}'`);
  return n;
}

export function printJson(value: unknown, compact: boolean): void {
  process.stdout.write(`${compact ? JSON.stringify(value) : JSON.stringify(value, null, 2)}\n`);
}
