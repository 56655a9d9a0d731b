#!/usr/bin/env bash
# fetch-pythons.sh - two real CPythons, each built for its own prefix, and
# one pure-Python wheel, for t-python.sh (docs/python-and-node.md).
#
# The CPythons are pyenv's own builds, 3.10 and 3.12 (this machine kind has
# 3.6-3.13 under root's `pyenv root`): each is copied as it is, prefix and
# all, to <cache>/pyenv/versions/<version>, where the rootless test user
# can read it (root's home is not searchable). No registry ships a CPython
# build (python-build-standalone is not reachable from here), so a machine
# without them cannot run t-python.sh: this script then says so on stderr,
# and t-python.sh fails, naming what is missing.
#
# The wheel (six, pure Python) comes from PyPI into <cache>/wheels.
# <cache> = $SLICEBOX_TOOLCHAIN_CACHE. Idempotent.
set -euo pipefail
CACHE=${SLICEBOX_TOOLCHAIN_CACHE:?}
SIX_VERSION=1.16.0
log() { printf 'fetch-pythons: %s\n' "$*" >&2; }

root=${PYENV_ROOT:-}
[ -n "$root" ] || root=$(pyenv root 2>/dev/null) || root=
[ -n "$root" ] || [ ! -d /root/.pyenv ] || root=/root/.pyenv
mkdir -p "$CACHE/pyenv/versions" "$CACHE/wheels"
for minor in 3.10 3.12; do
  src=$(ls -d "$root"/versions/"$minor".* 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$src" ] || [ ! -x "$src/bin/python$minor" ]; then
    log "WARNING: no pyenv build of CPython $minor under '${root:-(no pyenv root)}': t-python.sh will fail"
    continue
  fi
  dest=$CACHE/pyenv/versions/$(basename "$src")
  if [ -x "$dest/bin/python$minor" ]; then
    log "$(basename "$src"): present, skipping"
    continue
  fi
  log "$(basename "$src"): copying from $src"
  rm -rf "$dest.tmp"
  cp -a "$src" "$dest.tmp"
  chmod -R a+rX "$dest.tmp"
  mv "$dest.tmp" "$dest"
done
if ! ls "$CACHE"/wheels/six-"$SIX_VERSION"-*.whl >/dev/null 2>&1; then
  log "six==$SIX_VERSION: downloading"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$CACHE/wheels" \
    "six==$SIX_VERSION" >&2 || log "WARNING: pip download of six failed: t-python.sh will fail"
fi
chmod -R a+rX "$CACHE/pyenv" "$CACHE/wheels"
