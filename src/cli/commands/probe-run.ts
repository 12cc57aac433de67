/** `gateway-probe run`: one pass of checks, one JSON report on stdout (logic in probe/run.ts). */
import { parseArgs } from 'node:util';
import { isIPv4, isIPv6 } from 'node:net';
// Only what --help needs is imported statically; the rest loads in run() (a command's --help loads nothing else).
import { type Command, UsageError } from '../command.js';
import { COMMON_OPTIONS, intOption, printJson, secondsOption, TRUST_HELP } from './probe-options.js';

export const probeRunCommand: Command = {
  path: ['run'],
  summary: 'check a gateway (or an entry→exit pair) once and print a JSON report',
  help: `Usage: gateway-probe run --entry URL [--exit URL] TRUST [options]

Checks an LP gateway end to end and prints one JSON report on stdout; a short
summary goes to stderr. Exit status: 0 when every requested check passed, 1 when
a check failed, 2 for a usage error.

Checks, in order (a check whose prerequisite failed is reported false with the
code LPC_ERR_SKIPPED):
  descriptor   GET <URL>/v1/gateway, verify its Ed25519 signature, pin the
               identity key and the ML-KEM-768 key hash (entry and exit at once)
  connect      the LP address is reachable (TCP: a connection opens; UDP: a
               reply arrives during the handshake)
  handshake    ClientHello, KKT (the KEM key must match the pinned hash),
               Noise XKpsk3, sealed Ack, with the entry
  register     registration with the entry: ticket type wireguard-entry (dvpn)
               or mixnet-entry (mixnet); *-exit when a lone gateway has only the
               exit role
  --exit       a nested session with the exit through the entry (telescoping)
               and a registration with the exit (wireguard-exit / mixnet-exit)
  --rekey      rekey of the entry session, then of the nested one, each
               confirmed by a ping in the new session
  tunnel       dvpn, when the gateway announces a WireGuard endpoint: a real
               WireGuard handshake with the entry (in-process, over UDP: no
               root, no TUN) and --pings echoes to its IPv4 and IPv6 tunnel
               addresses (outcome.wg); with --exit, the exit's tunnel inside
               the entry's (outcome.wg_exit) and echoes to hosts beyond the
               exit (outcome.as_exit)
  cleanup      every dVPN registration the run made is removed again (an
               authenticated Deregister proving the WireGuard private key), so
               a probe leaves no peer behind; a failed removal fails the run

${TRUST_HELP}

Options:
  --entry URL           HTTP API of the entry gateway (required), e.g.
                        http://127.0.0.1:8080; HOST:PORT means http://HOST:PORT
  --exit URL            HTTP API of an exit gateway to reach through the entry;
                        the entry must have it in its directory (--peer)
  --transport T         tcp | tcp-stream | udp (default tcp). tcp: a connection
                        per packet (upstream behaviour); tcp-stream: one reused
                        connection; udp: one datagram per packet to the
                        descriptor's LP UDP address. Telescoped packets travel
                        inside the entry session whatever the transport.
  --mode M              dvpn | mixnet (default dvpn): register a fresh WireGuard
                        public key, or a fresh mixnet client id
  --mock-ecash          send a mock credential, accepted by gateways that run the
                        'mock' verifier (also the default without --ticket)
  --ticket FILE         credentials from a ticket file ('lp-gateway tickets issue',
                        one base64 ticket per line): each registration uses the
                        first ticket of its type (none → LPC_ERR_NO_MATCHING_TICKET).
                        The file is not changed: a single-use ticket is spent by
                        the first run that registers with it.
  --rekey               also rekey the session(s): outcome.rekey and
                        outcome.telescoping_rekey
  --wg-config FILE      write the direct dVPN registration's wg-quick
                        configuration to FILE (mode 0600: it holds the private
                        key and the preshared key) and keep that registration;
                        AllowedIPs are the gateway's tunnel addresses from its
                        signed descriptor. 'wg-quick up FILE' brings the tunnel
                        up ('wg setconf' takes it without the Address line)
  --keep-registration   do not remove the registrations at the end
  --tunnel, --no-tunnel check the WireGuard tunnel(s) or not (default: yes in
                        dvpn mode when the gateway announces a WireGuard endpoint)
  --pings N             echoes per tunnel address (default 5; 2 s each at most)
  --wg-timeout S        WireGuard handshake give-up (default 10)
  --exit-ping-v4 IP     host pinged beyond the exit through its tunnel
                        (default 1.1.1.1)
  --exit-ping-v6 IP     the same over IPv6 (default 2606:4700:4700::1111)
  --timeout S           bound the whole run to S seconds (default: no overall
                        bound; each step has its own: descriptor and connect 10 s,
                        handshake 15 s, each registration/rekey exchange 30 s)
  --compact             print the report on one line (default: indented JSON)
  -q, --quiet           no summary on stderr
  -h, --help            show this help

Advanced:
  --source-address IP   bind the probe's LP sockets (TCP and UDP) to this local
                        address, e.g. 127.0.0.3 to tell its traffic apart from a
                        gateway's on loopback (the descriptor fetch is unaffected)

Report: { "entry": {identity, lp_tcp, lp_udp, http, software_version, roles,
          kem_key_hash}, "exit": {...} | null,
          "outcome": { "lp": {can_connect, can_handshake, can_register, error,
                              registration},
                       "telescoping": {can_handshake, can_register, error,
                                       registration} | null,
                       "rekey": {can_rekey, old_index, new_index, error} | null,
                       "telescoping_rekey": {...same...} | null,
                       "wg": {can_register, can_handshake_v4,
                              can_handshake_v6, ping_ips_performance_v4,
                              ping_ips_performance_v6, latency_ms {p50, max},
                              handshake_ms, error} | null,
                       "wg_exit": {...same...} | null,
                       "as_exit": {can_route_ip_v4, can_route_ip_v6,
                                   targets, error} | null },
          "timings_ms": {descriptor, connect, handshake, register,
                         telescoped_handshake, telescoped_register, rekey,
                         telescoped_rekey, tunnel, telescoped_tunnel, total},
          "transport", "mode", "credential", "source_address", "passed",
          "version", "started_at" }
  registration (dvpn): {ticket_type, private_ipv4, private_ipv6,
          wireguard_endpoint, allocated_bandwidth_bytes, deregistered}
  error is null or {code, message}: LPC_ERR_* from the client (e.g.
  LPC_ERR_DESCRIPTOR_UNREACHABLE), LP_ERR_* from the protocol (e.g.
  LP_ERR_KKT_KEY_HASH_MISMATCH) or the gateway's LPGW_ERR_* reply (e.g.
  LPGW_ERR_FORWARD_TARGET_UNKNOWN, LPGW_ERR_TICKET_SPENT). Timings are ms, null
  for steps not run (connect is null for udp).

Examples:
  gateway-probe run --entry http://127.0.0.1:8080 --entry-identity <64 hex> --mock-ecash
  gateway-probe run --entry http://10.0.0.1:8080 --exit http://10.0.0.2:8080 \\
                    --directory https://dir.example/directory.json --directory-key <64 hex> \\
                    --ticket tickets.txt --rekey --transport udp --timeout 20
`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...COMMON_OPTIONS,
        rekey: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        quiet: { type: 'boolean', short: 'q', default: false },
        'wg-config': { type: 'string' },
        'keep-registration': { type: 'boolean', default: false },
        tunnel: { type: 'boolean' },
        'no-tunnel': { type: 'boolean' },
        pings: { type: 'string' },
        'wg-timeout': { type: 'string' },
        'exit-ping-v4': { type: 'string' },
        'exit-ping-v6': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
    const [{ commonOptions }, { DEFAULT_EXIT_PING_TARGETS, runProbe }, { runSummary }] = await Promise.all([import('./probe-common.js'), import('../../../probe/run.js'), import('../../../probe/summary.js')]);
    const common = commonOptions(values, false);
    const timeoutMs = values.timeout === undefined ? null : secondsOption('--timeout', values.timeout, 86_400);
    const wgConfigPath = values['wg-config'] ?? null;
    if (wgConfigPath !== null && common.mode !== 'dvpn') throw new UsageError('--wg-config needs --mode dvpn');
    if (values.tunnel && values['no-tunnel']) throw new UsageError('--tunnel and --no-tunnel exclude each other');
    const tunnel = values.tunnel ? true : values['no-tunnel'] ? false : null;
    if (tunnel && common.mode !== 'dvpn') throw new UsageError('--tunnel needs --mode dvpn');
    const pings = values.pings === undefined ? undefined : intOption('--pings', values.pings, 1, 1000);
    const wgHandshakeTimeoutMs = values['wg-timeout'] === undefined ? undefined : secondsOption('--wg-timeout', values['wg-timeout'], 300);
    const v4 = values['exit-ping-v4'] ?? DEFAULT_EXIT_PING_TARGETS.ipv4;
    const v6 = values['exit-ping-v6'] ?? DEFAULT_EXIT_PING_TARGETS.ipv6;
    if (!isIPv4(v4)) throw new UsageError(`--exit-ping-v4 must be an IPv4 address, not '${v4}'`);
    if (!isIPv6(v6)) throw new UsageError(`--exit-ping-v6 must be an IPv6 address, not '${v6}'`);
    const report = await runProbe({
      ...common,
      rekey: values.rekey,
      timeoutMs,
      wgConfigPath,
      keepRegistration: values['keep-registration'],
      tunnel,
      ...(pings !== undefined ? { pings } : {}),
      ...(wgHandshakeTimeoutMs !== undefined ? { wgHandshakeTimeoutMs } : {}),
      exitPingTargets: { ipv4: v4, ipv6: v6 },
    });
    printJson(report, values.compact);
    if (!values.quiet) process.stderr.write(runSummary(report, common.credentialNote));
    return report.passed ? 0 : 1;
  },
};
