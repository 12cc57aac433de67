/**
 * `lp-gateway wg show`: the operator's view of the WireGuard peers, like `wg show` (addresses, latest
 * handshake, transfer) plus each grant — read from the running gateway's loopback HTTP API, never a key.
 * `lp-gateway wg key`: the gateway's WireGuard public key, and (for an interface the operator makes) its
 * private key written to a 0600 file for `wg set <if> private-key FILE`.
 */
import { closeSync, openSync, writeSync, chmodSync } from 'node:fs';
import { parseArgs } from 'node:util';
// Only what --help needs is imported statically; the rest loads in run() (a command's --help loads nothing else).
import { GatewayErrorCode, isGatewayError } from '../../gateway/errors.js';
import type { WireguardView } from '../../gateway/wireguard/plane.js';
import { type Command, UsageError } from '../command.js';

function httpBase(v: string): string {
  const u = v.includes('://') ? v : `http://${v}`;
  return u.replace(/\/$/, '');
}

function bytes(n: string): string {
  let v = Number(n);
  for (const unit of ['B', 'KiB', 'MiB', 'GiB', 'TiB']) {
    if (v < 1023.995 || unit === 'TiB') return unit === 'B' ? `${v} B` : `${v.toFixed(2)} ${unit}`;
    v /= 1024;
  }
  return `${n} B`;
}

function ago(sec: number, now: number): string {
  if (sec === 0) return '(none)';
  const d = Math.max(0, now - sec);
  if (d < 60) return `${d} seconds ago`;
  if (d < 3600) return `${Math.floor(d / 60)} minutes, ${d % 60} seconds ago`;
  if (d < 86_400) return `${Math.floor(d / 3600)} hours, ${Math.floor((d % 3600) / 60)} minutes ago`;
  return `${Math.floor(d / 86_400)} days, ${Math.floor((d % 86_400) / 3600)} hours ago`;
}

function until(sec: number, now: number): string {
  const d = sec - now;
  if (d <= 0) return 'expired';
  if (d < 3600) return `in ${Math.ceil(d / 60)} minutes`;
  if (d < 86_400) return `in ${Math.floor(d / 3600)} hours`;
  return `in ${Math.floor(d / 86_400)} days`;
}

/** `wg show`-style text of the operator view. */
export function formatWgView(v: WireguardView, now = Math.floor(Date.now() / 1000)): string {
  const lines: string[] = [];
  if (v.interface) {
    const i = v.interface;
    lines.push(`interface: ${i.name} (${i.managed ? 'managed' : 'operator-made'}, ${i.control === 'uapi' ? 'UAPI socket' : 'wg tool'})`, `  listening port: ${i.listen_port}`, `  tunnel addresses: ${i.tunnel_ipv4}, ${i.tunnel_ipv6}`);
  } else lines.push('interface: (none configured: registry only)');
  lines.push(`  peers: ${v.peers.length}`, `  usage as of: ${v.polled_at === 0 ? '(no poll yet)' : ago(v.polled_at, now)}`);
  for (const p of v.peers) {
    lines.push(
      '',
      `peer ${p.ipv4}, ${p.ipv6}`,
      `  allowed ips: ${p.ipv4}/32, ${p.ipv6}/128`,
      `  latest handshake: ${ago(p.latest_handshake, now)}`,
      `  transfer: ${bytes(p.rx_bytes)} received, ${bytes(p.tx_bytes)} sent`,
      `  grant: ${bytes(p.remaining_bytes)} left of ${bytes(p.granted_bytes)}, expires ${until(p.expires_at, now)} (${new Date(p.expires_at * 1000).toISOString()})`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export const wgShowCommand: Command = {
  path: ['wg', 'show'],
  summary: "list the gateway's WireGuard peers: addresses, handshakes, transfer, grants (never a key)",
  help: `Usage: lp-gateway wg show [--http HOST:PORT|URL] [--json]

Asks the running gateway's HTTP API (GET /v1/wireguard/peers, loopback by default) for its WireGuard
peers and prints them like 'wg show': each peer's tunnel addresses, latest handshake, bytes received
and sent, and its grant (bytes left, expiry). Usage is as of the peer controller's last poll
(wireguard.poll_sec). Keys and preshared keys are never shown.

Options:
  --http HOST:PORT|URL  the gateway's HTTP API (default: http.listen from the config, 127.0.0.1:8080)
  --config FILE         TOML config file to read http.listen from
  --json                print the API's JSON instead
  -h, --help            show this help
`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { http: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } } });
    let base: string;
    if (values.http !== undefined) base = httpBase(values.http);
    else {
      const { loadConfig } = await import('../../gateway/config-load.js');
      try {
        base = httpBase(loadConfig(values.config !== undefined ? { configFile: values.config } : {}).http.listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:'));
      } catch (e) {
        if (isGatewayError(e)) throw new UsageError(e.message);
        throw e;
      }
    }
    let view: WireguardView;
    try {
      const res = await fetch(`${base}/v1/wireguard/peers`, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      view = (await res.json()) as WireguardView;
    } catch (e) {
      process.stderr.write(`lp-gateway wg show: cannot read ${base}/v1/wireguard/peers: ${(e as Error).message} (is the gateway running?)\n`);
      return 1;
    }
    process.stdout.write(values.json ? `${JSON.stringify(view, null, 2)}\n` : formatWgView(view));
    return 0;
  },
};

export const wgKeyCommand: Command = {
  path: ['wg', 'key'],
  summary: "print the gateway's WireGuard public key; write its private key for an interface you make",
  help: `Usage: lp-gateway wg key [--data-dir DIR] [--config FILE] [--private-out FILE]

Prints the gateway's WireGuard public key (base64, as 'wg show' prints keys), creating the keys on
first use like 'lp-gateway run'. For a WireGuard interface the operator makes (wireguard.manage =
false), the interface must use the gateway's key — the gateway refuses to start otherwise:

  lp-gateway wg key --private-out /root/gw-wg.key      # written 0600
  wg set wg0 private-key /root/gw-wg.key listen-port 51820 && rm /root/gw-wg.key

Options:
  --data-dir DIR      data directory (default: data_dir from the config, ./data)
  --config FILE       TOML config file
  --private-out FILE  also write the private key (base64) to FILE with mode 0600 (never printed)
  -h, --help          show this help
`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { 'data-dir': { type: 'string' }, config: { type: 'string' }, 'private-out': { type: 'string' } } });
    const [{ defaultSuite }, { loadConfig }, { loadOrCreateKeys }, { createLogger }] = await Promise.all([
      import('../../core/index.js'),
      import('../../gateway/config-load.js'),
      import('../../gateway/keystore.js'),
      import('../../log.js'),
    ]);
    try {
      const config = loadConfig({ ...(values.config !== undefined ? { configFile: values.config } : {}), overrides: values['data-dir'] !== undefined ? { dataDir: values['data-dir'] } : {} });
      const logger = createLogger({ level: config.log.level, stderr: true });
      const { wireguard } = loadOrCreateKeys(config.dataDir, defaultSuite, logger);
      const out = values['private-out'];
      if (out !== undefined) {
        const fd = openSync(out, 'w', 0o600);
        const text = Buffer.from(`${Buffer.from(wireguard.secretKey).toString('base64')}\n`);
        try {
          chmodSync(out, 0o600);
          writeSync(fd, text);
        } finally {
          closeSync(fd);
          text.fill(0);
          defaultSuite.prims.zeroize(wireguard.secretKey);
        }
      }
      process.stdout.write(`${Buffer.from(wireguard.publicKey).toString('base64')}\n`);
      return 0;
    } catch (e) {
      if (!isGatewayError(e)) throw e;
      process.stderr.write(`lp-gateway wg key: ${e.message} [${e.code}]\n`);
      return e.code === GatewayErrorCode.CONFIG ? 2 : 1;
    }
  },
};
