/**
 * The collector program's own cost per packet, measured exactly and without the rest of the machine
 * (root): BPF_PROG_TEST_RUN runs the loaded program on synthetic frames — UDP handshakes as a load generator
 * on loopback makes them: a fresh client port per handshake, four requests to the watched port and four
 * responses from it, the first request (the ClientHello) carrying receiver index 0 and all others the handshake's
 * index — and the kernel reports each run's time.
 * Several builds (each tree's bpf/collector.bpf.o, loaded with that tree's loader) run alternately in chunks,
 * more handshakes than the maps hold, so inserts and LRU evictions are in the figure as they are under load.
 *   node --import tsx bench/lib/bpf-ab.ts <tree> [<tree> ...]   (env BPF_AB_HANDSHAKES, BPF_AB_CHUNKS)
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfSys } from '../../src/collector/bpf-syscall.js';

const PORT = 51264;
const BPF_PROG_TEST_RUN = 10;

interface Loaded {
  tree: string;
  progFd: number;
  close(): void;
}

async function load(sys: BpfSys, tree: string): Promise<Loaded> {
  const { loadObjectFile } = (await import(join(tree, 'src/collector/loader.ts'))) as typeof import('../../src/collector/loader.js');
  const layout = (await import(join(tree, 'src/collector/layout.ts'))) as typeof import('../../src/collector/layout.js');
  const obj = loadObjectFile(sys, join(tree, 'bpf/collector.bpf.o'));
  const ports = obj.maps.get(layout.MAP_PORTS);
  const config = obj.maps.get(layout.MAP_CONFIG);
  const prog = obj.programs.get(layout.PROGRAM_NAME);
  if (!ports || !config || !prog) throw new Error(`${tree}: object incomplete`);
  const k = Buffer.alloc(4);
  const v = Buffer.alloc(4);
  k.writeUInt32LE(PORT >>> 5, 0);
  v.writeUInt32LE((1 << (PORT & 31)) >>> 0, 0);
  sys.mapUpdate(ports.fd, k, v);
  k.writeUInt32LE(layout.ConfigSlot.L2_LEN, 0);
  v.writeUInt32LE(14, 0);
  sys.mapUpdate(config.fd, k, v);
  return { tree, progFd: prog.fd, close: () => obj.close() };
}

/** Ethernet + IPv4 + UDP + payload (receiver index first); the client is 127.x.y.z (from `client`), the gateway 127.0.0.1. */
function frame(client: number, toGateway: boolean, clientPort: number, index: number, payload: number): Buffer {
  const b = Buffer.alloc(14 + 20 + 8 + payload);
  b.writeUInt16BE(0x0800, 12);
  b[14] = 0x45;
  b.writeUInt16BE(20 + 8 + payload, 16);
  b[14 + 8] = 64;
  b[14 + 9] = 17;
  const clientIp = [127, (client >> 16) & 255, (client >> 8) & 255, client & 255];
  b.set(toGateway ? clientIp : [127, 0, 0, 1], 14 + 12);
  b.set(toGateway ? [127, 0, 0, 1] : clientIp, 14 + 16);
  b.writeUInt16BE(toGateway ? clientPort : PORT, 34);
  b.writeUInt16BE(toGateway ? PORT : clientPort, 36);
  b.writeUInt16BE(8 + payload, 38);
  b.writeUInt32LE(index, 42);
  return b;
}

/** Runs the program once on `data`; returns the kernel's run time in ns. */
function testRun(sys: BpfSys, progFd: number, data: Buffer, attr: Buffer): number {
  attr.fill(0);
  attr.writeUInt32LE(progFd, 0);
  attr.writeUInt32LE(data.length, 8);
  attr.writeBigUInt64LE(sys.addr(data), 16);
  attr.writeUInt32LE(1, 32); // repeat
  sys.bpf(BPF_PROG_TEST_RUN, attr, 'BPF_PROG_TEST_RUN');
  return attr.readUInt32LE(36); // duration (ns, mean over repeat)
}

export interface TestRunFigures {
  tree: string;
  nsPerPacket: number;
  nsPerHandshake: number;
  packets: number;
}

/** Runs `handshakes` synthetic UDP handshakes through each tree's program, alternating in `chunks`. */
export async function bpfTestRun(trees: readonly string[], handshakes: number, chunks: number): Promise<TestRunFigures[]> {
  const sys = await BpfSys.open();
  const loaded: Loaded[] = [];
  try {
    for (const t of trees) loaded.push(await load(sys, t));
    const attr = Buffer.alloc(80);
    // The packets of one handshake: (request, response) × 4, sizes of an LP UDP handshake.
    const sizes = [
      [134, 34],
      [1305, 1305],
      [1188, 82],
      [98, 34],
    ] as const;
    const ns = loaded.map(() => 0);
    const packets = loaded.map(() => 0);
    const perChunk = Math.ceil(handshakes / chunks);
    for (let c = 0; c < chunks; c++) {
      for (let i = 0; i < loaded.length; i++) {
        const li = (i + c) % loaded.length;
        const l = loaded[li] as Loaded;
        for (let h = c * perChunk; h < (c + 1) * perChunk; h++) {
          // every handshake a new flow (a fresh client socket) and a new receiver index
          const clientPort = 1024 + (h % 60000);
          const client = 2 + Math.floor(h / 60000);
          const index = (h * 2654435761) >>> 0 || 1;
          for (const [n, [req, resp]] of sizes.entries()) {
            ns[li] = (ns[li] ?? 0) + testRun(sys, l.progFd, frame(client, true, clientPort, n === 0 ? 0 : index, req), attr);
            ns[li] = (ns[li] ?? 0) + testRun(sys, l.progFd, frame(client, false, clientPort, index, resp), attr);
            packets[li] = (packets[li] ?? 0) + 2;
          }
        }
      }
    }
    return loaded.map((l, i) => ({ tree: l.tree, nsPerPacket: (ns[i] ?? 0) / (packets[i] ?? 1), nsPerHandshake: ((ns[i] ?? 0) / (packets[i] ?? 1)) * 8, packets: packets[i] ?? 0 }));
  } finally {
    for (const l of loaded) l.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const trees = process.argv.slice(2);
  if (trees.length === 0) {
    process.stderr.write('usage: bpf-ab.ts <tree> [<tree> ...]\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(await bpfTestRun(trees, Number(process.env.BPF_AB_HANDSHAKES ?? 40_000), Number(process.env.BPF_AB_CHUNKS ?? 8)))}\n`);
}
