/**
 * The localnet topology: the single source of truth for names, addresses, ports, environment and gateway
 * flags. The namespace localnet (scripts/localnet/localnet.ts) is built from it, and
 * test/localnet/topology.test.ts checks that docker/compose.yaml and docker/topology.json describe the same
 * thing. Pure data and pure functions only: importing this module runs nothing.
 *
 *   probe 10.77.0.4 ──┐
 *   entry 10.77.0.2 ──┤ bridge lpgw-ln-br (in namespace lpgw-ln-hub; Docker: the compose network's bridge)
 *   exit  10.77.0.3 ──┘ eth0
 *           │ eth1 10.78.0.3 ── veth (Docker: the network `uplink`) ── inet 10.78.0.2 ("the internet")
 *
 * The probe talks LP to the entry only; the entry forwards (telescoping) to the exit over LP TCP. Both
 * gateways have a managed WireGuard interface (kernel WireGuard, else wireguard-go) with their own tunnel
 * pools. The probe's one-hop tunnel ends at the entry; its two-hop tunnel to the exit runs inside the
 * entry's, whose forwarding policy lets it through only to the exit's WireGuard endpoint, masqueraded to the
 * entry's address; the exit routes it on out of its uplink to the inet host (masqueraded too). The exit
 * therefore only ever sees traffic — LP and WireGuard — from the entry's address.
 */

/** Every kernel object the namespace localnet creates is named with this prefix (≤ 15 chars in total). */
export const PREFIX = 'lpgw-ln-';

export const SUBNET4 = '10.77.0.0/24';
export const SUBNET6 = 'fd77::/64';
/** Docker gives the subnet's first address to its bridge; the namespace localnet leaves the bridge unaddressed. */
export const GATEWAY4 = '10.77.0.1';
export const GATEWAY6 = 'fd77::1';
export const PREFIX_LEN4 = 24;
export const PREFIX_LEN6 = 64;

export const PORTS = { lpTcp: 41264, lpUdp: 51264, http: 8080, wireguard: 51820 } as const;

/** Listeners bind every address inside their namespace/container; the descriptor announces `ipv4`. */
export const BIND = {
  lpTcp: `0.0.0.0:${PORTS.lpTcp}`,
  lpUdp: `0.0.0.0:${PORTS.lpUdp}`,
  http: `0.0.0.0:${PORTS.http}`,
} as const;

/** The nodes on the bridge (the inet host is only on the exit's uplink, see INET). */
export type NodeName = 'entry' | 'exit' | 'probe';
export type GatewayName = 'entry' | 'exit';

export interface LocalnetNode {
  name: NodeName;
  /** Network namespace of the namespace localnet (also the node's "host" name). */
  netns: string;
  /** The veth end inside the node (Docker names a container's interface eth0 too). */
  iface: string;
  /** The veth end attached to the bridge, inside the hub namespace. */
  hubIface: string;
  ipv4: string;
  ipv6: string;
}

export const NODE_NAMES: readonly NodeName[] = ['entry', 'exit', 'probe'];
/** Start order: the exit first, so the entry's directory finds it at its first load. */
export const GATEWAY_NAMES: readonly GatewayName[] = ['exit', 'entry'];

function node(name: NodeName, host: number): LocalnetNode {
  return { name, netns: `${PREFIX}${name}`, iface: 'eth0', hubIface: `${PREFIX}${name}`, ipv4: `10.77.0.${host}`, ipv6: `fd77::${host}` };
}

export const NODES: Readonly<Record<NodeName, LocalnetNode>> = {
  entry: node('entry', 2),
  exit: node('exit', 3),
  probe: node('probe', 4),
};

/** The namespace that holds the bridge, so that no interface of the localnet lives in the host's namespace. */
export const HUB = { netns: `${PREFIX}hub`, bridge: `${PREFIX}br` } as const;

/**
 * The exit's uplink: a second network that only the exit and the inet host are on, standing in for the
 * internet. The namespace localnet joins them with one veth pair (exit `eth1` ↔ inet `eth0`); Docker with a
 * second bridge network, whose first addresses (10.78.0.1, fd78::1) Docker gives its bridge, as on the
 * localnet network.
 */
export const UPLINK = {
  subnet4: '10.78.0.0/24',
  subnet6: 'fd78::/64',
  gateway4: '10.78.0.1',
  gateway6: 'fd78::1',
  prefixLen4: 24,
  prefixLen6: 64,
  /** The exit's interface on the uplink (`wireguard.uplink` of the exit). */
  exitIface: 'eth1',
  exitIpv4: '10.78.0.3',
  exitIpv6: 'fd78::3',
} as const;

/** The "internet" host beyond the exit: the probe pings it through its two-hop tunnel (`as_exit`). */
export const INET = { name: 'inet', netns: `${PREFIX}inet`, iface: 'eth0', ipv4: '10.78.0.2', ipv6: 'fd78::2' } as const;

/** A gateway's WireGuard side: its managed interface, tunnel pools, own tunnel addresses and uplink. */
export interface GatewayWireguard {
  /** Interface name, unique on the machine (wireguard-go's control socket is /var/run/wireguard/<iface>.sock). */
  iface: string;
  pool4: string;
  pool6: string;
  /** The gateway's own tunnel addresses: the first host of each pool. */
  tunnel4: string;
  tunnel6: string;
  /** `wireguard.uplink`: the entry forwards (only to the exit's WireGuard endpoint) out of eth0, the exit out of its uplink. */
  uplink: string;
}

export const WIREGUARD: Readonly<Record<GatewayName, GatewayWireguard>> = {
  entry: { iface: `${PREFIX}wgentry`, pool4: '10.1.0.0/16', pool6: 'fd00:1::/112', tunnel4: '10.1.0.1', tunnel6: 'fd00:1::1', uplink: 'eth0' },
  exit: { iface: `${PREFIX}wgexit`, pool4: '10.2.0.0/16', pool6: 'fd00:2::/112', tunnel4: '10.2.0.1', tunnel6: 'fd00:2::1', uplink: UPLINK.exitIface },
};

/** `<ipv4>:51820`, the WireGuard endpoint a gateway announces. */
export function wireguardEndpoint(name: GatewayName): string {
  return `${NODES[name].ipv4}:${PORTS.wireguard}`;
}

/** Every namespace, in creation order. */
export const ALL_NETNS: readonly string[] = [HUB.netns, ...NODE_NAMES.map((n) => NODES[n].netns), INET.netns];

/** Every interface name we create with our prefix (for the ≤ 15 characters check and for leftover sweeps). */
export const ALL_IFACES: readonly string[] = [HUB.bridge, ...NODE_NAMES.map((n) => NODES[n].hubIface), ...GATEWAY_NAMES.map((g) => WIREGUARD[g].iface)];

/** `http://<ipv4>:8080`, the HTTP API (health, descriptor, collector) of a gateway. */
export function httpUrl(name: GatewayName): string {
  return `http://${NODES[name].ipv4}:${PORTS.http}`;
}

/**
 * Environment of every gateway (the gateway rejects unknown LPGW_* variables, so only config keys and
 * LPGW_CONFIG): no config file (the embedded defaults plus the flags below are the whole configuration), 1 s
 * collector windows so a probe run is visible within seconds, and a short shutdown grace so `down` is quick.
 */
export const GATEWAY_ENV: Readonly<Record<string, string>> = {
  LPGW_CONFIG: '/dev/null',
  LPGW_COLLECTOR_WINDOW_SEC: '1',
  LPGW_SHUTDOWN_GRACE_SEC: '2',
  // The exit sees every client of the entry as one source: the entry is exempt from the per-source hello limit.
  LPGW_LP_HELLO_RATE_EXEMPT: NODES.entry.ipv4,
};

/**
 * The environment of one gateway: GATEWAY_ENV plus its WireGuard settings that have no flag — its tunnel
 * pools (distinct per gateway, so a two-hop client's outer and inner addresses differ) and its uplink.
 */
export function gatewayEnv(name: GatewayName): Record<string, string> {
  const w = WIREGUARD[name];
  return { ...GATEWAY_ENV, LPGW_REGISTRATION_IPV4_POOL: w.pool4, LPGW_REGISTRATION_IPV6_POOL: w.pool6, LPGW_WIREGUARD_UPLINK: w.uplink };
}

/** Where a gateway keeps its state; differs between the namespace localnet and the containers. */
export interface GatewayPaths {
  dataDir: string;
  /** The entry's topology file (lists the exit). */
  topologyFile: string;
}

/** Paths of the namespace localnet, relative to the repository root (the gateways' working directory). */
export const LOCALNET_DIR = '.localnet';
export function localnetPaths(name: GatewayName): GatewayPaths {
  return { dataDir: `${LOCALNET_DIR}/${name}/data`, topologyFile: `${LOCALNET_DIR}/topology.json` };
}

/** Paths inside the containers (docker/compose.yaml). */
export const DOCKER_PATHS: GatewayPaths = { dataDir: '/var/lib/lp-gateway', topologyFile: '/etc/lp-gateway/topology.json' };

/** Compose names (checked against docker/compose.yaml). */
export const DOCKER = {
  /** The project name every documented compose command passes with -p (Compose v1 rejects a top-level `name:`). */
  project: 'lpgw-localnet',
  network: 'localnet',
  /** The Linux bridge Docker creates for the network: the same name as the namespace localnet's bridge. */
  bridge: HUB.bridge,
  /** The exit's uplink network (the exit and the inet host) and its bridge. */
  uplinkNetwork: 'uplink',
  uplinkBridge: `${PREFIX}up`,
  volumes: { entry: 'entry-data', exit: 'exit-data' } as Readonly<Record<GatewayName, string>>,
} as const;

/** Arguments of `lp-gateway` (after the program) for one gateway. */
export function gatewayArgs(name: GatewayName, paths: GatewayPaths): string[] {
  const n = NODES[name];
  return [
    'run',
    '--mode',
    name,
    '--mock-ecash',
    '--data-dir',
    paths.dataDir,
    '--lp-tcp',
    BIND.lpTcp,
    '--lp-udp',
    BIND.lpUdp,
    '--http',
    BIND.http,
    '--announce-host',
    n.ipv4,
    '--collector',
    '--collector-iface',
    n.iface,
    // A managed WireGuard interface (listen port 51820, the default): the collector watches that port too.
    '--wg-interface',
    WIREGUARD[name].iface,
    '--wg-manage',
    // A localnet's gateways make their keys at first start, so nothing can be pinned ahead: the entry trusts its
    // exit on first use (the plainly named flag; a real entry pins or uses a signed directory).
    ...(name === 'entry' ? ['--topology', paths.topologyFile, '--trust-on-first-use'] : []),
  ];
}

/** The entry's topology file: the exit is the only gateway it may forward to. */
export function topologyDocument(): { gateways: { url: string }[] } {
  return { gateways: [{ url: httpUrl('exit') }] };
}

export type ProbeTransport = 'tcp' | 'udp';
export const PROBE_TRANSPORTS: readonly ProbeTransport[] = ['tcp', 'udp'];

/**
 * Arguments of `gateway-probe` (after the program) for one telescoped run: LP checks, rekey, the one-hop
 * tunnel (outcome.wg), the two-hop tunnel (outcome.wg_exit) and echoes to the inet host through it
 * (outcome.as_exit) — the tunnel checks run by default since both gateways announce a WireGuard endpoint.
 */
export function probeArgs(transport: ProbeTransport): string[] {
  return ['run', '--entry', httpUrl('entry'), '--exit', httpUrl('exit'), '--trust-on-first-use', '--mock-ecash', '--rekey', '--transport', transport, '--exit-ping-v4', INET.ipv4, '--exit-ping-v6', INET.ipv6];
}
