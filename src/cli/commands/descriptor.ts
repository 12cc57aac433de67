/** `lp-gateway descriptor`: print this gateway's signed descriptor (what GET /v1/gateway serves). */
// Only what --help needs is imported statically; the rest loads in run() (a command's --help loads nothing else).
import { GatewayErrorCode, isGatewayError } from '../../gateway/errors.js';
import { RUN_FLAGS_HELP } from '../../gateway/run-flags-help.js';
import type { Command } from '../command.js';

export const descriptorCommand: Command = {
  path: ['descriptor'],
  summary: "print the gateway's signed descriptor (JSON) for the configured addresses",
  help: `Usage: lp-gateway descriptor [options]

Prints the signed gateway descriptor, pretty-printed JSON on stdout: identity key, LP TCP/UDP
addresses, ML-KEM-768 key hash, roles, WireGuard public key and endpoint, software version,
issue time and Ed25519 signature. It is what 'lp-gateway run' serves at GET /v1/gateway, built
from the configuration instead of the bound sockets: addresses use lp.announce_host (else the bind
host, or 127.0.0.1 for a wildcard bind) and the configured ports (a port 0 stays 0). Put it in a
topology file ({ "gateways": [ <descriptor>, ... ] }) to let entries forward to this gateway
without fetching it over HTTP.

Takes the same options as 'lp-gateway run'. Loads the keys from the data directory, creating them
if absent (like run). Logs go to stderr.

${RUN_FLAGS_HELP}
  -h, --help               show this help
`,
  async run(argv) {
    const [{ defaultSuite }, { loadConfig, parseRunFlags }, { buildDescriptor, descriptorParamsFromConfig }, { loadOrCreateKeys }, { createLogger }] = await Promise.all([
      import('../../core/index.js'),
      import('../../gateway/config-load.js'),
      import('../../gateway/descriptor.js'),
      import('../../gateway/keystore.js'),
      import('../../log.js'),
    ]);
    const { configFile, overrides } = parseRunFlags(argv);
    try {
      const config = loadConfig({ ...(configFile !== undefined ? { configFile } : {}), overrides });
      const logger = createLogger({ level: config.log.level, stderr: true });
      const { keys, wireguard, created, dataDir } = loadOrCreateKeys(config.dataDir, defaultSuite, logger);
      if (created) logger.info({ dataDir }, 'generated new gateway keys');
      const descriptor = buildDescriptor(descriptorParamsFromConfig(config, wireguard.publicKey), defaultSuite, keys);
      process.stdout.write(`${JSON.stringify(descriptor, null, 2)}\n`);
      return 0;
    } catch (e) {
      if (!isGatewayError(e)) throw e;
      const what = e.code === GatewayErrorCode.CONFIG ? 'invalid configuration: ' : '';
      process.stderr.write(`lp-gateway descriptor: ${what}${e.message} [${e.code}]\n`);
      return e.code === GatewayErrorCode.CONFIG ? 2 : 1;
    }
  },
};
