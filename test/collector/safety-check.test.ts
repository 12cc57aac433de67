/**
 * The static safety check: the committed collector object passes; objects that redirect, write packets or
 * the context, return a drop verdict, declare a DEVMAP or (strict mode) a ring buffer are rejected with a
 * coded reason, before any bpf() call. The bad objects come from test/collector/fixtures/*.bpf.c: the
 * committed .o files are always checked (no clang needed), and when clang is installed the sources are also
 * compiled afresh and checked (and compared byte for byte with the committed objects).
 * Synthetic instruction sequences cover the analysis' corner cases (joins, stack spills, calls).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BpfSys } from '../../src/collector/bpf-syscall.js';
import { parseBpfObject, type BpfObject, type BpfMapSpec } from '../../src/collector/elf.js';
import { CollectorError, CollectorErrorCode as C, SafetyCheckError } from '../../src/collector/errors.js';
import { EXPECTED_MAPS, PROGRAM_NAME } from '../../src/collector/layout.js';
import { loadObject } from '../../src/collector/loader.js';
import { checkObject, checkObjectBytes } from '../../src/collector/safety-check.js';
import { ROOT, which } from './helpers/env.js';

const FIX = fileURLToPath(new URL('./fixtures/', import.meta.url));
const COLLECTOR_O = join(ROOT, 'bpf/collector.bpf.o');

interface Case {
  file: string;
  code: C;
  mentions?: RegExp;
}

const BAD: Case[] = [
  { file: 'redirect.bpf.o', code: C.HELPER_NOT_ALLOWED, mentions: /bpf_redirect \(#23\)/ },
  { file: 'store-bytes.bpf.o', code: C.PACKET_WRITE, mentions: /bpf_skb_store_bytes \(#9\)/ },
  { file: 'drop-verdict.bpf.o', code: C.DROP_VERDICT, mentions: /2 \(TC_ACT_SHOT\)/ },
  { file: 'packet-write.bpf.o', code: C.PACKET_WRITE, mentions: /store through a packet pointer/ },
  { file: 'ctx-write.bpf.o', code: C.CONTEXT_WRITE, mentions: /offset 8/ },
  { file: 'devmap.bpf.o', code: C.MAP_TYPE, mentions: /BPF_MAP_TYPE_DEVMAP/ },
  { file: 'ringbuf.bpf.o', code: C.STRICT_OUTPUT, mentions: /RINGBUF/ },
];

/** A sys whose every use fails the test: proves the check rejects before any syscall. */
const NO_SYSCALLS = new Proxy(
  {},
  {
    get(_t, prop) {
      throw new Error(`bpf syscall attempted (${String(prop)}) for a rejected object`);
    },
  },
) as unknown as BpfSys;

function expectRejected(bytes: Buffer, c: Case, where: string): void {
  const r = checkObjectBytes(bytes);
  assert.equal(r.ok, false, `${where}: rejected`);
  assert.ok(r.violations.some((v) => v.code === c.code), `${where}: has ${c.code}; got ${JSON.stringify(r.violations)}`);
  assert.throws(
    () => loadObject(NO_SYSCALLS, bytes),
    (e: unknown) => e instanceof SafetyCheckError && e.code === c.code && (!c.mentions || c.mentions.test(e.message)),
    `${where}: the loader refuses it with ${c.code} before any bpf() call`,
  );
}

describe('committed objects', () => {
  test('bpf/collector.bpf.o passes in strict mode and matches the TypeScript layout', () => {
    const bytes = readFileSync(COLLECTOR_O);
    const r = checkObjectBytes(bytes);
    assert.deepEqual(r.violations, []);
    assert.equal(r.strict, true);
    const prog = r.programs.find((p) => p.name === PROGRAM_NAME);
    assert.ok(prog);
    assert.equal(prog.section, 'tc');
    assert.ok(prog.exits >= 1);
    // map lookup/update, ktime_get_ns (an entry's creation time), skb_load_bytes(_relative)
    assert.ok(prog.helpers.every((h) => [1, 2, 5, 26, 68].includes(h)), `helpers ${prog.helpers.join(',')}`);
    const obj = parseBpfObject(bytes);
    for (const [name, want] of Object.entries(EXPECTED_MAPS)) {
      const m = obj.maps.find((x) => x.name === name);
      assert.ok(m, `map ${name}`);
      assert.equal(m.keySize, want.keySize, `${name} key size`);
      assert.equal(m.valueSize, want.valueSize, `${name} value size`);
    }
  });

  for (const c of BAD) {
    test(`fixtures/${c.file} is rejected with ${c.code}`, () => {
      expectRejected(readFileSync(join(FIX, c.file)), c, c.file);
    });
  }

  test('ring buffer output is accepted with strict: false', () => {
    assert.deepEqual(checkObjectBytes(readFileSync(join(FIX, 'ringbuf.bpf.o')), { strict: false }).violations, []);
  });
});

const clang = which('clang') && which('llvm-strip');
const built = mkdtempSync(join(tmpdir(), 'lpgwt-bpf-'));
after(() => rmSync(built, { recursive: true, force: true }));

describe('fixtures compiled now with clang', { skip: clang ? false : 'clang/llvm-strip not installed: the committed objects above were checked instead' }, () => {
  let clangVersion = '';
  test('build', () => {
    clangVersion = execFileSync('bash', [join(ROOT, 'scripts/build-bpf.sh'), '--out', built], { encoding: 'utf8' }).trim();
  });
  for (const c of BAD) {
    test(`${c.file} (fresh) is rejected with ${c.code}`, () => {
      expectRejected(readFileSync(join(built, c.file)), c, `fresh ${c.file}`);
    });
  }
  test('fresh collector.bpf.o passes', () => {
    assert.deepEqual(checkObjectBytes(readFileSync(join(built, 'collector.bpf.o'))).violations, []);
  });
  test('committed objects are byte-identical to a fresh build (same clang)', (t) => {
    const recorded = /^clang: (.*)$/m.exec(readFileSync(join(ROOT, 'bpf/BUILD-INFO'), 'utf8'))?.[1];
    if (recorded !== clangVersion) {
      t.skip(`committed with '${recorded}', this clang is '${clangVersion}'`);
      return;
    }
    assert.ok(readFileSync(join(built, 'collector.bpf.o')).equals(readFileSync(COLLECTOR_O)), 'bpf/collector.bpf.o is current (npm run build:bpf)');
    for (const c of BAD) assert.ok(readFileSync(join(built, c.file)).equals(readFileSync(join(FIX, c.file))), `${c.file} is current`);
  });
});

// ---- synthetic programs ----

function insn(code: number, dst: number, src: number, off: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = code;
  b[1] = (src << 4) | dst;
  b.writeInt16LE(off, 2);
  b.writeInt32LE(imm, 4);
  return b;
}
const MOV64_IMM = (dst: number, imm: number): Buffer => insn(0xb7, dst, 0, 0, imm);
const EXIT = insn(0x95, 0, 0, 0, 0);
const PASS = [MOV64_IMM(0, -1), EXIT];
const CALL = (id: number, src = 0): Buffer => insn(0x85, 0, src, 0, id);

function obj(insns: Buffer[], section = 'tc', maps: Partial<BpfMapSpec>[] = []): BpfObject {
  return {
    programs: [{ name: 'p', section, insns: Buffer.concat(insns), relocs: [] }],
    maps: maps.map((m, i) => ({ name: `m${i}`, type: 1, keySize: 4, valueSize: 4, maxEntries: 1, flags: 0, symbolOffset: i * 32, ...m })),
    license: 'GPL',
    hasBtf: true,
    sections: [],
  };
}

function codes(o: BpfObject, strict = true): string[] {
  return [...new Set(checkObject(o, { strict }).violations.map((v) => v.code))].sort();
}

describe('analysis corner cases', () => {
  test('pass program', () => assert.deepEqual(codes(obj(PASS)), []));

  test('a jump joining r0 = -1 and r0 = 0 before exit is a drop-verdict risk', () => {
    const p = [MOV64_IMM(0, -1), insn(0x15, 1, 0, 1, 0) /* if r1 == 0 goto +1 */, MOV64_IMM(0, 0), EXIT];
    assert.deepEqual(codes(obj(p)), [C.DROP_VERDICT]);
    assert.match(checkObject(obj(p)).violations[0]?.message ?? '', /-1 \(TC_ACT_UNSPEC\) or 0 \(TC_ACT_OK\)/);
  });

  test('32-bit w0 = -1 is the pass verdict', () => assert.deepEqual(codes(obj([insn(0xb4, 0, 0, 0, -1), EXIT])), []));

  test('returning a register that is not a constant is rejected', () => {
    assert.deepEqual(codes(obj([insn(0x61, 0, 1, 0, 0) /* r0 = skb->len */, EXIT])), [C.DROP_VERDICT]);
  });

  test('context spilled to the stack and written through the reload', () => {
    const p = [insn(0x7b, 10, 1, -8, 0), insn(0x79, 2, 10, -8, 0), insn(0x62, 2, 0, 8, 1) /* *(u32 *)(r2 + 8) = 1 */, ...PASS];
    assert.deepEqual(codes(obj(p)), [C.CONTEXT_WRITE]);
  });

  test('atomic add into the context', () => {
    assert.deepEqual(codes(obj([MOV64_IMM(2, 1), insn(0xc3, 1, 2, 8, 0), ...PASS])), [C.CONTEXT_WRITE]);
  });

  test('packet pointer through a stack spill, then a store', () => {
    const p = [
      insn(0x61, 2, 1, 76, 0), // r2 = skb->data
      insn(0x7b, 10, 2, -16, 0),
      insn(0x79, 3, 10, -16, 0),
      insn(0x07, 3, 0, 0, 4), // r3 += 4
      insn(0x72, 3, 0, 0, 0), // *(u8 *)(r3 + 0) = 0
      ...PASS,
    ];
    assert.deepEqual(codes(obj(p)), [C.PACKET_POINTER, C.PACKET_WRITE].sort());
    assert.throws(() => loadObject(NO_SYSCALLS, Buffer.alloc(0)), CollectorError); // not an ELF: typed error
  });

  test('reading skb->data_end alone is a packet pointer', () => {
    assert.deepEqual(codes(obj([insn(0x61, 2, 1, 80, 0), ...PASS])), [C.PACKET_POINTER]);
  });

  test('helpers: redirect family, tail call, checksum rewrite, output', () => {
    assert.deepEqual(codes(obj([CALL(23), ...PASS])), [C.HELPER_NOT_ALLOWED]);
    assert.deepEqual(codes(obj([CALL(51), ...PASS])), [C.HELPER_NOT_ALLOWED]); // redirect_map
    assert.deepEqual(codes(obj([CALL(12), ...PASS])), [C.HELPER_NOT_ALLOWED]); // tail_call
    assert.deepEqual(codes(obj([CALL(10), ...PASS])), [C.PACKET_WRITE]); // l3_csum_replace
    assert.deepEqual(codes(obj([CALL(25), ...PASS])), [C.STRICT_OUTPUT]); // perf_event_output
    assert.deepEqual(codes(obj([CALL(25), ...PASS]), false), []);
    assert.deepEqual(codes(obj([CALL(26), CALL(68), CALL(1), ...PASS])), []);
  });

  test('bpf-to-bpf and kfunc calls', () => {
    assert.deepEqual(codes(obj([CALL(1, 1), ...PASS])), [C.CALL_NOT_ALLOWED]);
    assert.deepEqual(codes(obj([CALL(1234, 2), ...PASS])), [C.CALL_NOT_ALLOWED]);
  });

  test('map types', () => {
    assert.deepEqual(codes(obj(PASS, 'tc', [{ type: 17 }])), [C.MAP_TYPE]); // XSKMAP
    assert.deepEqual(codes(obj(PASS, 'tc', [{ type: 3 }])), [C.MAP_TYPE]); // PROG_ARRAY
    assert.deepEqual(codes(obj(PASS, 'tc', [{ type: 16 }])), [C.MAP_TYPE]); // CPUMAP
    assert.deepEqual(codes(obj(PASS, 'tc', [{ type: 27 }])), [C.STRICT_OUTPUT]);
    assert.deepEqual(codes(obj(PASS, 'tc', [{ type: 9 }, { type: 6 }, { type: 2 }])), []);
  });

  test('sections: unknown, and known but not attachable by the collector', () => {
    assert.deepEqual(codes(obj(PASS, 'kprobe/x')), [C.PROGRAM_TYPE]);
    assert.deepEqual(codes(obj([MOV64_IMM(0, 2), EXIT], 'xdp')), [C.PROGRAM_TYPE]); // XDP_PASS is fine, XDP is not attachable
    assert.deepEqual(codes(obj(PASS, 'xdp')), [C.DROP_VERDICT, C.PROGRAM_TYPE].sort()); // -1 is not XDP_PASS
    assert.deepEqual(codes(obj(PASS, 'tcx/ingress')), []);
  });

  test('malformed control flow', () => {
    assert.deepEqual(codes(obj([insn(0x05, 0, 0, 5, 0), ...PASS])), [C.MALFORMED_OBJECT]); // jump out of the program
    assert.deepEqual(codes(obj([insn(0x05, 0, 0, -1, 0)])), [C.MALFORMED_OBJECT]); // no exit
  });

  test('no program', () => {
    assert.deepEqual(codes({ programs: [], maps: [], license: '', hasBtf: false, sections: [] }), [C.NO_PROGRAM]);
  });
});

test('fuzz: mutated and truncated objects only ever yield coded rejections or a clean pass', () => {
  const base = readFileSync(COLLECTOR_O);
  let seed = 0x1a9c;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const known = new Set<string>(Object.values(C));
  for (let i = 0; i < 400; i++) {
    const b = Buffer.from(i % 5 === 0 ? base.subarray(0, rnd(base.length)) : base);
    for (let k = 0; k < 1 + rnd(8); k++) b[rnd(b.length) || 0] = rnd(256);
    const r = checkObjectBytes(b); // must not throw
    for (const v of r.violations) assert.ok(known.has(v.code), v.code);
  }
});
