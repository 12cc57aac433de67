/**
 * Static safety check of a BPF object, run on the exact bytes before every load (PRODUCT §4: the collector
 * observes and never acts). Rules, each with its own coded reason:
 *  - every program section is a known kind; the loader attaches only tc/tcx  (PROGRAM_TYPE)
 *  - helpers: allow-list only; packet-modifying helpers → PACKET_WRITE; redirect/tail-call/everything
 *    else → HELPER_NOT_ALLOWED; perf/ringbuf output only with strict: false → STRICT_OUTPUT
 *  - no bpf-to-bpf or kfunc calls (CALL_NOT_ALLOWED), no relocations other than map references (RELOCATION)
 *  - map types: counters only (HASH/ARRAY/PERCPU/LRU); DEVMAP, CPUMAP, XSKMAP, SOCKMAP, PROG_ARRAY… → MAP_TYPE;
 *    RINGBUF/PERF_EVENT_ARRAY only with strict: false → STRICT_OUTPUT
 *  - every exit returns the section's pass verdict (-1 for tc/tcx) on every path → DROP_VERDICT
 *  - no stores through a packet pointer (PACKET_WRITE) or into the context (CONTEXT_WRITE), and no packet
 *    pointer at all (PACKET_POINTER): packets may be read only by copying (bpf_skb_load_bytes*)
 *
 * The pointer rules use a small forward dataflow analysis over the instructions (register kinds ctx /
 * packet / frame pointer / scalar, known constants, 8-byte stack spills), joined at branch targets until a
 * fixpoint. It is a policy check on honest compiler output, not a second verifier: the kernel verifier stays
 * the authority on memory safety.
 */
import { CollectorErrorCode, SafetyCheckError, type SafetyViolation } from './errors.js';
import { parseBpfObject, R_BPF_64_64, type BpfObject, type BpfProgramSpec } from './elf.js';
import {
  AluOp,
  BPF_CMPXCHG,
  BPF_FETCH,
  decodeInsn,
  InsnClass,
  insnClass,
  insnCount,
  JmpOp,
  LD_IMM64,
  MemMode,
  MemSize,
  PSEUDO_CALL,
  PSEUDO_KFUNC_CALL,
  type Insn,
} from './insn.js';
import {
  ALLOWED_HELPERS,
  ALLOWED_MAP_TYPES,
  helperName,
  mapTypeName,
  OUTPUT_HELPERS,
  OUTPUT_MAP_TYPES,
  PACKET_WRITE_HELPERS,
  sectionPolicy,
  type SectionPolicy,
} from './safety-policy.js';
import { CollectorError } from './errors.js';

export interface SafetyOptions {
  /** Counters only: no ring buffer / perf output maps or helpers. Default true. */
  strict?: boolean;
}

export interface ProgramReport {
  name: string;
  section: string;
  insns: number;
  exits: number;
  helpers: number[];
}

export interface SafetyReport {
  ok: boolean;
  strict: boolean;
  violations: SafetyViolation[];
  programs: ProgramReport[];
}

// Abstract register kinds (bit set: a register may hold different kinds on different paths).
const K_SCALAR = 1;
const K_CTX = 2;
const K_PKT = 4;
const K_FP = 8;
const K_PTRS = K_CTX | K_PKT | K_FP;

interface Reg {
  k: number;
  /** constant offset from the base pointer (ctx / fp), when known */
  off: number | null;
  /** possible values of the low 32 bits (as int32), when known (≤ 4 values); used for exit verdicts */
  c: readonly number[] | null;
}

interface State {
  regs: Reg[];
  /** 8-byte aligned fp offset → kinds of a spilled pointer */
  stack: Map<number, number>;
}

const SCALAR: Reg = { k: K_SCALAR, off: null, c: null };

function initialState(): State {
  const regs: Reg[] = [];
  for (let i = 0; i < 11; i++) regs.push(SCALAR);
  regs[1] = { k: K_CTX, off: 0, c: null };
  regs[10] = { k: K_FP, off: 0, c: null };
  return { regs, stack: new Map() };
}

function reg(s: State, i: number): Reg {
  return s.regs[i] ?? SCALAR;
}

function joinConsts(a: readonly number[] | null, b: readonly number[] | null): readonly number[] | null {
  if (a === null || b === null) return null;
  const u = [...new Set([...a, ...b])].sort((x, y) => x - y);
  return u.length > 4 ? null : u;
}

function sameConsts(a: readonly number[] | null, b: readonly number[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function joinReg(a: Reg, b: Reg): Reg {
  return { k: a.k | b.k, off: a.off === b.off ? a.off : null, c: joinConsts(a.c, b.c) };
}

function sameReg(a: Reg, b: Reg): boolean {
  return a.k === b.k && a.off === b.off && sameConsts(a.c, b.c);
}

/** Joins `b` into `a`; returns the joined state and whether it differs from `a`. */
function join(a: State, b: State): { s: State; changed: boolean } {
  let changed = false;
  const regs = a.regs.map((r, i) => {
    const j = joinReg(r, reg(b, i));
    if (!sameReg(j, r)) changed = true;
    return j;
  });
  const stack = new Map<number, number>();
  const keys = new Set([...a.stack.keys(), ...b.stack.keys()]);
  for (const key of keys) {
    const ka = a.stack.get(key) ?? K_SCALAR;
    const kb = b.stack.get(key) ?? K_SCALAR;
    const kj = ka | kb;
    if (kj !== K_SCALAR) stack.set(key, kj);
    if (kj !== ka) changed = true;
  }
  return { s: { regs, stack }, changed };
}

function clone(s: State): State {
  return { regs: [...s.regs], stack: new Map(s.stack) };
}

function slotOf(off: number): number {
  return Math.floor(off / 8) * 8;
}

function successors(insn: Insn, pc: number): number[] {
  const cls = insnClass(insn.code);
  if (cls === InsnClass.LD && insn.code === LD_IMM64) return [pc + 2];
  if (cls !== InsnClass.JMP && cls !== InsnClass.JMP32) return [pc + 1];
  const op = insn.code & 0xf0;
  if (op === JmpOp.EXIT) return [];
  if (op === JmpOp.CALL) return [pc + 1];
  if (op === JmpOp.JA) return [pc + 1 + (cls === InsnClass.JMP32 ? insn.imm : insn.off)];
  return [pc + 1, pc + 1 + insn.off];
}

/** Applies one instruction to the abstract state (violations are reported separately, from IN states). */
function transfer(insn: Insn, s: State, policy: SectionPolicy): State {
  const out = clone(s);
  const cls = insnClass(insn.code);
  const set = (i: number, r: Reg): void => {
    out.regs[i] = r;
  };
  switch (cls) {
    case InsnClass.ALU64:
    case InsnClass.ALU: {
      const op = insn.code & 0xf0;
      const useReg = (insn.code & 0x08) !== 0;
      const dst = reg(s, insn.dst);
      const src = reg(s, insn.src);
      if (op === AluOp.MOV) {
        if (cls === InsnClass.ALU64) set(insn.dst, useReg ? (insn.off === 0 ? src : SCALAR) : { k: K_SCALAR, off: null, c: [insn.imm | 0] });
        else set(insn.dst, useReg ? { k: K_SCALAR, off: null, c: src.k === K_SCALAR ? src.c : null } : { k: K_SCALAR, off: null, c: [insn.imm | 0] });
      } else if (cls === InsnClass.ALU64 && (op === AluOp.ADD || op === AluOp.SUB)) {
        const ptrs = (dst.k | (useReg ? src.k : 0)) & K_PTRS;
        if (ptrs === 0) set(insn.dst, SCALAR);
        else {
          const delta = useReg ? null : op === AluOp.ADD ? insn.imm : -insn.imm;
          set(insn.dst, { k: ptrs, off: delta !== null && dst.off !== null && (dst.k & K_PTRS) !== 0 ? dst.off + delta : null, c: null });
        }
      } else {
        set(insn.dst, SCALAR);
      }
      break;
    }
    case InsnClass.LD:
      if (insn.code === LD_IMM64) set(insn.dst, SCALAR);
      else for (let i = 0; i <= 5; i++) set(i, SCALAR); // legacy LD_ABS/LD_IND: r0 result, r1-r5 clobbered
      break;
    case InsnClass.LDX: {
      const base = reg(s, insn.src);
      let k = K_SCALAR;
      if (base.k & K_CTX) {
        const field = base.off === null ? null : base.off + insn.off;
        if (field === null || policy.packetPointerFields.includes(field)) k |= K_PKT;
      }
      if (base.k & K_FP && base.off !== null && (insn.code & 0x18) === MemSize.DW) {
        k |= s.stack.get(slotOf(base.off + insn.off)) ?? 0;
      }
      set(insn.dst, { k, off: k & K_CTX ? 0 : null, c: null });
      break;
    }
    case InsnClass.ST:
    case InsnClass.STX: {
      const base = reg(s, insn.dst);
      const mode = insn.code & 0xe0;
      if (base.k & K_FP) {
        if (base.off === null) out.stack.clear();
        else {
          const slot = slotOf(base.off + insn.off);
          const src = reg(s, insn.src);
          const spill = cls === InsnClass.STX && mode === MemMode.MEM && (insn.code & 0x18) === MemSize.DW ? src.k & (K_CTX | K_PKT) : 0;
          if (spill) out.stack.set(slot, spill | (src.k & K_SCALAR));
          else out.stack.delete(slot);
        }
      }
      if (cls === InsnClass.STX && mode === MemMode.ATOMIC) {
        if (insn.imm === BPF_CMPXCHG) set(0, SCALAR);
        else if (insn.imm & BPF_FETCH) set(insn.src, SCALAR);
      }
      break;
    }
    case InsnClass.JMP:
    case InsnClass.JMP32:
      if ((insn.code & 0xf0) === JmpOp.CALL && cls === InsnClass.JMP) for (let i = 0; i <= 5; i++) set(i, SCALAR);
      break;
    default:
      break;
  }
  return out;
}

const TC_VERDICTS = ['TC_ACT_OK', 'TC_ACT_RECLASSIFY', 'TC_ACT_SHOT', 'TC_ACT_PIPE', 'TC_ACT_STOLEN', 'TC_ACT_QUEUED', 'TC_ACT_REPEAT', 'TC_ACT_REDIRECT', 'TC_ACT_TRAP'];

function verdictName(policy: SectionPolicy, v: number): string {
  if (policy.kind === 'tc') return v === -1 ? '-1 (TC_ACT_UNSPEC)' : `${v}${TC_VERDICTS[v] ? ` (${TC_VERDICTS[v]})` : ''}`;
  return String(v);
}

function checkProgram(prog: BpfProgramSpec, obj: BpfObject, strict: boolean, violations: SafetyViolation[]): ProgramReport {
  const report: ProgramReport = { name: prog.name, section: prog.section, insns: insnCount(prog.insns), exits: 0, helpers: [] };
  const add = (code: SafetyViolation['code'], message: string, insn?: number): void => {
    violations.push({ code, message, program: prog.name, ...(insn !== undefined ? { insn } : {}) });
  };
  const policy = sectionPolicy(prog.section);
  if (!policy) {
    add(CollectorErrorCode.PROGRAM_TYPE, `section '${prog.section}' is not a supported program type`);
    return report;
  }
  if (!policy.loadable) add(CollectorErrorCode.PROGRAM_TYPE, `section '${prog.section}' (${policy.kind}) cannot be attached by the collector (tc/tcx only)`);
  if (prog.insns.length % 8 !== 0 || prog.insns.length === 0) {
    add(CollectorErrorCode.MALFORMED_OBJECT, 'program size is not a whole number of instructions');
    return report;
  }

  for (const r of prog.relocs) {
    const isMap = r.type === R_BPF_64_64 && r.symbolSection === '.maps' && obj.maps.some((m) => m.symbolOffset === r.symbol.value);
    if (!isMap) {
      add(CollectorErrorCode.RELOCATION, `relocation to '${r.symbol.name}' in '${r.symbolSection || 'undefined'}' (only .maps references are supported; no global data)`, r.insn);
    }
  }

  // Fixpoint over IN states.
  const n = insnCount(prog.insns);
  const decoded: Insn[] = [];
  for (let i = 0; i < n; i++) decoded.push(decodeInsn(prog.insns, i));
  const inState: (State | undefined)[] = new Array<State | undefined>(n);
  inState[0] = initialState();
  const work: number[] = [0];
  let steps = 0;
  while (work.length > 0) {
    if (++steps > 200_000) {
      add(CollectorErrorCode.MALFORMED_OBJECT, 'analysis did not converge');
      return report;
    }
    const pc = work.pop() as number;
    const insn = decoded[pc];
    const st = inState[pc];
    if (!insn || !st) continue;
    const out = transfer(insn, st, policy);
    for (const nx of successors(insn, pc)) {
      if (nx < 0 || nx >= n) {
        add(CollectorErrorCode.MALFORMED_OBJECT, `jump out of the program (to ${nx})`, pc);
        return report;
      }
      const prev = inState[nx];
      if (!prev) {
        inState[nx] = out;
        work.push(nx);
      } else {
        const j = join(prev, out);
        if (j.changed) {
          inState[nx] = j.s;
          work.push(nx);
        }
      }
    }
  }

  // Rules, from the fixpoint IN state of each reachable instruction.
  const helpers = new Set<number>();
  for (let pc = 0; pc < n; pc++) {
    const insn = decoded[pc];
    const st = inState[pc];
    if (!insn || !st) continue;
    const cls = insnClass(insn.code);
    if ((cls === InsnClass.JMP || cls === InsnClass.JMP32) && (insn.code & 0xf0) === JmpOp.CALL) {
      if (insn.src === PSEUDO_CALL) add(CollectorErrorCode.CALL_NOT_ALLOWED, 'bpf-to-bpf call (subprograms are not supported: inline them)', pc);
      else if (insn.src === PSEUDO_KFUNC_CALL) add(CollectorErrorCode.CALL_NOT_ALLOWED, `kfunc call (btf id ${insn.imm})`, pc);
      else {
        const id = insn.imm;
        helpers.add(id);
        if (ALLOWED_HELPERS.has(id)) {
          // counting-only helper
        } else if (OUTPUT_HELPERS.has(id)) {
          if (strict) add(CollectorErrorCode.STRICT_OUTPUT, `${helperName(id)} emits events; strict mode allows counters only`, pc);
        } else if (PACKET_WRITE_HELPERS.has(id)) {
          add(CollectorErrorCode.PACKET_WRITE, `${helperName(id)} modifies packets`, pc);
        } else {
          add(CollectorErrorCode.HELPER_NOT_ALLOWED, `${helperName(id)} is not on the helper allow-list`, pc);
        }
      }
    } else if ((cls === InsnClass.JMP || cls === InsnClass.JMP32) && (insn.code & 0xf0) === JmpOp.EXIT) {
      report.exits++;
      const r0 = reg(st, 0);
      if (r0.k !== K_SCALAR || r0.c === null || r0.c.length !== 1 || r0.c[0] !== policy.passVerdict) {
        const got = r0.c === null ? 'a value that is not a known constant' : r0.c.map((v) => verdictName(policy, v)).join(' or ');
        add(CollectorErrorCode.DROP_VERDICT, `exit may return ${got}; every exit must return ${policy.passVerdict} (${policy.kind} pass verdict)`, pc);
      }
    } else if (cls === InsnClass.LDX) {
      const base = reg(st, insn.src);
      if (base.k & K_CTX) {
        const field = base.off === null ? null : base.off + insn.off;
        if (field === null) add(CollectorErrorCode.PACKET_POINTER, 'context read at an unknown offset', pc);
        else if (policy.packetPointerFields.includes(field)) add(CollectorErrorCode.PACKET_POINTER, `reads a packet pointer from the context (offset ${field}); read packets with bpf_skb_load_bytes()`, pc);
      }
    } else if (cls === InsnClass.ST || cls === InsnClass.STX) {
      const base = reg(st, insn.dst);
      if (base.k & K_PKT) add(CollectorErrorCode.PACKET_WRITE, 'store through a packet pointer', pc);
      if (base.k & K_CTX) add(CollectorErrorCode.CONTEXT_WRITE, `store into the context (offset ${base.off === null ? '?' : base.off + insn.off})`, pc);
    } else if (cls === InsnClass.LD && insn.code !== LD_IMM64) {
      const mode = insn.code & 0xe0;
      if (mode !== MemMode.ABS && mode !== MemMode.IND) add(CollectorErrorCode.MALFORMED_OBJECT, `unknown load instruction 0x${insn.code.toString(16)}`, pc);
    }
  }
  report.helpers = [...helpers].sort((a, b) => a - b);
  if (report.exits === 0) add(CollectorErrorCode.MALFORMED_OBJECT, 'program has no reachable exit');
  return report;
}

/** Checks a parsed object; never throws for policy violations (see assertSafe). */
export function checkObject(obj: BpfObject, opts: SafetyOptions = {}): SafetyReport {
  const strict = opts.strict ?? true;
  const violations: SafetyViolation[] = [];
  if (!obj.hasBtf && obj.maps.length > 0) violations.push({ code: CollectorErrorCode.MAP_DEFINITION, message: 'maps without BTF' });
  if (obj.programs.length === 0) violations.push({ code: CollectorErrorCode.NO_PROGRAM, message: 'object contains no program' });
  for (const m of obj.maps) {
    if (ALLOWED_MAP_TYPES.has(m.type)) continue;
    if (OUTPUT_MAP_TYPES.has(m.type)) {
      if (strict) violations.push({ code: CollectorErrorCode.STRICT_OUTPUT, message: `map ${m.name} is ${mapTypeName(m.type)}; strict mode allows counters only` });
    } else {
      violations.push({ code: CollectorErrorCode.MAP_TYPE, message: `map ${m.name} has forbidden type ${mapTypeName(m.type)}` });
    }
  }
  const programs = obj.programs.map((p) => {
    try {
      return checkProgram(p, obj, strict, violations);
    } catch (e) {
      // defensive: a decoding bug must reject the object, not crash the caller
      violations.push({ code: CollectorErrorCode.MALFORMED_OBJECT, message: `analysis failed: ${(e as Error).message}`, program: p.name });
      return { name: p.name, section: p.section, insns: insnCount(p.insns), exits: 0, helpers: [] };
    }
  });
  return { ok: violations.length === 0, strict, violations, programs };
}

/** Parses and checks object bytes; parse failures become violations. */
export function checkObjectBytes(bytes: Buffer, opts: SafetyOptions = {}): SafetyReport & { object: BpfObject | null } {
  let obj: BpfObject;
  try {
    obj = parseBpfObject(bytes);
  } catch (e) {
    if (e instanceof CollectorError) {
      return { ok: false, strict: opts.strict ?? true, violations: [{ code: e.code, message: e.message }], programs: [], object: null };
    }
    throw e;
  }
  return { ...checkObject(obj, opts), object: obj };
}

/** Throws SafetyCheckError (all reasons) unless the object passes. */
export function assertSafe(obj: BpfObject, opts: SafetyOptions = {}): SafetyReport {
  const r = checkObject(obj, opts);
  if (!r.ok) throw new SafetyCheckError(r.violations);
  return r;
}
