#!/usr/bin/env bash
# bench/layer-cache.sh BUILD_DIR [IMAGES_DIR]
#
# Page cache of concurrent stages on one base (issue 16: ten stages on the
# same layer use no more page cache than about one). Run as root: root
# drops the caches and reads /proc/meminfo; the stages run as BENCH_USER
# (default sbx). Each stage reads every file of /usr/lib/x86_64-linux-gnu/*.so*
# and /usr/bin/* (cat >/dev/null), says so on its stdout, and waits on its
# stdin until every stage of its group has read; then Cached is read, and
# the group is let go. Per group:
#
#   none           no stage, 3 s: what the rest of the machine adds meanwhile
#   layer x1       slicebox sandbox --layer minbase (the stored layer under
#   layer x10      OverlayFS), one stage or ten at once
#   copies x1      bwrap with a plain copy of the minbase as its root (the
#   copies x10     minbase unpacked BENCH_COPIES times): one stage, or ten
#                  stages each on a copy of its own, which share nothing
#   shared x10     ten bwrap stages on the same plain copy (what one tree
#                  shares, without the store)
#
# Before each group: `sync; echo 3 > /proc/sys/vm/drop_caches`, 1 s of
# rest, then Cached; the first figure is Cached at "all read" minus that
# (the whole machine's: other work's writes land in it too, see `none`).
# The second is exact: at "all read", fincore(1) sums the resident pages of
# the files a stage reads (symlinks resolved inside the tree) in the
# layer's tree in the store (the objects' inodes, which the overlay reads
# through) and in every copy, each inode once. Groups rotate in order
# every round; medians over BENCH_ROUNDS rounds.
# Environment: BENCH_ROUNDS=3, BENCH_USER=sbx, BENCH_DIR=/var/tmp (not
# tmpfs), BENCH_KEEP=1 keeps the scratch dir.
# Output: a markdown table on stdout.
set -euo pipefail
export LC_ALL=C
SELF=$(readlink -f "${BASH_SOURCE[0]}")
die() { echo "layer-cache.sh: $*" >&2; exit 1; }
STAGES=10
READ='cat /usr/lib/x86_64-linux-gnu/*.so* /usr/bin/* >/dev/null 2>&1; echo ready; read -r _ || true'

# ------------------------------------------------------ runs as the user
# __group WORK KIND N: N stages of KIND at once; prints "ready" when all
# have read, then lets them go when its stdin closes.
group() {
    local work=$1 kind=$2 n=$3 i k
    export SLICEBOX_STORE=$work/store
    local fifo=$work/release
    rm -f "$fifo" "$work"/ready.*
    mkfifo "$fifo"
    for ((i = 1; i <= n; i++)); do
        case $kind in
        layer) k=0 ;;
        copies) k=$i ;;
        shared) k=1 ;;
        esac
        if [[ $kind == layer ]]; then
            "$work/bin/slicebox" sandbox --no-cwd --layer minbase -- sh -c "$READ" \
                <"$fifo" >"$work/ready.$i" &
        else
            bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts \
                --ro-bind "$work/copy$k" / --dev /dev --proc /proc --tmpfs /tmp --chdir / \
                sh -c "$READ" <"$fifo" >"$work/ready.$i" &
        fi
    done
    ((n > 0)) || sleep 3 # about as long as a group takes to read
    ((n == 0)) || exec 9>"$fifo"
    for ((i = 1; i <= n; i++)); do
        until [[ -s $work/ready.$i ]]; do sleep 0.05; done
    done
    echo ready
    read -r _ || true # root has read Cached
    ((n == 0)) || exec 9>&-
    wait
}
case ${1:-} in
__group) group "$2" "$3" "$4"; exit ;;
-h | --help | "") sed -n '2,32p' "$SELF" | sed 's/^# \{0,1\}//'; [[ -n ${1:-} ]]; exit ;;
esac

# ---------------------------------------------------------------- main
REPO=$(dirname "$(dirname "$SELF")")
BUILD=$(readlink -f "$1")
[[ -x $BUILD/slicebox ]] || die "no slicebox in $BUILD (make build)"
[[ $(id -u) == 0 ]] || die "run as root: only root may drop the page cache"
IMAGES=${2:-$(bash "$REPO/shell-tests/fetch-images.sh")}
ROUNDS=${BENCH_ROUNDS:-3}
USER_NAME=${BENCH_USER:-sbx}
PARENT=${BENCH_DIR:-/var/tmp}
[[ $(df --output=fstype "$PARENT" | tail -1 | tr -d ' ') != tmpfs ]] || die "$PARENT is tmpfs; set BENCH_DIR"

WORK=$(mktemp -d "$PARENT/layer-cache.XXXXXX")
chmod 755 "$WORK"
cleanup() { [[ -n ${BENCH_KEEP:-} ]] || { chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"; }; }
trap cleanup EXIT
mkdir -p "$WORK/bin"
cp "$BUILD/slicebox" "$WORK/bin/"
cp "$SELF" "$WORK/layer-cache.sh"
echo "# unpacking $STAGES copies of the minbase" >&2
for ((k = 1; k <= STAGES; k++)); do
    mkdir "$WORK/copy$k"
    tar -xf "$IMAGES/bookworm-minbase.tar" -C "$WORK/copy$k" --exclude='./dev/*'
done
cp "$IMAGES/bookworm-minbase.tar" "$WORK/minbase.tar"
chown -R "$USER_NAME" "$WORK"
runuser -u "$USER_NAME" -- env SLICEBOX_STORE="$WORK/store" "$WORK/bin/slicebox" \
    layer-add minbase "$WORK/minbase.tar" >/dev/null 2>&1 || die "layer-add failed"
rm "$WORK/minbase.tar"
# What one stage reads: the distinct files, relative to the root, symlinks
# resolved inside the tree (a link out of it, such as /etc/alternatives/…,
# is left out: a few small files); and their MiB.
(cd "$WORK/copy1" && python3 -c '
import glob, os
def inside(path):
    for _ in range(40):
        if not os.path.islink(path):
            return path if os.path.isfile(path) else None
        target = os.readlink(path)
        path = os.path.normpath(target.lstrip("/") if target.startswith("/") else os.path.join(os.path.dirname(path), target))
files = sorted({f for f in map(inside, glob.glob("usr/lib/x86_64-linux-gnu/*.so*") + glob.glob("usr/bin/*")) if f})
print("\n".join(files))') >"$WORK/read-set"
READ_MB=$(cd "$WORK/copy1" && xargs -d '\n' stat -c %s <"$WORK/read-set" | awk '{ s += $1 } END { printf "%.1f", s / 1048576 }')
TREE=$WORK/store/layer-trees/$(runuser -u "$USER_NAME" -- env SLICEBOX_STORE="$WORK/store" \
    "$WORK/bin/slicebox" layer-show --json minbase | sed -n 's/^ *"digest": *"sha256:\([0-9a-f]*\)",*$/\1/p' | tail -1)
[[ -d $TREE ]] || die "no tree for minbase at $TREE"
sync
# resident: bytes of the read set in the page cache, in the tree and every copy
resident() {
    local root
    for root in "$TREE" "$WORK"/copy*; do
        (cd "$root" && xargs -d '\n' fincore -b -n -o RES <"$WORK/read-set" 2>/dev/null) || true
    done | awk '{ sum += $1 } END { print sum + 0 }'
}

cached_kb() { sed -n 's/^Cached: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
# measure KIND N: one group; prints "KIND N KB SECONDS"
measure() {
    local kind=$1 n=$2 before after t0 line
    sync
    echo 3 >/proc/sys/vm/drop_caches
    sleep 1
    before=$(cached_kb)
    t0=$EPOCHREALTIME
    coproc GROUP { runuser -u "$USER_NAME" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/ LC_ALL=C \
        bash "$WORK/layer-cache.sh" __group "$WORK" "$kind" "$n"; }
    read -r line <&"${GROUP[0]}"
    [[ $line == ready ]] || die "group $kind x$n: $line"
    after=$(cached_kb)
    local bytes
    bytes=$(resident)
    local secs=$(((10#${EPOCHREALTIME/./} - 10#${t0/./}) / 1000))
    echo release >&"${GROUP[1]}"
    wait "$GROUP_PID"
    echo "$kind $n $((after - before)) $secs $bytes"
}

GROUPS_=("none 0" "layer 1" "layer $STAGES" "copies 1" "copies $STAGES" "shared $STAGES")
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# $ROUNDS rounds of ${#GROUPS_[@]} groups (load $LOAD0)" >&2
for ((r = 0; r < ROUNDS; r++)); do
    for ((g = 0; g < ${#GROUPS_[@]}; g++)); do
        # shellcheck disable=SC2086 # "KIND N"
        measure ${GROUPS_[(g + r) % ${#GROUPS_[@]}]}
    done
done >"$WORK/samples"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

echo "\`bench/layer-cache.sh\`, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPU, kernel $(uname -r),"
echo "slicebox git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), $(bwrap --version), user \`$USER_NAME\`;"
echo "load average (1/5/15 min) $LOAD0 at the start, $LOAD1 at the end; $ROUNDS rounds."
echo "Each stage reads /usr/lib/x86_64-linux-gnu/*.so* and /usr/bin/*: $READ_MB MiB of distinct files."
echo
awk -v stages="$STAGES" -v readmb="$READ_MB" '
{ key = $1 " x" $2; v[key, ++n[key]] = $3 / 1024.0; t[key, n[key]] = $4; f[key, n[key]] = $5 / 1048576.0 }
function med(arr, key,   k, a, b, x) {
    k = n[key]
    for (a = 1; a <= k; a++) s[a] = (arr == "v") ? v[key, a] : (arr == "f" ? f[key, a] : t[key, a])
    for (a = 2; a <= k; a++) { x = s[a]; b = a - 1; while (b > 0 && s[b] > x) { s[b + 1] = s[b]; b-- } s[b + 1] = x }
    return (k % 2) ? s[(k + 1) / 2] : (s[k / 2] + s[k / 2 + 1]) / 2
}
END {
    split("none x0,layer x1,layer x" stages ",copies x1,copies x" stages ",shared x" stages, G, ",")
    for (i = 1; i <= 6; i++) { M[G[i]] = med("v", G[i]); T[G[i]] = med("t", G[i]); F[G[i]] = med("f", G[i]) }
    printf "| group | Cached added, MiB | × its x1 | read set resident (fincore), MiB | × its x1 | time to all read, ms |\n| --- | ---: | ---: | ---: | ---: | ---: |\n"
    for (i = 1; i <= 6; i++) {
        g = G[i]; one = (g ~ /^layer/) ? "layer x1" : (g ~ /^none/ ? "" : "copies x1")
        printf "| %s | %.1f | %s | %.1f | %s | %d |\n", g, M[g], one == "" ? "–" : sprintf("%.2f", M[g] / M[one]), F[g], one == "" ? "–" : sprintf("%.2f", F[g] / F[one]), T[g]
    }
    r = F["layer x" stages] / F["layer x1"]
    printf "\nTarget, %d stages on one layer ≈ one stage'"'"'s page cache: %s (read set %.2f×, Cached %.2f×; %d bwrap stages on %d copies: read set %.2f×, Cached %.2f×)\n", stages, (r <= 1.2 && M["layer x" stages] <= 1.2 * M["layer x1"] + M["none x0"] ? "**met**" : "**missed**"), r, M["layer x" stages] / M["layer x1"], stages, stages, F["copies x" stages] / F["copies x1"], M["copies x" stages] / M["copies x1"]
}' "$WORK/samples"
