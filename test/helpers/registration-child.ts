/**
 * Child process for the registration restart test (test/gateway/registration.test.ts): registers one dVPN
 * peer with a ticket on the store a spec file names (store-backends.ts: a SQLite data directory or a
 * PostgreSQL database), prints `committed <json>` and then waits to be killed with SIGKILL — no graceful
 * close, so only what the store committed survives.
 *
 * argv: specFile issuerPublicKeyHex ticketBase64 wgPublicKeyHex pskHex nowSec
 */
import { TicketType } from '../../src/core/codec/app.js';
import { fromHex, toHex } from '../../src/core/bytes.js';
import { RegistrationService } from '../../src/gateway/registration/service.js';
import { readFileSync } from 'node:fs';
import { openFromSpec } from './store-backends.js';
import { parseTicketLine } from '../../src/gateway/registration/tickets.js';
import { TicketVerifier } from '../../src/gateway/registration/verifiers.js';
import type { PeerApplier } from '../../src/gateway/wireguard/peer-applier.js';

const [specFile, issuerHex, ticketLine, wgKeyHex, pskHex, nowText] = process.argv.slice(2);
if (!specFile || !issuerHex || !ticketLine || !wgKeyHex || !pskHex || !nowText) {
  process.stderr.write('usage: registration-child specFile issuerPk ticket wgKey psk nowSec\n');
  process.exit(2);
}

/** Stands in for a configured WireGuard interface, so the store keeps the PSK. */
const applier: PeerApplier = { kind: 'device', needsPsk: true, apply: async () => {}, applyMany: async () => {}, remove: async () => {}, read: async () => ({ publicKey: null, listenPort: 0, peers: [] }) };

const store = await openFromSpec(specFile, (f) => readFileSync(f, 'utf8'));
const service = new RegistrationService({
  store,
  verifier: new TicketVerifier({ issuers: [fromHex(issuerHex)] }),
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
