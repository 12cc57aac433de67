/**
 * The sans-I/O LP protocol core: codecs, crypto suite, Noise, KKT, key schedule and the state machines.
 * Nothing here opens sockets, starts timers or reads clocks; callers pass bytes and `now`.
 */
export * from './errors.js';
export * from './bytes.js';
export * from './codec/packet.js';
export * from './codec/framing.js';
export * from './codec/messages.js';
export * from './codec/app.js';
export { BincodeReader, BincodeWriter, decodeAll, encode } from './codec/bincode.js';
export * from './crypto/index.js';
export * from './kkt/frame.js';
export * from './kkt/kkt.js';
export * from './handshake/identity.js';
export * from './handshake/key-schedule.js';
export * from './handshake/routability-token.js';
export * from './handshake/responder.js';
export * from './handshake/initiator.js';
export * from './session/replay-window.js';
export * from './session/session.js';
