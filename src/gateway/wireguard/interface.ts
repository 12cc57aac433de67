/**
 * The gateway's WireGuard interface: opening the right control for it, creating and configuring it when the
 * gateway manages it (`wireguard.manage`), and checking one the operator made against what the gateway
 * announces. Every command and its purpose is listed in DESIGN.md §10.9, so an operator can do the same
 * by hand.
 *
 * Managed: create the interface — kernel WireGuard (`ip link add <if> type wireguard`) when the kernel has
 * it, else `wireguard-go <if>` (which daemonizes; the interface and its UAPI socket exist when it returns),
 * else LPGW_ERR_WG_UNAVAILABLE — or adopt it if it already exists (a restart: the interface outlives the
 * gateway so clients keep their tunnels); set the private key (data/wireguard.key) and listen port; give it
 * the gateway's tunnel addresses with the pools' prefixes (so the pools route to it); bring it up; install
 * the forwarding policy (nftables, `ForwardingPolicy`): without `wireguard.uplink` clients reach only the
 * gateway; with it an exit forwards them anywhere out of the uplink, and an entry only to the WireGuard
 * endpoints of the exits in its directory (two hops: the exit tunnel's UDP inside the entry tunnel) — both
 * masqueraded, so what lies behind sees the gateway's address, never a client's.
 *
 * Unmanaged: the interface must exist and its public key and listen port must be the ones the descriptor
 * announces, else LPGW_ERR_WG_MISMATCH names which (a client could register but never complete a handshake).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { toHex } from '../../core/bytes.js';
import { GatewayError, GatewayErrorCode } from '../errors.js';
import { formatIp, parseIp, type AddressPool } from '../registration/allocator.js';
import { describeFailure, findExecutable, runCommand } from './command.js';
import type { WgControl, WgDevice } from './device.js';
import { ensurePrivateDir } from './private-file.js';
import { DEFAULT_UAPI_DIR, UapiDevice } from './uapi-device.js';
import { WgToolDevice } from './wg-tool-device.js';

export interface DeviceOptions {
  /** `auto`: UAPI when a userspace implementation's socket exists for the interface, else `wg`. */
  control: 'auto' | WgControl;
  uapiDir?: string;
  wgPath?: string;
  /** Private files for `wg` (0700 directory). */
  privateDir: string;
}

/** The control for an existing interface. */
export function openDevice(name: string, o: DeviceOptions): WgDevice {
  const uapiDir = o.uapiDir ?? DEFAULT_UAPI_DIR;
  const control = o.control === 'auto' ? (UapiDevice.present(name, uapiDir) ? 'uapi' : 'wg') : o.control;
  if (control === 'uapi') return new UapiDevice(name, { socketDir: uapiDir });
  return new WgToolDevice(name, { privateDir: o.privateDir, ...(o.wgPath !== undefined ? { wgPath: o.wgPath } : {}) });
}

const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');

async function ip(args: string[], what: string): Promise<string> {
  let r;
  try {
    r = await runCommand('ip', args);
  } catch (e) {
    throw new GatewayError(GatewayErrorCode.WG_INTERFACE, `${what}: ${(e as Error).message} (is iproute2 installed?)`);
  }
  if (r.code !== 0) throw new GatewayError(GatewayErrorCode.WG_INTERFACE, `${what}: ${describeFailure('ip', args, r)}`);
  return r.stdout.toString('utf8');
}

/** `ip -details -json link show`: the interface's kind (`wireguard` for the kernel's, `tun` for wireguard-go's), or null if absent. */
export async function linkKind(name: string): Promise<string | null> {
  const r = await runCommand('ip', ['-details', '-json', 'link', 'show', 'dev', name]).catch(() => null);
  if (!r || r.code !== 0) return null;
  try {
    const links = JSON.parse(r.stdout.toString('utf8')) as { linkinfo?: { info_kind?: string } }[];
    return links[0]?.linkinfo?.info_kind ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Where a gateway forwards its clients' tunnel traffic out of the uplink: an exit anywhere; an entry only to
 * exits' WireGuard endpoints (UDP to those address/port pairs), so it never becomes an open proxy.
 */
export type ForwardingPolicy = { role: 'exit' } | { role: 'entry'; exits: ExitEndpoint[] };

export interface ExitEndpoint {
  address: string;
  family: 4 | 6;
  port: number;
}

export interface ManagedInterfaceOptions {
  name: string;
  privateKey: Uint8Array;
  listenPort: number;
  pools: { ipv4: AddressPool; ipv6: AddressPool };
  /** Forward clients' permitted traffic out of this interface, masqueraded; '' = clients reach only the gateway. */
  uplink: string;
  policy: ForwardingPolicy;
  /** The wireguard-go executable (used when the kernel has no WireGuard). */
  wireguardGo: string;
  device: Omit<DeviceOptions, 'control'> & { control: 'auto' | WgControl };
  logger: Logger;
}

export interface ManagedInterface {
  device: WgDevice;
  implementation: 'kernel' | 'wireguard-go' | 'existing';
  created: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function createInterface(o: ManagedInterfaceOptions): Promise<'kernel' | 'wireguard-go'> {
  const r = await runCommand('ip', ['link', 'add', 'dev', o.name, 'type', 'wireguard']).catch((e: Error) => ({ code: -1, signal: null, stdout: Buffer.alloc(0), stderr: e.message }));
  if (r.code === 0) return 'kernel';
  const kernelError = r.stderr || `exit ${r.code}`;
  const wgGo = findExecutable(o.wireguardGo);
  if (wgGo === null) {
    throw new GatewayError(
      GatewayErrorCode.WG_UNAVAILABLE,
      `cannot create WireGuard interface ${o.name}: the kernel has no WireGuard (${kernelError}) and ${o.wireguardGo} is not installed (apt-get install wireguard-go wireguard-tools, or set wireguard.wireguard_go)`,
    );
  }
  const g = await runCommand(wgGo, [o.name], { timeoutMs: 15_000 }).catch((e: Error) => {
    throw new GatewayError(GatewayErrorCode.WG_INTERFACE, `cannot start ${wgGo} ${o.name}: ${e.message}`);
  });
  if (g.code !== 0) throw new GatewayError(GatewayErrorCode.WG_INTERFACE, `cannot create WireGuard interface ${o.name}: ${describeFailure(wgGo, [o.name], g)}`);
  // wireguard-go returns once its daemon holds the interface and the UAPI socket
  const sock = join(o.device.uapiDir ?? DEFAULT_UAPI_DIR, `${o.name}.sock`);
  for (let i = 0; i < 50 && !existsSync(sock); i++) await sleep(100);
  if (!existsSync(sock)) throw new GatewayError(GatewayErrorCode.WG_INTERFACE, `${wgGo} ${o.name} started but ${sock} did not appear`);
  return 'wireguard-go';
}

/** Creates or adopts the managed interface and configures key, port, addresses, state and forwarding policy. */
export async function setUpManagedInterface(o: ManagedInterfaceOptions): Promise<ManagedInterface> {
  const kind = await linkKind(o.name);
  let implementation: ManagedInterface['implementation'] = 'existing';
  if (kind === null) implementation = await createInterface(o);
  else if (kind !== 'wireguard' && !UapiDevice.present(o.name, o.device.uapiDir ?? DEFAULT_UAPI_DIR)) {
    throw new GatewayError(GatewayErrorCode.WG_INTERFACE, `interface ${o.name} exists but is not a WireGuard interface (kind ${kind}); choose another wireguard.interface or remove it`);
  }
  const device = openDevice(o.name, o.device);
  await device.configure({ privateKey: o.privateKey, listenPort: o.listenPort });
  await setAddresses(o.name, [o.pools.ipv4, o.pools.ipv6]);
  await ip(['link', 'set', 'dev', o.name, 'up'], `bringing ${o.name} up`);
  await installForwardingPolicy(o);
  o.logger.info(
    { interface: o.name, implementation, control: device.control, listenPort: o.listenPort, addresses: [o.pools.ipv4, o.pools.ipv6].map((p) => `${formatIp(p.gatewayAddress)}/${p.prefix}`), uplink: o.uplink || null },
    implementation === 'existing' ? 'adopted the existing managed WireGuard interface' : `created WireGuard interface (${implementation})`,
  );
  return { device, implementation, created: implementation !== 'existing' };
}

/** Gives the interface exactly the gateway's tunnel addresses (with the pools' prefixes), leaving link-local ones. */
async function setAddresses(name: string, pools: AddressPool[]): Promise<void> {
  const want = new Set(pools.map((p) => `${formatIp(p.gatewayAddress)}/${p.prefix}`));
  const text = await ip(['-json', 'address', 'show', 'dev', name], `reading the addresses of ${name}`);
  let have: string[] = [];
  try {
    const parsed = JSON.parse(text) as { addr_info?: { local?: string; prefixlen?: number; scope?: string }[] }[];
    have = (parsed[0]?.addr_info ?? []).filter((a) => a.scope !== 'link' && a.local !== undefined).map((a) => `${a.local}/${a.prefixlen}`);
  } catch {
    have = [];
  }
  for (const a of have) if (!want.has(a)) await ip(['address', 'del', a, 'dev', name], `removing the stale address ${a} from ${name}`);
  for (const p of pools) {
    const a = `${formatIp(p.gatewayAddress)}/${p.prefix}`;
    if (have.includes(a)) continue;
    await ip(p.family === 6 ? ['-6', 'address', 'replace', a, 'dev', name, 'nodad'] : ['address', 'replace', a, 'dev', name], `adding ${a} to ${name}`);
  }
}

/** nftables table name for an interface (letters, digits and _ only). */
export function nftTableName(iface: string): string {
  return `lp_gateway_${iface.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** The nftables ruleset of the managed interface (DESIGN.md §10.9). */
export function forwardingRuleset(iface: string, uplink: string, pools: { ipv4: AddressPool; ipv6: AddressPool }, policy: ForwardingPolicy): string {
  const t = nftTableName(iface);
  const q = (s: string): string => JSON.stringify(s);
  const lines = [
    `table inet ${t} {}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
  ];
  if (uplink !== '') {
    if (policy.role === 'exit') lines.push(`    iifname ${q(iface)} oifname ${q(uplink)} accept`);
    else {
      for (const family of [4, 6] as const) {
        const set = policy.exits.filter((e) => e.family === family).map((e) => `${e.address} . ${e.port}`);
        if (set.length > 0) lines.push(`    iifname ${q(iface)} oifname ${q(uplink)} ${family === 4 ? 'ip' : 'ip6'} daddr . udp dport { ${set.join(', ')} } accept`);
      }
    }
    lines.push(`    iifname ${q(uplink)} oifname ${q(iface)} ct state established,related accept`);
  }
  lines.push(`    iifname ${q(iface)} drop`, `    oifname ${q(iface)} drop`, '  }');
  if (uplink !== '') {
    lines.push(
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    oifname ${q(uplink)} ip saddr ${pools.ipv4.cidr} masquerade`,
      `    oifname ${q(uplink)} ip6 saddr ${pools.ipv6.cidr} masquerade`,
      '  }',
    );
  }
  lines.push('}', '');
  return lines.join('\n');
}

/**
 * Exits' WireGuard endpoints from directory descriptors, for an entry's policy. Only IP literals count (an
 * endpoint given as a host name is skipped and named, so an operator sees why a tunnel to it cannot pass).
 */
export function exitEndpoints(endpoints: readonly string[]): { exits: ExitEndpoint[]; skipped: string[] } {
  const exits: ExitEndpoint[] = [];
  const skipped: string[] = [];
  for (const e of endpoints) {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(e);
    const ip = m?.[1] !== undefined ? parseIp(m[1]) : null;
    if (!m || !ip) skipped.push(e);
    else exits.push({ address: formatIp(ip.bytes), family: ip.family, port: Number(m[2]) });
  }
  return { exits, skipped };
}

/**
 * Sets a sysctl (a file under /proc/sys) to 1, writing only when it is not 1 already: in a container /proc/sys
 * is read-only, and the engine sets the value at creation (compose `sysctls:`).
 */
export function enableSysctl(path: string): void {
  let current: string | null = null;
  try {
    current = readFileSync(path, 'utf8').trim();
  } catch {
    // unreadable: the write below says why
  }
  if (current === '1') return;
  writeFileSync(path, '1\n');
}

/** (Re)installs the forwarding policy of a managed interface (e.g. when an entry's directory changed). */
export async function installForwardingPolicy(o: Pick<ManagedInterfaceOptions, 'name' | 'uplink' | 'pools' | 'policy' | 'device' | 'logger'>): Promise<void> {
  const nft = findExecutable('nft');
  if (nft === null) {
    if (o.uplink !== '') throw new GatewayError(GatewayErrorCode.WG_INTERFACE, `wireguard.uplink = ${o.uplink} needs nftables for forwarding and masquerade: apt-get install nftables`);
    o.logger.warn({ interface: o.name }, 'nft (nftables) not found: the gateway cannot restrict forwarding from its WireGuard interface; clients reach only the gateway as long as IP forwarding stays off');
    return;
  }
  if (o.uplink !== '') {
    if ((await linkKind(o.uplink)) === null) throw new GatewayError(GatewayErrorCode.WG_INTERFACE, `wireguard.uplink: interface ${o.uplink} does not exist`);
    try {
      enableSysctl('/proc/sys/net/ipv4/ip_forward');
      enableSysctl('/proc/sys/net/ipv6/conf/all/forwarding');
    } catch (e) {
      throw new GatewayError(
        GatewayErrorCode.WG_INTERFACE,
        `enabling IP forwarding for wireguard.uplink: ${(e as Error).message} (in a container, where /proc/sys is read-only, set the sysctls net.ipv4.ip_forward=1 and net.ipv6.conf.all.forwarding=1 when it is created)`,
      );
    }
  }
  const dir = ensurePrivateDir(o.device.privateDir);
  const file = join(dir, `${nftTableName(o.name)}.nft`);
  writeFileSync(file, forwardingRuleset(o.name, o.uplink, o.pools, o.policy), { mode: 0o600 });
  const r = await runCommand(nft, ['-f', file]);
  if (r.code !== 0) throw new GatewayError(GatewayErrorCode.WG_INTERFACE, `installing the forwarding policy of ${o.name}: ${describeFailure('nft', ['-f', file], r)}`);
  if (o.uplink !== '') {
    o.logger.info(
      o.policy.role === 'exit' ? { interface: o.name, uplink: o.uplink, role: 'exit' } : { interface: o.name, uplink: o.uplink, role: 'entry', exits: o.policy.exits.map((e) => `${e.family === 6 ? `[${e.address}]` : e.address}:${e.port}`) },
      o.policy.role === 'exit' ? 'clients may reach anything out of the uplink (masqueraded)' : "clients may reach only the directory's exits' WireGuard endpoints out of the uplink (masqueraded)",
    );
  }
}

/**
 * An interface the operator made: its key and port must be what the descriptor announces. Throws
 * LPGW_ERR_WG_MISMATCH naming the difference (and how to fix it), LPGW_ERR_WG_CONTROL when unreadable.
 */
export async function verifyUnmanagedInterface(device: WgDevice, expected: { publicKey: Uint8Array; listenPort: number }, logger: Logger): Promise<void> {
  let state;
  try {
    state = await device.read();
  } catch (e) {
    const msg = (e as Error).message;
    throw new GatewayError(GatewayErrorCode.WG_CONTROL, `WireGuard interface ${device.interfaceName} cannot be read (${msg}); create it first, or set wireguard.manage = true to let the gateway create it`);
  }
  const problems: string[] = [];
  if (state.publicKey === null || toHex(state.publicKey) !== toHex(expected.publicKey)) {
    problems.push(
      `its public key is ${state.publicKey ? b64(state.publicKey) : '(none set)'} but the gateway announces ${b64(expected.publicKey)} (the key in the data directory's wireguard.key; 'lp-gateway wg key --private-out FILE' writes it for 'wg set ${device.interfaceName} private-key FILE')`,
    );
  }
  if (state.listenPort !== expected.listenPort) problems.push(`it listens on port ${state.listenPort} but the gateway announces ${expected.listenPort} (wireguard.listen_port)`);
  if (problems.length > 0) throw new GatewayError(GatewayErrorCode.WG_MISMATCH, `WireGuard interface ${device.interfaceName}: ${problems.join('; ')}`);
  logger.info({ interface: device.interfaceName, control: device.control, listenPort: state.listenPort, peers: state.peers.length }, 'WireGuard interface matches the announced key and port');
}
