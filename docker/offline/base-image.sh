#!/usr/bin/env bash
# A local stand-in for node:20-slim where Docker Hub cannot be reached: a minimal Debian of this host's
# release and architecture (debootstrap --variant=minbase, from the mirror this host's apt uses, plus
# iproute2 and what the gateways' managed WireGuard interfaces need: wireguard-go, wireguard-tools, nftables),
# with this host's own Node.js and npm, imported as a single-layer image. Same release and
# architecture as the host because the prebuilt dependencies' native addons (docker/offline/prebuilt-deps.sh)
# are the host's builds.
#
#   docker/offline/base-image.sh [--work-dir DIR] [TAG]      # TAG defaults to lp-gateway-base:local
#
# Needs root, debootstrap, Debian's mirror (over apt's configured URI) and a Docker engine (the client is
# $DOCKER, default `docker`; DOCKER_HOST is honoured). The root filesystem is built in a temporary directory
# (under --work-dir if given) that is removed afterwards, also on failure. About 2 minutes; a caller that needs
# a bound kills the script's process group (no `timeout` inside: it would move debootstrap out of that group).
set -euo pipefail

tag="lp-gateway-base:local"
work_parent="${TMPDIR:-/tmp}"
while [ $# -gt 0 ]; do
  case "$1" in
    --work-dir) work_parent="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "base-image: unknown option $1" >&2; exit 2 ;;
    *) tag="$1"; shift ;;
  esac
done
docker_bin="${DOCKER:-docker}"

die() { echo "base-image: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap)"
command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm not found"
# shellcheck disable=SC1091
. /etc/os-release
release="${VERSION_CODENAME:-}"
[ -n "$release" ] || die "cannot tell this host's Debian release from /etc/os-release"
arch="$(dpkg --print-architecture)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "this host's Node.js is $(node --version); the gateway needs 20 or later"

# The mirror apt already uses for this release's main component (no mirror is named here).
mirror="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(IDENTIFIER)' \
  | awk -v r="$release" '$2 == r && $3 == "main" && $4 == "Packages" { print $1; exit }')"
[ -n "$mirror" ] || die "no apt source for ${release} main; run apt-get update"

work="$(mktemp -d "$work_parent/lpgw-base.XXXXXX")"
rootfs="$work/rootfs"
cleanup() {
  # debootstrap mounts proc and sys (and may bind /dev) in the target while it configures; an interrupted run
  # may leave them: unmount first, and never let rm cross into another file system.
  local m
  for m in $(awk -v r="$rootfs" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do umount -l "$m" || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

packages="iproute2,wireguard-go,wireguard-tools,nftables"
echo "base-image: debootstrap ${release} (${arch}, minbase + ${packages}) from ${mirror}" >&2
if ! debootstrap --variant=minbase --arch="$arch" --include="$packages" "$release" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -n 20 "$work/debootstrap.log" >&2
  die "debootstrap failed"
fi

# What an image does not need: downloaded packages, package lists (the Dockerfile runs apt-get update before
# any install), documentation and translations.
rm -f "$rootfs"/var/cache/apt/archives/*.deb
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
  "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*

# This host's Node.js and npm, where node:20-slim has them (/usr/local).
install -m 0755 "$(readlink -f "$(command -v node)")" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$(npm root -g)/npm" "$rootfs/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
# Both must run against the base's own libraries, not only the host's.
chroot "$rootfs" /usr/bin/env -i /usr/local/bin/node -e 'process.exit(0)' || die "the host's node does not run in the ${release} base"
chroot "$rootfs" /usr/bin/env -i /usr/local/bin/node /usr/local/lib/node_modules/npm/bin/npm-cli.js --version >/dev/null || die "npm does not run in the base"
# The managed WireGuard interface's tools.
for tool in ip wireguard-go wg nft; do
  chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c "command -v $tool" >/dev/null || die "$tool is missing in the base"
done

tar -C "$rootfs" --numeric-owner -c . \
  | "$docker_bin" import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["node"]' \
      - "$tag" >/dev/null
echo "base-image: ${tag} (Debian ${release} ${arch}, node $(node --version), npm $(npm --version))" >&2
