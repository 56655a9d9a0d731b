#!/usr/bin/env bash
# bench/ingest.sh [FILES] [SLICEBOX_BIN]
#
# What re-adding an unchanged tree costs with the store's stat cache,
# against cp -a of the same tree, and what adding an archive costs,
# against tar -x of the same archive, in ONE hyperfine run (only same-run
# ratios are compared: this VM's writeback swings absolute times).
#
#   FILES         files in the generated tree (default 10000: 100 dirs,
#                 sizes 1 to 16 KiB, about 80 MB)
#   SLICEBOX_BIN  slicebox binary (default <repo>/target/dist/slicebox)
#
# Environment: BENCH_DIR=/var/tmp (parent of the scratch dir; not tmpfs),
# BENCH_RUNS=10 (hyperfine runs per command), BENCH_KEEP=1 keeps the dir,
# BENCH_TAR=FILE the archive to add (default: a tar of the generated
# tree; e.g. `tar -cf py.tar -C "$(pyenv root)/versions" 3.11.7`),
# BENCH_OLD_BIN=FILE an older slicebox to time alongside.
#
# Timed, medians, in one hyperfine run: `cp -a` of the tree into a fresh
# dir; `slice-add` of the tree into a fresh store (reads every file; with
# BENCH_OLD_BIN, the same with that binary too); a `sandbox --cache` stage
# whose output is cached, run in the tree (its working directory is stored
# again at every run) with the stat cache emptied before each run; the
# same with the stat cache kept (it vouches for every file); `tar -xf` of
# the archive into a fresh dir; `slice-add` of the archive into a fresh
# store (and with BENCH_OLD_BIN). The tree is made more than 2 s before
# the first run, so no file is racily clean. Untimed, each binary's peak
# memory adding the archive (GNU time's maximum RSS).
command -v /usr/bin/time >/dev/null || { echo "ingest.sh: /usr/bin/time missing" >&2; exit 1; }
set -euo pipefail
export LC_ALL=C
SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(dirname "$(dirname "$SELF")")
FILES=${1:-10000}
SB=$(readlink -f "${2:-$REPO/target/dist/slicebox}")
RUNS=${BENCH_RUNS:-10}
PARENT=${BENCH_DIR:-/var/tmp}
die() { echo "ingest.sh: $*" >&2; exit 1; }
command -v hyperfine >/dev/null || die "hyperfine missing"
command -v jq >/dev/null || die "jq missing"
[[ -x $SB ]] || die "no slicebox at $SB (make build)"
[[ $(df --output=fstype "$PARENT" | tail -1 | tr -d ' ') != tmpfs ]] || die "$PARENT is tmpfs; set BENCH_DIR"

W=$(mktemp -d "$PARENT/slicebox-ingest-bench.XXXXXX")
cleanup() { [[ -n ${BENCH_KEEP:-} ]] || { chmod -R u+w "$W" 2>/dev/null || true; rm -rf "$W"; }; }
trap cleanup EXIT
python3 - "$W/src" "$FILES" <<'PY'
import os, random, sys
top, files = sys.argv[1], int(sys.argv[2])
random.seed(13)
for i in range(files):
    d = f"{top}/d{i % 100:02d}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i}", "wb") as out:
        out.write(random.randbytes(random.randint(1, 16) * 1024))
PY
TAR=${BENCH_TAR:-$W/src.tar}
[[ -n ${BENCH_TAR:-} ]] || tar -cf "$TAR" -C "$W" src
TAR=$(readlink -f "$TAR")
sleep 3
export SLICEBOX_STORE=$W/store
stage=("$SB" sandbox --net none --clearenv --out /opt/o=o --cache -- true)
(cd "$W/src" && "${stage[@]}" && "${stage[@]}") 2>/dev/null # the output, then the stat cache
sync

# fresh_add LABEL ARGS: `slice-add ARGS` into a fresh store, timed with
# this binary and (when given) with BENCH_OLD_BIN.
fresh_add() {
    local runs=("$1" "$SB")
    [[ -z ${BENCH_OLD_BIN:-} ]] || runs+=("$1, BENCH_OLD_BIN" "$(readlink -f "$BENCH_OLD_BIN")")
    set -- "$2" "${runs[@]}"
    local what=$1
    shift
    while (($#)); do
        args+=(--prepare "chmod -R u+w '$W/fresh' 2>/dev/null; rm -rf '$W/fresh'; sync"
            -n "$1" "SLICEBOX_STORE='$W/fresh' '$2' slice-add $what")
        shift 2
    done
}
args=(--prepare "rm -rf '$W/copy'; sync" -n "cp -a" "cp -a '$W/src' '$W/copy'")
fresh_add "slice-add, fresh store" "t '$W/src'"
args+=(--prepare "rm -rf '$W/store/stat-cache'; sync"
    -n "sandbox --cache, unchanged tree, no stat cache" "cd '$W/src' && ${stage[*]} 2>/dev/null"
    --prepare "sync"
    -n "sandbox --cache, unchanged tree, stat cache" "cd '$W/src' && ${stage[*]} 2>/dev/null"
    --prepare "chmod -R u+w '$W/x' 2>/dev/null; rm -rf '$W/x'; mkdir '$W/x'; sync"
    -n "tar -x" "tar -xf '$TAR' -C '$W/x'")
fresh_add "slice-add archive, fresh store" "a '$TAR' --at /opt/a"
hyperfine --runs "$RUNS" --warmup 1 --export-json "$W/times.json" "${args[@]}" >&2

size=$(du -sh "$W/src" | cut -f1)
echo "Tree: $FILES files in 100 dirs, $size; $(nproc) CPUs; $(date -u +%F)."
echo
# table BASE PATTERN: the commands matching PATTERN against BASE's median.
table() {
    local base
    base=$(jq --arg b "$1" '.results[] | select(.command == $b) | .median' "$W/times.json")
    echo "| command | median | × $1 |"
    echo "| --- | ---: | ---: |"
    jq -r --argjson base "$base" --arg p "$2" '.results[] | select(.command | test($p)) |
        "| \(.command) | \(.median * 1000 | floor) ms | \(.median / $base * 1000 | round / 1000) |"' \
        "$W/times.json"
}
table "cp -a" '^(cp|sandbox|slice-add, )'
echo
entries=$(tar -tf "$TAR" | wc -l)
echo "Archive: $(basename "$TAR"), $entries entries, $(du -h "$TAR" | cut -f1)."
echo
table "tar -x" '^(tar|slice-add archive)'
echo
peak() { # BIN: the maximum RSS of slice-add of the archive into a fresh store, in kB
    chmod -R u+w "$W/fresh" 2>/dev/null || true
    rm -rf "$W/fresh"
    SLICEBOX_STORE=$W/fresh /usr/bin/time -f %M "$1" slice-add a "$TAR" --at /opt/a 2>&1 >/dev/null | tail -1
}
echo "Peak memory (maximum RSS) adding the archive: $(peak "$SB") kB${BENCH_OLD_BIN:+; BENCH_OLD_BIN: $(peak "$(readlink -f "$BENCH_OLD_BIN")") kB}."
