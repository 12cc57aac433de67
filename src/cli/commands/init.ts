/** `lp-gateway init`: create the gateway's keys in the data directory (refuses to replace them without --force). */
import { parseArgs } from 'node:util';
// Only what --help needs is imported statically; the rest loads in run() (a command's --help loads nothing else).
import { GatewayErrorCode, isGatewayError } from '../../gateway/errors.js';
import { KEY_FILES } from '../../gateway/key-files.js';
import type { Command } from '../command.js';

export const initCommand: Command = {
  path: ['init'],
  summary: 'create the gateway keys (identity, ML-KEM-768, WireGuard) in the data directory',
  help: `Usage: lp-gateway init [--data-dir DIR] [--config FILE] [--force]

Creates the gateway's long-term keys in the data directory (created with mode 0700):
  ${KEY_FILES.identity.padEnd(14)} Ed25519 identity seed (32 bytes)
  ${KEY_FILES.kem.padEnd(14)} ML-KEM-768 key seed (64 bytes); clients pin BLAKE3 of its public key
  ${KEY_FILES.wireguard.padEnd(14)} WireGuard X25519 private key (32 bytes)
Each file is written atomically with mode 0600. Then prints the identity key, the KEM key hash,
the WireGuard public key and the data directory. 'lp-gateway run' creates missing keys by itself;
init is for provisioning ahead of the first start.

Existing keys are never replaced unless --force is given: replacing them gives the gateway a new
identity, and every client or gateway that pinned the old one stops trusting it.

Options:
  --data-dir DIR   data directory (default: data_dir from the config, ./data)
  --config FILE    TOML config file to read data_dir from (default: $LPGW_CONFIG, else
                   ./config/gateway.toml if present); LPGW_DATA_DIR applies as well
  --force          replace existing keys
  -h, --help       show this help
`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: { 'data-dir': { type: 'string' }, config: { type: 'string' }, force: { type: 'boolean' } },
    });
    const [{ defaultSuite, toHex }, { loadConfig }, { initKeys }, { createLogger }] = await Promise.all([
      import('../../core/index.js'),
      import('../../gateway/config-load.js'),
      import('../../gateway/keystore.js'),
      import('../../log.js'),
    ]);
    try {
      const config = loadConfig({
        ...(values.config !== undefined ? { configFile: values.config } : {}),
        overrides: values['data-dir'] !== undefined ? { dataDir: values['data-dir'] } : {},
      });
      const logger = createLogger({ level: config.log.level, stderr: true });
      const { keys, wireguard, dataDir } = initKeys(config.dataDir, defaultSuite, { force: values.force === true }, logger);
      process.stdout.write(
        [
          `gateway keys written to ${dataDir} (mode 0600)`,
          `data dir:       ${dataDir}`,
          `identity key:   ${toHex(keys.ed25519.publicKey)}`,
          `kem key hash:   ${toHex(keys.kemKeyHash)}  (BLAKE3-256 of the ML-KEM-768 public key)`,
          `wireguard key:  ${Buffer.from(wireguard.publicKey).toString('base64')}`,
          '',
        ].join('\n'),
      );
      return 0;
    } catch (e) {
      if (!isGatewayError(e)) throw e;
      const what = e.code === GatewayErrorCode.CONFIG ? 'invalid configuration: ' : '';
      process.stderr.write(`lp-gateway init: ${what}${e.message} [${e.code}]\n`);
      return e.code === GatewayErrorCode.CONFIG ? 2 : 1;
    }
  },
};
