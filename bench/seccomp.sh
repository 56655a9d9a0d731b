#!/usr/bin/env bash
# bench/seccomp.sh NEW_BUILD OLD_BUILD
#
# What the payload's seccomp filter adds to a stage's start: the
# executable of NEW_BUILD with its default filter, the same with
# --seccomp-fd of a one-instruction allow-all program (any filter at all),
# OLD_BUILD (a build without the filter), and bare /bin/true (the floor),
# interleaved round-robin in one bash, rootless, 0 slices, stdio on
# /dev/null. Each run is timed with $EPOCHREALTIME and, with
# SLICEBOX_TIMES=1, split into the steps sandbox reports: "plan" holds
# building the filter, "start command" installing it, "command" the exec
# of /bin/true under it.
#
# Environment: BENCH_RUNS=500, BENCH_USER=sbx (when run as root).
# Output: a markdown table of medians / p90 in µs.
set -euo pipefail
export LC_ALL=C
SELF=$(readlink -f "${BASH_SOURCE[0]}")
die() { echo "seccomp.sh: $*" >&2; exit 1; }

# ------------------------------------------------ internal: the measurement
# __measure WORK RUNS: one line per run, "VARIANT WALL PLAN START COMMAND".
measure() {
    local work=$1 runs=$2 i k c t0 t1 line
    local -a order=(default allow-all old floor) cmd
    cd /
    for ((i = -5; i < runs; i++)); do
        for ((k = 0; k < 4; k++)); do
            c=${order[(k + (i < 0 ? 0 : i)) % 4]}
            case $c in
            default) cmd=("$work/new/slicebox" sandbox --no-cwd -- /bin/true) ;;
            allow-all) cmd=("$work/new/slicebox" sandbox --no-cwd --seccomp-fd 3 -- /bin/true) ;;
            old) cmd=("$work/old/slicebox" sandbox --no-cwd -- /bin/true) ;;
            floor) cmd=(/bin/true) ;;
            esac
            t0=$EPOCHREALTIME
            SLICEBOX_TIMES=1 "${cmd[@]}" </dev/null >/dev/null 2>"$work/times" 3<"$work/allow-all.bpf" ||
                die "$c failed: $(cat "$work/times")"
            t1=$EPOCHREALTIME
            line=$(sed -n 's/.*plan \([0-9]*\), .*start command \([0-9]*\), command \([0-9]*\),.*/\1 \2 \3/p' "$work/times")
            ((i >= 0)) && echo "$c $((10#${t1/./} - 10#${t0/./})) ${line:-- - -}"
        done
    done
}

case ${1:-} in
__measure) measure "$2" "$3"; exit ;;
-h | --help | "") sed -n '2,17p' "$SELF" | sed 's/^# \{0,1\}//'; [[ -n ${1:-} ]]; exit ;;
esac

NEW=$(readlink -f "$1")
OLD=$(readlink -f "${2:?usage: seccomp.sh NEW_BUILD OLD_BUILD}")
RUNS=${BENCH_RUNS:-500}
WORK=$(mktemp -d /tmp/slicebox-seccomp.XXXXXX)
[[ ${BENCH_KEEP:-} == 1 ]] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/new" "$WORK/old"
cp "$NEW/slicebox" "$WORK/new/"
cp "$OLD/slicebox" "$WORK/old/"
cp "$SELF" "$WORK/seccomp.sh"
# struct sock_filter { u16 code = BPF_RET|BPF_K; u8 jt, jf; u32 k = SECCOMP_RET_ALLOW }
printf '\006\000\000\000\000\000\377\177' >"$WORK/allow-all.bpf"
chmod -R a+rX "$WORK"
as_user=()
if ((EUID == 0)); then
    as_user=(runuser -u "${BENCH_USER:-sbx}" --)
    chown "${BENCH_USER:-sbx}:" "$WORK"
fi
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
"${as_user[@]}" env -i PATH=/usr/bin:/bin HOME=/ bash "$WORK/seccomp.sh" __measure "$WORK" "$RUNS" >"$WORK/samples"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

stat() { # column N of variant V -> "median / p90"
    awk -v v="$1" -v n="$2" '$1 == v && $n != "-" { print $n }' "$WORK/samples" | sort -n |
        awk '{ a[NR] = $1 } END {
            if (NR == 0) { print "-"; exit }
            m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
            printf "%d / %d\n", m, a[int((NR * 9 + 9) / 10)] }'
}
echo "### The seccomp filter's cost, rootless, executable, 0 slices, $RUNS runs each (medians / p90, µs)"
echo
echo "new: \`$NEW\`, old: \`$OLD\`; kernel $(uname -r); load $LOAD0 -> $LOAD1"
echo
echo "| variant | wall | plan | start command | command |"
echo "|---|---|---|---|---|"
for v in default allow-all old floor; do
    echo "| $v | $(stat "$v" 2) | $(stat "$v" 3) | $(stat "$v" 4) | $(stat "$v" 5) |"
done
