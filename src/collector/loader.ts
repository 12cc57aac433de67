/**
 * Loads a BPF object without libbpf: safety check on the exact bytes → BPF_MAP_CREATE for each BTF-defined
 * map → ld_imm64 relocation to the map fds → BPF_PROG_LOAD (with the verifier log on failure).
 * The safety check runs first, so a rejected object never reaches bpf().
 */
import { readFileSync } from 'node:fs';
import { BpfProgType, type BpfSys } from './bpf-syscall.js';
import { parseBpfObject, type BpfObject, type BpfMapSpec } from './elf.js';
import { CollectorError, CollectorErrorCode } from './errors.js';
import { PSEUDO_MAP_FD, LD_IMM64 } from './insn.js';
import { assertSafe, type SafetyReport } from './safety-check.js';

export interface LoadOptions {
  /** Counters only (no ring buffer / perf output). Default true. */
  strict?: boolean;
  /** max_entries overrides by map name (e.g. --max-flows). */
  maxEntries?: Readonly<Record<string, number>>;
}

export interface LoadedMap {
  name: string;
  fd: number;
  spec: BpfMapSpec;
}

export interface LoadedProgram {
  name: string;
  section: string;
  fd: number;
}

export interface LoadedObject {
  maps: Map<string, LoadedMap>;
  programs: Map<string, LoadedProgram>;
  report: SafetyReport;
  /** Closes every fd (maps and programs disappear once no link holds them). Idempotent. */
  close(): void;
}

const LOG_SIZE = 1 << 20;

/** Reads, checks and loads an object file. */
export function loadObjectFile(sys: BpfSys, path: string, opts: LoadOptions = {}): LoadedObject {
  return loadObject(sys, readFileSync(path), opts);
}

export function loadObject(sys: BpfSys, bytes: Buffer, opts: LoadOptions = {}): LoadedObject {
  const obj: BpfObject = parseBpfObject(bytes);
  const report = assertSafe(obj, { strict: opts.strict ?? true });

  const maps = new Map<string, LoadedMap>();
  const programs = new Map<string, LoadedProgram>();
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const p of programs.values()) sys.close(p.fd);
    for (const m of maps.values()) sys.close(m.fd);
  };
  try {
    for (const spec of obj.maps) {
      const maxEntries = opts.maxEntries?.[spec.name] ?? spec.maxEntries;
      const fd = sys.mapCreate({ type: spec.type, keySize: spec.keySize, valueSize: spec.valueSize, maxEntries, flags: spec.flags, name: spec.name });
      maps.set(spec.name, { name: spec.name, fd, spec: { ...spec, maxEntries } });
    }
    for (const prog of obj.programs) {
      const insns = Buffer.from(prog.insns); // relocate a copy; the checked bytes stay untouched
      for (const r of prog.relocs) {
        const map = [...maps.values()].find((m) => m.spec.symbolOffset === r.symbol.value);
        const p = r.insn * 8;
        if (!map || insns[p] !== LD_IMM64) {
          throw new CollectorError(CollectorErrorCode.RELOCATION, `cannot relocate ${prog.name} insn ${r.insn} to '${r.symbol.name}'`);
        }
        insns[p + 1] = ((insns[p + 1] ?? 0) & 0x0f) | (PSEUDO_MAP_FD << 4);
        insns.writeInt32LE(map.fd, p + 4);
        insns.writeInt32LE(0, p + 12);
      }
      let fd: number;
      try {
        fd = sys.progLoad({ type: BpfProgType.SCHED_CLS, insns, license: obj.license, name: prog.name });
      } catch (e) {
        if (e instanceof CollectorError && e.code === CollectorErrorCode.NOT_PERMITTED) throw e;
        // Retry once with the verifier log to say why.
        const log = Buffer.alloc(LOG_SIZE);
        try {
          fd = sys.progLoad({ type: BpfProgType.SCHED_CLS, insns, license: obj.license, name: prog.name, log });
        } catch (e2) {
          const text = log.toString('utf8', 0, Math.max(0, log.indexOf(0))).trim().split('\n').slice(-12).join('\n');
          throw new CollectorError(CollectorErrorCode.VERIFIER, `BPF_PROG_LOAD(${prog.name}) rejected: ${(e2 as Error).message}${text ? `\n${text}` : ''}`, (e2 as CollectorError).errno);
        }
      }
      programs.set(prog.name, { name: prog.name, section: prog.section, fd });
    }
  } catch (e) {
    close();
    throw e;
  }
  return { maps, programs, report, close };
}
