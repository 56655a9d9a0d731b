#!/usr/bin/env bash
# bench/layer-depth.sh BUILD_DIR [IMAGES_DIR]
#
# Start-up of /usr/bin/true on 1, 2, 10 and 50 layers, with and without 10
# slices on top, against the floor, the same stage on the host's base and
# crun running the same image; rootless, in ONE bash process, every command
# in turn ($EPOCHREALTIME around each, the order rotated every round, so VM
# noise hits every command alike):
#
#   floor          bench/floor-sandbox.c, no slices (host /usr and /etc)
#   host           slicebox sandbox -- /usr/bin/true (the host's base)
#   layers-N       slicebox sandbox --layer minbase --layer l2 … --layer lN:
#                  Debian bookworm's minbase (8,734 entries) at the bottom,
#                  then N-1 small layers made here (three files each, and
#                  from l3 on a whiteout of a file of the layer below)
#   …+10s          the same with 10 small slices (--slice s1 … s10, as
#                  bench/startup.sh makes them, at /opt/sK)
#   image-10       slicebox sandbox --layer img10: the same 10 layers as
#                  one name (the 10-layer image below, through layer-add),
#                  which parts the cost of a name from that of a layer
#   crun-1         crun run of an OCI bundle whose rootfs is the minbase
#                  unpacked (config from `crun spec --rootless`)
#   crun-10        crun run of the 10-layer image (the minbase and l2…l10
#                  as one OCI image) unpacked by `umoci unpack --rootless`
#   crun-1-nonet   crun-1 without a network namespace, as a slicebox stage
#                  runs by default (--net host): crun's start without the
#                  cost of a new network namespace
# Both crun configs lose their cgroup namespace, cgroup mount, cgroupsPath
# and resources, and crun runs with --cgroup-manager=disabled. crun 1.8
# refuses a hybrid cgroup layout whose v2 hierarchy has any controller
# ("cgroups in hybrid mode not supported, drop all controllers from
# cgroupv2"), which is this VM's; so, run as root, the whole timed loop
# (every command alike) runs in a private mount namespace in which
# /sys/fs/cgroup/unified is unmounted: crun then sees a v1-only layout.
# Without root the crun rows are dropped and the error is printed.
#
# Then, untimed by bash: each sandbox row's SLICEBOX_TIMES=1 steps (median
# µs), and bench/overlay-probe.c: the overlay mount alone (tmpfs for the
# upper and work dirs, fsopen, one lowerdir+ per layer, fsmount) at 1, 2,
# 10 and 50 layers, in a user namespace, so "the host-base stage plus the
# overlay mount" can be checked.
#
# BUILD_DIR holds `slicebox` (e.g. target/dist). IMAGES_DIR defaults to what
# shell-tests/fetch-images.sh prints. Run as root: the stages run as
# BENCH_USER (default sbx); as another user, as that user.
# Environment: BENCH_RUNS=100 (timed runs per command), BENCH_WARMUP=5,
# BENCH_TIMES_RUNS=30 (SLICEBOX_TIMES runs per row), BENCH_PROBE_ROUNDS=500,
# BENCH_USER=sbx, BENCH_CRUN=1 (0 leaves crun out), BENCH_KEEP=1 keeps the
# scratch dir (/var/tmp/layer-depth.*).
# Output: markdown tables on stdout; progress on stderr.
set -euo pipefail
export LC_ALL=C
SELF=$(readlink -f "${BASH_SOURCE[0]}")
die() { echo "layer-depth.sh: $*" >&2; exit 1; }

DEPTHS=(1 2 10 50)
SLICES=10

# ------------------------------------------------------ runs as the user
# __setup WORK: the store (layers, slices) and the umoci bundle.
setup() {
    local work=$1 k n
    export SLICEBOX_STORE=$work/store
    local sb=$work/bin/slicebox
    "$sb" layer-add minbase "$work/minbase.tar" >/dev/null 2>&1 || die "layer-add minbase failed"
    for ((k = 2; k <= 50; k++)); do
        "$sb" layer-add "l$k" "$work/layers/l$k.tar" >/dev/null 2>&1 || die "layer-add l$k failed"
    done
    for ((k = 1; k <= SLICES; k++)); do
        "$sb" slice-add "s$k" "$work/src/s$k" --at "/opt/s$k" >/dev/null || die "slice-add s$k failed"
    done
    # The layer trees, topmost first, for the overlay probe.
    for n in "${DEPTHS[@]}"; do
        for ((k = n; k >= 1; k--)); do
            if ((k == 1)); then echo minbase; else echo "l$k"; fi
        done | while read -r name; do
            "$sb" layer-show --json "$name" | python3 -c '
import json, sys
for layer in reversed(json.load(sys.stdin)["layers"]):
    print(sys.argv[1] + "/layer-trees/" + layer["digest"].split(":")[1])' "$SLICEBOX_STORE"
        done >"$work/trees-$n"
    done
    if [[ -d $work/image ]]; then
        "$sb" layer-add img10 "$work/image" >/dev/null 2>&1 || die "layer-add img10 failed"
        umoci unpack --rootless --image "$work/image:latest" "$work/crun-10" >/dev/null 2>&1 ||
            die "umoci unpack failed"
        python3 "$work/crun-config.py" "$work/crun-10/config.json"
    fi
}

# __measure WORK RUNS WARMUP TIMES_RUNS ROUNDS CRUN: the timed loop, then
# the steps and the probe.
measure() {
    local work=$1 runs=$2 warmup=$3 times_runs=$4 rounds=$5 crun=$6
    export SLICEBOX_STORE=$work/store
    local sb=$work/bin/slicebox k n i c t0 t1 rc
    local -a L SL CMDS=(floor host host+10s) crun_=(crun --root "$work/crun-state")
    local -A ARGS
    for ((k = 1; k <= SLICES; k++)); do SL+=(--slice "s$k"); done
    ARGS[host]="" ARGS[host+10s]="${SL[*]}"
    for n in "${DEPTHS[@]}"; do
        L=(--layer minbase)
        for ((k = 2; k <= n; k++)); do L+=(--layer "l$k"); done
        ARGS[layers-$n]="${L[*]}" ARGS[layers-$n+10s]="${L[*]} ${SL[*]}"
        CMDS+=("layers-$n" "layers-$n+10s")
    done
    if [[ -d $work/image ]]; then CMDS+=(image-10); ARGS[image-10]="--layer img10"; fi
    ((crun)) && CMDS+=(crun-1 crun-10 crun-1-nonet)
    one() {
        # shellcheck disable=SC2086 # ARGS hold options, words without blanks
        case $1 in
        floor) "$work/bin/floor" -- /usr/bin/true ;;
        crun-1) "${crun_[@]}" run --bundle "$work/crun-1" "c1-$2" ;;
        crun-10) "${crun_[@]}" run --bundle "$work/crun-10" "c10-$2" ;;
        crun-1-nonet) "${crun_[@]}" run --bundle "$work/crun-1-nonet" "c1n-$2" ;;
        *) "$sb" sandbox --no-cwd ${ARGS[$1]} -- /usr/bin/true ;;
        esac
    }
    for c in "${CMDS[@]}"; do
        for ((i = 0; i < warmup; i++)); do
            one "$c" "w$i" >/dev/null 2>"$work/err" || die "$c failed: $(cat "$work/err")"
        done
    done
    local m=${#CMDS[@]}
    for ((i = 0; i < runs; i++)); do
        for ((k = 0; k < m; k++)); do
            c=${CMDS[(k + i) % m]}
            rc=0
            t0=$EPOCHREALTIME; one "$c" "$i" || rc=$?; t1=$EPOCHREALTIME
            if ((rc)); then echo "fail $c $rc"; continue; fi
            echo "time $c $((10#${t1/./} - 10#${t0/./}))"
        done
    done
    # Where the time goes: the stage's own step times.
    for ((i = 0; i < times_runs; i++)); do
        for c in host layers-1 layers-10 layers-50 image-10; do
            [[ -n ${ARGS[$c]+set} ]] || continue
            # shellcheck disable=SC2086
            SLICEBOX_TIMES=1 "$sb" sandbox --no-cwd ${ARGS[$c]} -- /usr/bin/true 2>&1 >/dev/null |
                sed -n "s/^.*times in µs: /steps $c /p"
        done
    done
    for n in "${DEPTHS[@]}"; do
        mapfile -t L <"$work/trees-$n"
        echo "probe $("$work/bin/overlay-probe" "$rounds" "${L[@]}")"
    done
}

case ${1:-} in
__setup) setup "$2"; exit ;;
__measure) measure "$2" "$3" "$4" "$5" "$6" "$7"; exit ;;
-h | --help | "") sed -n '2,50p' "$SELF" | sed 's/^# \{0,1\}//'; [[ -n ${1:-} ]]; exit ;;
esac

# ---------------------------------------------------------------- main
REPO=$(dirname "$(dirname "$SELF")")
BUILD=$(readlink -f "$1")
[[ -x $BUILD/slicebox ]] || die "no slicebox in $BUILD (make build)"
IMAGES=${2:-$(bash "$REPO/shell-tests/fetch-images.sh")}
RUNS=${BENCH_RUNS:-100}
WARMUP=${BENCH_WARMUP:-5}
TIMES_RUNS=${BENCH_TIMES_RUNS:-30}
ROUNDS=${BENCH_PROBE_ROUNDS:-500}
USER_NAME=${BENCH_USER:-sbx}
CRUN=${BENCH_CRUN:-1}
if ((CRUN)); then
    command -v crun >/dev/null || die "crun missing (apt-get install crun), or BENCH_CRUN=0"
    command -v umoci >/dev/null || die "umoci missing (apt-get install umoci), or BENCH_CRUN=0"
fi

WORK=$(mktemp -d /var/tmp/layer-depth.XXXXXX)
chmod 755 "$WORK"
cleanup() { [[ -n ${BENCH_KEEP:-} ]] || { chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"; }; }
trap cleanup EXIT
mkdir -p "$WORK/bin" "$WORK/layers" "$WORK/src" "$WORK/crun-1/rootfs" "$WORK/crun-state"
cp "$BUILD/slicebox" "$WORK/bin/"
cp "$SELF" "$WORK/layer-depth.sh"
cc -O2 -o "$WORK/bin/floor" "$REPO/bench/floor-sandbox.c"
cc -O2 -o "$WORK/bin/overlay-probe" "$REPO/bench/overlay-probe.c"
cp "$IMAGES/bookworm-minbase.tar" "$WORK/minbase.tar"

# l2 … l50: a few small files each; from l3 on, a whiteout of the layer
# below's third file, so the overlay has something to hide.
python3 - "$WORK/layers" <<'EOF'
import io, sys, tarfile
out = sys.argv[1]
def add(tar, name, data=b"", mode=0o644, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size = kind, mode, 0, len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)
for k in range(2, 51):
    with tarfile.open(f"{out}/l{k}.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "opt", mode=0o755, kind=tarfile.DIRTYPE)
        add(tar, f"opt/l{k}", mode=0o755, kind=tarfile.DIRTYPE)
        for f in range(1, 4):
            add(tar, f"opt/l{k}/file{f}", f"layer {k} file {f}\n".encode())
        if k >= 3:
            add(tar, f"opt/l{k - 1}/.wh.file3")
EOF
for ((k = 1; k <= SLICES; k++)); do # distinct content, as bench/startup.sh
    mkdir -p "$WORK/src/s$k/bin"
    printf 'slice %d\n' "$k" >"$WORK/src/s$k/README"
    printf '#!/bin/sh\necho s%d\n' "$k" >"$WORK/src/s$k/bin/hello-s$k"
    chmod 755 "$WORK/src/s$k/bin/hello-s$k"
done

# crun's config: /usr/bin/true, no terminal, nothing of cgroups.
cat >"$WORK/crun-config.py" <<'EOF'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["args"] = ["/usr/bin/true"]
config["process"]["terminal"] = False
linux = config["linux"]
linux.pop("resources", None)
linux.pop("cgroupsPath", None)
linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "cgroup"]
config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
json.dump(config, open(path, "w"), indent=1)
EOF
CRUN_NOTE=""
if ((CRUN)); then
    echo "# crun bundles: the minbase, and a 10-layer image through umoci" >&2
    tar -xf "$WORK/minbase.tar" -C "$WORK/crun-1/rootfs" --exclude='./dev/*'
    (cd "$WORK/crun-1" && crun spec --rootless && python3 "$WORK/crun-config.py" config.json)
    mkdir -p "$WORK/crun-1-nonet"
    python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
config = json.load(open(work + "/crun-1/config.json"))
config["root"]["path"] = work + "/crun-1/rootfs"
config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
json.dump(config, open(work + "/crun-1-nonet/config.json", "w"), indent=1)
PY
    umoci init --layout "$WORK/image" >/dev/null
    umoci new --image "$WORK/image:latest" >/dev/null
    umoci raw add-layer --image "$WORK/image:latest" "$WORK/minbase.tar" >/dev/null
    for ((k = 2; k <= 10; k++)); do
        umoci raw add-layer --image "$WORK/image:latest" "$WORK/layers/l$k.tar" >/dev/null
    done
fi
chmod -R a+rX "$WORK"

SUDO=()
if [[ $(id -u) == 0 ]]; then
    chown -R "$USER_NAME" "$WORK"
    SUDO=(runuser -u "$USER_NAME" --)
    USER_DESC="user \`$USER_NAME\`"
else
    USER_DESC="user \`$(id -un)\`"
fi
as_user() {
    "${SUDO[@]}" env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/ LC_ALL=C \
        XDG_RUNTIME_DIR="$WORK/crun-state" "$@"
}
echo "# layer-add minbase and l2…l50, slice-add s1…s$SLICES" >&2
as_user bash "$WORK/layer-depth.sh" __setup "$WORK"
sync
sleep 5 # every stage writes a pin file into the store: not behind the adds' writeback

# crun: does it start? If it refuses the hybrid layout and we are root,
# the loop runs in a mount namespace without the v2 hierarchy.
HIDE_V2=0
if ((CRUN)); then
    if ! as_user crun --root "$WORK/crun-state" run --bundle "$WORK/crun-1" probe >"$WORK/crun.err" 2>&1; then
        CRUN_NOTE="crun refused as is: \`$(tr '\n' ' ' <"$WORK/crun.err" | sed 's/ *$//')\`"
        if [[ $(id -u) == 0 ]]; then HIDE_V2=1; else CRUN=0; CRUN_NOTE+="; crun rows left out (run as root)"; fi
    fi
fi
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# timed loop: $RUNS runs of each command (load $LOAD0)" >&2
if ((HIDE_V2)); then
    unshare -m --propagation private bash -c '
        umount -l /sys/fs/cgroup/unified || exit 1
        exec "$@"' bash "${SUDO[@]}" env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/ \
        LC_ALL=C XDG_RUNTIME_DIR="$WORK/crun-state" \
        bash "$WORK/layer-depth.sh" __measure "$WORK" "$RUNS" "$WARMUP" "$TIMES_RUNS" "$ROUNDS" "$CRUN" >"$WORK/samples"
    CRUN_NOTE+="; so every command ran in a private mount namespace with /sys/fs/cgroup/unified unmounted (a v1-only layout to crun)"
else
    as_user bash "$WORK/layer-depth.sh" __measure "$WORK" "$RUNS" "$WARMUP" "$TIMES_RUNS" "$ROUNDS" "$CRUN" >"$WORK/samples"
fi
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
echo "\`bench/layer-depth.sh\`, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPU, kernel $(uname -r),"
echo "slicebox git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), $(crun --version 2>/dev/null | head -1 || echo 'no crun'), $USER_DESC;"
echo "load average (1/5/15 min) $LOAD0 at the start, $LOAD1 at the end. $RUNS runs per command."
[[ -z $CRUN_NOTE ]] || echo "${CRUN_NOTE#; }."
echo
awk -v depths="${DEPTHS[*]}" -v crun="$CRUN" '
function sortv(key, n,   a, b, x) {
    for (a = 1; a <= n; a++) s[a] = v[key, a]
    for (a = 2; a <= n; a++) { x = s[a]; b = a - 1; while (b > 0 && s[b] > x) { s[b + 1] = s[b]; b-- } s[b + 1] = x }
}
function med(key, n) { sortv(key, n); return (n % 2) ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2 }
function p90(key, n) { sortv(key, n); return s[int((n * 9 + 9) / 10)] }
$1 == "time" { v[$2, ++n[$2]] = $3 / 1000.0; next }
$1 == "fail" { fails[$2]++; next }
$1 == "steps" {
    # steps CMD parse A, store and options B, plan C, clone D, setup E, start command F, command G, teardown H (total I)
    line = $0; sub(/^steps [^ ]+ /, "", line); gsub(/[(),]/, "", line)
    ns = split(line, w, " "); k = 0; name = ""
    for (a = 1; a <= ns; a++) {
        if (w[a] ~ /^[0-9]+$/) { k++; stepname[k] = name; st[$2, k, ++sn[$2, k]] = w[a]; name = "" }
        else name = (name == "" ? w[a] : name " " w[a])
    }
    nsteps = k; next
}
$1 == "probe" { probe[$3] = $9; ptmp[$3] = $5; pov[$3] = $7; next }
END {
    nd = split(depths, D, " ")
    nc = 0; C[++nc] = "floor"; C[++nc] = "host"; C[++nc] = "host+10s"
    for (d = 1; d <= nd; d++) { C[++nc] = "layers-" D[d]; C[++nc] = "layers-" D[d] "+10s" }
    if (n["image-10"] || fails["image-10"]) C[++nc] = "image-10"
    if (crun) { C[++nc] = "crun-1"; C[++nc] = "crun-10"; C[++nc] = "crun-1-nonet" }
    for (i = 1; i <= nc; i++) { c = C[i]; M[c] = n[c] ? med(c, n[c]) : 0; P[c] = n[c] ? p90(c, n[c]) : 0 }
    ref = crun ? "crun-10" : "host"
    printf "| command | median ms | p90 ms | × floor | × host | × %s | failed |\n", ref
    printf "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    for (i = 1; i <= nc; i++) {
        c = C[i]
        if (!n[c]) { printf "| %s | – | – | – | – | – | %d |\n", c, fails[c]; continue }
        printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %d |\n", c, M[c], P[c], M[c] / M["floor"], M[c] / M["host"], M[c] / M[ref], fails[c]
    }
    printf "\nOverlay mount alone (`bench/overlay-probe.c`, median µs):\n\n| layers | tmpfs + upper/work | overlay (fsopen…fsmount) | total |\n| ---: | ---: | ---: | ---: |\n"
    for (d = 1; d <= nd; d++) printf "| %d | %.0f | %.0f | %.0f |\n", D[d], ptmp[D[d]], pov[D[d]], probe[D[d]]
    printf "\nSteps (`SLICEBOX_TIMES=1`, median µs):\n\n| command |"
    for (k = 1; k <= nsteps; k++) printf " %s |", stepname[k]
    printf "\n| --- |"; for (k = 1; k <= nsteps; k++) printf " ---: |"; printf "\n"
    nt = split("host layers-1 layers-10 layers-50 image-10", T, " ")
    for (t = 1; t <= nt; t++) {
        if (!sn[T[t], 1]) continue
        printf "| %s |", T[t]
        for (k = 1; k <= nsteps; k++) {
            m = sn[T[t], k]; for (a = 1; a <= m; a++) v["st", a] = st[T[t], k, a]
            printf " %d |", m ? med("st", m) : -1
        }
        printf "\n"
    }
    printf "\nTargets:\n\n"
    if (crun && n["crun-10"]) {
        r = M["layers-10"] / M["crun-10"]
        printf "- 10 layers ≤ 0.3× crun on the same image: %s (%.2f×: %.2f vs %.2f ms; vs crun on the minbase alone %.2f×, and without its network namespace %.2f×)\n", (r <= 0.3 ? "**met**" : "**missed**"), r, M["layers-10"], M["crun-10"], M["layers-10"] / M["crun-1"], M["layers-10"] / M["crun-1-nonet"]
    } else printf "- 10 layers ≤ 0.3× crun: not measured (crun did not run)\n"
    bound = M["host"] + probe[10] / 1000.0
    printf "- 10 layers ≤ host base + the overlay mount: %s (%.2f ms vs %.2f + %.2f = %.2f ms; excess %.2f ms)\n", (M["layers-10"] <= bound ? "**met**" : "**missed**"), M["layers-10"], M["host"], probe[10] / 1000.0, bound, M["layers-10"] - bound
    bound = M["host+10s"] + probe[10] / 1000.0
    printf "- the same with 10 slices: %s (%.2f ms vs %.2f + %.2f = %.2f ms)\n", (M["layers-10+10s"] <= bound ? "**met**" : "**missed**"), M["layers-10+10s"], M["host+10s"], probe[10] / 1000.0, bound
}' "$WORK/samples"
