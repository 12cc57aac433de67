/** `lp-gateway run`: start a gateway (initialising keys and the database on first run). */
// Only what --help needs is imported statically; the rest loads in run() (a command's --help loads nothing else).
import { RUN_FLAGS_HELP } from '../../gateway/run-flags-help.js';
import type { Command } from '../command.js';

/** After the grace period (or after shutdown), how long the process may take to exit on its own. */
const SHUTDOWN_SLACK_MS = 2000;

export const runCommand: Command = {
  path: ['run'],
  summary: 'run a gateway (entry, exit or both); initialises keys and storage on first run',
  help: `Usage: lp-gateway run [options]

Starts an LP gateway. With no options it runs on embedded defaults: LP TCP 0.0.0.0:41264, LP UDP
0.0.0.0:51264, HTTP API 127.0.0.1:8080, mode entry+exit, keys and SQLite database in ./data (created
on first run). Configuration precedence: config file < LPGW_* environment < flags.

${RUN_FLAGS_HELP}

Signals: SIGTERM/SIGINT stop accepting, finish in-flight requests within shutdown_grace_sec, close the
database and exit 0.`,
  async run(argv) {
    const [{ loadConfig, parseRunFlags }, { GatewayError }, { createLogger }, { startGateway }] = await Promise.all([
      import('../../gateway/config-load.js'),
      import('../../gateway/errors.js'),
      import('../../log.js'),
      import('../../gateway/node.js'),
    ]);
    const { configFile, overrides } = parseRunFlags(argv);
    let config;
    try {
      config = loadConfig({ configFile, env: process.env, overrides });
    } catch (e) {
      if (e instanceof GatewayError) {
        process.stderr.write(`lp-gateway: invalid configuration: ${e.message}\n`);
        return 2;
      }
      throw e;
    }
    const logger = createLogger({ level: config.log.level });
    let gateway;
    try {
      gateway = await startGateway(config, { logger });
    } catch (e) {
      const code = (e as { code?: string }).code;
      logger.fatal({ code, err: e }, `gateway failed to start: ${(e as Error).message}`);
      return 1;
    }
    const graceMs = config.shutdownGraceSec * 1000;
    await new Promise<void>((resolve) => {
      const onSignal = (sig: NodeJS.Signals): void => {
        logger.info({ signal: sig }, 'signal received');
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        // Shutdown is bounded step by step; should a step still hang, the process does not.
        setTimeout(() => {
          logger.error({ graceSec: config.shutdownGraceSec }, 'shutdown did not complete within the grace period; exiting');
          process.exit(1);
        }, graceMs + SHUTDOWN_SLACK_MS).unref();
        gateway.stop().then(resolve, (e: unknown) => {
          logger.error({ err: e }, 'error during shutdown');
          resolve();
        });
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    // Everything is closed; a handle something left open must not keep the process alive.
    setTimeout(() => {
      logger.warn('handles were left open after shutdown; exiting');
      process.exit(0);
    }, SHUTDOWN_SLACK_MS).unref();
    return 0;
  },
};
