/** Client library: transports, an LP connection (handshake, requests, registration, rekey), telescoping. */
export * from './errors.js';
export * from './transports.js';
export * from './lp-client.js';
export * from './telescoping.js';
export * from './descriptor-fetch.js';
export * from './dvpn.js';
