// The round-trip floor: a bare Node UDP or TCP echo, no LP, on the gateway listeners' socket setup (UDP: an
// unconnected udp4 socket answering each datagram to its source, with the listener's own synchronous lookup of
// literal addresses from dist/; TCP: a server with noDelay, each connection writing back what it reads). Plain
// JavaScript run by plain node, as the gateway runs from dist/.
// Usage: node bench/servers/echo-server.mjs <udp|tcp> [host]   → prints {"port":N} once listening; SIGTERM ends it.
import dgram from 'node:dgram';
import net from 'node:net';
import { literalLookup } from '../../dist/src/net/literal-lookup.js';

const [kind, host = '127.0.0.1'] = process.argv.slice(2);
const ready = (port) => process.stdout.write(`${JSON.stringify({ port })}\n`);
let close;
if (kind === 'udp') {
  const socket = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false, lookup: literalLookup });
  socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
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
  process.stderr.write('usage: echo-server.mjs <udp|tcp> [host]\n');
  process.exit(2);
}
process.on('SIGTERM', () => {
  close();
  process.exit(0);
});
