/**
 * Records test/vectors/wireguard-handshake.json from a real interoperation with wireguard-go (root needed):
 *
 *   node --import tsx test/client/wireguard/helpers/record-vectors.ts > test/vectors/wireguard-handshake.json
 *
 * A fresh wireguard-go interface in a fresh namespace gets fixed keys; the client core runs in a child inside
 * the namespace with every random byte it asks for taken from a fixed stream (and logged, in order) and a
 * fixed TAI64N timestamp. What wireguard-go sends back (its own fresh ephemeral) is recorded as-is. The
 * replay test (vectors.test.ts) feeds the same inputs to the core offline and checks every byte.
 */
import dgram from 'node:dgram';
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  WgPeer,
  buildEcho,
  clampPrivateKey,
  defaultWgCrypto,
  parseIp,
  tai64n,
  wgCryptoWithRandom,
  wgKeyToBase64,
  wgPublicKey,
  wgHash,
} from '../../../../src/client/wireguard/index.js';

const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

export const KAT_INPUTS = {
  clientPrivateKey: hex(clampPrivateKey(wgHash('lp-gateway wireguard KAT client'))),
  gatewayPrivateKey: hex(clampPrivateKey(wgHash('lp-gateway wireguard KAT gateway'))),
  presharedKey: hex(wgHash('lp-gateway wireguard KAT psk')),
  timestampUnixMs: Date.UTC(2025, 0, 1, 0, 0, 0, 123),
  port: 51999,
  gatewayIpv4: '10.97.0.1',
  clientIpv4: '10.97.0.2',
  gatewayIpv6: 'fd97::1',
  clientIpv6: 'fd97::2',
  echoId: 0x4c50,
  echoData: hex(new TextEncoder().encode('lp-gateway wireguard known-answer echo payload, 56 bytes')),
};

/** The deterministic random stream: BLAKE2s("lp-gateway wireguard KAT random" ‖ n) for n = 0, 1, … */
export function katRandomStream(): (n: number) => Uint8Array {
  let block = 0;
  let buf = new Uint8Array(0);
  return (n) => {
    while (buf.length < n) {
      const b = wgHash('lp-gateway wireguard KAT random', Uint8Array.of(block & 0xff, (block >> 8) & 0xff));
      block++;
      const next = new Uint8Array(buf.length + b.length);
      next.set(buf);
      next.set(b, buf.length);
      buf = next;
    }
    const out = buf.slice(0, n);
    buf = buf.slice(n);
    return out;
  };
}

type Json = Record<string, unknown>;

/** Child: runs inside the namespace, talks to wireguard-go on 127.0.0.1 with the core driven by hand. */
async function child(): Promise<void> {
  const I = KAT_INPUTS;
  const stream = katRandomStream();
  const randomLog: string[] = [];
  const crypto = wgCryptoWithRandom(defaultWgCrypto, (n) => {
    const b = stream(n);
    randomLog.push(hex(b));
    return b;
  });
  const peer = new WgPeer({
    privateKey: unhex(I.clientPrivateKey),
    peerPublicKey: wgPublicKey(unhex(I.gatewayPrivateKey)),
    presharedKey: unhex(I.presharedKey),
    crypto,
    timestamp: () => tai64n(I.timestampUnixMs),
  });
  const sock = dgram.createSocket('udp4');
  const inbox: Uint8Array[] = [];
  let wake: (() => void) | null = null;
  sock.on('message', (m) => {
    inbox.push(new Uint8Array(m));
    wake?.();
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const send = (b: Uint8Array): Promise<void> => new Promise((r) => sock.send(b, I.port, '127.0.0.1', () => r()));
  const recv = async (): Promise<Uint8Array> => {
    const end = Date.now() + 3000;
    while (inbox.length === 0) {
      if (Date.now() > end) throw new Error('no datagram from wireguard-go');
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
    return inbox.shift() as Uint8Array;
  };
  const rec: Json = {};
  let now = 1000;
  const init = peer.initiate(now);
  rec.initiation = hex(init.network[0] as Uint8Array);
  await send(init.network[0] as Uint8Array);
  const response = await recv();
  rec.response = hex(response);
  const r1 = peer.receive(response, ++now);
  if (r1.rejected) throw r1.rejected;
  rec.keepalive = hex(r1.network[0] as Uint8Array);
  await send(r1.network[0] as Uint8Array);
  const echoes: Json[] = [];
  for (const [src, dst] of [
    [I.clientIpv4, I.gatewayIpv4],
    [I.clientIpv6, I.gatewayIpv6],
  ] as const) {
    const request = buildEcho('request', parseIp(src), parseIp(dst), I.echoId, 1, unhex(I.echoData));
    const out = peer.send(request, ++now);
    await send(out.network[0] as Uint8Array);
    const reply = await recv();
    const r = peer.receive(reply, ++now);
    if (r.rejected) throw r.rejected;
    echoes.push({ src, dst, requestPacket: hex(request), requestDatagram: hex(out.network[0] as Uint8Array), replyDatagram: hex(reply), replyPacket: hex(r.tunnel[0] as Uint8Array) });
  }
  rec.echoes = echoes;
  rec.randomConsumed = randomLog;
  sock.close();
  peer.close();
  process.stdout.write(`${JSON.stringify(rec)}\n`);
}

async function main(): Promise<void> {
  const { Netns, WgGo, cleanup, sh } = await import('./wg-env.js');
  const I = KAT_INPUTS;
  const ns = Netns.create();
  try {
    const gw = await WgGo.start(ns, { privateKey: unhex(I.gatewayPrivateKey), port: I.port, addr4: `${I.gatewayIpv4}/24`, addr6: `${I.gatewayIpv6}/64` });
    const clientPk = wgPublicKey(unhex(I.clientPrivateKey));
    gw.setPeer({ publicKey: clientPk, psk: unhex(I.presharedKey), allowedIps: `${I.clientIpv4}/32,${I.clientIpv6}/128` });
    const self = fileURLToPath(import.meta.url);
    const proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', self, '--child'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    if (proc.stdout) createInterface({ input: proc.stdout }).on('line', (l) => lines.push(l));
    const code = await new Promise<number | null>((r) => proc.on('exit', r));
    if (code !== 0 || !lines[0]) throw new Error(`recorder child failed (${code})`);
    const recorded = JSON.parse(lines[0]) as Json;
    const version = sh('wireguard-go', ['--version']).split('\n')[0] ?? '';
    const out = {
      description:
        'Recorded from a real handshake with wireguard-go (test/client/wireguard/helpers/record-vectors.ts). Inputs are fixed; ' +
        'randomConsumed lists, in order, every random byte string the client core asked for (sender index, ephemeral seed, timer jitter, …); ' +
        'the gateway side (response, echo replies) is what wireguard-go sent. Hex throughout.',
      recordedWith: version,
      inputs: { ...I, clientPublicKey: hex(clientPk), gatewayPublicKey: hex(wgPublicKey(unhex(I.gatewayPrivateKey))), timestamp: hex(tai64n(I.timestampUnixMs)) },
      // `wg pubkey` (wireguard-tools) on the fixed private keys, fed through stdin: an independent X25519 check.
      wgPubkey: {
        client: execFileSync('wg', ['pubkey'], { input: `${wgKeyToBase64(unhex(I.clientPrivateKey))}\n`, encoding: 'utf8' }).trim(),
        gateway: execFileSync('wg', ['pubkey'], { input: `${wgKeyToBase64(unhex(I.gatewayPrivateKey))}\n`, encoding: 'utf8' }).trim(),
      },
      ...recorded,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    cleanup();
  }
}

if (process.argv.includes('--child')) await child();
else if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
