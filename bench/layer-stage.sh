#!/usr/bin/env bash
# bench/layer-stage.sh BUILD_DIR [IMAGES_DIR]
#
# Start-up of /usr/bin/true in a stage whose root is an image, rootless, against
# the peers that run one, in one bash process, interleaved round-robin
# ($EPOCHREALTIME around each command, so VM noise hits every command alike):
#
#   floor        bench/floor-sandbox.c with no slices (host /usr and /etc)
#   host-base    slicebox sandbox -- /usr/bin/true (the host's base, no layer)
#   layer-1      slicebox sandbox --layer minbase -- /usr/bin/true (one layer:
#                Debian bookworm minbase, 8,734 entries)
#   layer-5      --layer minbase --layer layered (the minbase under a
#                4-layer image with whiteouts and an opaque dir)
#   bwrap        bwrap with the host's base, as bench/startup.sh runs it
#   bwrap-image  bwrap with the minbase unpacked as its root (a plain
#                read-only dir: no overlay, no store), /dev, /proc, /tmp
# crun is not here: crun 1.8 (bookworm's) refuses a machine with hybrid
# cgroups ("cgroups in hybrid mode not supported"), as this VM has, unless
# it runs where the v2 hierarchy is hidden: bench/layer-depth.sh does that.
#
# BUILD_DIR holds `slicebox` (e.g. target/dist). IMAGES_DIR defaults to what
# shell-tests/fetch-images.sh prints. Run as root: the stages run as
# BENCH_USER (default sbx); as another user, as that user.
# Environment: BENCH_RUNS=100, BENCH_WARMUP=5, BENCH_USER=sbx.
# Output: a markdown table of medians and ratios on stdout.
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:?usage: layer-stage.sh BUILD_DIR [IMAGES_DIR]}" && pwd)
IMAGES=${2:-$(bash "$REPO/shell-tests/fetch-images.sh")}
RUNS=${BENCH_RUNS:-100}
WARMUP=${BENCH_WARMUP:-5}
USER_NAME=${BENCH_USER:-sbx}

WORK=$(mktemp -d /var/tmp/layer-stage.XXXXXX)
trap 'rm -rf "$WORK" 2>/dev/null || { chmod -R u+w "$WORK"; rm -rf "$WORK"; }' EXIT
mkdir -p "$WORK/bin" "$WORK/rootfs"
cp "$BUILD/slicebox" "$WORK/bin/"
cc -O2 -o "$WORK/bin/floor" "$REPO/bench/floor-sandbox.c"
tar -xf "$IMAGES/bookworm-minbase.tar" -C "$WORK/rootfs" --exclude='./dev/*'
cp "$IMAGES/bookworm-minbase.tar" "$WORK/minbase.tar"
cp -r "$IMAGES/layered-oci" "$WORK/layered-oci"
if [ "$(id -u)" = 0 ]; then
    chown -R "$USER_NAME" "$WORK"
    as_user() { su "$USER_NAME" -s /bin/bash -c "$*"; }
else
    as_user() { bash -c "$*"; }
fi

# The timed loop, run as the user: one bash, every command in turn.
cat >"$WORK/run.sh" <<'EOF'
set -u
work=$1 runs=$2 warmup=$3
export SLICEBOX_STORE=$work/store
sb=$work/bin/slicebox
"$sb" layer-add minbase "$work/minbase.tar" >/dev/null 2>&1 || { echo "layer-add minbase failed" >&2; exit 1; }
"$sb" layer-add layered "$work/layered-oci" >/dev/null || { echo "layer-add layered failed" >&2; exit 1; }
BW=(bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --ro-bind /usr /usr
    --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib
    --symlink usr/lib64 /lib64 --ro-bind /etc /etc --dev /dev --proc /proc --tmpfs /tmp)
one() {
    case $1 in
    floor) "$work/bin/floor" -- /usr/bin/true ;;
    host-base) "$sb" sandbox --no-cwd -- /usr/bin/true ;;
    layer-1) "$sb" sandbox --no-cwd --layer minbase -- /usr/bin/true ;;
    layer-5) "$sb" sandbox --no-cwd --layer minbase --layer layered -- /usr/bin/true ;;
    bwrap) "${BW[@]}" /usr/bin/true ;;
    bwrap-image) bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts \
        --ro-bind "$work/rootfs" / --dev /dev --proc /proc --tmpfs /tmp /usr/bin/true ;;
    esac
}
commands="floor host-base layer-1 layer-5 bwrap bwrap-image"
for c in $commands; do
    for ((i = 0; i < warmup; i++)); do one "$c" || { echo "$c failed" >&2; exit 1; }; done
done
for ((i = 0; i < runs; i++)); do
    for c in $commands; do
        t0=$EPOCHREALTIME; one "$c"; t1=$EPOCHREALTIME
        echo "$c ${t0/./} ${t1/./}"
    done
done
EOF
as_user bash "$WORK/run.sh" "$WORK" "$RUNS" "$WARMUP" >"$WORK/samples"

awk '
{ d = ($3 - $2) / 1000.0; v[$1, ++n[$1]] = d }
END {
    split("floor host-base layer-1 layer-5 bwrap bwrap-image", C, " ")
    for (i = 1; i <= 6; i++) {
        c = C[i]; k = n[c]
        for (a = 1; a <= k; a++) s[a] = v[c, a]
        for (a = 2; a <= k; a++) { x = s[a]; b = a - 1; while (b > 0 && s[b] > x) { s[b + 1] = s[b]; b-- } s[b + 1] = x }
        med[c] = (k % 2) ? s[(k + 1) / 2] : (s[k / 2] + s[k / 2 + 1]) / 2
    }
    printf "| command | median ms | × floor | × host-base | × bwrap-image |\n| --- | ---: | ---: | ---: | ---: |\n"
    for (i = 1; i <= 6; i++) {
        c = C[i]
        printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", c, med[c], med[c] / med["floor"], med[c] / med["host-base"], med[c] / med["bwrap-image"]
    }
    printf "\n%d runs each\n", n["floor"]
}' "$WORK/samples"
