#!/usr/bin/env bash
# build-osh.sh - build the Oils shell (osh and ysh, the C++ build of Oils
# 0.37.0) from the release tarball in vendor/, for the spec matrix.
#
#   bash shell-tests/build-osh.sh        prints the directory holding bin/osh
#
# The build goes to <cache>/oils-0.37.0, <cache> being
# ${SLICEBOX_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slicebox-toolchains},
# and is reused while its bin/osh answers --version with 0.37.0. Needs only
# a C++ compiler; about 30 s on 2 cores. Progress and errors go to stderr;
# the only stdout line is the prefix. Exit status 3 means there is nothing
# to build from (no tarball), so the caller can report the cells as not run.
#
# The tarball was made by Oils' own release process
# (devtools/release-native.sh make-tar) from oils-for-unix/oils at commit
# 15de8fd; its sha256 is checked before it is unpacked.
set -euo pipefail

version=0.37.0
sha=19422bcdd2a938cb6075af1eb0ee3aec6b0cd6ed23a533f367f710c7ffbaa444
top=$(cd "$(dirname "$0")/.." && pwd)
tarball=$top/vendor/oils-for-unix-$version.tar.gz
cache=${SLICEBOX_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slicebox-toolchains}
prefix=$cache/oils-$version

log() { printf 'build-osh: %s\n' "$*" >&2; }

built() {
    [ -x "$prefix/bin/osh" ] && [ -x "$prefix/bin/ysh" ] &&
        "$prefix/bin/osh" --version 2>/dev/null | grep -q "Oils $version"
}

if built; then
    echo "$prefix"
    exit 0
fi
if [ ! -f "$tarball" ]; then
    log "no OSH to build: $tarball is missing"
    exit 3
fi
command -v c++ >/dev/null 2>&1 || {
    log "cannot build OSH from $tarball: no C++ compiler (c++); install g++"
    exit 1
}
echo "$sha  $tarball" | sha256sum -c --quiet - >&2 || {
    log "$tarball does not have the sha256 of the Oils $version release"
    exit 1
}
mkdir -p "$cache"
work=$(mktemp -d "$cache/oils-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "building Oils $version into $prefix (about 30 s)"
start=$(date +%s)
tar -C "$work" -xzf "$tarball"
# Installed into a temporary prefix, then renamed: a build killed half-way
# never leaves a prefix that looks built.
if ! (cd "$work/oils-for-unix-$version" &&
    ./configure --prefix="$work/prefix" &&
    _build/oils.sh &&
    ./install) >"$work/build.log" 2>&1; then
    tail -n 20 "$work/build.log" >&2
    log "the build of Oils $version failed (log above)"
    exit 1
fi
# ./install links bin/osh and bin/ysh to the prefix's oils-for-unix by
# absolute path: point them at the final place.
for shell in osh ysh; do
    ln -sfn oils-for-unix "$work/prefix/bin/$shell"
done
rm -rf "$prefix"
mv "$work/prefix" "$prefix"
built || { log "Oils $version was built, but $prefix/bin/osh does not run"; exit 1; }
log "built in $(($(date +%s) - start)) s"
echo "$prefix"
