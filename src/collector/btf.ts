/**
 * Minimal BTF reader: enough to read BTF-defined map definitions (libbpf's `SEC(".maps")` convention:
 * `__uint(type, X)` is `int (*type)[X]`, `__type(key, T)` is `T *key`). This is why the object must be
 * compiled with -g: without .BTF the map types are unknown and the object is rejected.
 */
import { CollectorError, CollectorErrorCode } from './errors.js';

export const BtfKind = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export interface BtfMember {
  name: string;
  type: number;
  /** bit offset (kind_flag structs: low 24 bits) */
  offset: number;
}

export interface BtfType {
  id: number;
  kind: number;
  name: string;
  vlen: number;
  /** size for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT, referenced type id for PTR/TYPEDEF/CV/VAR/FUNC */
  sizeOrType: number;
  members: BtfMember[];
  /** ARRAY: element type and element count */
  array?: { type: number; nelems: number };
  /** DATASEC: variables */
  vars: { type: number; offset: number; size: number }[];
}

export interface BtfMapDef {
  /** the map variable's name (the ELF symbol in .maps) */
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

function bad(msg: string): CollectorError {
  return new CollectorError(CollectorErrorCode.MALFORMED_OBJECT, `BTF: ${msg}`);
}

export class Btf {
  readonly types: BtfType[] = [];

  constructor(data: Buffer) {
    if (data.length < 24 || data.readUInt16LE(0) !== 0xeb9f) throw bad('bad magic');
    const hdrLen = data.readUInt32LE(4);
    const typeOff = hdrLen + data.readUInt32LE(8);
    const typeLen = data.readUInt32LE(12);
    const strOff = hdrLen + data.readUInt32LE(16);
    const strLen = data.readUInt32LE(20);
    if (typeOff + typeLen > data.length || strOff + strLen > data.length) throw bad('sections out of range');
    const str = (off: number): string => {
      if (off >= strLen) throw bad('string offset out of range');
      const start = strOff + off;
      const end = data.indexOf(0, start);
      return data.toString('latin1', start, end < 0 || end > strOff + strLen ? strOff + strLen : end);
    };
    let p = typeOff;
    const end = typeOff + typeLen;
    this.types.push({ id: 0, kind: BtfKind.UNKN, name: '', vlen: 0, sizeOrType: 0, members: [], vars: [] }); // void
    while (p < end) {
      if (p + 12 > end) throw bad('truncated type');
      const nameOff = data.readUInt32LE(p);
      const info = data.readUInt32LE(p + 4);
      const sizeOrType = data.readUInt32LE(p + 8);
      p += 12;
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const kindFlag = info >>> 31;
      const t: BtfType = { id: this.types.length, kind, name: str(nameOff), vlen, sizeOrType, members: [], vars: [] };
      const need = (n: number): void => {
        if (p + n > end) throw bad('truncated type data');
      };
      switch (kind) {
        case BtfKind.INT:
        case BtfKind.VAR:
        case BtfKind.DECL_TAG:
          need(4);
          p += 4;
          break;
        case BtfKind.ARRAY:
          need(12);
          t.array = { type: data.readUInt32LE(p), nelems: data.readUInt32LE(p + 8) };
          p += 12;
          break;
        case BtfKind.STRUCT:
        case BtfKind.UNION:
          need(12 * vlen);
          for (let i = 0; i < vlen; i++) {
            const off = data.readUInt32LE(p + 8);
            t.members.push({ name: str(data.readUInt32LE(p)), type: data.readUInt32LE(p + 4), offset: kindFlag ? off & 0xffffff : off });
            p += 12;
          }
          break;
        case BtfKind.ENUM:
          need(8 * vlen);
          p += 8 * vlen;
          break;
        case BtfKind.ENUM64:
          need(12 * vlen);
          p += 12 * vlen;
          break;
        case BtfKind.FUNC_PROTO:
          need(8 * vlen);
          p += 8 * vlen;
          break;
        case BtfKind.DATASEC:
          need(12 * vlen);
          for (let i = 0; i < vlen; i++) {
            t.vars.push({ type: data.readUInt32LE(p), offset: data.readUInt32LE(p + 4), size: data.readUInt32LE(p + 8) });
            p += 12;
          }
          break;
        case BtfKind.PTR:
        case BtfKind.FWD:
        case BtfKind.TYPEDEF:
        case BtfKind.VOLATILE:
        case BtfKind.CONST:
        case BtfKind.RESTRICT:
        case BtfKind.FUNC:
        case BtfKind.FLOAT:
        case BtfKind.TYPE_TAG:
          break;
        default:
          throw bad(`unknown kind ${kind}`);
      }
      this.types.push(t);
    }
  }

  get(id: number): BtfType {
    const t = this.types[id];
    if (!t) throw bad(`type id ${id} out of range`);
    return t;
  }

  /** Follows typedef / const / volatile / restrict / type_tag. */
  resolve(id: number): BtfType {
    let t = this.get(id);
    for (let hops = 0; hops < 32; hops++) {
      if (t.kind === BtfKind.TYPEDEF || t.kind === BtfKind.VOLATILE || t.kind === BtfKind.CONST || t.kind === BtfKind.RESTRICT || t.kind === BtfKind.TYPE_TAG) {
        t = this.get(t.sizeOrType);
      } else {
        return t;
      }
    }
    throw bad('type chain too long');
  }

  sizeOf(id: number): number {
    const t = this.resolve(id);
    switch (t.kind) {
      case BtfKind.INT:
      case BtfKind.STRUCT:
      case BtfKind.UNION:
      case BtfKind.ENUM:
      case BtfKind.ENUM64:
      case BtfKind.FLOAT:
        return t.sizeOrType;
      case BtfKind.PTR:
        return 8;
      case BtfKind.ARRAY:
        return t.array ? t.array.nelems * this.sizeOf(t.array.type) : 0;
      default:
        throw bad(`no size for kind ${t.kind}`);
    }
  }

  findDatasec(name: string): BtfType | undefined {
    return this.types.find((t) => t.kind === BtfKind.DATASEC && t.name === name);
  }

  /** Map definitions from the `.maps` DATASEC, in declaration order. */
  mapDefs(): BtfMapDef[] {
    const sec = this.findDatasec('.maps');
    if (!sec) return [];
    return sec.vars.map((v) => {
      const variable = this.get(v.type);
      if (variable.kind !== BtfKind.VAR) throw bad('.maps entry is not a VAR');
      const def = this.resolve(variable.sizeOrType);
      if (def.kind !== BtfKind.STRUCT) throw bad(`map ${variable.name}: definition is not a struct`);
      const out: BtfMapDef = { name: variable.name, type: -1, keySize: 0, valueSize: 0, maxEntries: 0, flags: 0 };
      for (const m of def.members) {
        const mt = this.resolve(m.type);
        // __uint(name, val) → pointer to an array of `val` elements
        const uintVal = (): number => {
          if (mt.kind !== BtfKind.PTR) throw bad(`map ${variable.name}.${m.name}: expected __uint()`);
          const arr = this.resolve(mt.sizeOrType);
          if (arr.kind !== BtfKind.ARRAY || !arr.array) throw bad(`map ${variable.name}.${m.name}: expected __uint()`);
          return arr.array.nelems;
        };
        const typeSize = (): number => {
          if (mt.kind !== BtfKind.PTR) throw bad(`map ${variable.name}.${m.name}: expected __type()`);
          return this.sizeOf(mt.sizeOrType);
        };
        switch (m.name) {
          case 'type':
            out.type = uintVal();
            break;
          case 'max_entries':
            out.maxEntries = uintVal();
            break;
          case 'map_flags':
            out.flags = uintVal();
            break;
          case 'key_size':
            out.keySize = uintVal();
            break;
          case 'value_size':
            out.valueSize = uintVal();
            break;
          case 'key':
            out.keySize = typeSize();
            break;
          case 'value':
            out.valueSize = typeSize();
            break;
          default:
            // pinning, numa_node, map_extra, values (map-in-map): not supported by this loader
            throw new CollectorError(CollectorErrorCode.MAP_DEFINITION, `map ${variable.name}: unsupported attribute '${m.name}'`);
        }
      }
      if (out.type < 0) throw new CollectorError(CollectorErrorCode.MAP_DEFINITION, `map ${variable.name}: no type`);
      return out;
    });
  }
}
