#!/usr/bin/env bash
# Rebuilds the committed eBPF objects from their C sources (cilium/ebpf bpf2go convention: the .o is
# committed next to its .c so `npm ci` needs no compiler).
#
#   bash scripts/build-bpf.sh          rebuild bpf/collector.bpf.o and the test fixtures' .o files
#   bash scripts/build-bpf.sh --check  rebuild into a temp dir and fail if any committed object differs
#   bash scripts/build-bpf.sh --out D  build every object into directory D (tests compile fixtures this way)
#
# Output is deterministic for a given clang: fixed flags, compiled from inside the source's directory with
# a relative file name (BTF line info stores it), debug-prefix map for the working directory, and DWARF
# stripped (`--strip-debug` keeps .BTF, .symtab and the .rel* sections the loader needs). The clang version
# that produced the committed objects is recorded in bpf/BUILD-INFO; --check with another clang version
# cannot expect identical bytes and says so instead of failing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE=build
OUT_DIR=
case "${1:-}" in
  '') ;;
  --check) MODE=check ;;
  --out) MODE=out; OUT_DIR="${2:?--out needs a directory}" ;;
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--check | --out DIR]" >&2; exit 2 ;;
esac

# Objects to build: source (relative to repo root).
SOURCES=(
  bpf/collector.bpf.c
  test/collector/fixtures/redirect.bpf.c
  test/collector/fixtures/store-bytes.bpf.c
  test/collector/fixtures/drop-verdict.bpf.c
  test/collector/fixtures/packet-write.bpf.c
  test/collector/fixtures/ctx-write.bpf.c
  test/collector/fixtures/devmap.bpf.c
  test/collector/fixtures/ringbuf.bpf.c
)

CLANG="${CLANG:-clang}"
STRIP="${LLVM_STRIP:-llvm-strip}"
if ! command -v "$CLANG" >/dev/null 2>&1; then
  if [ "$MODE" = check ]; then
    echo "check:bpf: SKIPPED — clang not found (apt-get install clang llvm libbpf-dev); committed objects not verified"
    exit 0
  fi
  if [ "$MODE" = out ]; then
    echo "build:bpf: clang not found" >&2
    exit 3
  fi
  echo "build:bpf: clang not found (apt-get install clang llvm libbpf-dev)" >&2
  exit 1
fi
if ! command -v "$STRIP" >/dev/null 2>&1; then
  for v in 19 18 17 16 15 14; do
    if command -v "llvm-strip-$v" >/dev/null 2>&1; then STRIP="llvm-strip-$v"; break; fi
  done
fi
if ! command -v "$STRIP" >/dev/null 2>&1; then
  echo "build:bpf: llvm-strip not found (apt-get install llvm)" >&2
  exit 1
fi

MULTIARCH="$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")"
CLANG_VERSION="$("$CLANG" --version | head -n1)"
# Fixed flags: -g is required (BTF-defined maps are read from .BTF), -mcpu=v3 for 32-bit jumps/atomics.
CFLAGS=(-O2 -g -target bpf -mcpu=v3 -Wall -Werror -I"/usr/include/$MULTIARCH" -fno-ident
        -fdebug-prefix-map="$ROOT"=. -fdebug-compilation-dir=.)

compile() { # src_abs out_abs
  local dir base
  dir="$(dirname "$1")"; base="$(basename "$1")"
  (cd "$dir" && "$CLANG" "${CFLAGS[@]}" -c "$base" -o "$2")
  "$STRIP" --strip-debug "$2"
}

if [ "$MODE" = build ]; then
  for src in "${SOURCES[@]}"; do
    compile "$ROOT/$src" "$ROOT/${src%.c}.o"
    echo "built ${src%.c}.o ($(wc -c <"$ROOT/${src%.c}.o") bytes, sha256 $(sha256sum "$ROOT/${src%.c}.o" | cut -c1-16))"
  done
  printf 'clang: %s\nflags: %s\n' "$CLANG_VERSION" "${CFLAGS[*]//$ROOT/<root>}" >"$ROOT/bpf/BUILD-INFO"
  exit 0
fi

if [ "$MODE" = out ]; then
  mkdir -p "$OUT_DIR"
  OUT_DIR="$(cd "$OUT_DIR" && pwd)"
  for src in "${SOURCES[@]}"; do
    compile "$ROOT/$src" "$OUT_DIR/$(basename "${src%.c}").o"
  done
  echo "$CLANG_VERSION"
  exit 0
fi

RECORDED="$(sed -n 's/^clang: //p' "$ROOT/bpf/BUILD-INFO" 2>/dev/null || true)"
if [ -n "$RECORDED" ] && [ "$RECORDED" != "$CLANG_VERSION" ]; then
  echo "check:bpf: SKIPPED — committed objects were built with '$RECORDED', this machine has '$CLANG_VERSION'; byte comparison needs the same clang"
  exit 0
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
fail=0
for src in "${SOURCES[@]}"; do
  out="$TMP/$(echo "$src" | tr / _).o"
  compile "$ROOT/$src" "$out"
  if ! cmp -s "$out" "$ROOT/${src%.c}.o"; then
    echo "check:bpf: ${src%.c}.o is NOT current (rebuild with: npm run build:bpf)" >&2
    fail=1
  fi
done
if [ "$fail" -ne 0 ]; then exit 1; fi
echo "check:bpf: ${#SOURCES[@]} committed objects are current ($CLANG_VERSION)"
