/**
 * One topology, two runners: docker/compose.yaml (parsed with `yaml`), docker/topology.json,
 * docker/Dockerfile and docker/offline/base-image.sh must describe what scripts/localnet/topology.ts
 * describes — addresses, subnets, ports, environment, the gateways' flags and WireGuard interfaces, the
 * exit's uplink to the inet host, the probe's tunnel checks. Needs no privileges and no Docker.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import {
  ALL_IFACES,
  ALL_NETNS,
  BIND,
  DOCKER,
  DOCKER_PATHS,
  GATEWAY4,
  GATEWAY6,
  GATEWAY_ENV,
  GATEWAY_NAMES,
  HUB,
  INET,
  NODE_NAMES,
  NODES,
  PORTS,
  PREFIX,
  PROBE_TRANSPORTS,
  SUBNET4,
  SUBNET6,
  UPLINK,
  WIREGUARD,
  gatewayArgs,
  gatewayEnv,
  localnetPaths,
  probeArgs,
  topologyDocument,
} from '../../scripts/localnet/topology.js';

const DOCKER_DIR = fileURLToPath(new URL('../../docker/', import.meta.url));

interface ComposeService {
  build?: { context?: string; dockerfile?: string; args?: Record<string, string> };
  image?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  cap_add?: string[];
  devices?: string[];
  sysctls?: Record<string, string>;
  healthcheck?: { test?: string[] };
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }>;
  networks?: Record<string, { ipv4_address?: string; ipv6_address?: string }>;
}

interface Compose {
  name?: string;
  services: Record<string, ComposeService>;
  networks: Record<string, { driver?: string; enable_ipv6?: boolean; driver_opts?: Record<string, string>; ipam?: { config?: { subnet: string; gateway?: string }[] } }>;
  volumes: Record<string, unknown>;
}

// merge: the compose file shares the gateways' settings through a YAML merge key (<<: *gateway).
const compose = parse(readFileSync(`${DOCKER_DIR}compose.yaml`, 'utf8'), { merge: true }) as Compose;

const service = (name: string): ComposeService => {
  const s = compose.services[name];
  assert.ok(s, `compose.yaml has a service ${name}`);
  return s;
};

/** Compose's `${VAR:-default}` interpolation (the only form compose.yaml uses), against `env`. */
const interpolate = (v: string, env: Record<string, string> = {}): string => v.replace(/\$\{(\w+):-([^}]*)\}/g, (_m, name: string, dflt: string) => env[name] ?? dflt);

const inSubnet4 = (a: string): boolean => a.startsWith(`${SUBNET4.split('.').slice(0, 3).join('.')}.`);

test('topology: names carry the prefix and fit in 15 characters; addresses are unique and in the test ranges', () => {
  for (const n of [...ALL_NETNS, ...ALL_IFACES]) {
    assert.ok(n.startsWith(PREFIX), `${n} starts with ${PREFIX}`);
    assert.ok(n.length <= 15, `${n} is at most 15 characters`);
  }
  const v4 = NODE_NAMES.map((n) => NODES[n].ipv4);
  const v6 = NODE_NAMES.map((n) => NODES[n].ipv6);
  assert.equal(new Set([...v4, GATEWAY4]).size, NODE_NAMES.length + 1);
  assert.equal(new Set([...v6, GATEWAY6]).size, NODE_NAMES.length + 1);
  for (const a of [...v4, GATEWAY4]) assert.ok(inSubnet4(a), `${a} in ${SUBNET4}`);
  for (const a of [...v6, GATEWAY6]) assert.ok(a.startsWith(SUBNET6.split('/')[0] ?? '?'), `${a} in ${SUBNET6}`);
  assert.equal(HUB.bridge.length <= 15, true);
  // The uplink: the exit and the inet host, apart from the localnet's subnets.
  assert.ok(INET.netns.startsWith(PREFIX) && ALL_NETNS.includes(INET.netns));
  assert.equal(new Set([UPLINK.exitIpv4, INET.ipv4, UPLINK.gateway4]).size, 3);
  assert.equal(new Set([UPLINK.exitIpv6, INET.ipv6, UPLINK.gateway6]).size, 3);
  for (const a of [UPLINK.exitIpv4, INET.ipv4, UPLINK.gateway4]) assert.ok(a.startsWith(UPLINK.subnet4.replace(/0\/24$/, '')), `${a} in ${UPLINK.subnet4}`);
  for (const a of [UPLINK.exitIpv6, INET.ipv6, UPLINK.gateway6]) assert.ok(a.startsWith(UPLINK.subnet6.replace(/\/64$/, '')), `${a} in ${UPLINK.subnet6}`);
  assert.ok(!inSubnet4(INET.ipv4), 'the inet host is not on the localnet network');
  // WireGuard: interface names unique on the machine (wireguard-go's sockets), distinct pools per gateway.
  assert.notEqual(WIREGUARD.entry.iface, WIREGUARD.exit.iface);
  assert.notEqual(WIREGUARD.entry.pool4, WIREGUARD.exit.pool4);
  assert.notEqual(WIREGUARD.entry.pool6, WIREGUARD.exit.pool6);
  assert.equal(WIREGUARD.entry.uplink, NODES.entry.iface, "the entry forwards (to the exit's endpoint only) out of its eth0");
  assert.equal(WIREGUARD.exit.uplink, UPLINK.exitIface);
});

test('topology: the gateway flags are the documented ones', () => {
  const entry = gatewayArgs('entry', localnetPaths('entry'));
  assert.deepEqual(entry, [
    'run',
    '--mode',
    'entry',
    '--mock-ecash',
    '--data-dir',
    '.localnet/entry/data',
    '--lp-tcp',
    '0.0.0.0:41264',
    '--lp-udp',
    '0.0.0.0:51264',
    '--http',
    '0.0.0.0:8080',
    '--announce-host',
    '10.77.0.2',
    '--collector',
    '--collector-iface',
    'eth0',
    '--wg-interface',
    'lpgw-ln-wgentry',
    '--wg-manage',
    '--topology',
    '.localnet/topology.json',
    '--trust-on-first-use',
  ]);
  const exit = gatewayArgs('exit', localnetPaths('exit'));
  assert.ok(!exit.includes('--topology'), 'the exit forwards nowhere');
  assert.deepEqual(exit.slice(exit.indexOf('--wg-interface')), ['--wg-interface', 'lpgw-ln-wgexit', '--wg-manage']);
  assert.deepEqual(probeArgs('udp'), [
    'run',
    '--entry',
    'http://10.77.0.2:8080',
    '--exit',
    'http://10.77.0.3:8080',
    '--trust-on-first-use',
    '--mock-ecash',
    '--rekey',
    '--transport',
    'udp',
    '--exit-ping-v4',
    '10.78.0.2',
    '--exit-ping-v6',
    'fd78::2',
  ]);
  assert.ok(!probeArgs('tcp').includes('--no-tunnel'), 'the probe checks the tunnels');
  assert.deepEqual(topologyDocument(), { gateways: [{ url: 'http://10.77.0.3:8080' }] });
  assert.equal(GATEWAY_ENV.LPGW_COLLECTOR_WINDOW_SEC, '1');
  assert.deepEqual(gatewayEnv('exit'), { ...GATEWAY_ENV, LPGW_REGISTRATION_IPV4_POOL: '10.2.0.0/16', LPGW_REGISTRATION_IPV6_POOL: 'fd00:2::/112', LPGW_WIREGUARD_UPLINK: 'eth1' });
  assert.deepEqual(gatewayEnv('entry'), { ...GATEWAY_ENV, LPGW_REGISTRATION_IPV4_POOL: '10.1.0.0/16', LPGW_REGISTRATION_IPV6_POOL: 'fd00:1::/112', LPGW_WIREGUARD_UPLINK: 'eth0' });
});

test('docker/compose.yaml: no top-level name (Compose v1 rejects it); every documented command passes -p', () => {
  assert.equal(compose.name, undefined);
  const commands = [readFileSync(`${DOCKER_DIR}compose.yaml`, 'utf8'), readFileSync(`${DOCKER_DIR}README.md`, 'utf8')]
    .join('\n')
    .split('\n')
    .filter((l) => /docker(-| )compose (-|up|down|logs|exec|build)/.test(l));
  assert.ok(commands.length >= 5, `documented compose commands: ${commands.length}`);
  for (const l of commands) assert.ok(l.includes(`-p ${DOCKER.project} `), `-p ${DOCKER.project} in: ${l}`);
});

test('docker/compose.yaml: the network has the same subnets and bridge name', () => {
  const net = compose.networks[DOCKER.network];
  assert.ok(net, `network ${DOCKER.network}`);
  assert.equal(net.driver, 'bridge');
  assert.equal(net.enable_ipv6, true);
  assert.equal(net.driver_opts?.['com.docker.network.bridge.name'], DOCKER.bridge);
  assert.deepEqual(net.ipam?.config, [
    { subnet: SUBNET4, gateway: GATEWAY4 },
    { subnet: SUBNET6, gateway: GATEWAY6 },
  ]);
  const up = compose.networks[DOCKER.uplinkNetwork];
  assert.ok(up, `network ${DOCKER.uplinkNetwork}`);
  assert.equal(up.driver, 'bridge');
  assert.equal(up.enable_ipv6, true);
  assert.equal(up.driver_opts?.['com.docker.network.bridge.name'], DOCKER.uplinkBridge);
  assert.ok(DOCKER.uplinkBridge.startsWith(PREFIX) && DOCKER.uplinkBridge.length <= 15);
  assert.deepEqual(up.ipam?.config, [
    { subnet: UPLINK.subnet4, gateway: UPLINK.gateway4 },
    { subnet: UPLINK.subnet6, gateway: UPLINK.gateway6 },
  ]);
  assert.deepEqual(Object.keys(compose.networks).sort(), [DOCKER.network, DOCKER.uplinkNetwork]);
  assert.deepEqual(Object.keys(compose.services).sort(), [...NODE_NAMES, INET.name].sort(), 'exactly entry, exit, probe and inet');
});

test('docker/compose.yaml: every node has the same addresses', () => {
  for (const name of NODE_NAMES) {
    const s = service(name);
    assert.deepEqual(Object.keys(s.networks ?? {}), name === 'exit' ? [DOCKER.network, DOCKER.uplinkNetwork] : [DOCKER.network], `${name}'s networks`);
    assert.equal(s.networks?.[DOCKER.network]?.ipv4_address, NODES[name].ipv4, `${name} ipv4`);
    assert.equal(s.networks?.[DOCKER.network]?.ipv6_address, NODES[name].ipv6, `${name} ipv6`);
    assert.equal(s.image, 'lp-gateway:localnet');
    assert.equal(s.build?.dockerfile, 'docker/Dockerfile');
    // The Dockerfile's defaults unless the offline variables are set.
    const args = s.build?.args ?? {};
    assert.deepEqual(Object.fromEntries(Object.entries(args).map(([k, v]) => [k, interpolate(v)])), { NODE_IMAGE: 'node:20-slim', DEPS: 'npm' });
    assert.deepEqual(
      Object.fromEntries(Object.entries(args).map(([k, v]) => [k, interpolate(v, { LPGW_NODE_IMAGE: 'lp-gateway-base:local', LPGW_DEPS: 'prebuilt' })])),
      { NODE_IMAGE: 'lp-gateway-base:local', DEPS: 'prebuilt' },
    );
  }
});

test('docker/compose.yaml: the gateways run with the same flags, environment, capabilities and health check', () => {
  for (const name of GATEWAY_NAMES) {
    const s = service(name);
    assert.deepEqual(s.command, gatewayArgs(name, DOCKER_PATHS), `${name} command`);
    assert.deepEqual(s.environment, gatewayEnv(name), `${name} environment`);
    // wireguard-go's TUN device; forwarding set by the engine (a container's /proc/sys is read-only).
    assert.deepEqual(s.devices, ['/dev/net/tun:/dev/net/tun'], `${name} devices`);
    assert.equal(s.sysctls?.['net.ipv4.ip_forward'], '1', `${name} net.ipv4.ip_forward`);
    assert.equal(s.sysctls?.['net.ipv6.conf.all.forwarding'], '1', `${name} net.ipv6.conf.all.forwarding`);
    // Docker enables IPv6 only on the interfaces it attaches; the WireGuard interface needs it for its address.
    assert.equal(s.sysctls?.['net.ipv6.conf.default.disable_ipv6'], '0', `${name} net.ipv6.conf.default.disable_ipv6`);
    // CAP_BPF and CAP_NET_ADMIN (docs/COLLECTOR.md); SYS_ADMIN instead of BPF on engines before Docker 23.0.
    const caps = s.cap_add ?? [];
    assert.deepEqual(
      caps.map((c) => interpolate(c)),
      ['BPF', 'NET_ADMIN'],
      `${name} cap_add`,
    );
    assert.deepEqual(
      caps.map((c) => interpolate(c, { LPGW_CAP_BPF: 'SYS_ADMIN' })),
      ['SYS_ADMIN', 'NET_ADMIN'],
      `${name} cap_add, older engines`,
    );
    const hc = (s.healthcheck?.test ?? []).join(' ');
    assert.ok(hc.includes(`http://127.0.0.1:${PORTS.http}/health`), `${name} health check polls /health: ${hc}`);
    const vol = DOCKER.volumes[name];
    assert.ok(s.volumes?.includes(`${vol}:${DOCKER_PATHS.dataDir}`), `${name} data volume`);
    assert.ok(vol in compose.volumes, `volume ${vol} declared`);
  }
  const entry = service('entry');
  assert.equal(entry.entrypoint, undefined, "the entry uses the image's entrypoint (lp-gateway)");
  assert.ok(entry.volumes?.includes(`./topology.json:${DOCKER_PATHS.topologyFile}:ro`), 'the entry gets docker/topology.json');
  assert.equal(entry.depends_on?.exit?.condition, 'service_healthy');
  // The exit names its interfaces by address (Docker attaches networks in no fixed order), then runs lp-gateway
  // with its command as the arguments.
  const exit = service('exit');
  const [sh, dashC, script = '', arg0, ...rest] = exit.entrypoint ?? [];
  assert.deepEqual([sh, dashC, arg0, rest], ['sh', '-c', 'lp-gateway', []], 'the exit: sh -c SCRIPT lp-gateway <command>');
  assert.ok(script.includes(`ip -o -4 address show to ${UPLINK.exitIpv4} `), 'finds the uplink by its address');
  assert.ok(script.includes(`ip link set dev ${NODES.exit.iface} name lpgw-swap`) && script.includes(`ip link set dev lpgw-swap name ${UPLINK.exitIface}`), 'swaps eth0 and eth1');
  assert.ok(script.trimEnd().endsWith('exec lp-gateway "$$@"'), 'then runs lp-gateway with the command (compose unescapes $$)');
  assert.equal(exit.sysctls?.['net.ipv6.conf.all.keep_addr_on_down'], '1', 'the swap keeps the IPv6 addresses');
  assert.equal(exit.depends_on?.inet?.condition, 'service_started');
  assert.equal(exit.networks?.[DOCKER.uplinkNetwork]?.ipv4_address, UPLINK.exitIpv4);
  assert.equal(exit.networks?.[DOCKER.uplinkNetwork]?.ipv6_address, UPLINK.exitIpv6);
  // The ports the flags bind are the ones the image exposes.
  assert.deepEqual(BIND, { lpTcp: `0.0.0.0:${PORTS.lpTcp}`, lpUdp: `0.0.0.0:${PORTS.lpUdp}`, http: `0.0.0.0:${PORTS.http}` });
});

test('docker/compose.yaml: the inet host is on the uplink only and needs nothing but to exist', () => {
  const s = service(INET.name);
  assert.deepEqual(s.networks, { [DOCKER.uplinkNetwork]: { ipv4_address: INET.ipv4, ipv6_address: INET.ipv6 } });
  assert.equal(s.image, 'lp-gateway:localnet');
  assert.deepEqual(s.entrypoint, ['sleep', 'infinity']);
  assert.equal(s.cap_add, undefined);
});

test('docker/compose.yaml: the probe runs the same telescoped probe over tcp and udp', () => {
  const s = service('probe');
  const script = [...(s.entrypoint ?? []), ...(s.command ?? [])].join('\n');
  for (const t of PROBE_TRANSPORTS) assert.ok(script.includes(`gateway-probe ${probeArgs(t).join(' ')}`), `probe runs ${t}: ${script}`);
  assert.equal(s.depends_on?.entry?.condition, 'service_healthy');
  assert.equal(s.cap_add, undefined, 'the probe needs no capabilities');
});

test('docker/topology.json is the entry topology file', () => {
  assert.deepEqual(JSON.parse(readFileSync(`${DOCKER_DIR}topology.json`, 'utf8')), topologyDocument());
});

test('docker/Dockerfile: node:20-slim, npm ci with a toolchain or prebuilt dependencies, iproute2, both binaries, the ports', () => {
  const df = readFileSync(`${DOCKER_DIR}Dockerfile`, 'utf8');
  assert.match(df, /^ARG NODE_IMAGE=node:20-slim$/m);
  assert.match(df, /^ARG DEPS=npm$/m);
  assert.match(df, /^COPY docker\/prebuilt\/ /m);
  // A syntax line makes BuildKit fetch its frontend from Docker Hub: no offline build with it.
  assert.doesNotMatch(df, /^# *syntax=/m);
  // The legacy builder reads only the context root's .dockerignore; it must let the prebuilt dependencies in.
  const ignore = readFileSync(`${DOCKER_DIR}../.dockerignore`, 'utf8');
  assert.match(ignore, /^!docker\/prebuilt\/$/m);
  assert.match(df, /^FROM \$\{NODE_IMAGE\} AS build$/m);
  assert.match(df, /^FROM \$\{NODE_IMAGE\} AS runtime$/m);
  assert.match(df, /python3 make g\+\+/);
  assert.match(df, /npm ci\b/);
  assert.match(df, /install -y --no-install-recommends iproute2 wireguard-go wireguard-tools nftables/);
  assert.match(df, /command -v ip && command -v wireguard-go && command -v wg && command -v nft/);
  assert.match(df, /\/usr\/local\/bin\/lp-gateway\b/);
  assert.match(df, /\/usr\/local\/bin\/gateway-probe\b/);
  assert.match(df, new RegExp(`^EXPOSE ${PORTS.lpTcp}/tcp ${PORTS.lpUdp}/udp ${PORTS.http}/tcp ${PORTS.wireguard}/udp$`, 'm'));
  assert.ok(df.includes(DOCKER_PATHS.dataDir));
  // The offline base has the same packages (debootstrap --include).
  const base = readFileSync(`${DOCKER_DIR}offline/base-image.sh`, 'utf8');
  assert.match(base, /^packages="iproute2,wireguard-go,wireguard-tools,nftables"$/m);
  assert.match(base, /--include="\$packages"/);
});
