/** eBPF instruction encoding (Documentation/bpf/standardization/instruction-set.rst), decode only. */

export const InsnClass = { LD: 0, LDX: 1, ST: 2, STX: 3, ALU: 4, JMP: 5, JMP32: 6, ALU64: 7 } as const;

export const AluOp = { ADD: 0x00, SUB: 0x10, MUL: 0x20, DIV: 0x30, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70, NEG: 0x80, MOD: 0x90, XOR: 0xa0, MOV: 0xb0, ARSH: 0xc0, END: 0xd0 } as const;

export const JmpOp = { JA: 0x00, CALL: 0x80, EXIT: 0x90 } as const;

export const MemMode = { IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, MEMSX: 0x80, ATOMIC: 0xc0 } as const;

export const MemSize = { W: 0x00, H: 0x08, B: 0x10, DW: 0x18 } as const;

/** BPF_PSEUDO_CALL / BPF_PSEUDO_KFUNC_CALL in a call's src_reg; BPF_PSEUDO_MAP_FD in ld_imm64's src_reg. */
export const PSEUDO_CALL = 1;
export const PSEUDO_KFUNC_CALL = 2;
export const PSEUDO_MAP_FD = 1;

export const BPF_FETCH = 0x01;
export const BPF_CMPXCHG = 0xf0 | BPF_FETCH;

export const LD_IMM64 = 0x18;

export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

export function insnCount(insns: Buffer): number {
  return insns.length >>> 3;
}

export function decodeInsn(insns: Buffer, i: number): Insn {
  const p = i * 8;
  const regs = insns[p + 1] ?? 0;
  return { code: insns[p] ?? 0, dst: regs & 0x0f, src: regs >> 4, off: insns.readInt16LE(p + 2), imm: insns.readInt32LE(p + 4) };
}

export function insnClass(code: number): number {
  return code & 0x07;
}

export function isJump(code: number): boolean {
  const c = insnClass(code);
  return c === InsnClass.JMP || c === InsnClass.JMP32;
}
