#!/usr/bin/env bash
# bench/startup.sh BUILD_DIR
#
# Startup latency of /bin/true with N read-only slices, for:
#   bare /bin/true, the slicebox executable, the bash builtin (enable -f),
#   bwrap with equivalent mounts, `unshare -Urmpf` (no binds), and the
#   floor: bench/floor-sandbox.c, the least C that does a default stage's
#   work (namespaces, maps, tmpfs root, /usr and /etc, /proc, /tmp, /dev
#   nodes, N read-only binds, pivot_root, a reaping pid 1), no checks.
# All timings come from $EPOCHREALTIME around each command inside ONE bash
# process, interleaved round-robin, so VM noise hits every command alike.
#
# BUILD_DIR holds `slicebox` and `libslicebox.so` (e.g. target/release).
# Environment (all optional):
#   BENCH_SLICES="1 10 100 1000"   slice counts
#   BENCH_RUNS=200                 timed runs per command for N < BENCH_BIG
#   BENCH_RUNS_BIG=50              timed runs per command for N >= BENCH_BIG
#   BENCH_BWRAP_RUNS_BIG=5         timed bwrap runs for N >= BENCH_BIG (bwrap is quadratic)
#   BENCH_BIG=1000                 threshold for the *_BIG run counts
#   BENCH_WARMUP=5                 untimed warm-up runs per command (1 for bwrap at BIG)
#   BENCH_MODES="rootless root"    as root: both (rootless first); otherwise "rootless"
#   BENCH_USER=sbx                 the unprivileged user for rootless mode when run as root
#   BENCH_DOC=<repo>/docs/performance.md   file whose startup markers are rewritten; "-" = none
#   BENCH_KEEP=1                   keep the temp dir (stores, raw samples)
# Output: markdown tables on stdout; the block between
# <!-- startup:begin --> and <!-- startup:end --> in BENCH_DOC is replaced.
set -euo pipefail
export LC_ALL=C

SELF=$(readlink -f "${BASH_SOURCE[0]}")

# ---------------------------------------------------------------- helpers
die() { echo "startup.sh: $*" >&2; exit 1; }

# bwrap arguments equivalent to a slicebox stage (without the slice binds).
bwrap_base_args() {
    BW=(bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts
        --ro-bind /usr /usr)
    local d t
    for d in /bin /sbin /lib /lib32 /lib64 /libx32; do
        if [[ -L $d ]]; then
            t=$(readlink "$d"); BW+=(--symlink "$t" "$d")
        elif [[ -d $d ]]; then
            BW+=(--ro-bind "$d" "$d")
        fi
    done
    BW+=(--ro-bind /etc /etc --dev /dev --proc /proc --tmpfs /tmp
         --ro-bind "$PWD" "$PWD" --chdir "$PWD")
}

# ------------------------------------------------ internal: create slices
# __setup WORK MDIR NMAX  (runs as the user who will own MDIR/store)
setup_slices() {
    local work=$1 mdir=$2 nmax=$3 k
    export SLICEBOX_STORE=$mdir/store
    for ((k = 1; k <= nmax; k++)); do
        "$work/bin/slicebox" slice-add "s$k" "$work/src/s$k" --at "/opt/s$k" >/dev/null \
            || die "slice-add s$k failed"
    done
    # tree path of each slice, one per line, for the bwrap binds
    for ((k = 1; k <= nmax; k++)); do
        "$work/bin/slicebox" slice-show --json "s$k" |
            sed -n 's/^ *"path": *"\(.*\)",\{0,1\}$/\1/p'
    done >"$mdir/trees"
    [[ $(wc -l <"$mdir/trees") -eq $nmax ]] || die "could not read tree paths from slice-show --json"
}

# ------------------------------------------------ internal: measurement
# __measure WORK MDIR MODE  (runs as the measured user; writes MDIR/out.tsv)
stats() { # stats MODE CMD N "DURATIONS_US..." FAILS -> one TSV line
    local -a sorted
    mapfile -t sorted < <(printf '%s\n' $4 | sort -n)
    local n=${#sorted[@]} med p90
    ((n > 0)) || { printf '%s\t%s\t%s\t0\t-\t-\t-\t%s\n' "$1" "$2" "$3" "$5"; return; }
    if ((n % 2)); then med=${sorted[n / 2]}; else med=$(((sorted[n / 2 - 1] + sorted[n / 2]) / 2)); fi
    p90=${sorted[(n * 9 + 9) / 10 - 1]}
    printf '%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n' "$1" "$2" "$3" "$n" "$med" "$p90" "${sorted[0]}" "$5"
}

measure() {
    set +e
    local work=$1 mdir=$2 mode=$3 out=$2/out.tsv
    export SLICEBOX_STORE=$mdir/store
    local SB=$work/bin/slicebox
    enable -f "$work/bin/libslicebox.so" sandbox || die "enable -f failed"
    cd "$work/cwd" || die "cd $work/cwd"
    local -a TREES
    mapfile -t TREES <"$mdir/trees"
    bwrap_base_args
    local N k i c t0 t1 rc runs bwruns stride warm
    local -a SL BWA FL CMDS=(bare exe builtin bwrap unshare floor)
    local -A D F
    : >"$out"
    for N in $BENCH_SLICES; do
        SL=() BWA=("${BW[@]}") FL=() D=() F=()
        for ((k = 1; k <= N; k++)); do
            SL+=(--slice "s$k")
            BWA+=(--ro-bind "${TREES[k - 1]}" "/opt/s$k")
            FL+=("${TREES[k - 1]}")
        done
        BWA+=(/bin/true)
        FL+=(-- /bin/true)
        if ((N >= BENCH_BIG)); then runs=$BENCH_RUNS_BIG bwruns=$BENCH_BWRAP_RUNS_BIG warm=2
        else runs=$BENCH_RUNS bwruns=$BENCH_RUNS warm=$BENCH_WARMUP; fi
        ((bwruns >= 1)) || bwruns=1
        stride=$(((runs + bwruns - 1) / bwruns))
        echo "# $mode N=$N: $runs runs (bwrap $(((runs + stride - 1) / stride)))" >&2
        for ((i = -warm; i < runs; i++)); do
            for ((k = 0; k < ${#CMDS[@]}; k++)); do
                # rotate the order each iteration so no command always goes first
                c=${CMDS[(k + (i < 0 ? 0 : i)) % ${#CMDS[@]}]}
                if [[ $c == bwrap ]]; then
                    if ((i < 0)); then
                        ((N >= BENCH_BIG && i < -1)) && continue
                    elif ((i % stride)); then
                        continue
                    fi
                fi
                rc=0
                case $c in
                bare)    t0=$EPOCHREALTIME; /bin/true || rc=$?; t1=$EPOCHREALTIME ;;
                exe)     t0=$EPOCHREALTIME; "$SB" sandbox "${SL[@]}" -- /bin/true || rc=$?; t1=$EPOCHREALTIME ;;
                builtin) t0=$EPOCHREALTIME; sandbox "${SL[@]}" -- /bin/true || rc=$?; t1=$EPOCHREALTIME ;;
                bwrap)   t0=$EPOCHREALTIME; "${BWA[@]}" || rc=$?; t1=$EPOCHREALTIME ;;
                unshare) t0=$EPOCHREALTIME; unshare -Urmpf /bin/true || rc=$?; t1=$EPOCHREALTIME ;;
                floor)   t0=$EPOCHREALTIME; "$work/bin/floor" "${FL[@]}" || rc=$?; t1=$EPOCHREALTIME ;;
                esac
                if ((rc != 0)); then
                    F[$c]=$((${F[$c]:-0} + 1))
                    echo "# $mode N=$N $c: exit $rc" >&2
                    continue
                fi
                ((i < 0)) && continue
                D[$c]+="$((10#${t1/./} - 10#${t0/./})) "
            done
        done
        for c in "${CMDS[@]}"; do
            stats "$mode" "$c" "$N" "${D[$c]:-}" "${F[$c]:-0}" >>"$out"
            printf '%s\n' "${D[$c]:-}" >"$mdir/raw-$N-$c.us"
        done
    done
}

# ------------------------------------------------ internal entry points
case ${1:-} in
__setup) setup_slices "$2" "$3" "$4"; exit ;;
__measure) measure "$2" "$3" "$4"; exit ;;
-h | --help | "") sed -n '2,23p' "$SELF" | sed 's/^# \{0,1\}//'; [[ -n ${1:-} ]]; exit ;;
esac

# ---------------------------------------------------------------- main
BUILD_DIR=$(readlink -f "$1")
[[ -x $BUILD_DIR/slicebox && -f $BUILD_DIR/libslicebox.so ]] ||
    die "$BUILD_DIR: need slicebox and libslicebox.so (cargo build --release)"
command -v bwrap >/dev/null || die "bwrap not found (apt-get install -y bubblewrap)"
REPO=$(dirname "$(dirname "$SELF")")
export BENCH_SLICES=${BENCH_SLICES:-"1 10 100 1000"}
export BENCH_RUNS=${BENCH_RUNS:-200} BENCH_RUNS_BIG=${BENCH_RUNS_BIG:-50}
export BENCH_BWRAP_RUNS_BIG=${BENCH_BWRAP_RUNS_BIG:-5} BENCH_BIG=${BENCH_BIG:-1000}
export BENCH_WARMUP=${BENCH_WARMUP:-5}
BENCH_USER=${BENCH_USER:-sbx}
DOC=${BENCH_DOC:-$REPO/docs/performance.md}
if ((EUID == 0)); then MODES=${BENCH_MODES:-"rootless root"}; else MODES=${BENCH_MODES:-rootless}; fi
NMAX=0; for N in $BENCH_SLICES; do ((N > NMAX)) && NMAX=$N; done

# Stage binaries, script and slice sources in a world-readable temp dir.
WORK=$(mktemp -d /tmp/slicebox-bench.XXXXXX)
chmod 755 "$WORK"
[[ ${BENCH_KEEP:-} == 1 ]] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin" "$WORK/src" "$WORK/cwd"
cp "$BUILD_DIR/slicebox" "$BUILD_DIR/libslicebox.so" "$WORK/bin/"
cc -O2 -o "$WORK/bin/floor" "$REPO/bench/floor-sandbox.c" || die "cannot build bench/floor-sandbox.c (apt-get install gcc)"
cp "$SELF" "$WORK/startup.sh"
chmod -R a+rX "$WORK"
for ((k = 1; k <= NMAX; k++)); do   # distinct content => distinct slices
    mkdir -p "$WORK/src/s$k/bin"
    printf 'slice %d\n' "$k" >"$WORK/src/s$k/README"
    printf '#!/bin/sh\necho s%d\n' "$k" >"$WORK/src/s$k/bin/hello-s$k"
    chmod 755 "$WORK/src/s$k/bin/hello-s$k"
done
chmod -R a+rX "$WORK/src"

# as_user MODE CMD...: run as the mode's user with a clean, explicit environment
as_user() {
    local mode=$1; shift
    local -a envv=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/ LC_ALL=C
        BENCH_SLICES="$BENCH_SLICES" BENCH_RUNS="$BENCH_RUNS" BENCH_RUNS_BIG="$BENCH_RUNS_BIG"
        BENCH_BWRAP_RUNS_BIG="$BENCH_BWRAP_RUNS_BIG" BENCH_BIG="$BENCH_BIG" BENCH_WARMUP="$BENCH_WARMUP")
    if [[ $mode == rootless && $EUID -eq 0 ]]; then
        runuser -u "$BENCH_USER" -- "${envv[@]}" "$@"
    else
        "${envv[@]}" "$@"
    fi
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS=$WORK/results.tsv; : >"$RESULTS"
for mode in $MODES; do
    [[ $mode == root && $EUID -ne 0 ]] && die "mode root needs root"
    mdir=$WORK/$mode
    mkdir -p "$mdir"
    if [[ $mode == rootless && $EUID -eq 0 ]]; then chown "$BENCH_USER:" "$mdir"; fi
    echo "# $mode: adding $NMAX slices to $mdir/store" >&2
    s0=$EPOCHREALTIME
    as_user "$mode" bash "$WORK/startup.sh" __setup "$WORK" "$mdir" "$NMAX"
    echo "# $mode: slice-add x$NMAX took $(((10#${EPOCHREALTIME/./} - 10#${s0/./}) / 1000)) ms" >&2
    # Each stage creates a pin file in the store: let the adds' writeback
    # finish first, or the first rows time the disk, not the stage.
    sync
    sleep 5
    as_user "$mode" bash "$WORK/startup.sh" __measure "$WORK" "$mdir" "$mode"
    cat "$mdir/out.tsv" >>"$RESULTS"
done

# ---------------------------------------------------------------- report
# TSV: mode cmd N runs median_us p90_us min_us fails
render() {
    local user_desc
    if ((EUID == 0)); then user_desc="user \`$BENCH_USER\`"; else user_desc="user \`$(id -un)\`"; fi
    echo "Generated by \`bench/startup.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'):"
    echo "kernel $(uname -r), $(nproc) CPU, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1);"
    echo "$(bwrap --version), $(unshare --version | head -1);"
    echo "slicebox from \`$BUILD_DIR\` (git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ', dirty tree'))."
    echo "Load average (1/5/15 min) at start: $LOAD0; at end: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Runs per command: $BENCH_RUNS (N < $BENCH_BIG), $BENCH_RUNS_BIG at N ≥ $BENCH_BIG (bwrap: $BENCH_BWRAP_RUNS_BIG), after warm-up."
    awk -F'\t' -v slices="$BENCH_SLICES" -v modes="$MODES" -v udesc="$user_desc" '
    { key = $1 SUBSEP $2 SUBSEP $3; n[key] = $4; med[key] = $5; p90[key] = $6; fails[key] = $8 }
    function ms(us) { return (us >= 100000) ? sprintf("%.0f", us / 1000) : (us >= 10000 ? sprintf("%.1f", us / 1000) : sprintf("%.2f", us / 1000)) }
    function cell(m, c, N,   k, s) {
        k = m SUBSEP c SUBSEP N
        if (!(k in n) || n[k] == 0) return "fail" (fails[k] ? " (" fails[k] " errors)" : "")
        s = ms(med[k]) " (" ms(p90[k]) ")"
        if (c == "bwrap" && n[k] < 20) s = s " n=" n[k]
        if (fails[k]) s = s " " fails[k] " err"
        return s
    }
    function ratio(m, c, ref, N,   a, b) {
        a = m SUBSEP c SUBSEP N; b = m SUBSEP ref SUBSEP N
        if (!(a in n) || !(b in n) || n[a] == 0 || n[b] == 0 || med[b] == 0) return "–"
        return sprintf("%.2f", med[a] / med[b])
    }
    function verdict(ok) { return ok ? "**met**" : "**missed**" }
    function target(m, c, N, most, text,   a, b) {
        a = m SUBSEP c SUBSEP N; b = m SUBSEP "floor" SUBSEP N
        if (!(a in n) || !(b in n) || n[a] == 0 || n[b] == 0) { printf "- %s: not measured\n", text; return }
        printf "- %s: %s (%.2f×: %s vs %s ms)\n", text, verdict(med[a] <= med[b] * most), med[a] / med[b], ms(med[a]), ms(med[b])
    }
    END {
        ns = split(slices, NS, " "); nm = split(modes, M, " ")
        label["bare"] = "bare `/bin/true` (fork+exec from bash)"
        label["exe"] = "`slicebox sandbox --slice …` (executable)"
        label["builtin"] = "`sandbox --slice …` (bash builtin)"
        label["bwrap"] = "`bwrap` with equivalent mounts"
        label["unshare"] = "`unshare -Urmpf` (no binds)"
        label["floor"] = "floor (`bench/floor-sandbox.c`)"
        nc = split("bare exe builtin bwrap unshare floor", C, " ")
        for (mi = 1; mi <= nm; mi++) {
            m = M[mi]
            printf "\n### %s\n\nMedian ms (p90 in parentheses), N = number of slices:\n\n", (m == "rootless" ? "Rootless (" udesc ")" : "Root")
            hdr = "| command |"; sep = "|---|"
            for (j = 1; j <= ns; j++) { hdr = hdr " N=" NS[j] " |"; sep = sep "---|" }
            print hdr; print sep
            for (ci = 1; ci <= nc; ci++) {
                line = "| " label[C[ci]] " |"
                for (j = 1; j <= ns; j++) line = line " " cell(m, C[ci], NS[j]) " |"
                print line
            }
            printf "\nRatio of medians, to the floor / to bwrap:\n\n"
            print hdr; print sep
            for (ci = 1; ci <= nc; ci++) {
                if (C[ci] == "bare") continue
                line = "| " label[C[ci]] " |"
                for (j = 1; j <= ns; j++) line = line " " ratio(m, C[ci], "floor", NS[j]) " / " ratio(m, C[ci], "bwrap", NS[j]) " |"
                print line
            }
            # targets (issue 14): against the floor, in the same run
            printf "\nTargets (%s), against the floor in this run:\n\n", m
            target(m, "builtin", 10, 1.0, "builtin ≤ 1.0× the floor at 10 slices")
            target(m, "exe", 10, 1.15, "executable ≤ 1.15× the floor at 10 slices")
            target(m, "builtin", 1000, 1.1, "builtin ≤ 1.1× the floor at 1000 slices")
        }
    }' "$RESULTS"
    echo
}

REPORT=$WORK/report.md
render >"$REPORT"
cat "$REPORT"

if [[ $DOC != - ]]; then
    begin='<!-- startup:begin -->' end='<!-- startup:end -->'
    [[ -f $DOC ]] || printf '# Performance\n' >"$DOC"
    if ! grep -qF "$begin" "$DOC"; then
        grep -q '^## Startup' "$DOC" || printf '\n## Startup\n' >>"$DOC"
        # put the markers at the end of the Startup section (before the next ## heading)
        awk -v b="$begin" -v e="$end" '
            /^## / { if (ins) { print b; print e; print ""; ins = 0; done = 1 } if ($0 ~ /^## Startup/ && !done) ins = 1 }
            { print }
            END { if (ins) { print ""; print b; print e } }' "$DOC" >"$DOC.tmp" && cat "$DOC.tmp" >"$DOC" && rm -f "$DOC.tmp"
    fi
    awk -v b="$begin" -v e="$end" -v rep="$REPORT" '
        $0 == b { print; while ((getline l < rep) > 0) print l; skip = 1; next }
        $0 == e { skip = 0 }
        !skip { print }' "$DOC" >"$DOC.tmp" && cat "$DOC.tmp" >"$DOC" && rm -f "$DOC.tmp"
    echo "# rewrote the startup block in $DOC" >&2
fi
