#!/usr/bin/env bash
# bench/full.sh BUILD_DIR: the full-featured stage against bwrap doing the
# same, rootless (user sbx when run as root): --dev, --net none, two
# writable binds, uid 0 inside, 10 slices, /bin/true. Interleaved runs in
# one bash, timed with $EPOCHREALTIME; prints medians and the ratio.
#   BENCH_RUNS=200
set -euo pipefail
if [[ ${1:-} == __measure ]]; then
    work=$2
    export SLICEBOX_STORE=$work/store
    enable -f "$work/bin/libslicebox.so" sandbox
    cd "$work/cwd"
    s=() b=()
    for k in $(seq 1 10); do
        s+=(--slice "s$k")
        b+=(--ro-bind "$SLICEBOX_STORE/slices/$(cat "$SLICEBOX_STORE/refs/s$k" | head -n 1 | cut -d: -f2)/tree" "/opt/s$k")
    done
    sb=(--dev --net none --bind "$work/a:/mnt/a" --bind "$work/b:/mnt/b" --uid 0 --gid 0 "${s[@]}")
    bw=(--unshare-user --unshare-pid --unshare-ipc --unshare-uts --unshare-net --uid 0 --gid 0
        --ro-bind /usr /usr --ro-bind /etc /etc --symlink usr/bin /bin --symlink usr/lib /lib
        --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --dev /dev --proc /proc --tmpfs /tmp
        --ro-bind "$work/cwd" "$work/cwd" --chdir "$work/cwd"
        --bind "$work/a" /mnt/a --bind "$work/b" /mnt/b "${b[@]}")
    declare -A t
    for ((r = 0; r < BENCH_RUNS + 5; r++)); do
        for cmd in executable builtin bwrap; do
            t0=$EPOCHREALTIME
            case $cmd in
                executable) "$work/bin/slicebox" sandbox "${sb[@]}" -- /bin/true ;;
                builtin) sandbox "${sb[@]}" -- /bin/true ;;
                bwrap) bwrap "${bw[@]}" /bin/true ;;
            esac
            t1=$EPOCHREALTIME
            ((r < 5)) || t[$cmd]+="$((10#${t1/./} - 10#${t0/./})) "
        done
    done
    for cmd in executable builtin bwrap; do echo "$cmd ${t[$cmd]}"; done
    exit 0
fi
BUILD_DIR=$(cd "${1:?usage: bench/full.sh BUILD_DIR}" && pwd)
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
export BENCH_RUNS=${BENCH_RUNS:-200}
WORK=$(mktemp -d /tmp/slicebox-full.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin" "$WORK/a" "$WORK/b" "$WORK/cwd"
cp "$BUILD_DIR/slicebox" "$BUILD_DIR/libslicebox.so" "$SELF" "$WORK/bin/"
for k in $(seq 1 10); do mkdir -p "$WORK/src/s$k"; echo "$k" >"$WORK/src/s$k/f"; done
chmod -R a+rX "$WORK"; chmod 755 "$WORK"
run() { if ((EUID == 0)); then chown -R "${BENCH_USER:-sbx}:" "$WORK"; runuser -u "${BENCH_USER:-sbx}" -- env -i PATH=/usr/bin:/bin BENCH_RUNS="$BENCH_RUNS" "$@"; else "$@"; fi; }
run bash -c 'for k in $(seq 1 10); do SLICEBOX_STORE=$0/store "$0/bin/slicebox" slice-add "s$k" "$0/src/s$k" >/dev/null; done' "$WORK"
run bash "$WORK/bin/full.sh" __measure "$WORK" | python3 -c '
import statistics, sys
rows = {l.split()[0]: [int(x) for x in l.split()[1:]] for l in sys.stdin}
med = {k: statistics.median(v) / 1000 for k, v in rows.items()}
ref = med["bwrap"]
for k in ("executable", "builtin", "bwrap"):
    print(f"{k}: median {med[k]:.2f} ms over {len(rows[k])} runs, {med[k] / ref:.2f}x bwrap")
'
