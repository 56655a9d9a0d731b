#!/usr/bin/env bash
# Runs the shell-level tests (spec matrix + shell-tests/t-*.sh) against a
# build dir: as root and rootless when started as root, else rootless only.
# Usage: shell-tests/run-all.sh BUILD_DIR     (e.g. target/dist)
# While working on one part: SLICEBOX_ONLY="spec/cache.test.sh t-helper.sh"
# (with SPEC_FILTER=SUBSTR, SPEC_SHELLS=bash,dash) and SLICEBOX_MODES=rootless.
set -euo pipefail

build=${1:?usage: run-all.sh BUILD_DIR}
top=$(cd "$(dirname "$0")/.." && pwd)
test_user=${SLICEBOX_TEST_USER:-sbx}

# Everything the tests touch is staged into one world-readable dir, so the
# unprivileged user can reach it wherever the checkout lives.
stage=$(mktemp -d /tmp/slicebox-test.XXXXXX)
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"
mkdir -p "$stage/bin" "$stage/lib"
install -m 0755 "$build/slicebox" "$stage/bin/slicebox"
builtins=$("$build/slicebox" --commands | tr '\n' ' ')
for b in $builtins; do ln -s slicebox "$stage/bin/$b"; done
install -m 0644 "$build/libslicebox.so" "$stage/lib/libslicebox.so"
mkdir -p "$stage/share/slicebox"
install -m 0644 "$top/share/slicebox.ysh" "$stage/share/slicebox/slicebox.ysh"
cp -r "$top/share/man" "$top/share/bash-completion" "$top/share/zsh" "$stage/share/"
cp -r "$top/spec" "$top/shell-tests" "$top/docs" "$top/README.md" "$stage/"
mkdir -p "$stage/tests" && cp -r "$top/tests/hostile" "$stage/tests/"
chmod -R a+rX "$stage"

# Real toolchains (two Node.js versions from PyPI wheels), cached.
export SLICEBOX_TOOLCHAIN_CACHE=${SLICEBOX_TOOLCHAIN_CACHE:-$HOME/.cache/slicebox-toolchains}
bash "$top/shell-tests/fetch-toolchains.sh" >/dev/null
# Two real CPythons built for their own prefixes, and a wheel (t-python.sh).
bash "$top/shell-tests/fetch-pythons.sh"
# Real container images: a Debian minbase and small layered images, as
# layout, oci-archive and docker archive (spec/layers.test.sh).
bash "$top/shell-tests/fetch-images.sh" >/dev/null

# OSH and YSH for the spec matrix's osh and ysh cells: built from vendor/
# and cached (build-osh.sh), else an osh already on PATH, else those cells
# are reported as not run (SPEC_REQUIRE=osh,ysh, as .ci/run sets, makes
# that a failure).
oils_path=
built=0
oils=$(bash "$top/shell-tests/build-osh.sh") || built=$?
if [ "$built" = 0 ]; then
    oils_path=$oils/bin:
    echo "NOTE: OSH and YSH: $("$oils/bin/osh" --version | head -n 1) from $oils"
elif [ "$built" != 3 ]; then
    echo "run-all.sh: cannot build OSH (above)" >&2
    exit 1
elif command -v osh >/dev/null; then
    oils_path=$(dirname "$(command -v osh)"):
    echo "NOTE: OSH and YSH: $(command -v osh), found on PATH"
else
    echo "NOTE: no OSH (neither vendor/ nor PATH has one): the osh and ysh cells will not run"
fi

run_mode() { # mode-name, then the command prefix that switches user
    local mode=$1; shift
    local work
    work=$(mktemp -d "$stage/work-$mode.XXXXXX")
    chmod 755 "$work"
    [ $# -gt 0 ] && chown "$test_user:" "$work"
    echo "=== shell tests, $mode ($("$@" id -un)) ==="
    "$@" env -i \
        HOME="$work" PATH="$stage/bin:$oils_path/usr/local/bin:/usr/bin:/bin" LANG=C.UTF-8 \
        SPEC_REQUIRE="${SPEC_REQUIRE:-}" SLICEBOX_ONLY="${SLICEBOX_ONLY:-}" \
        SPEC_FILTER="${SPEC_FILTER:-}" SPEC_SHELLS="${SPEC_SHELLS:-}" \
        SLICEBOX_BIN_DIR="$stage/bin" SLICEBOX_LIB="$stage/lib/libslicebox.so" \
        SLICEBOX_STORE="$work/store" SLICEBOX_TOOLCHAIN_CACHE="$SLICEBOX_TOOLCHAIN_CACHE" \
        SLICEBOX_TEST_MODE="$mode" SLICEBOX_TEST_WORK="$work" SLICEBOX_BUILTINS="$builtins" \
        bash "$stage/shell-tests/run-mode.sh"
}

if [ "$(id -u)" = 0 ]; then
    if ! id "$test_user" >/dev/null 2>&1; then
        echo "run-all.sh: cannot run the rootless tests: user '$test_user' does not exist (useradd -m $test_user, or set SLICEBOX_TEST_USER)" >&2
        exit 1
    fi
    # layer-mount's rootless mode is fuse-overlayfs, which opens /dev/fuse:
    # Debian makes it 0666 with the fuse3 package, some machines 0600.
    [ ! -c /dev/fuse ] || chmod 0666 /dev/fuse
    case ${SLICEBOX_MODES:-root rootless} in *root\ *|root) run_mode root ;; esac
    case ${SLICEBOX_MODES:-root rootless} in *rootless*) run_mode rootless runuser -u "$test_user" -- ;; esac
else
    echo "run-all.sh: NOTE: not root, so only the rootless mode runs here; CI runs both." >&2
    run_mode rootless
fi
echo "=== all shell tests passed ==="
