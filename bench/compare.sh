#!/usr/bin/env bash
# bench/compare.sh NEW_BUILD OLD_BUILD
#
# A/B startup of two builds in one run, interleaved, rootless: the
# executable and the bash builtin of each, at N slices, with stdio on
# /dev/null (no terminal). Then, for NEW_BUILD only, the same stage with
# its stdio on a terminal (a pty made by script(1)), interleaved with one
# without, to price the relay.
#
# Each build's builtin lives in a bash coprocess of its own (a library can
# be enabled once per shell); the driver asks each in turn to time one
# stage with $EPOCHREALTIME, so VM noise hits A and B alike.
#
# Environment: BENCH_SLICES="0 10 100", BENCH_RUNS=300, BENCH_USER=sbx
# (rootless mode when run as root), BENCH_KEEP=1 keeps the temp dir.
# Output: markdown tables (medians and p90 in ms, ratios new/old).
set -euo pipefail
export LC_ALL=C
SELF=$(readlink -f "${BASH_SOURCE[0]}")
die() { echo "compare.sh: $*" >&2; exit 1; }

median_p90() { # microsecond samples on stdin -> "median p90" in ms
    sort -n | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "- -"; exit }
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        p = a[int((NR * 9 + 9) / 10)]
        printf "%.2f %.2f\n", m / 1000, p / 1000 }'
}

# ------------------------------------------------ internal: one builtin server
# __serve LIB: reads "N" lines, answers with the microseconds one stage took.
serve() {
    enable -f "$1" sandbox || exit 1
    local n t0 t1 k
    local -a SL
    while read -r n; do
        SL=()
        for ((k = 1; k <= n; k++)); do SL+=(--slice "s$k"); done
        t0=$EPOCHREALTIME
        sandbox "${SL[@]}" -- /bin/true </dev/null >/dev/null 2>&1 || { echo fail; continue; }
        t1=$EPOCHREALTIME
        echo $((10#${t1/./} - 10#${t0/./}))
    done
}

# ------------------------------------------------ internal: the measurement
measure() {
    local work=$1 runs=$2 slices=$3
    cd "$work/cwd"
    coproc NEWB { bash "$SELF" __serve "$work/new/libslicebox.so"; }
    local new_in=${NEWB[1]} new_out=${NEWB[0]}
    coproc OLDB { bash "$SELF" __serve "$work/old/libslicebox.so"; }
    local old_in=${OLDB[1]} old_out=${OLDB[0]}
    local n i k j c t0 t1 v
    local -a SL
    for n in $slices; do
        SL=()
        for ((k = 1; k <= n; k++)); do SL+=(--slice "s$k"); done
        : >"$work/n$n.exe-new" >"$work/n$n.exe-old" >"$work/n$n.builtin-new" >"$work/n$n.builtin-old"
        local -a order=(exe-new exe-old builtin-new builtin-old)
        for ((i = -5; i < runs; i++)); do
            # rotate the order each round: no command always follows the same one
            for ((k = 0; k < 4; k++)); do
                c=${order[(k + (i < 0 ? 0 : i)) % 4]}
                case $c in
                exe-*)
                    t0=$EPOCHREALTIME
                    "$work/${c#exe-}/slicebox" sandbox "${SL[@]}" -- /bin/true </dev/null >/dev/null 2>&1 || die "$c failed"
                    t1=$EPOCHREALTIME
                    v=$((10#${t1/./} - 10#${t0/./})) ;;
                builtin-new) echo "$n" >&"$new_in"; read -r v <&"$new_out" ;;
                builtin-old) echo "$n" >&"$old_in"; read -r v <&"$old_out" ;;
                esac
                [[ $v == fail ]] && die "$c failed"
                ((i >= 0)) && echo "$v" >>"$work/n$n.$c"
            done
        done
    done
    exec {new_in}>&- {old_in}>&-
    wait
}

# ------------------------------------------------ internal: terminal relay
# Runs inside script(1): stdio is a pty. Alternates a stage on the pty with
# one on /dev/null.
measure_tty() {
    local work=$1 runs=$2 i t0 t1
    cd "$work/cwd"
    enable -f "$work/new/libslicebox.so" sandbox
    : >"$work/tty.pty" >"$work/tty.null" >"$work/tty.exe-pty" >"$work/tty.exe-null"
    for ((i = -5; i < runs; i++)); do
        t0=$EPOCHREALTIME; sandbox -- /bin/true; t1=$EPOCHREALTIME
        ((i >= 0)) && echo $((10#${t1/./} - 10#${t0/./})) >>"$work/tty.pty"
        t0=$EPOCHREALTIME; sandbox -- /bin/true </dev/null >/dev/null 2>&1; t1=$EPOCHREALTIME
        ((i >= 0)) && echo $((10#${t1/./} - 10#${t0/./})) >>"$work/tty.null"
        t0=$EPOCHREALTIME; "$work/new/slicebox" sandbox -- /bin/true; t1=$EPOCHREALTIME
        ((i >= 0)) && echo $((10#${t1/./} - 10#${t0/./})) >>"$work/tty.exe-pty"
        t0=$EPOCHREALTIME; "$work/new/slicebox" sandbox -- /bin/true </dev/null >/dev/null 2>&1; t1=$EPOCHREALTIME
        ((i >= 0)) && echo $((10#${t1/./} - 10#${t0/./})) >>"$work/tty.exe-null"
    done
}

case ${1:-} in
__serve) serve "$2"; exit ;;
__measure) measure "$2" "$3" "$4"; exit ;;
__measure_tty) measure_tty "$2" "$3"; exit ;;
-h | --help | "") sed -n '2,18p' "$SELF" | sed 's/^# \{0,1\}//'; [[ -n ${1:-} ]]; exit ;;
esac

NEW=$(readlink -f "$1")
OLD=$(readlink -f "${2:?usage: compare.sh NEW_BUILD OLD_BUILD}")
for b in "$NEW" "$OLD"; do
    [[ -x $b/slicebox && -f $b/libslicebox.so ]] || die "$b: need slicebox and libslicebox.so"
done
command -v script >/dev/null || die "script(1) not found (util-linux)"
SLICES=${BENCH_SLICES:-"0 10 100"}
RUNS=${BENCH_RUNS:-300}
NMAX=0; for n in $SLICES; do ((n > NMAX)) && NMAX=$n; done
WORK=$(mktemp -d /tmp/slicebox-compare.XXXXXX)
chmod 755 "$WORK"
[[ ${BENCH_KEEP:-} == 1 ]] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/new" "$WORK/old" "$WORK/cwd" "$WORK/src"
cp "$NEW/slicebox" "$NEW/libslicebox.so" "$WORK/new/"
cp "$OLD/slicebox" "$OLD/libslicebox.so" "$WORK/old/"
cp "$SELF" "$WORK/compare.sh"
as_user=()
if ((EUID == 0)); then
    as_user=(runuser -u "${BENCH_USER:-sbx}" --)
    chown "${BENCH_USER:-sbx}:" "$WORK" "$WORK/cwd"
fi
env_=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/ LC_ALL=C SLICEBOX_STORE="$WORK/store")
for ((k = 1; k <= NMAX; k++)); do
    mkdir -p "$WORK/src/s$k"
    printf 'slice %d\n' "$k" >"$WORK/src/s$k/README"
done
chmod -R a+rX "$WORK"
for ((k = 1; k <= NMAX; k++)); do
    "${as_user[@]}" "${env_[@]}" "$WORK/new/slicebox" slice-add "s$k" "$WORK/src/s$k" --at "/opt/s$k" >/dev/null
done
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
"${as_user[@]}" "${env_[@]}" bash "$WORK/compare.sh" __measure "$WORK" "$RUNS" "$SLICES"
"${as_user[@]}" "${env_[@]}" script -qec "bash $WORK/compare.sh __measure_tty $WORK $RUNS" /dev/null >/dev/null
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

echo "### A/B startup, rootless, $RUNS runs each, stdio on /dev/null (medians / p90, ms)"
echo
echo "new: \`$NEW\`, old: \`$OLD\`; kernel $(uname -r); load $LOAD0 -> $LOAD1"
echo
echo "| N slices | exe new | exe old | exe new/old | builtin new | builtin old | builtin new/old |"
echo "|---|---|---|---|---|---|---|"
for n in $SLICES; do
    read -r en ep < <(median_p90 <"$WORK/n$n.exe-new")
    read -r eo op < <(median_p90 <"$WORK/n$n.exe-old")
    read -r bn bp < <(median_p90 <"$WORK/n$n.builtin-new")
    read -r bo bq < <(median_p90 <"$WORK/n$n.builtin-old")
    printf '| %s | %s / %s | %s / %s | %.3f | %s / %s | %s / %s | %.3f |\n' "$n" \
        "$en" "$ep" "$eo" "$op" "$(echo "$en / $eo" | bc -l)" \
        "$bn" "$bp" "$bo" "$bq" "$(echo "$bn / $bo" | bc -l)"
done
echo
echo "### A stage on a terminal (pty relay), new build, 0 slices (medians / p90, ms)"
echo
echo "| | stdio on the pty | stdio on /dev/null | ratio |"
echo "|---|---|---|---|"
read -r a ap < <(median_p90 <"$WORK/tty.exe-pty")
read -r b bp < <(median_p90 <"$WORK/tty.exe-null")
printf '| executable | %s / %s | %s / %s | %.3f |\n' "$a" "$ap" "$b" "$bp" "$(echo "$a / $b" | bc -l)"
read -r a ap < <(median_p90 <"$WORK/tty.pty")
read -r b bp < <(median_p90 <"$WORK/tty.null")
printf '| builtin | %s / %s | %s / %s | %.3f |\n' "$a" "$ap" "$b" "$bp" "$(echo "$a / $b" | bc -l)"
