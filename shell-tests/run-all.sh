#!/usr/bin/env bash
# Runs the shell-level tests (spec matrix + shell-tests/t-*.sh) against a
# build dir: as root and rootless when started as root, else rootless only.
# Usage: shell-tests/run-all.sh BUILD_DIR     (e.g. target/release)
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
cp -r "$top/spec" "$top/shell-tests" "$stage/"
mkdir -p "$stage/tests" && cp -r "$top/tests/hostile" "$stage/tests/"
chmod -R a+rX "$stage"

# Real toolchains (two Node.js versions from PyPI wheels), cached.
export SLICEBOX_TOOLCHAIN_CACHE=${SLICEBOX_TOOLCHAIN_CACHE:-$HOME/.cache/slicebox-toolchains}
bash "$top/shell-tests/fetch-toolchains.sh" >/dev/null

# What this kernel offers decides some expectations; say it up front.
landlock=$(python3 -c 'import ctypes; l = ctypes.CDLL(None); l.syscall.restype = ctypes.c_long; print(max(0, l.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint(1))))')
echo "NOTE: kernel $(uname -r), Landlock ABI $landlock" \
    "($( ((landlock >= 9)) && echo "--net none closes path sockets" || echo "below 9: --net none leaves a socket in the visible cwd connectable, as documented; spec/escape-net.test.sh checks that"))," \
    "dev.tty.legacy_tiocsti=$(cat /proc/sys/dev/tty/legacy_tiocsti 2>/dev/null || echo absent)"

run_mode() { # mode-name, then the command prefix that switches user
    local mode=$1; shift
    local work
    work=$(mktemp -d "$stage/work-$mode.XXXXXX")
    chmod 755 "$work"
    [ $# -gt 0 ] && chown "$test_user:" "$work"
    echo "=== shell tests, $mode ($("$@" id -un)) ==="
    "$@" env -i \
        HOME="$work" PATH="$stage/bin:/usr/local/bin:/usr/bin:/bin" LANG=C.UTF-8 \
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
    run_mode root
    run_mode rootless runuser -u "$test_user" --
else
    echo "run-all.sh: NOTE: not root, so only the rootless mode runs here; CI runs both." >&2
    run_mode rootless
fi
echo "=== all shell tests passed ==="
