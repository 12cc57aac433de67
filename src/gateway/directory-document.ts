/**
 * A signed directory document: the out-of-band trust anchor for a set of gateways (PRODUCT.md §8). An
 * operator (or a directory authority) lists gateways' signed descriptors and signs the list with a directory
 * key that clients and entries are configured with; a version that only grows and an expiry make old
 * documents refusable. JSON, snake_case, DESIGN.md §7.6:
 *
 *   { "schema_version": 1,
 *     "kind": "lp-gateway-directory",
 *     "directory_key": "<64 hex: Ed25519 public key>",
 *     "version": <integer ≥ 1, grows with every new document>,
 *     "issued_at": <unix seconds>, "expires_at": <unix seconds, after issued_at>,
 *     "gateways": [ <gateway record>, … ],
 *     "signature": "<128 hex>" }
 *
 * signature = Ed25519(directory key, "lp-gateway directory v1\n" ‖ canonical JSON of every other field)
 * (canonicalJson of descriptor.ts: keys sorted recursively, no whitespace). A gateway record is what a
 * gateway's descriptor says about it — `identity_key`, `lp`, `kem`, `roles`, `wireguard`, in exactly the
 * descriptor's form — without the descriptor's version, times and signature: the document's signature and
 * expiry vouch for it (a descriptor re-signed daily would expire inside a longer-lived document). Identities are
 * unique in a document. A client that also fetches the gateway's live descriptor requires it to match the record.
 */
import { fromHex, toHex, type CryptoSuite } from '../core/index.js';
import { canonicalJson, checkRecordFields, checkValidity, type GatewayRecord } from './descriptor.js';
import { GatewayError, GatewayErrorCode } from './errors.js';

export const DIRECTORY_SCHEMA_VERSION = 1;
export const DIRECTORY_KIND = 'lp-gateway-directory';
export const DIRECTORY_SIGNING_CONTEXT = 'lp-gateway directory v1\n';
/** Gateways in one document at most (a bound for whoever parses it). */
export const MAX_DIRECTORY_GATEWAYS = 1000;

export interface DirectoryDocument {
  schema_version: 1;
  kind: typeof DIRECTORY_KIND;
  directory_key: string;
  version: number;
  issued_at: number;
  expires_at: number;
  gateways: GatewayRecord[];
  signature: string;
}

const malformed = (msg: string): never => {
  throw new GatewayError(GatewayErrorCode.DIRECTORY_MALFORMED, `directory document: ${msg}`);
};

/** The bytes the directory signature covers. */
export function directorySigningBytes(d: Omit<DirectoryDocument, 'signature'>): Uint8Array {
  const { signature: _ignored, ...rest } = d as DirectoryDocument;
  return new TextEncoder().encode(DIRECTORY_SIGNING_CONTEXT + canonicalJson(rest));
}

export interface SignDirectoryOptions {
  /** The directory's Ed25519 key pair (libsodium 64-byte secret key). */
  key: { publicKey: Uint8Array; secretKey: Uint8Array };
  version: number;
  gateways: readonly GatewayRecord[];
  validitySec: number;
  issuedAt?: number;
}

export function signDirectory(o: SignDirectoryOptions, suite: CryptoSuite): DirectoryDocument {
  if (!Number.isSafeInteger(o.version) || o.version < 1) throw new GatewayError(GatewayErrorCode.DIRECTORY_MALFORMED, `directory version must be a positive integer, not ${o.version}`);
  const issuedAt = o.issuedAt ?? Math.floor(Date.now() / 1000);
  const unsigned: Omit<DirectoryDocument, 'signature'> = {
    schema_version: 1,
    kind: DIRECTORY_KIND,
    directory_key: toHex(o.key.publicKey),
    version: o.version,
    issued_at: issuedAt,
    expires_at: issuedAt + o.validitySec,
    gateways: o.gateways.map((g) => structuredClone(g)),
  };
  checkShape({ ...unsigned, signature: '0'.repeat(128) });
  return { ...unsigned, signature: toHex(suite.prims.ed25519Sign(o.key.secretKey, directorySigningBytes(unsigned))) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkShape(d: unknown): DirectoryDocument {
  if (!isObject(d)) return malformed('expected a JSON object');
  const keys = ['schema_version', 'kind', 'directory_key', 'version', 'issued_at', 'expires_at', 'gateways', 'signature'];
  for (const k of keys) if (!Object.prototype.hasOwnProperty.call(d, k)) malformed(`missing field '${k}'`);
  for (const k of Object.keys(d)) if (!keys.includes(k)) malformed(`unknown field '${k}'`);
  if (d.schema_version !== DIRECTORY_SCHEMA_VERSION) malformed(`unsupported schema_version ${JSON.stringify(d.schema_version)} (expected ${DIRECTORY_SCHEMA_VERSION})`);
  if (d.kind !== DIRECTORY_KIND) malformed(`kind must be "${DIRECTORY_KIND}"`);
  if (typeof d.directory_key !== 'string' || !/^[0-9a-f]{64}$/.test(d.directory_key)) malformed('directory_key must be 64 lower-case hex characters');
  if (typeof d.version !== 'number' || !Number.isSafeInteger(d.version) || d.version < 1) malformed('version must be a positive integer');
  if (typeof d.issued_at !== 'number' || !Number.isSafeInteger(d.issued_at) || d.issued_at < 0) malformed('issued_at must be a non-negative integer (unix seconds)');
  if (typeof d.expires_at !== 'number' || !Number.isSafeInteger(d.expires_at) || d.expires_at <= (d.issued_at as number)) malformed('expires_at must be an integer after issued_at');
  if (!Array.isArray(d.gateways) || d.gateways.length > MAX_DIRECTORY_GATEWAYS) malformed(`gateways must be an array of at most ${MAX_DIRECTORY_GATEWAYS} gateway records`);
  (d.gateways as unknown[]).forEach((g, i) => {
    if (!isObject(g)) return malformed(`gateway ${i + 1}: expected an object`);
    const fields = ['identity_key', 'lp', 'kem', 'roles', 'wireguard'];
    for (const k of fields) if (!Object.prototype.hasOwnProperty.call(g, k)) malformed(`gateway ${i + 1}: missing field '${k}'`);
    for (const k of Object.keys(g)) if (!fields.includes(k)) malformed(`gateway ${i + 1}: unknown field '${k}'`);
    checkRecordFields(g, (msg) => malformed(`gateway ${i + 1}: ${msg}`));
  });
  const ids = (d.gateways as { identity_key: string }[]).map((g) => g.identity_key);
  if (new Set(ids).size !== ids.length) malformed('a gateway identity is listed twice');
  if (typeof d.signature !== 'string' || !/^[0-9a-f]{128}$/.test(d.signature)) malformed('signature must be 128 lower-case hex characters');
  return d as unknown as DirectoryDocument;
}

/**
 * Verifies a directory document against the trusted directory keys: shape (LPGW_ERR_DIRECTORY_MALFORMED),
 * a trusted key and its signature (LPGW_ERR_DIRECTORY_SIGNATURE), validity (…_EXPIRED / …_NOT_YET_VALID) and
 * a version not below `minVersion` (LPGW_ERR_DIRECTORY_ROLLBACK). Returns a deep copy.
 */
export function verifyDirectory(json: unknown, trustedKeys: readonly Uint8Array[], suite: CryptoSuite, o: { nowSec?: number; minVersion?: number } = {}): DirectoryDocument {
  const d = checkShape(json);
  const nowSec = o.nowSec ?? Math.floor(Date.now() / 1000);
  const key = fromHex(d.directory_key);
  if (!trustedKeys.some((k) => toHex(k) === d.directory_key)) {
    throw new GatewayError(GatewayErrorCode.DIRECTORY_SIGNATURE, `directory document signed by ${d.directory_key.slice(0, 16)}…, which is not a trusted directory key`);
  }
  const copy = structuredClone(d);
  if (!suite.prims.ed25519Verify(key, directorySigningBytes(copy), fromHex(copy.signature))) {
    throw new GatewayError(GatewayErrorCode.DIRECTORY_SIGNATURE, `directory document version ${copy.version}: signature does not verify`);
  }
  checkValidity(`directory document version ${copy.version}`, copy.issued_at, copy.expires_at, nowSec, GatewayErrorCode.DIRECTORY_EXPIRED, GatewayErrorCode.DIRECTORY_NOT_YET_VALID);
  if (o.minVersion !== undefined && copy.version < o.minVersion) {
    throw new GatewayError(GatewayErrorCode.DIRECTORY_ROLLBACK, `directory document version ${copy.version} is older than version ${o.minVersion}, already seen`);
  }
  return copy;
}
