/**
 * A dgram `lookup` for sockets that only ever send to IP literals (a listener answering each datagram to its
 * source): the address resolves to itself, synchronously. Node's default runs dns.lookup for every send, and
 * for a literal that defers the send by a process.nextTick — per datagram, a tick, a callback and the
 * rejection check that follows it. Anything that is not a literal (a host name in a bind address) still goes
 * to dns.lookup. Binding a literal then emits 'listening' within bind() itself: pass bind its callback (or
 * listen for the event) before calling it.
 */
import dns from 'node:dns';
import net from 'node:net';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

export function literalLookup(hostname: string, options: dns.LookupOneOptions | number, callback: LookupCallback): void {
  const family = net.isIP(hostname);
  if (family !== 0) {
    callback(null, hostname, family);
    return;
  }
  dns.lookup(hostname, typeof options === 'number' ? { family: options } : options, callback);
}
