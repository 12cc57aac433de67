// The telescoping floor: the same hops as an entry → exit registration, through a bare TCP relay without
// cryptography. Frames are LP's (u32 BE length ‖ body); a request body is: flag u8 (0 = answer here, 1 = relay
// to the exit) ‖ reply length u32 BE ‖ padding to the request's size. The relay ("entry") answers flag-0 frames
// itself and relays flag-1 frames to the exit over a pooled connection (one exchange at a time per connection,
// idle ones kept, as the entry's pool to an exit), returning the exit's reply; the exit answers every frame.
// Each answer is a frame of the asked length. Plain JavaScript run by plain node, as the gateways run dist/.
// Usage: node bench/servers/relay-server.mjs exit            → {"port":N}
//        node bench/servers/relay-server.mjs entry EXITPORT  → {"port":N}
import net from 'node:net';

const [role, exitPortArg] = process.argv.slice(2);
const HOST = '127.0.0.1';

/** Calls onFrame(body) for each complete frame arriving on `socket`. */
function frames(socket, onFrame) {
  let buf = Buffer.alloc(0);
  socket.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      const body = buf.subarray(4, 4 + len);
      buf = buf.subarray(4 + len);
      onFrame(body);
    }
  });
}

function answer(socket, body) {
  const n = body.readUInt32BE(1);
  const out = Buffer.alloc(4 + n);
  out.writeUInt32BE(n, 0);
  socket.write(out);
}

/** The entry's pooled connections to the exit: one exchange per connection at a time, idle ones reused. */
const idle = [];
function exchangeWithExit(frame) {
  return new Promise((resolve, reject) => {
    const take = (s) => {
      s.removeAllListeners('data');
      let got = Buffer.alloc(0);
      s.on('data', (d) => {
        got = got.length ? Buffer.concat([got, d]) : d;
        if (got.length >= 4 && got.length >= 4 + got.readUInt32BE(0)) {
          s.removeAllListeners('data');
          idle.push(s);
          resolve(got);
        }
      });
      s.write(frame);
    };
    const s = idle.pop();
    if (s && !s.destroyed) take(s);
    else {
      const c = net.connect({ host: HOST, port: Number(exitPortArg), noDelay: true }, () => take(c));
      c.on('error', reject);
    }
  });
}

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy());
  frames(socket, (body) => {
    if (role === 'entry' && body[0] === 1) {
      const frame = Buffer.alloc(4 + body.length);
      frame.writeUInt32BE(body.length, 0);
      body.copy(frame, 4);
      exchangeWithExit(frame).then((reply) => socket.write(reply), () => socket.destroy());
    } else answer(socket, body);
  });
});
server.listen({ host: HOST, port: 0 }, () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
process.on('SIGTERM', () => process.exit(0));
