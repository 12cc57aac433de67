#!/usr/bin/env bash
# Production dependencies for the offline image build (DEPS=prebuilt): the checkout's node_modules (from
# `npm ci`) less the dev dependencies, written to docker/prebuilt/node_modules with the hash of the
# package-lock.json it came from (the Dockerfile checks it). Pruning a copy gives the tree `npm ci --omit=dev`
# would, without the registry and without compiling better-sqlite3 again.
#
#   docker/offline/prebuilt-deps.sh          # after npm ci, from anywhere
#   docker/offline/prebuilt-deps.sh --clean  # remove docker/prebuilt/node_modules
#
# Native addons are this host's builds: the image's base must be the same Debian release and architecture
# (docker/offline/base-image.sh makes such a base).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/docker/prebuilt"

if [ "${1:-}" = "--clean" ]; then
  rm -rf "$out/node_modules"
  exit 0
fi
if [ ! -f "$root/node_modules/.package-lock.json" ]; then
  echo "prebuilt-deps: $root/node_modules is missing or was not installed by npm; run npm ci first" >&2
  exit 1
fi

# The image runs the checkout's compiled dist/ (the Dockerfile copies it): rebuild it if a source is newer.
(cd "$root" && node scripts/build.mjs --if-stale)

tmp="$(mktemp -d "$out/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cp "$root/package.json" "$root/package-lock.json" "$tmp/"
# The contents, not the entry itself: node_modules may be a symlink (a git worktree sharing another checkout's),
# which cp -a would copy as a link — and npm prune would then install a fresh tree without the built addons.
mkdir "$tmp/node_modules"
cp -a "$root/node_modules/." "$tmp/node_modules/"
# --ignore-scripts: nothing is built here; the addons come built from the checkout.
(cd "$tmp" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
# The hash of the checkout's lockfile, in sha256sum's format, checked in the image against /app/package-lock.json.
(cd "$root" && sha256sum package-lock.json) >"$tmp/node_modules/.lpgw-lockfile.sha256"
rm -rf "$out/node_modules"
mv "$tmp/node_modules" "$out/node_modules"
echo "prebuilt-deps: $(du -sh "$out/node_modules" | cut -f1) of production dependencies in $out/node_modules"
