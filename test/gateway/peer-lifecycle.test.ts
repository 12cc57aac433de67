/**
 * Peer lifecycle logic: grants on (re-)registration, authenticated deregistration, and the peer controller's
 * accounting and removal decisions. The controller runs here against a scripted device — readings chosen to
 * hit each branch (counters that restart, a peer that vanished, a read that fails), which the real device
 * cannot be made to produce on demand; test/wireguard/real-wireguard.test.ts runs the same controller against
 * real WireGuard.
 */
import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { TicketType, decodeAppMessage, encodeAppMessage, type Credential, type RegisterRequest } from '../../src/core/codec/app.js';
import { toHex } from '../../src/core/bytes.js';
import { defaultSuite } from '../../src/core/crypto/index.js';
import { wireguardDeregisterProof } from '../../src/core/handshake/key-schedule.js';
import { GatewayError } from '../../src/gateway/errors.js';
import { AddressAllocator } from '../../src/gateway/registration/allocator.js';
import { RegistrationService } from '../../src/gateway/registration/service.js';
import type { RegistrationStore } from '../../src/gateway/registration/store.js';
import { storeBackends, type BackendUnderTest } from '../helpers/store-backends.js';
import { issuerKeyFromSeed, mintTicket } from '../../src/gateway/registration/tickets.js';
import { MOCK_BANDWIDTH_BYTES, MOCK_VALIDITY_SEC, MockVerifier, TicketVerifier } from '../../src/gateway/registration/verifiers.js';
import type { WgDevice, WgInterfaceState, WgPeerSpec } from '../../src/gateway/wireguard/device.js';
import { DevicePeerApplier, NullPeerApplier } from '../../src/gateway/wireguard/peer-applier.js';
import { PeerController, type RemovalReason } from '../../src/gateway/wireguard/peer-controller.js';

const prims = defaultSuite.prims;
const NOW = 1_800_000_000;
const BACKENDS = storeBackends();
/** The backend of the suite running now (the suites run one after the other). */
let B: BackendUnderTest = BACKENDS[0] as BackendUnderTest;
const newStore = async (): Promise<RegistrationStore> => B.open(await B.location());
const silent = pino({ level: 'silent' });
const gatewayWg = prims.x25519FromSecret(new Uint8Array(32).fill(0xab));
const WG = { publicKey: gatewayWg.publicKey, secretKey: gatewayWg.secretKey, endpoint: { family: 4 as const, address: new Uint8Array([192, 0, 2, 1]), port: 51820 } };
const client = (i: number): { publicKey: Uint8Array; secretKey: Uint8Array } => prims.x25519FromSecret(new Uint8Array(32).fill(i));
const psk = (i: number): Uint8Array => new Uint8Array(32).fill(0x40 + i);
const issuer = issuerKeyFromSeed(new Uint8Array(32).fill(0x11), prims);
const ticket = (bandwidth: bigint, expiry: number): Credential => ({ kind: 'ticket', ticket: mintTicket(issuer, { ticketType: TicketType.V1WireguardEntry, bandwidthBytes: bandwidth, expiry: BigInt(expiry) }, prims) });
const mock: Credential = { kind: 'mock', blob: new Uint8Array([1]) };
const dvpn = (i: number, credential: Credential, at = NOW): RegisterRequest => ({ mode: { kind: 'dvpn', wgPublicKey: client(i).publicKey }, credential, ticketType: TicketType.V1WireguardEntry, timestamp: BigInt(at) });
const proofFor = (i: number, gatewayPublicKey = WG.publicKey): Uint8Array => {
  const c = client(i);
  return wireguardDeregisterProof(prims, prims.x25519(c.secretKey, gatewayPublicKey), c.publicKey, gatewayPublicKey);
};
const needsPsk = { kind: 'device' as const, needsPsk: true, apply: async () => {}, applyMany: async () => {}, remove: async () => {}, read: async () => null };

/** A device whose readings the test sets; records what the controller applies and removes. */
class ScriptedDevice implements WgDevice {
  readonly interfaceName = 'scripted0';
  readonly control = 'uapi' as const;
  state: WgInterfaceState = { publicKey: null, listenPort: 51820, peers: [] };
  failRead: Error | null = null;
  readonly applied: WgPeerSpec[][] = [];
  readonly removed: Uint8Array[][] = [];
  async read(): Promise<WgInterfaceState> {
    if (this.failRead) throw this.failRead;
    return structuredClone(this.state);
  }
  async configure(): Promise<void> {}
  async upsertPeers(peers: readonly WgPeerSpec[]): Promise<void> {
    // copies: the controller wipes the PSKs it handed over once the device call returned
    this.applied.push(peers.map((p) => ({ ...p, psk: p.psk ? new Uint8Array(p.psk) : null })));
  }
  async removePeers(keys: readonly Uint8Array[]): Promise<void> {
    this.removed.push([...keys]);
    const gone = new Set(keys.map(toHex));
    this.state.peers = this.state.peers.filter((p) => !gone.has(toHex(p.publicKey)));
  }
  set(pk: Uint8Array, rx: bigint, tx: bigint, hs = 0, allowedIps = ['10.1.0.9/32']): void {
    this.state.peers = this.state.peers.filter((p) => toHex(p.publicKey) !== toHex(pk));
    this.state.peers.push({ publicKey: new Uint8Array(pk), rxBytes: rx, txBytes: tx, lastHandshakeSec: hs, allowedIps, endpoint: null });
  }
}

function controllerWith(store: RegistrationStore, device: WgDevice | null, o: { idle?: number; now: () => number }) {
  const removals: Partial<Record<RemovalReason, number>> = {};
  const transfer = { rx: 0n, tx: 0n };
  const pools = new AddressAllocator();
  const controller = new PeerController({
    store,
    applier: device ? new DevicePeerApplier(device) : new NullPeerApplier(),
    pools: { ipv4: pools.ipv4, ipv6: pools.ipv6 },
    pollSec: 3600,
    idleTimeoutSec: o.idle ?? 0,
    metrics: {
      peers: () => undefined,
      transfer: (rx, tx) => {
        transfer.rx += rx;
        transfer.tx += tx;
      },
      removed: (reason, k) => (removals[reason] = (removals[reason] ?? 0) + k),
      poll: () => undefined,
      reapplied: () => undefined,
    },
    logger: silent,
    now: o.now,
  });
  return { controller, removals, transfer };
}

async function registered(store: RegistrationStore, i: number, o: { bandwidth?: bigint; validity?: number; now?: number } = {}): Promise<void> {
  const service = new RegistrationService({ store, verifier: new MockVerifier({ bandwidthBytes: o.bandwidth ?? 10_000n, validitySec: o.validity ?? 3600 }), wireguard: WG, applier: needsPsk });
  const r = await service.register(dvpn(i, mock, o.now ?? NOW), { wireguardPsk: psk(i), nowSec: o.now ?? NOW });
  assert.equal(r.success, true, JSON.stringify(r.error));
}

for (const backend of BACKENDS) {
  describe(`peer lifecycle on ${backend.name}`, { skip: backend.skip }, () => {
    before(async () => {
      B = backend;
      await backend.start();
    });
    after(() => backend.stop());

    describe('grants', () => {
      test('a ticket adds its bandwidth and the later expiry; the PSK is replaced; usage is kept and the response says what is left', async () => {
        const store = await newStore();
        const service = new RegistrationService({ store, verifier: new TicketVerifier({ issuers: [issuer.publicKey], prims }), wireguard: WG, applier: needsPsk });
        const first = await service.register(dvpn(1, ticket(1000n, NOW + 100)), { wireguardPsk: psk(1), nowSec: NOW });
        assert.equal(first.allocatedBandwidth, 1000n);
        let p = await store.getPeer(client(1).publicKey);
        assert.equal(p?.grantedBytes, 1000n);
        assert.equal(p?.expiresAt, NOW + 100);
        await store.recordUsage([{ wgPublicKey: client(1).publicKey, addRx: 300n, addTx: 100n, seenRx: 300n, seenTx: 100n, lastHandshake: NOW }]);

        const again = await service.register(dvpn(1, ticket(2000n, NOW + 50)), { wireguardPsk: psk(2), nowSec: NOW });
        assert.deepEqual(again.gatewayData?.privateIpv4, first.gatewayData?.privateIpv4, 'same addresses');
        assert.equal(again.allocatedBandwidth, 3000n - 400n, 'what is left of both tickets');
        p = await store.getPeer(client(1).publicKey);
        assert.equal(p?.grantedBytes, 3000n);
        assert.equal(p?.expiresAt, NOW + 100, 'the later expiry');
        assert.deepEqual(p?.psk, psk(2), 'the new PSK replaces the old one');
        assert.equal(p?.rxBytes, 300n, 'usage is not reset');
        assert.equal(p?.seenRx, 300n, 'nor the device counters last seen, so nothing is counted twice');
        await store.close();
      });

      test('a mock grant tops the remainder up to its amount, never stacks', async () => {
        const store = await newStore();
        const service = new RegistrationService({ store, verifier: new MockVerifier({ bandwidthBytes: 1000n, validitySec: 60 }), wireguard: WG });
        await service.register(dvpn(1, mock), { wireguardPsk: psk(1), nowSec: NOW });
        assert.equal((await store.getPeer(client(1).publicKey))?.expiresAt, NOW + 60);
        assert.equal((await service.register(dvpn(1, mock), { wireguardPsk: psk(1), nowSec: NOW + 10 })).allocatedBandwidth, 1000n);
        assert.equal((await store.getPeer(client(1).publicKey))?.grantedBytes, 1000n);
        assert.equal((await store.getPeer(client(1).publicKey))?.expiresAt, NOW + 70);
        await store.recordUsage([{ wgPublicKey: client(1).publicKey, addRx: 700n, addTx: 0n, seenRx: 700n, seenTx: 0n, lastHandshake: NOW }]);
        assert.equal((await service.register(dvpn(1, mock), { wireguardPsk: psk(1), nowSec: NOW + 20 })).allocatedBandwidth, 1000n);
        assert.equal((await store.getPeer(client(1).publicKey))?.grantedBytes, 1700n);
        assert.equal((await new MockVerifier().verify(mock, TicketType.V1WireguardEntry, NOW)).expiresAt, NOW + MOCK_VALIDITY_SEC);
        assert.equal(new MockVerifier().bandwidthBytes, MOCK_BANDWIDTH_BYTES);
        await store.close();
      });
    });

    describe('deregistration', () => {
      test('only the holder of the WireGuard private key removes a peer; its addresses are free again; no oracle for others', async () => {
        const store = await newStore();
        const removed: Uint8Array[][] = [];
        let deregistered = 0;
        const applier = { ...needsPsk, remove: async (keys: readonly Uint8Array[]) => void removed.push([...keys]) };
        const service = new RegistrationService({ store, verifier: new MockVerifier(), wireguard: WG, applier, allocator: new AddressAllocator({ randomBelow: () => 0 }), onDeregistered: () => deregistered++ });
        const r = await service.register(dvpn(1, mock), { wireguardPsk: psk(1), nowSec: NOW });
        await service.register(dvpn(2, mock), { wireguardPsk: psk(2), nowSec: NOW });
        const refuse = async (req: { wgPublicKey: Uint8Array; proof: Uint8Array }, code: string): Promise<void> => {
          await assert.rejects(service.deregister(req), (e: unknown) => e instanceof GatewayError && e.code === code);
        };
        await refuse({ wgPublicKey: client(1).publicKey, proof: proofFor(2) }, 'LPGW_ERR_DEREGISTER_PROOF'); // another key's proof
        await refuse({ wgPublicKey: client(1).publicKey, proof: proofFor(1, client(9).publicKey) }, 'LPGW_ERR_DEREGISTER_PROOF'); // made for another gateway
        await refuse({ wgPublicKey: client(7).publicKey, proof: new Uint8Array(32) }, 'LPGW_ERR_DEREGISTER_PROOF'); // unknown key, bad proof: no "unknown" answer
        await refuse({ wgPublicKey: new Uint8Array(32), proof: new Uint8Array(32) }, 'LPGW_ERR_DEREGISTER_PROOF'); // low-order key
        assert.ok(await store.getPeer(client(1).publicKey));
        assert.equal(removed.length, 0);

        await service.deregister({ wgPublicKey: client(1).publicKey, proof: proofFor(1) });
        assert.equal(await store.getPeer(client(1).publicKey), null);
        assert.deepEqual(removed, [[client(1).publicKey]]);
        assert.equal(deregistered, 1);
        await refuse({ wgPublicKey: client(1).publicKey, proof: proofFor(1) }, 'LPGW_ERR_PEER_UNKNOWN');
        assert.ok(await store.getPeer(client(2).publicKey), "the other peer's registration is untouched");
        const next = await service.register(dvpn(3, mock), { wireguardPsk: psk(3), nowSec: NOW });
        assert.deepEqual(next.gatewayData?.privateIpv4, r.gatewayData?.privateIpv4, 'the address was freed');

        // the wire form
        const msg = decodeAppMessage(encodeAppMessage({ kind: 'deregister', request: { wgPublicKey: client(1).publicKey, proof: proofFor(1) } }));
        assert.ok(msg.kind === 'deregister');
        assert.deepEqual(msg.request.proof, new Uint8Array(proofFor(1)));
        assert.deepEqual(decodeAppMessage(encodeAppMessage({ kind: 'deregistered', wgPublicKey: client(1).publicKey })), { kind: 'deregistered', wgPublicKey: new Uint8Array(client(1).publicKey) });
        await store.close();
      });
    });

    describe('peer controller', () => {
      test('counts deltas, never twice: restarted counters count from zero, a vanished peer is re-applied with its PSK', async () => {
        const store = await newStore();
        await registered(store, 1);
        const device = new ScriptedDevice();
        const now = NOW;
        const { controller, transfer } = controllerWith(store, device, { now: () => now });
        const pk = client(1).publicKey;
        device.set(pk, 1000n, 500n, NOW - 5);
        await controller.poll();
        assert.equal((await store.getPeer(pk))?.rxBytes, 1000n);
        device.set(pk, 1500n, 600n, NOW - 5);
        await controller.poll();
        await controller.poll(); // unchanged reading: nothing added
        assert.equal((await store.getPeer(pk))?.rxBytes, 1500n);
        assert.equal((await store.getPeer(pk))?.txBytes, 600n);
        // the interface was re-created: counters start again
        device.set(pk, 200n, 100n, NOW - 1);
        await controller.poll();
        assert.equal((await store.getPeer(pk))?.rxBytes, 1700n);
        assert.equal((await store.getPeer(pk))?.lastHandshake, NOW - 1);
        assert.deepEqual(transfer, { rx: 1700n, tx: 700n });
        // the peer vanished from the device: applied again with its stored PSK, last-seen counters reset
        device.state.peers = [];
        const report = await controller.poll();
        assert.equal(report.reapplied, 1);
        assert.deepEqual(device.applied.at(-1)?.[0]?.psk, psk(1));
        assert.equal((await store.getPeer(pk))?.seenRx, 0n);
        device.set(pk, 50n, 0n);
        await controller.poll();
        assert.equal((await store.getPeer(pk))?.rxBytes, 1750n, 'the re-added peer counts from zero');
        await store.close();
      });

      test('removes used-up, expired and idle peers (counted by reason), keeps the rest; a renewal in between wins', async () => {
        const store = await newStore();
        await registered(store, 1, { bandwidth: 1000n }); // will use it up
        await registered(store, 2, { validity: 10 }); // will expire
        await registered(store, 3, { now: NOW - 100 }); // will be idle
        await registered(store, 4); // fine
        const device = new ScriptedDevice();
        let now = NOW;
        const { controller, removals } = controllerWith(store, device, { idle: 50, now: () => now });
        device.set(client(1).publicKey, 600n, 400n, NOW);
        device.set(client(2).publicKey, 0n, 0n, NOW);
        device.set(client(3).publicKey, 0n, 0n, 0);
        device.set(client(4).publicKey, 10n, 10n, NOW);
        await controller.poll();
        assert.deepEqual(removals, { bandwidth: 1, idle: 1 });
        now = NOW + 10;
        await controller.poll();
        assert.deepEqual(removals, { bandwidth: 1, idle: 1, expired: 1 });
        assert.deepEqual(device.removed.map((batch) => batch.map(toHex).sort()), [[1, 3].map((i) => toHex(client(i).publicKey)).sort(), [toHex(client(2).publicKey)]]);
        assert.ok(await store.getPeer(client(4).publicKey), 'the healthy peer stays');
        assert.equal(await store.peerCount(), 1);

        // a registration that lands between the controller's snapshot and its delete keeps the peer
        const p4 = await store.getPeer(client(4).publicKey);
        assert.ok(p4);
        assert.equal(await store.transaction('test', (tx) => tx.deletePeerIfUnchanged(client(4).publicKey, p4.updatedAt - 1)), false);
        assert.ok(await store.getPeer(client(4).publicKey));
        await store.close();
      });

      test('unknown peers inside the pools are removed, an operator peer outside them is left alone; without a device only expiry counts', async () => {
        const store = await newStore();
        const device = new ScriptedDevice();
        const { controller, removals } = controllerWith(store, device, { now: () => NOW });
        device.set(client(8).publicKey, 0n, 0n, 0, ['10.1.3.4/32', 'fd00:1::3/128']); // ours, unknown to the registry
        device.set(client(9).publicKey, 0n, 0n, 0, ['192.168.7.0/24']); // the operator's
        await controller.poll();
        assert.deepEqual(device.removed.flat().map((k) => toHex(k)), [toHex(client(8).publicKey)]);
        assert.deepEqual(removals, { unknown: 1 });

        const bare = await newStore();
        await registered(bare, 1, { validity: 5, bandwidth: 1n });
        let now = NOW;
        const registryOnly = controllerWith(bare, null, { idle: 1, now: () => now });
        await registryOnly.controller.poll();
        assert.equal(await bare.peerCount(), 1, 'no device: neither bandwidth nor idleness can be judged');
        now = NOW + 5;
        await registryOnly.controller.poll();
        assert.equal(await bare.peerCount(), 0);
        assert.deepEqual(registryOnly.removals, { expired: 1 });
        await store.close();
        await bare.close();
      });

      test('a device that cannot be read fails the poll (no removals, no crash) and recovers', async () => {
        const store = await newStore();
        await registered(store, 1, { bandwidth: 1n });
        const device = new ScriptedDevice();
        device.failRead = new GatewayError('LPGW_ERR_WG_CONTROL', 'socket gone');
        const { controller, removals } = controllerWith(store, device, { now: () => NOW });
        const r = await controller.poll();
        assert.equal(r.ok, false);
        assert.equal(await store.peerCount(), 1);
        device.failRead = null;
        device.set(client(1).publicKey, 5n, 0n, NOW);
        assert.equal((await controller.poll()).ok, true);
        assert.deepEqual(removals, { bandwidth: 1 });
        await store.close();
      });

      test('start re-applies every stored peer with its PSK in one batch and resets the counters of those missing', async () => {
        const store = await newStore();
        for (let i = 1; i <= 3; i++) await registered(store, i);
        await store.recordUsage([{ wgPublicKey: client(2).publicKey, addRx: 10n, addTx: 10n, seenRx: 10n, seenTx: 10n, lastHandshake: NOW }]);
        const device = new ScriptedDevice();
        device.set(client(1).publicKey, 0n, 0n);
        const { controller } = controllerWith(store, device, { now: () => NOW });
        const report = await controller.start();
        controller.stop();
        assert.deepEqual({ reapplied: report.reapplied, missing: report.missing }, { reapplied: 3, missing: 2 });
        assert.equal(device.applied[0]?.length, 3, 'one batch');
        const byKey = new Map(device.applied[0]?.map((p) => [toHex(p.publicKey), p.psk]));
        for (const i of [1, 2, 3]) assert.deepEqual(byKey.get(toHex(client(i).publicKey)), psk(i));
        assert.equal((await store.getPeer(client(2).publicKey))?.seenRx, 0n);
        assert.equal((await store.getPeer(client(2).publicKey))?.rxBytes, 10n, 'usage so far still counts');
        await store.close();
      });
    });
  });
}
