#!/usr/bin/env bash
# bench/image.sh [IMAGES_DIR]
#
# What reading an image costs (src/store/image, through
# examples/image_read.rs), each against its peer, in ONE hyperfine run:
#
#   open_image of the Debian minbase OCI layout (index, manifest, config,
#     the layer blob found and sized)   vs  skopeo inspect --config of it
#   open_image of the four-layer oci-archive and docker archive (the
#     archive's headers indexed)        vs  the same on the layout
#   a verified read of the minbase layer blob (63 MB gzip)  vs  sha256sum
#   the layer as a tar: gunzip, the blob's sha256 and the DiffID
#                                       vs  gzip -dc | sha256sum, and
#                                           gzip -dc >/dev/null
#
# IMAGES_DIR defaults to what shell-tests/fetch-images.sh prints (it builds
# the images when missing). Environment: BENCH_RUNS=10. Prints hyperfine's
# markdown table; docs/performance.md quotes it.
set -euo pipefail
export LC_ALL=C
REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${BENCH_RUNS:-10}
die() { echo "image.sh: $*" >&2; exit 1; }
command -v hyperfine >/dev/null || die "hyperfine missing"
command -v skopeo >/dev/null || die "skopeo missing"
# As `make test` sets it: the machine-wide cache as root.
[ "$(id -u)" = 0 ] && export SLICEBOX_TOOLCHAIN_CACHE=${SLICEBOX_TOOLCHAIN_CACHE:-/var/cache/slicebox-toolchains}
IMAGES=${1:-$(bash "$REPO/shell-tests/fetch-images.sh")}
(cd "$REPO" && cargo build --release --example image_read >&2)
READ=$REPO/target/release/examples/image_read
OCI=$IMAGES/debian-oci
BLOB=$(python3 - "$OCI" <<'PY'
import json, sys
layout = sys.argv[1]
def blob(d): return f"{layout}/blobs/sha256/{d['digest'][7:]}"
manifest = json.load(open(blob(json.load(open(f"{layout}/index.json"))["manifests"][0])))
print(blob(manifest["layers"][0]))
PY
)
echo "image.sh: $(nproc) cpus, layer blob $(stat -c %s "$BLOB") bytes, $RUNS runs each" >&2
cat "$BLOB" >/dev/null # warm the page cache: every command reads it warm
TABLE=$(mktemp)
trap 'rm -f "$TABLE"' EXIT
hyperfine --style basic --warmup 2 --runs "$RUNS" --export-markdown "$TABLE" \
    -n "open_image debian-oci" "$READ open $OCI" \
    -n "skopeo inspect --config debian-oci" "skopeo inspect --config oci:$OCI" \
    -n "open_image layered-oci" "$READ open $IMAGES/layered-oci" \
    -n "open_image layered-oci-archive.tar" "$READ open $IMAGES/layered-oci-archive.tar" \
    -n "open_image layered-docker.tar" "$READ open $IMAGES/layered-docker.tar" \
    -n "verified read of the blob" "$READ verify $OCI" \
    -n "sha256sum of the blob" "sha256sum $BLOB" \
    -n "open_tar: gunzip + blob sha256 + DiffID" "$READ tar $OCI" \
    -n "gzip -dc | sha256sum" "gzip -dc $BLOB | sha256sum" \
    -n "gzip -dc >/dev/null" "gzip -dc $BLOB >/dev/null" \
    >&2
cat "$TABLE"
