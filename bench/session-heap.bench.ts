/**
 * Heap bytes per established session, gateway side, at 100,000 sessions in the session table.
 * Sessions are built the way the responder builds them (same objects and key sizes), without running
 * 100,000 handshakes; one real handshake first checks that the constructed shape matches.
 */
import { Session, defaultSuite, outerKeys, sessionSecret } from '../src/core/index.js';
import { CipherState } from '../src/core/noise/index.js';
import { SessionTables } from '../src/gateway/tables.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run bench does)');
const N = Number(process.env.BENCH_SESSIONS ?? 100_000);
const { prims } = defaultSuite;
const local = prims.x25519FromSecret(prims.randomBytes(32));

/** JS heap plus memory held by ArrayBuffers (keys and packets live there). */
function heap(): number {
  for (let i = 0; i < 3; i++) gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function makeSession(index: number): Session {
  const psk = prims.randomBytes(32);
  const h = prims.randomBytes(32);
  return new Session({
    prims,
    receiverIndex: index,
    role: 'responder',
    keys: outerKeys(prims, psk),
    noiseSend: new CipherState(prims, prims.randomBytes(32)),
    noiseRecv: new CipherState(prims, prims.randomBytes(32)),
    secret: sessionSecret(prims, psk, h),
    handshakeHash: h,
    generation: 0,
    localStatic: local,
    remoteStatic: prims.randomBytes(32),
    sendCounter: 3,
    receivedCounters: [2],
  });
}

const tables = new SessionTables({ maxHandshakes: 1000, maxSessions: N + 1, handshakeTtlSec: 90, sessionIdleTtlSec: 86400, demotedIdleTtlSec: 60 });
const before = heap();
for (let i = 1; i <= N; i++) {
  const s = makeSession(i);
  // An Ack was sent for message 3 and is kept for retransmission, as in the real responder.
  s.rememberReply(s.seal(8, new Uint8Array(0)), 2);
  tables.sessions.set(i, s);
}
const after = heap();
const per = (after - before) / N;
// Using the table after the measurement keeps it alive through heap()'s GCs (V8 would collect it otherwise).
process.stdout.write(`sessions: ${tables.sessions.size.toLocaleString('en-US')}\nheap + external per established session: ${per.toFixed(0)} bytes (target ≤ 2048) → ${per <= 2048 ? 'met' : 'MISSED'}\n`);
