/** Human-readable summaries for stderr: the `run` check list, the `load` result and its progress line. */
import type { LoadReport, LoadSnapshot } from './load.js';
import { type ErrorInfo, type GatewayInfo, type ProbeReport, type WgOutcome, ProbeErrorCode } from './report.js';

type Status = 'ok' | 'FAIL' | 'skip';

interface Row {
  name: string;
  status: Status;
  ms: number | null;
  detail: string;
}

function short(id: string | null): string {
  return id === null ? '(unknown)' : `${id.slice(0, 8)}…${id.slice(-4)}`;
}

function describe(label: string, g: GatewayInfo, transport: string): string {
  if (g.identity === null) return `${label} ${g.http}`;
  const addr = transport === 'udp' ? (g.lp_udp ?? g.lp_tcp) : g.lp_tcp;
  return `${label} ${short(g.identity)} at ${addr} (${g.http})`;
}

function failed(e: ErrorInfo | null): string {
  return e ? `${e.code}: ${e.message}` : '';
}

/** One row per check: the first failed check of a section carries its error, later ones are "skip". */
function rows(r: ProbeReport): Row[] {
  const out: Row[] = [];
  const t = r.timings_ms;
  const { lp, telescoping, rekey, telescoping_rekey, wg, wg_exit, as_exit } = r.outcome;
  const entryOk = r.entry.identity !== null;
  const exitOk = r.exit === null || r.exit.identity !== null;
  const descDetail = r.exit ? 'signatures verified, KEM key hashes pinned' : 'signature verified, KEM key hash pinned';
  out.push({ name: 'descriptor', status: entryOk && exitOk ? 'ok' : 'FAIL', ms: t.descriptor, detail: entryOk ? (exitOk ? descDetail : `exit: ${failed(telescoping?.error ?? null)}`) : failed(lp.error) });

  let blocked = !entryOk;
  const step = (name: string, ok: boolean, ms: number | null, detail: string, error: ErrorInfo | null): void => {
    if (blocked) out.push({ name, status: 'skip', ms: null, detail: '' });
    else if (ok) out.push({ name, status: 'ok', ms, detail });
    else {
      out.push({ name, status: 'FAIL', ms: null, detail: failed(error) });
      blocked = true;
    }
  };
  step('connect', lp.can_connect, t.connect, r.transport === 'udp' ? 'UDP: reply received' : '', lp.error);
  step('handshake', lp.can_handshake, t.handshake, '', lp.error);
  const reg = lp.registration;
  const regDetail = reg ? [reg.ticket_type, reg.private_ipv4 ? `${reg.private_ipv4} / ${reg.private_ipv6}` : null, `${reg.allocated_bandwidth_bytes} bytes`].filter(Boolean).join(', ') : '';
  const handshakeBlocked = blocked;
  step('register', lp.can_register, t.register, regDetail, lp.error);
  blocked = handshakeBlocked; // a refused registration does not stop the later checks

  if (telescoping) {
    const sessionBlocked = blocked;
    if (!sessionBlocked && !exitOk) blocked = true;
    step('telescoped handshake', telescoping.can_handshake, t.telescoped_handshake, 'through the entry', telescoping.error);
    const n = telescoping.registration;
    step('telescoped register', telescoping.can_register, t.telescoped_register, n ? [n.ticket_type, n.private_ipv4 ? `${n.private_ipv4} / ${n.private_ipv6}` : null].filter(Boolean).join(', ') : '', telescoping.error);
    blocked = sessionBlocked;
  }
  if (rekey) {
    const before = blocked;
    step('rekey', rekey.can_rekey, t.rekey, rekey.can_rekey ? `index ${rekey.old_index} → ${rekey.new_index}, ping ok` : '', rekey.error);
    if (telescoping_rekey) {
      if (telescoping_rekey.error?.code === ProbeErrorCode.SKIPPED) out.push({ name: 'telescoped rekey', status: 'skip', ms: null, detail: '' });
      else {
        blocked = before;
        step('telescoped rekey', telescoping_rekey.can_rekey, t.telescoped_rekey, telescoping_rekey.can_rekey ? `index ${telescoping_rekey.old_index} → ${telescoping_rekey.new_index}, ping ok` : '', telescoping_rekey.error);
      }
    }
  }
  const tunnelRow = (name: string, w: WgOutcome, ms: number | null): void => {
    const ok = w.can_handshake_v4 && w.can_handshake_v6;
    if (w.error?.code === ProbeErrorCode.SKIPPED) out.push({ name, status: 'skip', ms: null, detail: '' });
    else
      out.push({
        name,
        status: ok ? 'ok' : 'FAIL',
        ms: ok ? ms : null,
        detail: ok ? `WireGuard handshake ${w.handshake_ms ?? '?'} ms; echoes v4 ${pctOf(w.ping_ips_performance_v4)}, v6 ${pctOf(w.ping_ips_performance_v6)}${w.latency_ms ? `, p50 ${w.latency_ms.p50} ms` : ''}` : failed(w.error),
      });
  };
  if (wg) tunnelRow('tunnel', wg, t.tunnel);
  if (wg_exit) tunnelRow('telescoped tunnel', wg_exit, t.telescoped_tunnel);
  if (as_exit) {
    const ok = as_exit.can_route_ip_v4 && as_exit.can_route_ip_v6;
    if (as_exit.error?.code === ProbeErrorCode.SKIPPED) out.push({ name: 'beyond the exit', status: 'skip', ms: null, detail: '' });
    else out.push({ name: 'beyond the exit', status: ok ? 'ok' : 'FAIL', ms: null, detail: ok ? `${as_exit.targets.ipv4} and ${as_exit.targets.ipv6} answered` : failed(as_exit.error) });
  }
  return out;
}

function pctOf(ratio: number): string {
  return `${Math.round(ratio * 100)} %`;
}

function fmtMs(ms: number | null): string {
  return ms === null ? '' : `${ms.toFixed(1)} ms`;
}

/**
 * The `run` summary. `credentialNote` explains where the credential came from (e.g. that a mock one was
 * used because neither --mock-ecash nor --ticket was given).
 */
export function runSummary(r: ProbeReport, credentialNote: string): string {
  const head = [describe('entry', r.entry, r.transport), r.exit ? describe('exit', r.exit, r.transport) : null].filter(Boolean).join(', ');
  const lines = [`gateway-probe run: ${r.passed ? 'PASS' : 'FAIL'} (${r.transport}, ${r.mode}) ${head}`];
  const rs = rows(r);
  const width = Math.max(...rs.map((x) => x.name.length));
  for (const x of rs) lines.push(`  ${x.name.padEnd(width)}  ${x.status.padEnd(4)}  ${fmtMs(x.ms).padStart(9)}  ${x.detail}`.trimEnd());
  lines.push(`  credential: ${credentialNote}`);
  if (r.source_address) lines.push(`  LP source address: ${r.source_address}`);
  lines.push(`  total ${fmtMs(r.timings_ms.total)}`);
  return `${lines.join('\n')}\n`;
}

function pct(p: { p50: number; p99: number } | null): string {
  return p ? `p50 ${p.p50.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms` : 'no latencies';
}

/** The live progress line (no newline); `\r`-rewritten on a terminal. */
export function progressLine(s: LoadSnapshot): string {
  return `[${s.elapsedSec.toFixed(0).padStart(3)}s/${s.durationSec}s] attempts ${s.attempts}  ok ${s.successes}  fail ${s.failures}  in-flight ${s.inFlight}  ${s.ratePerSec.toFixed(1)}/s  ${pct(s.latency)}`;
}

export function loadSummary(r: LoadReport): string {
  const lines = [`gateway-probe load: ${r.passed ? 'PASS' : 'FAIL'} — ${r.attempts} attempts, ${r.successes} ok, ${r.failures} failed${r.abandoned ? `, ${r.abandoned} abandoned` : ''} in ${r.elapsed_s.toFixed(1)} s (${r.rate_per_sec.toFixed(1)}/s)`];
  if (r.error) lines.push(`  setup failed: ${r.error.code}: ${r.error.message}`);
  if (r.latency_ms) lines.push(`  latency ms: p50 ${r.latency_ms.p50} p90 ${r.latency_ms.p90} p99 ${r.latency_ms.p99} max ${r.latency_ms.max}`);
  const errs = Object.entries(r.errors_by_code);
  if (errs.length) lines.push(`  errors: ${errs.map(([c, n]) => `${c} ×${n}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}
