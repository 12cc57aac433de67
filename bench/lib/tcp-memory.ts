/**
 * What a TCP peer can make a gateway hold (issue 13, F5b/F5c), as RSS of a real gateway process:
 *  - connections that send only a length prefix declaring 65,536 bytes (and nothing else);
 *  - one session that pipelines Pings and never reads its replies, against the same flood from a client that
 *    reads (the memory the work itself costs, held by nobody).
 */
import { LpConnection, fetchDescriptor } from '../../src/client/index.js';
import { encodeFrame } from '../../src/core/index.js';
import { startGatewayProcess, scrape } from '../../test/helpers/gateway-process.js';
import { RawTcpTransport, rssBytes } from '../../test/helpers/abuse.js';
import { prims, sleep, tcpConnect } from '../../test/helpers/lp-e2e.js';
import type { Socket } from 'node:net';

export interface PrefixFigures {
  connections: number;
  rssGrowthBytes: number;
  perConnectionBytes: number;
}

/** `n` connections from 64+ loopback sources (within the per-source cap), each sending a 4-byte prefix only. */
export async function prefixOnlyConnections(n: number): Promise<PrefixFigures> {
  const gw = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_LP_READ_TIMEOUT_MS: '60000', LPGW_LOG_LEVEL: 'warn' } });
  const pid = gw.proc.pid as number;
  const sockets: Socket[] = [];
  try {
    await sleep(1000);
    const rss0 = rssBytes(pid);
    for (let src = 1; sockets.length < n; src++) {
      const batch = await Promise.all(Array.from({ length: Math.min(125, n - sockets.length) }, () => tcpConnect(gw.lpTcp, `127.0.${4 + Math.floor(src / 250)}.${(src % 250) + 1}`)));
      for (const s of batch) s.write(new Uint8Array([0, 1, 0, 0]));
      sockets.push(...batch);
    }
    await sleep(1500);
    const grown = rssBytes(pid) - rss0;
    return { connections: n, rssGrowthBytes: grown, perConnectionBytes: grown / n };
  } finally {
    for (const s of sockets) s.destroy();
    await gw.stop();
  }
}

export interface PipelineFigures {
  reads: boolean;
  bytesWritten: number;
  rssPeakGrowthBytes: number;
  paused: number;
  writeTimeouts: number;
}

/** One session writes Pings of 60,000 bytes for `seconds` (or 200 MB), honouring TCP flow control. */
export async function pipelinedPings(reads: boolean, seconds: number): Promise<PipelineFigures> {
  const gw = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_LP_READ_TIMEOUT_MS: String(seconds * 1000 + 2000), LPGW_LOG_LEVEL: 'warn' } });
  const pid = gw.proc.pid as number;
  const raw = await RawTcpTransport.connect(gw.lpTcp, '127.0.0.85');
  try {
    const conn = await LpConnection.connect({ transport: raw, gateway: (await fetchDescriptor(gw.http)).pin });
    await sleep(1000);
    const rss0 = rssBytes(pid);
    raw.socket.removeAllListeners('data');
    if (reads) raw.socket.on('data', () => undefined);
    else raw.socket.pause();
    const payload = prims.randomBytes(60_000);
    let written = 0;
    let peak = rss0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(pid));
    }, 100);
    const end = Date.now() + seconds * 1000;
    while (written < 200e6 && Date.now() < end && !raw.socket.destroyed) {
      const frame = encodeFrame(conn.session.send({ kind: 'ping', payload }));
      written += frame.length;
      if (!raw.socket.write(frame)) {
        const drained = await Promise.race([new Promise<boolean>((r) => raw.socket.once('drain', () => r(true))), sleep(Math.max(0, end - Date.now())).then(() => false)]);
        if (!drained) break;
      }
    }
    await sleep(500);
    clearInterval(sampler);
    const m = await scrape(gw.http);
    return { reads, bytesWritten: written, rssPeakGrowthBytes: peak - rss0, paused: m.get('lp_connections_paused_total') ?? 0, writeTimeouts: m.get('lp_connections_rejected_total{reason="write_timeout"}') ?? 0 };
  } finally {
    raw.close();
    await gw.stop();
  }
}
