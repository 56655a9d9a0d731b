#!/usr/bin/env bash
# bench/layer-add.sh [TAR] [SLICEBOX_BIN] [IMAGE]
#
# layer-add of a root filesystem tarball against `tar -xpf` of it plus a
# sync (what a layer costs to unpack durably), and a re-add of the same
# tarball; layer-add of the same system as an OCI image (one gzip layer)
# against `umoci unpack --rootless` of it and `gzip -dc | tar -x` of its
# blob, each plus a sync, and a re-add of the image; in ONE hyperfine run
# (only same-run ratios are compared). layer-add builds the layer's tree
# too (hardlinks to the objects), then syncs the filesystem once.
#
#   TAR           the layer (default: the Debian minbase made by mmdebstrap,
#                 /var/cache/slicebox-toolchains/images/bookworm-minbase.tar)
#   SLICEBOX_BIN  slicebox binary (default <repo>/target/dist/slicebox)
#   IMAGE         an OCI layout of it (default: debian-oci beside TAR, as
#                 shell-tests/fetch-images.sh makes it)
#
# Environment: BENCH_DIR=/var/tmp (parent of the scratch dir; not tmpfs),
# BENCH_RUNS=5 (hyperfine runs per command), BENCH_KEEP=1 keeps the dir.
#
# Timed, medians: `tar -xpf` into a fresh dir then `sync`; `layer-add`
# into a fresh store (it syncs the filesystem once before publishing);
# `layer-add` of the same tarball into the store that has it (the blob
# digest is known: the tarball is hashed, not unpacked).
set -euo pipefail
export LC_ALL=C
SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(dirname "$(dirname "$SELF")")
TAR=$(readlink -f "${1:-/var/cache/slicebox-toolchains/images/bookworm-minbase.tar}")
SB=$(readlink -f "${2:-$REPO/target/dist/slicebox}")
RUNS=${BENCH_RUNS:-5}
PARENT=${BENCH_DIR:-/var/tmp}
die() { echo "layer-add.sh: $*" >&2; exit 1; }
command -v hyperfine >/dev/null || die "hyperfine missing"
command -v jq >/dev/null || die "jq missing"
[[ -x $SB ]] || die "no slicebox at $SB (make build)"
[[ -f $TAR ]] || die "no tarball at $TAR"
IMAGE=$(readlink -f "${3:-$(dirname "$TAR")/debian-oci}")
[[ -f $IMAGE/index.json ]] || die "no OCI layout at $IMAGE"
command -v umoci >/dev/null || die "umoci missing"
BLOB=$IMAGE/blobs/sha256/$(python3 -c '
import json, sys
index = json.load(open(sys.argv[1] + "/index.json"))
digest = index["manifests"][0]["digest"].split(":")[1]
manifest = json.load(open(sys.argv[1] + "/blobs/sha256/" + digest))
print(manifest["layers"][0]["digest"].split(":")[1])' "$IMAGE")
[[ $(df --output=fstype "$PARENT" | tail -1 | tr -d ' ') != tmpfs ]] || die "$PARENT is tmpfs; set BENCH_DIR"

W=$(mktemp -d "$PARENT/slicebox-layer-bench.XXXXXX")
cleanup() { [[ -n ${BENCH_KEEP:-} ]] || { chmod -R u+w "$W" 2>/dev/null || true; rm -rf "$W"; }; }
trap cleanup EXIT
cat "$TAR" "$BLOB" >/dev/null # in the page cache, for every command alike
SLICEBOX_STORE=$W/kept "$SB" layer-add base "$TAR" >/dev/null 2>&1
SLICEBOX_STORE=$W/kept-image "$SB" layer-add image "$IMAGE" >/dev/null 2>&1

hyperfine --runs "$RUNS" --warmup 1 --export-json "$W/times.json" \
    --prepare "chmod -R u+w '$W/x' 2>/dev/null; rm -rf '$W/x'; mkdir '$W/x'; sync" \
    -n "tar -xpf + sync" "tar -xpf '$TAR' -C '$W/x' && sync" \
    --prepare "rm -rf '$W/fresh'; sync" \
    -n "layer-add, fresh store" "SLICEBOX_STORE='$W/fresh' '$SB' layer-add base '$TAR' 2>/dev/null" \
    --prepare "sync" \
    -n "layer-add again (stored)" "SLICEBOX_STORE='$W/kept' '$SB' layer-add base '$TAR'" \
    --prepare "chmod -R u+w '$W/u' 2>/dev/null; rm -rf '$W/u'; sync" \
    -n "umoci unpack --rootless + sync" "umoci unpack --rootless --image '$IMAGE:latest' '$W/u' >/dev/null && sync" \
    --prepare "chmod -R u+w '$W/x' 2>/dev/null; rm -rf '$W/x'; mkdir '$W/x'; sync" \
    -n "gzip -dc blob | tar -x + sync" "gzip -dc '$BLOB' | tar -x -C '$W/x' && sync" \
    --prepare "rm -rf '$W/fresh-image'; sync" \
    -n "layer-add IMAGE, fresh store" "SLICEBOX_STORE='$W/fresh-image' '$SB' layer-add image '$IMAGE' 2>/dev/null" \
    --prepare "sync" \
    -n "layer-add IMAGE again (stored)" "SLICEBOX_STORE='$W/kept-image' '$SB' layer-add image '$IMAGE'" >&2

echo "| command | median | × tar -xpf + sync |"
echo "| --- | ---: | ---: |"
jq -r '(.results[0].median) as $base | .results[]
    | "| \(.command) | \(.median * 1000 | round) ms | \(.median / $base * 1000 | round / 1000) |"' "$W/times.json"
