/**
 * Composition root of a gateway process: keys → registration store → directory + forwarder (entry) →
 * shard(s) → dispatcher → TCP/UDP listeners → HTTP API. `startGateway` returns once every listener is
 * bound (port 0 resolved) and the signed descriptor is built from the real addresses.
 */
import { availableParallelism } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type Collector, type WindowStream, registerCollectorRoutes, startCollector } from '../collector/index.js';
import { suiteWithKem, type CryptoSuite, fromHex, type SocketAddress } from '../core/index.js';
import type { Logger } from '../log.js';
import { GatewayAppHandler } from './app-handler.js';
import type { GatewayConfig } from './config.js';
import { parseHostPort } from './config-load.js';
import { announcedAddresses, buildDescriptor, tunnelAddresses, type GatewayDescriptor } from './descriptor.js';
import { Directory } from './directory.js';
import { Dispatcher } from './dispatcher.js';
import { Forwarder } from './forwarder.js';
import { buildApi } from './http/api.js';
import { loadOrCreateKeys } from './keystore.js';
import { TcpListener } from './listeners/tcp.js';
import { UdpListener } from './listeners/udp.js';
import { GatewayMetrics } from './metrics.js';
import { TokenBucketLimiter } from './rate-limit.js';
import { AddressAllocator, parseIp } from './registration/allocator.js';
import { RegistrationService, ticketTypesForMode } from './registration/service.js';
import { openRegistrationStore } from './registration/store/index.js';
import { scheduleSerialPruning } from './registration/serial-pruning.js';
import { MockVerifier, TicketVerifier, type CredentialVerifier } from './registration/verifiers.js';
import { WireguardPlane } from './wireguard/plane.js';
import { LocalShard, resolveShardCount, type Shard } from './shard.js';
import { resolveTableBounds } from './table-bounds.js';
import { prometheusShardMetrics } from './shard-metrics.js';
import { WorkerShard } from './worker-shard.js';
import { currentThreadId } from './thread-cpu.js';

export interface RunningGateway {
  readonly config: GatewayConfig;
  readonly addresses: { lpTcp: string; lpUdp: string | null; http: string };
  readonly metrics: GatewayMetrics;
  readonly forwarder: Forwarder | null;
  readonly wireguard: WireguardPlane;
  descriptor(): GatewayDescriptor;
  stats(): Record<string, unknown>;
  /** Stop accepting, finish in-flight work (up to the grace period), close the database. */
  stop(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  suite?: CryptoSuite;
  /** Extra HTTP routes (the collector's), registered before the API listens. */
  extraRoutes?: Parameters<typeof buildApi>[0]['extraRoutes'];
}

function fmt(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** GatewayData endpoint for dVPN clients, from the announced WireGuard HOST:PORT. */
function socketAddress(hostPort: string): SocketAddress {
  const { host, port } = parseHostPort(hostPort);
  const ip = parseIp(host.replace(/^\[|\]$/g, ''));
  return ip ? { family: ip.family, address: ip.bytes, port } : { family: 4, address: new Uint8Array([0, 0, 0, 0]), port };
}

export async function startGateway(config: GatewayConfig, opts: StartOptions): Promise<RunningGateway> {
  const logger = opts.logger;
  const suite = opts.suite ?? suiteWithKem(config.lp.kemBackend);
  const metrics = new GatewayMetrics();
  const isEntry = config.mode !== 'exit';

  const { keys, wireguard, created } = loadOrCreateKeys(config.dataDir, suite, logger);
  logger.info({ dataDir: config.dataDir, created, identity: Buffer.from(keys.ed25519.publicKey).toString('hex') }, created ? 'generated new gateway keys' : 'loaded gateway keys');

  // Registration: the store (SQLite in the data directory, or the fleet's PostgreSQL), verifier, WireGuard applier.
  const store = await openRegistrationStore(config, { gatewayId: keys.ed25519.publicKey, logger: logger.child({ component: 'store' }), observer: metrics.storeObserver() });
  metrics.storeHealth = () => store.health();
  logger.info({ backend: store.backend, store: store.location, schema: await store.schemaVersion().catch(() => null) }, 'registration store open');
  let verifier: CredentialVerifier;
  if (config.registration.credentialVerifier === 'mock') {
    verifier = new MockVerifier({ bandwidthBytes: BigInt(config.registration.mockBandwidthBytes), validitySec: config.registration.mockValiditySec });
    logger.warn('credential verifier is MOCK: any well-formed credential is accepted (tests and localnets only)');
  } else {
    verifier = new TicketVerifier({ issuers: config.registration.ticketIssuers.map((h) => fromHex(h)) });
    if (config.registration.ticketIssuers.length === 0) logger.warn('no ticket issuers configured: every registration will be refused (set registration.ticket_issuers, or --mock-ecash for tests)');
  }
  const allocator = new AddressAllocator({
    ipv4Pool: config.registration.ipv4Pool,
    ipv6Pool: config.registration.ipv6Pool,
    gatewayIpv4: config.wireguard.tunnelIpv4,
    gatewayIpv6: config.wireguard.tunnelIpv6,
  });
  // WireGuard: the interface (managed, or the operator's, checked), then every stored peer re-applied.
  let plane: WireguardPlane;
  try {
    plane = await WireguardPlane.open({ config, keys: wireguard, store, pools: { ipv4: allocator.ipv4, ipv6: allocator.ipv6 }, metrics, logger: logger.child({ component: 'wireguard' }) });
    await plane.start();
  } catch (e) {
    await store.close();
    throw e;
  }

  // Listeners first (port 0 → real ports), then everything that announces them.
  const tcpBind = parseHostPort(config.lp.tcp);
  const udpBind = config.lp.udp ? parseHostPort(config.lp.udp) : null;
  const wgEndpoint = announcedAddresses(config).wireguardEndpoint;
  const registration = new RegistrationService({
    store,
    verifier,
    allocator,
    applier: plane.applier,
    wireguard: { publicKey: wireguard.publicKey, secretKey: wireguard.secretKey, endpoint: socketAddress(wgEndpoint) },
    timestampToleranceSec: config.registration.timestampToleranceSec,
    acceptedTicketTypes: ticketTypesForMode(config.mode),
    logger: logger.child({ component: 'registration' }),
    onDeregistered: () => plane.onDeregistered(),
  });

  const directory = isEntry ? Directory.fromConfig(config, suite, keys.ed25519.publicKey, logger.child({ component: 'directory' })) : null;
  if (directory) {
    await directory.load();
    await plane.allowExits(directory.entries());
    directory.onChange((entries) => void plane.allowExits(entries).catch((e: unknown) => logger.error({ err: e }, 'updating the forwarding policy for the directory failed')));
    directory.start();
    logger.info({ peers: directory.size }, 'directory loaded');
  }
  const forwarder = directory
    ? new Forwarder(config.forward, directory, metrics, logger.child({ component: 'forwarder' }), new TokenBucketLimiter(config.lp.helloRatePerSec, config.lp.helloBurst))
    : null;
  const app = new GatewayAppHandler(registration, forwarder, metrics);

  // One shard runs in this thread; more run one worker thread each (tables are split evenly).
  const cpus = availableParallelism();
  const shardCount = resolveShardCount(config.tables.shards, cpus);
  const bounds = resolveTableBounds(config.tables);
  logger.info({ maxSessions: bounds.maxSessions, maxHandshakes: bounds.maxHandshakes, auto: bounds.auto, memoryMiB: Math.round(bounds.memoryBytes / 2 ** 20) }, 'table bounds');
  const limits = {
    maxHandshakes: Math.ceil(bounds.maxHandshakes / shardCount),
    maxSessions: Math.ceil(bounds.maxSessions / shardCount),
    handshakeTtlSec: config.tables.handshakeTtlSec,
    sessionIdleTtlSec: config.tables.sessionIdleTtlSec,
    demotedIdleTtlSec: config.tables.demotedIdleTtlSec,
  };
  const shardMetrics = prometheusShardMetrics(metrics);
  const shards: Shard[] = [];
  const threads = new Map<string, number>();
  const ioThread = currentThreadId();
  if (ioThread !== null) threads.set('io', ioThread);
  for (let i = 0; i < shardCount; i++) {
    const common = { keys, limits, timestampToleranceSec: config.lp.timestampToleranceSec, app, metrics: shardMetrics, shardId: i, shardCount };
    if (shardCount === 1) shards.push(new LocalShard({ ...common, suite, logger: logger.child({ component: 'shard', shard: i }) }));
    else shards.push(new WorkerShard({ ...common, logger, logLevel: config.log.level, kemBackend: config.lp.kemBackend }));
  }
  // Workers start in parallel (each loads the core and its own ML-KEM module).
  await Promise.all(shards.map((s, i) => (s instanceof WorkerShard ? s.started().then(() => s.threadId !== null && threads.set(`shard-${i}`, s.threadId)) : undefined)));
  metrics.threads = threads;
  logger.info({ kem: suite.kem.name, backend: config.lp.kemBackend }, 'ML-KEM backend');
  if (shardCount > 1) logger.info({ shards: shardCount, cpus, auto: config.tables.shards === 0 }, 'receiver-index shards running in worker threads');
  else logger.info({ shards: 1, cpus, auto: config.tables.shards === 0 }, 'receiver-index shard running in the I/O thread');
  // Entries forward many clients from one address: configured ones and verified directory peers are exempt.
  const exemptHosts = new Set(config.lp.helloRateExempt);
  const isExempt = (address: string): boolean => {
    const a = address.startsWith('::ffff:') ? address.slice(7) : address;
    return exemptHosts.has(a) || (directory?.entries().some((d) => parseHostPort(d.lp.tcp).host === a) ?? false);
  };
  // TCP and UDP sources have separate ClientHello buckets: forged UDP sources never drain a TCP client's.
  const helloLimiters = { tcp: new TokenBucketLimiter(config.lp.helloRatePerSec, config.lp.helloBurst), udp: new TokenBucketLimiter(config.lp.helloRatePerSec, config.lp.helloBurst) };
  const dispatcher = new Dispatcher(shards, { helloLimiters, timestampToleranceSec: config.lp.timestampToleranceSec, exempt: isExempt, recordSources: config.http.statsClientAddresses }, metrics);
  const onPacket = dispatcher.onPacket.bind(dispatcher);

  const tcp = new TcpListener(
    {
      host: tcpBind.host,
      port: tcpBind.port,
      maxConnections: config.lp.maxConnections,
      maxConnectionsPerSource: config.lp.maxConnectionsPerSource,
      maxPendingBytes: config.lp.maxPendingBytesPerConnection,
      readTimeoutMs: config.lp.readTimeoutMs,
      idleTimeoutMs: config.lp.idleTimeoutMs,
      exempt: isExempt,
    },
    (p, s) => onPacket(p, s),
    metrics,
    logger.child({ component: 'tcp' }),
  );
  const tcpAddr = await tcp.listen();
  const udp = udpBind ? new UdpListener({ host: udpBind.host, port: udpBind.port }, (p, s) => onPacket(p, s), metrics, logger.child({ component: 'udp' })) : null;
  const udpAddr = udp ? await udp.listen() : null;

  const { lpTcp, lpUdp } = announcedAddresses(config, { tcpPort: tcpAddr.port, udpPort: udpAddr?.port });
  const descriptorParams = {
    lpTcp,
    lpUdp,
    mode: config.mode,
    // A gateway without a WireGuard interface offers no tunnel: it announces none.
    wireguard: config.wireguard.interface !== '' ? { publicKey: wireguard.publicKey, endpoint: wgEndpoint, ...tunnelAddresses(config) } : null,
    validitySec: config.http.descriptorValiditySec,
  };
  // Re-signed once a quarter of its validity has passed, so what is served is never near its expiry.
  let descriptor = buildDescriptor(descriptorParams, suite, keys);
  const currentDescriptor = (): GatewayDescriptor => {
    const now = Math.floor(Date.now() / 1000);
    if (now - descriptor.issued_at >= Math.max(1, Math.floor(config.http.descriptorValiditySec / 4))) descriptor = buildDescriptor({ ...descriptorParams, issuedAt: now }, suite, keys);
    return descriptor;
  };

  const tableTotals = (): { handshakes: number; sessions: number; demoted: number } =>
    shards.map((s) => s.stats()).reduce((a, b) => ({ handshakes: a.handshakes + b.handshakes, sessions: a.sessions + b.sessions, demoted: a.demoted + b.demoted }));
  const sweep = setInterval(() => {
    for (const s of shards) s.sweep();
    const t = tableTotals();
    metrics.tableSize.set({ table: 'handshake' }, t.handshakes);
    metrics.tableSize.set({ table: 'session' }, t.sessions);
    metrics.tableSize.set({ table: 'demoted' }, t.demoted);
  }, 1000);
  sweep.unref();
  const pruning = scheduleSerialPruning(store, logger.child({ component: 'registration' }), (n) => metrics.serialsPruned.inc(n));

  const stats = (): Record<string, unknown> => {
    const t = tableTotals();
    const recent = dispatcher.recentSources();
    return {
      mode: config.mode,
      identity_key: descriptor.identity_key,
      lp: { tcp: lpTcp, udp: lpUdp },
      tables: t,
      connections: { tcp_open: tcp.connectionCount },
      forwards: forwarder ? { in_flight: forwarder.inFlightCount, connections_opened: forwarder.connectionsOpened } : null,
      directory: directory ? { peers: directory.size } : null,
      registrations: registration.stats(),
      // Client addresses only when the operator turned them on (http.stats_client_addresses).
      ...(recent ? { recent_sources: recent } : {}),
    };
  };

  // The collector watches the ports actually bound; it never stops the gateway from running.
  let collector: Collector | null = null;
  if (config.collector.enabled) {
    try {
      collector = await startCollector(
        {
          iface: config.collector.iface,
          // LP, and the WireGuard port when the gateway runs an interface (tunnel traffic is metered too)
          ports: [tcpAddr.port, ...(udpAddr ? [udpAddr.port] : []), ...(config.wireguard.interface !== '' ? [config.wireguard.listenPort] : [])],
          windowSec: config.collector.windowSec,
          outDir: config.collector.outDir || join(config.dataDir, 'collector'),
          registry: metrics.registry,
        },
        logger.child({ component: 'collector' }),
      );
      if (collector) logger.info({ iface: config.collector.iface }, 'eBPF collector attached');
    } catch (e) {
      logger.error({ code: (e as { code?: string }).code, err: e }, `eBPF collector not started: ${(e as Error).message}; the gateway runs without it`);
    }
  }
  let stream: WindowStream | null = null;
  const api = await buildApi(
    {
      metrics,
      descriptor: currentDescriptor,
      stats,
      wireguard: () => plane.view(),
      directoryFile: config.http.directoryFile,
      store: () => store.health(),
      extraRoutes: async (app) => {
        stream = registerCollectorRoutes(app, collector);
        await opts.extraRoutes?.(app);
      },
      maxConnections: config.http.maxConnections,
    },
    logger,
  );
  const httpBind = parseHostPort(config.http.listen);
  await api.app.listen({ host: httpBind.host.replace(/^\[|\]$/g, ''), port: httpBind.port });
  const httpAddr = api.app.server.address() as AddressInfo;
  const http = fmt(httpAddr);
  logger.info({ lpTcp: fmt(tcpAddr), lpUdp: udpAddr ? fmt(udpAddr) : null, http, mode: config.mode, announced: { lpTcp, lpUdp } }, 'gateway listening');

  let stopping: Promise<void> | null = null;
  return {
    config,
    addresses: { lpTcp: fmt(tcpAddr), lpUdp: udpAddr ? fmt(udpAddr) : null, http },
    metrics,
    forwarder,
    wireguard: plane,
    descriptor: currentDescriptor,
    stats,
    stop(): Promise<void> {
      stopping ??= (async () => {
        const graceMs = config.shutdownGraceSec * 1000;
        // Every step is bounded by what is left of the grace period, so shutdown always completes within it.
        const deadline = Date.now() + graceMs;
        logger.info({ graceSec: config.shutdownGraceSec }, 'shutting down: no new connections, finishing in-flight requests');
        clearInterval(sweep);
        await pruning.stop();
        directory?.stop();
        await Promise.all([tcp.close(graceMs), udp?.close(graceMs)]);
        // A final window is written before the links go.
        if (collector) await collector.stop().catch((e: unknown) => logger.error({ err: e }, 'collector stop failed'));
        await stream?.close(Math.min(1000, Math.max(0, deadline - Date.now())));
        // HTTP requests take milliseconds; a connection still without a complete request after a second (a stalled
        // or upgraded one) is not in-flight work.
        await api.close(Math.min(1000, Math.max(0, deadline - Date.now())));
        forwarder?.close();
        for (const s of shards) s.close();
        await plane.stop();
        await store.close();
        logger.info('gateway stopped');
      })();
      return stopping;
    },
  };
}
