// The round-trip floor: a bare Node UDP or TCP echo, no LP, on the gateway listeners' socket setup (UDP: an
// unconnected udp4 socket answering each datagram to its source, with the listener's own synchronous lookup of
// literal addresses from dist/; TCP: a server with noDelay, each connection writing back what it reads). Plain
// JavaScript run by plain node, as the gateway runs from dist/.
// `udp-aead` is the UDP echo that also performs a round trip's four ChaCha20-Poly1305 operations the way the
// gateway calls them (dist's sodium-aead.js, in place, on a valid LP-shaped packet of the request's size: outer
// open, Noise open, Noise seal, outer seal) and nothing else: what any LP server on this crypto would pay at least.
// Usage: node bench/servers/echo-server.mjs <udp|udp-aead|tcp> [host] [request bytes, udp-aead]
//   → prints {"port":N} once listening; SIGTERM ends it.
import dgram from 'node:dgram';
import net from 'node:net';
import { literalLookup } from '../../dist/src/net/literal-lookup.js';
import { aeadDecryptInto, aeadEncryptInto } from '../../dist/src/core/crypto/sodium-aead.js';

const [kind, host = '127.0.0.1', sizeArg = '127'] = process.argv.slice(2);
const ready = (port) => process.stdout.write(`${JSON.stringify({ port })}\n`);
let close;
if (kind === 'udp') {
  const socket = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false, lookup: literalLookup });
  socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
  socket.bind({ address: host, port: 0 }, () => ready(socket.address().port));
  close = () => socket.close();
} else if (kind === 'udp-aead') {
  // header (12) | outer-sealed [ inner prefix (6) | Noise-sealed plaintext (+16) ] | outer tag (16)
  const size = Number(sizeArg);
  if (!(size >= 12 + 6 + 16 + 16)) throw new Error(`udp-aead needs requests of at least 50 bytes, got ${sizeArg}`);
  const [outerKey, noiseKey, nonce, empty] = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2), new Uint8Array(12), new Uint8Array(0)];
  const packet = new Uint8Array(size);
  aeadEncryptInto(packet.subarray(18, size - 16), packet.subarray(18, size - 32), empty, nonce, noiseKey);
  aeadEncryptInto(packet.subarray(12), packet.subarray(12, size - 16), packet.subarray(0, 12), nonce, outerKey);
  const socket = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false, lookup: literalLookup });
  socket.on('message', (msg, rinfo) => {
    if (msg.length === size) {
      msg.set(packet); // the load's requests are filler: answer as if they were this valid packet
      const ok =
        aeadDecryptInto(msg.subarray(12, size - 16), msg.subarray(12), msg.subarray(0, 12), nonce, outerKey) &&
        aeadDecryptInto(msg.subarray(18, size - 32), msg.subarray(18, size - 16), empty, nonce, noiseKey);
      if (!ok) throw new Error('udp-aead: the packet did not open');
      aeadEncryptInto(msg.subarray(18, size - 16), msg.subarray(18, size - 32), empty, nonce, noiseKey);
      aeadEncryptInto(msg.subarray(12), msg.subarray(12, size - 16), msg.subarray(0, 12), nonce, outerKey);
    }
    socket.send(msg, rinfo.port, rinfo.address);
  });
  socket.bind({ address: host, port: 0 }, () => ready(socket.address().port));
  close = () => socket.close();
} else if (kind === 'tcp') {
  const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (s) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => s.destroy());
  });
  server.listen({ host, port: 0 }, () => ready(server.address().port));
  close = () => server.close();
} else {
  process.stderr.write('usage: echo-server.mjs <udp|udp-aead|tcp> [host] [request bytes]\n');
  process.exit(2);
}
process.on('SIGTERM', () => {
  close();
  process.exit(0);
});
