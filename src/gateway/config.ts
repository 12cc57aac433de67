/**
 * Gateway configuration: the schema, its embedded defaults, and documentation of every key. Loading
 * (config/*.toml, then LPGW_* environment, then flags; flags win) and validation live in config-load.ts.
 * config/gateway.toml is the documented sample and must list every key below with its default.
 */

export type GatewayMode = 'entry' | 'exit' | 'both';
export type CredentialVerifierKind = 'mock' | 'ticket';
export type RegistrationStoreKind = 'sqlite' | 'postgres';

export interface GatewayConfig {
  /** entry: accepts clients and forwards; exit: accepts clients and forwarded packets; both. */
  mode: GatewayMode;
  /** Keys (0600) and the SQLite database (registration.store = "sqlite") live here; created on first run. */
  dataDir: string;
  lp: {
    /** LP TCP listener, HOST:PORT; port 0 picks a free port. */
    tcp: string;
    /** LP UDP listener, HOST:PORT; port 0 picks a free port; empty string disables UDP. */
    udp: string;
    /** Host put in the signed descriptor; empty = the bind host, or 127.0.0.1 for a wildcard bind. */
    announceHost: string;
    /** ClientHello clock tolerance, seconds either way. */
    timestampToleranceSec: number;
    /** Concurrent TCP connections; more are refused at accept. */
    maxConnections: number;
    /** Concurrent TCP connections from one source IP (exempt: helloRateExempt and directory peers); more are closed at accept. */
    maxConnectionsPerSource: number;
    /**
     * Per TCP connection: bytes of received requests waiting to be served, and of replies the peer has not read
     * yet, each at most this many (plus one packet); beyond either, the connection is not read until it drains.
     */
    maxPendingBytesPerConnection: number;
    /** A started frame must complete within this many ms, or the connection is closed. */
    readTimeoutMs: number;
    /** A connection with no frame in flight is closed after this many ms. */
    idleTimeoutMs: number;
    /** ClientHellos per second per source IP (token bucket rate). */
    helloRatePerSec: number;
    /** Token bucket burst. */
    helloBurst: number;
    /**
     * Source IPs exempt from the per-source limits (ClientHello rate, TCP connections): entry gateways that
     * forward many clients from one address. Hosts of verified directory peers are exempt too.
     */
    helloRateExempt: string[];
    /** ML-KEM-768 implementation: libsodium (WebAssembly, fast) or noble (pure JS, audited reference). */
    kemBackend: string;
  };
  tables: {
    /** Handshakes in progress at most; 0 = from the machine's memory (table-bounds.ts). */
    maxHandshakes: number;
    /** Established sessions at most; 0 = from the machine's memory (table-bounds.ts). */
    maxSessions: number;
    /** Handshake lifetime from creation. */
    handshakeTtlSec: number;
    /** Session idle lifetime. */
    sessionIdleTtlSec: number;
    /** Demoted (read-only) session idle lifetime. */
    demotedIdleTtlSec: number;
    /**
     * Receiver-index shards: 1 = in the I/O thread, N > 1 = N worker threads, 0 = auto (see resolveShardCount).
     */
    shards: number;
  };
  http: {
    /** HTTP API HOST:PORT (health, metrics, descriptor, stats); port 0 picks a free port. */
    listen: string;
    /** How long a served descriptor is valid (expires_at − issued_at); it is re-signed every quarter of it. */
    descriptorValiditySec: number;
    /** A signed directory document to serve at GET /v1/directory ('lp-gateway directory sign'); '' = none. */
    directoryFile: string;
    /** Concurrent HTTP connections; more are refused at accept. */
    maxConnections: number;
    /** /v1/stats lists recently seen client addresses (with packet counts and times); off: none are recorded. */
    statsClientAddresses: boolean;
  };
  forward: {
    /** Forwards in flight, all clients together. */
    maxConcurrent: number;
    /** Forwards in flight for one client address. */
    maxPerClient: number;
    /** Forwards in flight for one session. */
    maxPerSession: number;
    /** An exit's breaker opens when forwards of this many distinct client addresses went unanswered since its last reply. */
    breakerClients: number;
    connectTimeoutMs: number;
    ioTimeoutMs: number;
    /** First backoff after a failed forward to an exit; doubles per failure. */
    backoffBaseMs: number;
    /** Backoff cap (a Busy retry hint above it is honoured). */
    backoffMaxMs: number;
  };
  directory: {
    /**
     * Descriptor URLs of other gateways (http://host:port/v1/gateway or http://host:port), each pinned to the
     * gateway's identity as `URL#<64 hex Ed25519 key>` (unpinned ones need trust_on_first_use).
     */
    peers: string[];
    /** Signed directory documents (URLs or file paths) listing the gateways to forward to; need directory.keys. */
    documents: string[];
    /** Ed25519 public keys (hex) of the directories this gateway trusts. */
    keys: string[];
    /** Accept unpinned peers on their self-signed descriptor alone (localnets only). */
    trustOnFirstUse: boolean;
    /** Topology file (JSON): { "gateways": [ { "url": "..." } | <descriptor> ] }; empty = none. */
    topology: string;
    /** Re-fetch peer descriptors every N seconds (0 = only at start). */
    refreshSec: number;
  };
  registration: {
    credentialVerifier: CredentialVerifierKind;
    /** Ticket issuer Ed25519 public keys, hex. */
    ticketIssuers: string[];
    ipv4Pool: string;
    ipv6Pool: string;
    timestampToleranceSec: number;
    /** Bandwidth granted by the mock verifier, bytes. */
    mockBandwidthBytes: number;
    /** How long a mock grant lasts, seconds. */
    mockValiditySec: number;
    /** Where registrations, allocations, grants and spent serials live: sqlite (data_dir) or postgres (shared by a fleet). */
    store: RegistrationStoreKind;
    /** postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE; the password may instead come from PGPASSWORD or PGPASSFILE. */
    postgresUrl: string;
    /** TLS to PostgreSQL: disable, require (encrypted, unverified) or verify-full (CA and host name checked). */
    postgresSslmode: string;
    /** PEM CA bundle for verify-full; empty = the system's CAs. */
    postgresCaFile: string;
    /** Connections in the pool at most. */
    postgresPoolMax: number;
    /** Bound on connecting, and on waiting for a free pooled connection, ms. */
    postgresConnectTimeoutMs: number;
    /** Bound on one statement, ms. */
    postgresQueryTimeoutMs: number;
  };
  wireguard: {
    /** WireGuard interface registered peers are applied to; empty = keep the registry only. */
    interface: string;
    /** Create and configure the interface (kernel WireGuard, else wireguard-go); false = the operator made it. */
    manage: boolean;
    /** UDP port the interface listens on (announced in the descriptor). */
    listenPort: number;
    /** WireGuard endpoint HOST:PORT returned to clients; empty = <announce host>:<listen_port>. */
    endpoint: string;
    /** The gateway's own tunnel IPv4 address; empty = the first host of registration.ipv4_pool. */
    tunnelIpv4: string;
    /** The gateway's own tunnel IPv6 address; empty = the first host of registration.ipv6_pool. */
    tunnelIpv6: string;
    /**
     * Managed interface: forward clients' tunnel traffic out of this interface, masqueraded — an exit anywhere, an
     * entry only to its directory's exits' WireGuard endpoints; empty = clients reach only the gateway.
     */
    uplink: string;
    /** How the interface is driven: auto (UAPI socket if present, else wg), uapi, or wg. */
    control: string;
    /** Directory of userspace implementations' UAPI sockets. */
    uapiDir: string;
    /** The wireguard-go executable (managed interface on a kernel without WireGuard). */
    wireguardGo: string;
    /** Seconds between peer controller polls (usage, grants, idle peers). */
    pollSec: number;
    /** Remove a peer that had no handshake for this long, seconds; 0 = never. */
    idleTimeoutSec: number;
    /** persistent-keepalive for every peer, seconds; 0 = off. */
    persistentKeepaliveSec: number;
  };
  collector: {
    enabled: boolean;
    iface: string;
    windowSec: number;
    /** NDJSON output directory; empty = <dataDir>/collector. */
    outDir: string;
  };
  log: {
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  };
  /** Seconds SIGTERM/SIGINT waits for in-flight work before closing. */
  shutdownGraceSec: number;
}

export const DEFAULT_CONFIG: GatewayConfig = {
  mode: 'both',
  dataDir: './data',
  lp: {
    tcp: '0.0.0.0:41264',
    udp: '0.0.0.0:51264',
    announceHost: '',
    timestampToleranceSec: 30,
    maxConnections: 10_000,
    maxConnectionsPerSource: 128,
    maxPendingBytesPerConnection: 65_536,
    readTimeoutMs: 10_000,
    idleTimeoutMs: 60_000,
    helloRatePerSec: 20,
    helloBurst: 5,
    helloRateExempt: [],
    kemBackend: 'libsodium',
  },
  tables: {
    maxHandshakes: 0,
    maxSessions: 0,
    handshakeTtlSec: 90,
    sessionIdleTtlSec: 86_400,
    demotedIdleTtlSec: 60,
    shards: 0,
  },
  http: { listen: '127.0.0.1:8080', descriptorValiditySec: 86_400, directoryFile: '', maxConnections: 64, statsClientAddresses: false },
  forward: { maxConcurrent: 1000, maxPerClient: 32, maxPerSession: 4, breakerClients: 3, connectTimeoutMs: 5000, ioTimeoutMs: 3000, backoffBaseMs: 250, backoffMaxMs: 30_000 },
  directory: { peers: [], documents: [], keys: [], trustOnFirstUse: false, topology: '', refreshSec: 300 },
  registration: {
    credentialVerifier: 'ticket',
    ticketIssuers: [],
    ipv4Pool: '10.1.0.0/16',
    ipv6Pool: 'fd00:1::/112',
    timestampToleranceSec: 30,
    mockBandwidthBytes: 1_073_741_824,
    mockValiditySec: 2_592_000,
    store: 'sqlite',
    postgresUrl: '',
    postgresSslmode: 'verify-full',
    postgresCaFile: '',
    postgresPoolMax: 10,
    postgresConnectTimeoutMs: 3000,
    postgresQueryTimeoutMs: 5000,
  },
  wireguard: {
    interface: '',
    manage: false,
    listenPort: 51820,
    endpoint: '',
    tunnelIpv4: '',
    tunnelIpv6: '',
    uplink: '',
    control: 'auto',
    uapiDir: '/var/run/wireguard',
    wireguardGo: 'wireguard-go',
    pollSec: 10,
    idleTimeoutSec: 259_200,
    persistentKeepaliveSec: 0,
  },
  collector: { enabled: false, iface: 'lo', windowSec: 10, outDir: '' },
  log: { level: 'info' },
  shutdownGraceSec: 10,
};
