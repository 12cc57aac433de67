/** The key files in the data directory (re-exported by keystore.ts; no imports, for `lp-gateway init --help`). */
export const KEY_FILES = {
  identity: 'identity.key',
  kem: 'kem.key',
  wireguard: 'wireguard.key',
} as const;
