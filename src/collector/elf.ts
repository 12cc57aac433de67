/**
 * ELF64 reader for clang-built BPF objects: programs (global functions in executable sections), their
 * relocations, BTF-defined maps and the license. It only reads; the loader applies the relocations
 * (ld_imm64 → map fd) on a copy of each program's instructions.
 */
import { Btf, type BtfMapDef } from './btf.js';
import { CollectorError, CollectorErrorCode } from './errors.js';

const SHT_SYMTAB = 2;
const SHT_REL = 9;
const SHF_EXECINSTR = 0x4;
const STT_FUNC = 2;
const STB_GLOBAL = 1;
const EM_BPF = 247;

/** R_BPF_64_64: ld_imm64 referencing a symbol (maps, global data). R_BPF_64_32: bpf-to-bpf call. */
export const R_BPF_64_64 = 1;
export const R_BPF_64_32 = 10;

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  data: Buffer;
}

export interface ElfSymbol {
  name: string;
  type: number;
  bind: number;
  shndx: number;
  value: number;
  size: number;
}

export interface ProgramReloc {
  /** instruction index inside the program */
  insn: number;
  type: number;
  symbol: ElfSymbol;
  /** name of the section the symbol lives in ('' for undefined/external symbols) */
  symbolSection: string;
}

export interface BpfProgramSpec {
  /** function symbol name */
  name: string;
  /** ELF section name, e.g. "tc" or "tcx/ingress"; decides the program type and its pass verdict */
  section: string;
  /** 8-byte instructions as in the object (unrelocated) */
  insns: Buffer;
  relocs: ProgramReloc[];
}

export interface BpfMapSpec extends BtfMapDef {
  /** offset of the map symbol in .maps (what relocations point at) */
  symbolOffset: number;
}

export interface BpfObject {
  programs: BpfProgramSpec[];
  maps: BpfMapSpec[];
  license: string;
  /** true when the object carries .BTF (required to read map definitions) */
  hasBtf: boolean;
  sections: ElfSection[];
}

function bad(msg: string): CollectorError {
  return new CollectorError(CollectorErrorCode.MALFORMED_OBJECT, `ELF: ${msg}`);
}

function cstr(b: Buffer, off: number): string {
  if (off >= b.length) throw bad('string offset out of range');
  const end = b.indexOf(0, off);
  return b.toString('latin1', off, end < 0 ? b.length : end);
}

/**
 * Parses an object. Any malformed input ends in CollectorError (MALFORMED_OBJECT or MAP_DEFINITION), never in
 * a RangeError from a Buffer read: the check runs on untrusted bytes.
 */
export function parseBpfObject(bytes: Buffer): BpfObject {
  try {
    return parse(bytes);
  } catch (e) {
    if (e instanceof CollectorError) throw e;
    throw bad(`malformed object: ${(e as Error).message}`);
  }
}

function parse(bytes: Buffer): BpfObject {
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46) throw bad('not an ELF file');
  if (bytes[4] !== 2 || bytes[5] !== 1) throw bad('not a little-endian ELF64 object');
  if (bytes.readUInt16LE(18) !== EM_BPF) throw bad('not a BPF object (e_machine)');
  const shoff = Number(bytes.readBigUInt64LE(0x28));
  const shentsize = bytes.readUInt16LE(0x3a);
  const shnum = bytes.readUInt16LE(0x3c);
  const shstrndx = bytes.readUInt16LE(0x3e);
  if (shentsize !== 64 || shoff + shnum * 64 > bytes.length) throw bad('section header table out of range');

  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * 64;
    const type = bytes.readUInt32LE(h + 4);
    const offset = Number(bytes.readBigUInt64LE(h + 24));
    const size = Number(bytes.readBigUInt64LE(h + 32));
    // SHT_NOBITS (8) occupies no file bytes
    if (type !== 8 && offset + size > bytes.length) throw bad(`section ${i} out of range`);
    raw.push({
      nameOff: bytes.readUInt32LE(h),
      type,
      flags: Number(bytes.readBigUInt64LE(h + 8)),
      offset,
      size,
      link: bytes.readUInt32LE(h + 40),
      info: bytes.readUInt32LE(h + 44),
    });
  }
  const shstr = raw[shstrndx];
  if (!shstr) throw bad('no section name table');
  const shstrData = bytes.subarray(shstr.offset, shstr.offset + shstr.size);
  const sections: ElfSection[] = raw.map((s, index) => ({
    index,
    name: cstr(shstrData, s.nameOff),
    type: s.type,
    flags: s.flags,
    offset: s.offset,
    size: s.size,
    link: s.link,
    info: s.info,
    data: s.type === 8 ? Buffer.alloc(0) : bytes.subarray(s.offset, s.offset + s.size),
  }));

  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) throw bad('no symbol table');
  const strtab = sections[symtab.link];
  if (!strtab) throw bad('symbol string table missing');
  const symbols: ElfSymbol[] = [];
  for (let p = 0; p + 24 <= symtab.data.length; p += 24) {
    const info = symtab.data[p + 4] ?? 0;
    symbols.push({
      name: cstr(strtab.data, symtab.data.readUInt32LE(p)),
      type: info & 0xf,
      bind: info >> 4,
      shndx: symtab.data.readUInt16LE(p + 6),
      value: Number(symtab.data.readBigUInt64LE(p + 8)),
      size: Number(symtab.data.readBigUInt64LE(p + 16)),
    });
  }

  // Programs: global functions in executable sections (a section may hold several).
  const programs: BpfProgramSpec[] = [];
  for (const sec of sections) {
    if (!(sec.flags & SHF_EXECINSTR) || sec.size === 0) continue;
    const rel = sections.find((s) => s.type === SHT_REL && s.info === sec.index);
    const relocs: { offset: number; type: number; symbol: ElfSymbol }[] = [];
    if (rel) {
      for (let p = 0; p + 16 <= rel.data.length; p += 16) {
        const offset = Number(rel.data.readBigUInt64LE(p));
        const info = rel.data.readBigUInt64LE(p + 8);
        const symbol = symbols[Number(info >> 32n)];
        if (!symbol) throw bad(`relocation in ${sec.name} names a missing symbol`);
        relocs.push({ offset, type: Number(info & 0xffffffffn), symbol });
      }
    }
    const funcs = symbols.filter((s) => s.shndx === sec.index && s.type === STT_FUNC);
    for (const f of funcs) {
      if (f.bind !== STB_GLOBAL) continue; // static functions are subprograms; calls to them are rejected
      if (f.value % 8 !== 0 || f.size % 8 !== 0 || f.value + f.size > sec.size) throw bad(`function ${f.name} out of range`);
      programs.push({
        name: f.name,
        section: sec.name,
        insns: sec.data.subarray(f.value, f.value + f.size),
        relocs: relocs
          .filter((r) => r.offset >= f.value && r.offset < f.value + f.size)
          .map((r) => ({
            insn: (r.offset - f.value) / 8,
            type: r.type,
            symbol: r.symbol,
            symbolSection: sections[r.symbol.shndx]?.name ?? '',
          })),
      });
    }
  }

  const btfSec = sections.find((s) => s.name === '.BTF');
  const mapsSec = sections.find((s) => s.name === '.maps');
  const maps: BpfMapSpec[] = [];
  if (mapsSec && mapsSec.size > 0) {
    if (!btfSec) {
      throw new CollectorError(CollectorErrorCode.MAP_DEFINITION, 'object declares maps but has no .BTF (compile with -g)');
    }
    const defs = new Btf(btfSec.data).mapDefs();
    for (const def of defs) {
      const sym = symbols.find((s) => s.shndx === mapsSec.index && s.name === def.name);
      if (!sym) throw new CollectorError(CollectorErrorCode.MAP_DEFINITION, `map ${def.name}: no symbol in .maps`);
      maps.push({ ...def, symbolOffset: sym.value });
    }
  }

  const licSec = sections.find((s) => s.name === 'license');
  const license = licSec ? cstr(licSec.data, 0) : '';
  return { programs, maps, license, hasBtf: btfSec !== undefined, sections };
}
