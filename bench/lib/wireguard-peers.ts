/**
 * WireGuard peer-plane figures on wireguard-go (issue "WireGuard for real"): re-applying N stored peers at
 * start (the controller's reconciliation: one device read, N peers applied in batches) and one poll with N
 * peers (one read of every peer's counters, accounting persisted), through the UAPI socket and through `wg`.
 * Each figure: wall time, the gateway's CPU (this process, plus its `wg` children), and wireguard-go's CPU.
 * Root and wireguard-go needed; the interface lives in a throwaway network namespace.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { defaultSuite } from '../../src/core/index.js';
import { AddressAllocator } from '../../src/gateway/registration/allocator.js';
import { SqliteStore } from '../../src/gateway/registration/store.js';
import { statCpuSeconds } from '../../src/gateway/thread-cpu.js';
import { DevicePeerApplier } from '../../src/gateway/wireguard/peer-applier.js';
import { PeerController } from '../../src/gateway/wireguard/peer-controller.js';
import { UapiDevice } from '../../src/gateway/wireguard/uapi-device.js';
import { WgToolDevice } from '../../src/gateway/wireguard/wg-tool-device.js';

export interface PeerPlaneFigure {
  wallMs: number;
  /** This process's CPU plus its waited-for children's (the `wg` tool), ms. */
  gatewayCpuMs: number;
  wireguardGoCpuMs: number;
}

export interface PeerPlaneFigures {
  peers: number;
  control: 'uapi' | 'wg';
  reapply: PeerPlaneFigure;
  poll: PeerPlaneFigure;
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime + cutime + cstime of this process, seconds (children count once waited for). */
function selfAndChildrenCpu(): number {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
}

async function measure(wgGoPid: number, fn: () => Promise<unknown>): Promise<PeerPlaneFigure> {
  const g0 = selfAndChildrenCpu();
  const w0 = statCpuSeconds(`/proc/${wgGoPid}/stat`) ?? 0;
  const t0 = performance.now();
  await fn();
  const wallMs = performance.now() - t0;
  return { wallMs, gatewayCpuMs: (selfAndChildrenCpu() - g0) * 1000, wireguardGoCpuMs: ((statCpuSeconds(`/proc/${wgGoPid}/stat`) ?? 0) - w0) * 1000 };
}

export async function peerPlaneFigures(peers: number, control: 'uapi' | 'wg'): Promise<PeerPlaneFigures> {
  const ns = `lpgwb-${process.pid}-${control}`;
  const iface = `lwb${process.pid % 100000}${control === 'uapi' ? 'u' : 'w'}`.slice(0, 15);
  const dir = mkdtempSync(join(tmpdir(), 'lpgw-wgbench-'));
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'wireguard-go', iface], { stdio: 'ignore' });
    const pid = Number(execFileSync('pgrep', ['-n', '-f', `wireguard-go ${iface}$`], { encoding: 'utf8' }).trim());
    const store = SqliteStore.open(dir);
    const alloc = new AddressAllocator();
    const prims = defaultSuite.prims;
    await store.transaction('bench_insert', async (tx) => {
      for (let i = 0; i < peers; i++) {
        const key = prims.x25519FromSecret(prims.randomBytes(32)).publicKey;
        const { ipv4, ipv6 } = await alloc.allocate(tx, key, 1);
        await tx.insertPeer({ wgPublicKey: key, ipv4, ipv6, psk: prims.randomBytes(32), grantedBytes: 1n << 40n, expiresAt: 2 ** 40, nowSec: 1 });
      }
    });
    const device = control === 'uapi' ? new UapiDevice(iface) : new WgToolDevice(iface, { privateDir: join(dir, 'run') });
    const noop = { peers: () => undefined, transfer: () => undefined, removed: () => undefined, poll: () => undefined, reapplied: () => undefined };
    const controller = new PeerController({ store, applier: new DevicePeerApplier(device), pools: { ipv4: alloc.ipv4, ipv6: alloc.ipv6 }, pollSec: 86_400, idleTimeoutSec: 0, metrics: noop, logger: pino({ level: 'silent' }), now: () => 2 });
    const reapply = await measure(pid, () => controller.reconcile());
    const state = await device.read();
    if (state.peers.length !== peers) throw new Error(`the device holds ${state.peers.length} peers, expected ${peers}`);
    await controller.poll(); // warm
    const poll = await measure(pid, () => controller.poll());
    await store.close();
    return { peers, control, reapply, poll };
  } finally {
    try {
      execFileSync('ip', ['-n', ns, 'link', 'del', iface], { stdio: 'ignore' });
    } catch {
      // gone
    }
    execFileSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 10_000);
  for (const control of ['uapi', 'wg'] as const) {
    const f = await peerPlaneFigures(n, control);
    process.stdout.write(`${JSON.stringify(f)}\n`);
  }
}
