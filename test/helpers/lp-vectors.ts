/**
 * Builds lp-gateway's own known-answer vectors from fixed seeds: the key schedule, an ML-KEM-768 KKT
 * response, and a full handshake + registration transcript. `scripts/gen-vectors.ts` writes the result to
 * test/vectors/lp-gateway-kat.json (published via DESIGN.md); test/core/kat-own.test.ts recomputes and
 * compares, so any change to the wire format or a KDF shows up as a vector diff.
 */
import {
  KDF_CONTEXT,
  InitiatorHandshake,
  type CryptoSuite,
  clientKeysFromSeed,
  derivePsk,
  gatewayKeysFromSeeds,
  outerKeys,
  sessionSecret,
  subsessionPsk,
  wireguardDeregisterProof,
  wireguardPsk,
  toHex,
  processKktRequest,
  buildKktRequest,
  kktBinding,
  kktTranscriptHash,
  msg1Binder,
  encodeAppMessage,
  type AppMessage,
} from '../../src/core/index.js';
import { buildDescriptor, descriptorSigningBytes, recordOf } from '../../src/gateway/descriptor.js';
import { directorySigningBytes, signDirectory } from '../../src/gateway/directory-document.js';
import { MemoryGateway } from './memory-gateway.js';
import { fill, seededSuite } from './fixtures.js';

export const VECTOR_TIME = 1_763_700_000;

function keyScheduleVectors(suite: CryptoSuite): Record<string, string | number> {
  const { prims } = suite;
  // §5.1: T1 over hello ‖ token ‖ request frame ‖ response frame ‖ gateway nonce, then the binder and the PSK.
  const t = { hello: fill(0x41, 100), token: fill(0x42, 32), requestFrame: fill(0x43, 87), responseFrame: fill(0x44, 1271), gatewayNonce: fill(0x45, 32) };
  const transcript = kktTranscriptHash(prims, t.hello, t.token, t.requestFrame, t.responseFrame, t.gatewayNonce);
  const inputs = { kemSharedSecret: fill(0x11, 32), staticDh: fill(0x22, 32), transcript, kemCiphertext: fill(0x33, 1088) };
  const bound = fill(0x46, 1138);
  const psk = derivePsk(prims, inputs);
  const outer = outerKeys(prims, psk);
  const secret = sessionSecret(prims, psk, fill(0x55, 32));
  const sub = subsessionPsk(prims, secret, 1);
  return {
    t1_inputs: 'hello 41×100, token 42×32, request frame 43×87, response frame 44×1271, gateway nonce 45×32',
    t1: toHex(transcript),
    kem_shared_secret: toHex(inputs.kemSharedSecret),
    static_dh: toHex(inputs.staticDh),
    msg1_bound: '46×1138',
    msg1_binder: toHex(msg1Binder(prims, inputs.staticDh, transcript, bound)),
    kem_ciphertext: '33×1088',
    psk: toHex(psk),
    outer_key_i2r: toHex(outer.i2r),
    outer_key_r2i: toHex(outer.r2i),
    handshake_hash: toHex(fill(0x55, 32)),
    session_secret: toHex(secret),
    subsession_psk_generation_1: toHex(sub),
    wireguard_public_key: toHex(fill(0x66, 32)),
    wireguard_psk: toHex(wireguardPsk(prims, secret, fill(0x66, 32))),
    // §7.4: the client's WireGuard secret 77×32, the gateway's 88×32 (both clamped by X25519)
    ...deregisterVector(prims),
  };
}

function deregisterVector(prims: CryptoSuite['prims']): Record<string, string> {
  const client = prims.x25519FromSecret(fill(0x77, 32));
  const gateway = prims.x25519FromSecret(fill(0x88, 32));
  const dh = prims.x25519(client.secretKey, gateway.publicKey);
  return {
    deregister_client_wg_secret: toHex(fill(0x77, 32)),
    deregister_client_wg_public: toHex(client.publicKey),
    deregister_gateway_wg_public: toHex(gateway.publicKey),
    deregister_dh: toHex(dh),
    deregister_proof: toHex(wireguardDeregisterProof(prims, dh, client.publicKey, gateway.publicKey)),
  };
}

function kktVectors(suite: CryptoSuite): Record<string, string | number> {
  const { prims, kem } = suite;
  const gw = gatewayKeysFromSeeds(suite, { ed25519Seed: fill(2, 32), kemSeed: fill(3, 64) });
  const client = clientKeysFromSeed(suite, fill(1, 32));
  const sessionId = new Uint8Array(16).map((_, i) => i);
  const index = 0x01020304;
  const token = fill(0x42, 32);
  const nonce = fill(0x45, 32);
  const { frame } = buildKktRequest(prims, kem, client.ed25519, sessionId, kktBinding(index, token));
  const out = processKktRequest(prims, kem, gw.ed25519, gw.kem.publicKey, client.ed25519.publicKey, frame, kktBinding(index, token), kktBinding(index, token, nonce));
  return {
    gateway_ed25519_seed: toHex(fill(2, 32)),
    gateway_ml_kem_seed: toHex(fill(3, 64)),
    client_ed25519_seed: toHex(fill(1, 32)),
    session_id: toHex(sessionId),
    receiver_index: index,
    token: toHex(token),
    gateway_nonce: toHex(nonce),
    ml_kem_768_public_key_blake3: toHex(gw.kemKeyHash),
    kkt_request_frame: toHex(frame),
    kkt_response_frame: toHex(out.response),
    kkt_response_len: out.response.length,
  };
}

interface TranscriptStep {
  direction: 'client->gateway' | 'gateway->client';
  what: string;
  hex: string;
}

function transcriptVectors(): { client_random_label: string; gateway_random_label: string; unix_time: number; steps: TranscriptStep[] } {
  const clientSuite = seededSuite('lp-gateway-kat client');
  const gatewaySuite = seededSuite('lp-gateway-kat gateway');
  const gwKeys = gatewayKeysFromSeeds(gatewaySuite, { ed25519Seed: fill(2, 32), kemSeed: fill(3, 64) });
  const client = clientKeysFromSeed(clientSuite, fill(1, 32));
  const gw = new MemoryGateway(gatewaySuite, gwKeys, () => VECTOR_TIME);
  gw.onDeliver = (s, msg) =>
    msg.kind === 'register'
      ? s.reply({
          kind: 'registerResponse',
          response: {
            success: true,
            error: null,
            gatewayData: { publicKey: fill(0x77, 32), endpoint: { family: 4, address: new Uint8Array([192, 0, 2, 1]), port: 51820 }, privateIpv4: new Uint8Array([10, 1, 0, 2]), privateIpv6: new Uint8Array([0xfd, 0, 0, 1, ...new Array<number>(11).fill(0), 2]) },
            allocatedBandwidth: 1073741824n,
          },
        })
      : null;
  const hs = new InitiatorHandshake({ suite: clientSuite, client, gateway: { ed25519Public: gwKeys.ed25519.publicKey, kemKeyHash: gwKeys.kemKeyHash } });
  const steps: TranscriptStep[] = [];
  const names = ['ClientHello', 'KKTRequest', 'Handshake msg1', 'Handshake msg3'];
  const replies = ['Ack', 'KKTResponse', 'Handshake msg2', 'Ack (sealed)'];
  let out = hs.start(VECTOR_TIME);
  for (let i = 0; out.kind === 'send'; i++) {
    steps.push({ direction: 'client->gateway', what: names[i] ?? '?', hex: toHex(out.packet) });
    const reply = gw.handle(out.packet);
    if (!reply) throw new Error('no reply');
    steps.push({ direction: 'gateway->client', what: replies[i] ?? '?', hex: toHex(reply) });
    out = hs.receive(reply, VECTOR_TIME);
  }
  if (out.kind !== 'established') throw new Error('handshake did not complete');
  const session = out.session;
  const request: AppMessage = {
    kind: 'register',
    request: { mode: { kind: 'dvpn', wgPublicKey: fill(0x66, 32) }, credential: { kind: 'mock', blob: new Uint8Array([1, 2, 3, 4]) }, ticketType: 2, timestamp: BigInt(VECTOR_TIME) },
  };
  const reqPacket = session.send(request);
  steps.push({ direction: 'client->gateway', what: `EncryptedData(Register) plaintext=${toHex(encodeAppMessage(request))}`, hex: toHex(reqPacket) });
  const resp = gw.handle(reqPacket);
  if (!resp) throw new Error('no registration reply');
  steps.push({ direction: 'gateway->client', what: 'EncryptedData(RegisterResponse)', hex: toHex(resp) });
  const delivered = session.receive(resp).delivered;
  if (delivered?.kind !== 'registerResponse' || !delivered.response.success) throw new Error('registration failed');
  steps.push({ direction: 'gateway->client', what: `wireguard_psk (not on the wire) for wg key 66×32`, hex: toHex(session.wireguardPsk(fill(0x66, 32))) });
  return { client_random_label: 'lp-gateway-kat client', gateway_random_label: 'lp-gateway-kat gateway', unix_time: VECTOR_TIME, steps };
}

/** §7.6: a descriptor and a directory document from fixed keys and times (Ed25519 is deterministic). */
function signedDocumentVectors(suite: CryptoSuite): Record<string, unknown> {
  const gw = gatewayKeysFromSeeds(suite, { ed25519Seed: fill(2, 32), kemSeed: fill(3, 64) });
  const wg = suite.prims.x25519FromSecret(fill(9, 32));
  const descriptor = buildDescriptor(
    { lpTcp: '192.0.2.10:41264', lpUdp: '192.0.2.10:51264', mode: 'both', wireguard: { publicKey: wg.publicKey, endpoint: '192.0.2.10:51820', tunnelIpv4: '10.1.0.1', tunnelIpv6: 'fd00:1::1' }, softwareVersion: 'kat', issuedAt: VECTOR_TIME, validitySec: 86_400 },
    suite,
    gw,
  );
  const dirKey = suite.prims.ed25519FromSeed(fill(0x31, 32));
  const directory = signDirectory({ key: dirKey, version: 7, gateways: [recordOf(descriptor)], validitySec: 7 * 86_400, issuedAt: VECTOR_TIME }, suite);
  return {
    gateway_identity_seed: toHex(fill(2, 32)),
    descriptor_signing_input: new TextDecoder().decode(descriptorSigningBytes(descriptor)),
    descriptor,
    directory_key_seed: toHex(fill(0x31, 32)),
    directory_signing_input: new TextDecoder().decode(directorySigningBytes(directory)),
    directory,
  };
}

export function buildVectors(suite: CryptoSuite): Record<string, unknown> {
  return {
    _comment:
      'lp-gateway own known-answer vectors (DESIGN.md §9). Random bytes in the transcript come from SHA-256(label/counter) streams, see test/helpers/fixtures.ts seededRandom; ML-KEM-768 randomness is the 32-byte m of FIPS 203 taken from the client stream.',
    kdf_contexts: KDF_CONTEXT,
    key_schedule: keyScheduleVectors(suite),
    kkt_ml_kem_768: kktVectors(suite),
    transcript: transcriptVectors(),
    signed_documents: signedDocumentVectors(suite),
  };
}
