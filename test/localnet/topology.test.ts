/**
 * One topology, two runners: docker/compose.yaml (parsed with `yaml`), docker/topology.json and
 * docker/Dockerfile must describe what scripts/localnet/topology.ts describes — addresses, subnets, ports,
 * environment and the gateways' flags. Needs no privileges and no Docker.
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
  NODE_NAMES,
  NODES,
  PORTS,
  PREFIX,
  PROBE_TRANSPORTS,
  SUBNET4,
  SUBNET6,
  gatewayArgs,
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
    '--topology',
    '.localnet/topology.json',
    '--trust-on-first-use',
  ]);
  assert.ok(!gatewayArgs('exit', localnetPaths('exit')).includes('--topology'), 'the exit forwards nowhere');
  assert.deepEqual(probeArgs('udp'), ['run', '--entry', 'http://10.77.0.2:8080', '--exit', 'http://10.77.0.3:8080', '--trust-on-first-use', '--mock-ecash', '--rekey', '--transport', 'udp']);
  assert.deepEqual(topologyDocument(), { gateways: [{ url: 'http://10.77.0.3:8080' }] });
  assert.equal(GATEWAY_ENV.LPGW_COLLECTOR_WINDOW_SEC, '1');
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
  assert.deepEqual(Object.keys(compose.services).sort(), [...NODE_NAMES].sort(), 'exactly entry, exit and probe');
});

test('docker/compose.yaml: every node has the same addresses', () => {
  for (const name of NODE_NAMES) {
    const s = service(name);
    assert.deepEqual(Object.keys(s.networks ?? {}), [DOCKER.network], `${name} is on ${DOCKER.network} only`);
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
    assert.equal(s.entrypoint, undefined, `${name} uses the image's entrypoint (lp-gateway)`);
    assert.deepEqual(s.command, gatewayArgs(name, DOCKER_PATHS), `${name} command`);
    assert.deepEqual(s.environment, { ...GATEWAY_ENV }, `${name} environment`);
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
  assert.ok(entry.volumes?.includes(`./topology.json:${DOCKER_PATHS.topologyFile}:ro`), 'the entry gets docker/topology.json');
  assert.equal(entry.depends_on?.exit?.condition, 'service_healthy');
  // The ports the flags bind are the ones the image exposes.
  assert.deepEqual(BIND, { lpTcp: `0.0.0.0:${PORTS.lpTcp}`, lpUdp: `0.0.0.0:${PORTS.lpUdp}`, http: `0.0.0.0:${PORTS.http}` });
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
  assert.match(df, /install -y --no-install-recommends iproute2/);
  assert.match(df, /\/usr\/local\/bin\/lp-gateway\b/);
  assert.match(df, /\/usr\/local\/bin\/gateway-probe\b/);
  assert.match(df, new RegExp(`^EXPOSE ${PORTS.lpTcp}/tcp ${PORTS.lpUdp}/udp ${PORTS.http}/tcp$`, 'm'));
  assert.ok(df.includes(DOCKER_PATHS.dataDir));
});
