#!/usr/bin/env bash
# bench/layer-ls.sh BUILD_DIR [IMAGES_DIR]
#
# `ls -lR` of a composed Debian tree against the same tree as a plain
# directory, with the page cache dropped before each run (issue 16: cold,
# ≤ 1.5× the plain directory) and, for scale, warm. Run as root (only root
# may drop the caches); the stages and the listings run as BENCH_USER
# (default sbx), in one bash worker that times each command with
# $EPOCHREALTIME; root drops the caches (`sync; echo 3 >
# /proc/sys/vm/drop_caches`) between the worker's commands, which rotate
# in order every round:
#
#   plain        ls -lR of the minbase unpacked into a plain dir, outside
#                any sandbox (the host's ls: Debian bookworm's too)
#   bwrap-dir    the same listing in bwrap with that dir as the root (a
#                plain read-only bind; ls from the tree)
#   sandbox-dir  slicebox sandbox on the host's base, the plain dir its
#                cwd (shown read-only, a bind): ls -lR there (the host's ls)
#   tree         ls -lR of the layer's tree in the store, outside any
#                sandbox (no overlay: its files are hardlinks to objects
#                spread over objects/xx/, so their inodes lie elsewhere)
#   layer        slicebox sandbox --layer minbase -- ls -lR (the stored
#                layer's tree under OverlayFS; ls from the tree)
#   layer-twice  the same stage listing twice: less `layer`, what a second
#                listing costs once the stage's overlay has its dentries
#                and inodes (each stage's overlay is a new superblock, so
#                a stage's first listing builds them, warm cache or not)
#   bwrap-true   bwrap with that dir as the root, /usr/bin/true: what the
#                stage alone costs cold
#   layer-true   slicebox sandbox --layer minbase -- /usr/bin/true
#
# The listing covers the tree's top-level dirs but /dev, /proc, /sys and
# /tmp (each stage has its own), with the dir as the cwd. The plain dir is
# chowned to the user, as a layer's tree is the store owner's. Both live
# on the same filesystem (BENCH_DIR, not tmpfs).
# Environment: BENCH_RUNS=7 (cold and warm runs per command), BENCH_USER=sbx,
# BENCH_DIR=/var/tmp, BENCH_KEEP=1 keeps the scratch dir.
# Output: a markdown table of medians and ratios on stdout.
set -euo pipefail
export LC_ALL=C
SELF=$(readlink -f "${BASH_SOURCE[0]}")
die() { echo "layer-ls.sh: $*" >&2; exit 1; }
DIRS="bin boot etc home lib lib64 media mnt opt root run sbin srv usr var"

# ------------------------------------------------------ runs as the user
# __worker WORK: reads a command name per line, runs it, answers
# "NAME MICROSECONDS RC".
worker() {
    local work=$1 c t0 t1 rc
    export SLICEBOX_STORE=$work/store
    local sb=$work/bin/slicebox tree
    tree=$work/store/layer-trees/$("$sb" layer-show --json minbase |
        sed -n 's/^ *"digest": *"sha256:\([0-9a-f]*\)",*$/\1/p' | tail -1)
    [[ -d $tree ]] || die "no tree for minbase at $tree"
    local -a bw=(bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts
        --ro-bind "$work/rootfs" / --dev /dev --proc /proc --tmpfs /tmp --chdir /)
    # shellcheck disable=SC2086 # DIRS is a list of plain names
    one() {
        case $1 in
        plain) (cd "$work/rootfs" && ls -lR $DIRS) ;;
        bwrap-dir) "${bw[@]}" ls -lR $DIRS ;;
        tree) (cd "$tree" && ls -lR $DIRS) ;;
        sandbox-dir) (cd "$work/rootfs" && "$sb" sandbox -- ls -lR $DIRS) ;;
        layer) "$sb" sandbox --no-cwd --layer minbase -- ls -lR $DIRS ;;
        layer-twice) "$sb" sandbox --no-cwd --layer minbase -- sh -c "ls -lR $DIRS; ls -lR $DIRS" ;;
        bwrap-true) "${bw[@]}" /usr/bin/true ;;
        layer-true) "$sb" sandbox --no-cwd --layer minbase -- /usr/bin/true ;;
        esac
    }
    while read -r c; do
        rc=0
        t0=$EPOCHREALTIME; one "$c" >/dev/null 2>"$work/err" || rc=$?; t1=$EPOCHREALTIME
        echo "$c $((10#${t1/./} - 10#${t0/./})) $rc"
    done
}
case ${1:-} in
__worker) DIRS=$3; worker "$2"; exit ;;
-h | --help | "") sed -n '2,39p' "$SELF" | sed 's/^# \{0,1\}//'; [[ -n ${1:-} ]]; exit ;;
esac

# ---------------------------------------------------------------- main
REPO=$(dirname "$(dirname "$SELF")")
BUILD=$(readlink -f "$1")
[[ -x $BUILD/slicebox ]] || die "no slicebox in $BUILD (make build)"
[[ $(id -u) == 0 ]] || die "run as root: only root may drop the page cache"
IMAGES=${2:-$(bash "$REPO/shell-tests/fetch-images.sh")}
RUNS=${BENCH_RUNS:-7}
USER_NAME=${BENCH_USER:-sbx}
PARENT=${BENCH_DIR:-/var/tmp}
[[ $(df --output=fstype "$PARENT" | tail -1 | tr -d ' ') != tmpfs ]] || die "$PARENT is tmpfs; set BENCH_DIR"

WORK=$(mktemp -d "$PARENT/layer-ls.XXXXXX")
chmod 755 "$WORK"
cleanup() { [[ -n ${BENCH_KEEP:-} ]] || { chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"; }; }
trap cleanup EXIT
mkdir -p "$WORK/bin" "$WORK/rootfs"
cp "$BUILD/slicebox" "$WORK/bin/"
cp "$SELF" "$WORK/layer-ls.sh"
tar -xf "$IMAGES/bookworm-minbase.tar" -C "$WORK/rootfs" --exclude='./dev/*'
cp "$IMAGES/bookworm-minbase.tar" "$WORK/minbase.tar"
chown -R "$USER_NAME" "$WORK"
chmod -R u+rwX "$WORK/rootfs" # a layer's tree drops nothing the owner may read
runuser -u "$USER_NAME" -- env SLICEBOX_STORE="$WORK/store" "$WORK/bin/slicebox" \
    layer-add minbase "$WORK/minbase.tar" >/dev/null 2>&1 || die "layer-add failed"
rm "$WORK/minbase.tar"
sync

coproc WORKER { runuser -u "$USER_NAME" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/ LC_ALL=C \
    bash "$WORK/layer-ls.sh" __worker "$WORK" "$DIRS"; }
# ask NAME: one timed run; prints "NAME US RC"
ask() { echo "$1" >&"${WORKER[1]}"; local line; read -r line <&"${WORKER[0]}"; echo "$line"; }

CMDS=(plain tree bwrap-dir sandbox-dir layer layer-twice bwrap-true layer-true)
for c in "${CMDS[@]}"; do ask "$c" >/dev/null; done # every path once
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# $RUNS cold and $RUNS warm runs of ${CMDS[*]} (load $LOAD0)" >&2
for ((i = 0; i < RUNS; i++)); do
    for ((k = 0; k < ${#CMDS[@]}; k++)); do
        c=${CMDS[(k + i) % ${#CMDS[@]}]}
        sync
        echo 3 >/proc/sys/vm/drop_caches
        echo "cold $(ask "$c")"
        ask "$c" >/dev/null # warms what the first run left cold
        echo "warm $(ask "$c")"
    done
done >"$WORK/samples"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
fd=${WORKER[1]}
exec {fd}>&- # the worker ends on EOF
wait "$WORKER_PID" 2>/dev/null || true

echo "\`bench/layer-ls.sh\`, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPU, kernel $(uname -r), $(df --output=source,fstype "$PARENT" | tail -1 | tr -s ' '),"
echo "slicebox git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), $(bwrap --version), user \`$USER_NAME\`;"
echo "load average (1/5/15 min) $LOAD0 at the start, $LOAD1 at the end. $RUNS cold and $RUNS warm runs per command."
echo "The listing: \`ls -lR $DIRS\` of the Debian minbase ($(find "$WORK/rootfs" | wc -l) entries)."
echo
awk '
$4 != 0 { fails[$1, $2]++; next }
{ v[$1, $2, ++n[$1, $2]] = $3 / 1000.0 }
function med(t, c,   k, a, b, x) {
    k = n[t, c]; if (!k) return 0
    for (a = 1; a <= k; a++) s[a] = v[t, c, a]
    for (a = 2; a <= k; a++) { x = s[a]; b = a - 1; while (b > 0 && s[b] > x) { s[b + 1] = s[b]; b-- } s[b + 1] = x }
    return (k % 2) ? s[(k + 1) / 2] : (s[k / 2] + s[k / 2 + 1]) / 2
}
END {
    nc = split("plain tree bwrap-dir sandbox-dir layer layer-twice bwrap-true layer-true", C, " ")
    for (i = 1; i <= nc; i++) { cold[C[i]] = med("cold", C[i]); warm[C[i]] = med("warm", C[i]) }
    printf "| command | cold median ms | × plain | warm median ms | × plain | failed |\n| --- | ---: | ---: | ---: | ---: | ---: |\n"
    for (i = 1; i <= nc; i++) {
        c = C[i]
        printf "| %s | %.1f | %.2f | %.1f | %.2f | %d |\n", c, cold[c], cold[c] / cold["plain"], warm[c], warm[c] / warm["plain"], fails["cold", c] + fails["warm", c]
    }
    lc = cold["layer"] - cold["layer-true"]; bc = cold["bwrap-dir"] - cold["bwrap-true"]
    lw = warm["layer"] - warm["layer-true"]; bw = warm["bwrap-dir"] - warm["bwrap-true"]
    printf "\nThe listing alone (the stage'"'"'s own start, cold or warm, taken off):\n\n"
    printf "| | cold ms | warm ms |\n| --- | ---: | ---: |\n"
    printf "| plain | %.1f | %.1f |\n", cold["plain"], warm["plain"]
    printf "| bwrap-dir − bwrap-true | %.1f | %.1f |\n", bc, bw
    printf "| layer − layer-true | %.1f | %.1f |\n", lc, lw
    printf "| layer-twice − layer (a second listing in the same stage) | %.1f | %.1f |\n", cold["layer-twice"] - cold["layer"], warm["layer-twice"] - warm["layer"]
    printf "\nTarget, cold `ls -lR` of the composed tree ≤ 1.5× the plain dir: %s\n", (cold["layer"] <= 1.5 * cold["plain"] ? "**met**" : "**missed**")
    printf "(whole stage %.2f× plain; the listing alone %.2f× plain, %.2f× the listing in bwrap on the plain dir)\n", cold["layer"] / cold["plain"], lc / cold["plain"], lc / bc
}' "$WORK/samples"
