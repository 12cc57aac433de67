/**
 * Child used by the unprivileged test: calls startCollector() with a real pino logger on stdout and prints
 * `RESULT null` or `RESULT started`, so the test sees both the log lines and the library's return value.
 */
import { startCollector } from '../../../src/collector/index.js';
import { createLogger } from '../../../src/log.js';

const log = createLogger({ level: 'info' }).child({ component: 'collector' });
const c = await startCollector({ iface: 'lo', ports: [45123], windowSec: 60, outDir: null }, log);
process.stdout.write(`RESULT ${c === null ? 'null' : 'started'}\n`);
await c?.stop();
