/**
 * Child process for the registration restart test (test/gateway/registration.test.ts): registers one dVPN
 * peer with a ticket on a store in argv's data directory, prints `committed <json>` and then waits to be
 * killed with SIGKILL — no graceful close, so only what SQLite committed survives.
 *
 * argv: dataDir issuerPublicKeyHex ticketBase64 wgPublicKeyHex pskHex nowSec
 */
import { TicketType } from '../../src/core/codec/app.js';
import { fromHex, toHex } from '../../src/core/bytes.js';
import { RegistrationService } from '../../src/gateway/registration/service.js';
import { RegistrationStore } from '../../src/gateway/registration/store.js';
import { parseTicketLine } from '../../src/gateway/registration/tickets.js';
import { TicketVerifier } from '../../src/gateway/registration/verifiers.js';
import type { PeerApplier } from '../../src/gateway/wireguard/peer-applier.js';

const [dataDir, issuerHex, ticketLine, wgKeyHex, pskHex, nowText] = process.argv.slice(2);
if (!dataDir || !issuerHex || !ticketLine || !wgKeyHex || !pskHex || !nowText) {
  process.stderr.write('usage: registration-child dataDir issuerPk ticket wgKey psk nowSec\n');
  process.exit(2);
}

/** Stands in for a configured WireGuard interface, so the store keeps the PSK. */
const applier: PeerApplier = { kind: 'device', needsPsk: true, apply: async () => {}, applyMany: async () => {}, remove: async () => {}, read: async () => ({ publicKey: null, listenPort: 0, peers: [] }) };

const store = RegistrationStore.open(dataDir);
const service = new RegistrationService({
  store,
  verifier: new TicketVerifier({ issuers: [fromHex(issuerHex)], ledger: store }),
  applier,
  wireguard: { publicKey: new Uint8Array(32).fill(9), endpoint: { family: 4, address: new Uint8Array([127, 0, 0, 1]), port: 51820 } },
});
const nowSec = Number(nowText);
const res = await service.register(
  { mode: { kind: 'dvpn', wgPublicKey: fromHex(wgKeyHex) }, credential: { kind: 'ticket', ticket: parseTicketLine(ticketLine) }, ticketType: TicketType.V1WireguardEntry, timestamp: BigInt(nowSec) },
  { wireguardPsk: fromHex(pskHex), nowSec },
);
if (!res.success || !res.gatewayData) {
  process.stdout.write(`failed ${JSON.stringify(res.error)}\n`);
  process.exit(1);
}
process.stdout.write(`committed ${JSON.stringify({ ipv4: toHex(res.gatewayData.privateIpv4), ipv6: toHex(res.gatewayData.privateIpv6) })}\n`);
// keep the store open and the process alive until the parent's SIGKILL
setInterval(() => undefined, 60_000);
