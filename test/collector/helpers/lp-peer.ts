/**
 * LP traffic peer for tests that run in network namespaces (child processes):
 *   lp-peer.ts server [--host ::]                      prints {"tcpPort":N,"udpPort":N}, runs until SIGTERM
 *   lp-peer.ts client --v4 A --v6 B --tcp-port N --udp-port N   runs standardPlan(), prints the socket report
 */
import { parseArgs } from 'node:util';
import { runLpClient, standardPlan, startLpServer } from './lp-traffic.js';

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { host: { type: 'string' }, v4: { type: 'string' }, v6: { type: 'string' }, 'tcp-port': { type: 'string' }, 'udp-port': { type: 'string' } },
  });
  if (positionals[0] === 'server') {
    const s = await startLpServer(values.host ?? '::');
    process.stdout.write(`${JSON.stringify({ tcpPort: s.tcpPort, udpPort: s.udpPort })}\n`);
    process.once('SIGTERM', () => void s.close().then(() => process.exit(0)));
    return;
  }
  if (positionals[0] === 'client') {
    const report = await runLpClient(standardPlan(), {
      v4: values.v4 ?? '127.0.0.1',
      v6: values.v6 ?? '::1',
      tcpPort: Number(values['tcp-port']),
      udpPort: Number(values['udp-port']),
    });
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  process.stderr.write('usage: lp-peer.ts server|client …\n');
  process.exitCode = 2;
}

main().catch((e: unknown) => {
  process.stderr.write(`lp-peer: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
