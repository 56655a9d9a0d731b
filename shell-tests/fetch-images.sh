#!/usr/bin/env bash
# fetch-images.sh - build the real container images the image tests read,
# with Debian's own tools (mmdebstrap, umoci, skopeo):
#
#   <cache>/images/bookworm-minbase.tar   mmdebstrap --variant=minbase, a tarball
#   <cache>/images/debian-oci/            OCI layout: that tarball as one gzip layer
#   <cache>/images/layered-oci/           OCI layout, four layers: the upper ones
#                                         delete (whiteouts), replace, rm -r a dir
#                                         and mkdir it again, and an opaque dir
#   <cache>/images/layered-oci-archive.tar  the same image as an oci-archive
#   <cache>/images/layered-docker.tar     the same image as a docker archive
#   <cache>/images/multi-oci/             OCI layout: an index of an index of two
#                                         platforms (linux/amd64, linux/arm64/v8)
#
# <cache> = ${SLICEBOX_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slicebox-toolchains}
#
# Idempotent and fast when warm: each image is built into a temporary name
# and renamed into place when complete, and one that is there is kept.
# Concurrent runs wait for each other (flock). Missing tools are installed
# with apt-get when running as root. Network: the Debian mirror only (for
# mmdebstrap). The only stdout line is the images dir.

set -euo pipefail

CACHE=${SLICEBOX_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slicebox-toolchains}
IMAGES=$CACHE/images
SUITE=${SLICEBOX_IMAGE_SUITE:-bookworm}
# mmdebstrap's timestamps, so that a rebuild gives the same minbase tar.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

log() { printf 'fetch-images: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$IMAGES" || die "cannot create $IMAGES"
exec 9>"$IMAGES/.lock"
flock 9

outputs=(bookworm-minbase.tar debian-oci/index.json layered-oci/index.json
    layered-oci-archive.tar layered-docker.tar multi-oci/index.json)
missing=0
for out in "${outputs[@]}"; do [ -e "$IMAGES/$out" ] || missing=1; done
if [ "$missing" = 0 ]; then
    echo "$IMAGES"
    exit 0
fi

need_tools() {
    local absent=()
    for tool in mmdebstrap umoci skopeo python3 tar; do
        command -v "$tool" >/dev/null 2>&1 || absent+=("$tool")
    done
    [ ${#absent[@]} = 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing ${absent[*]} with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            mmdebstrap umoci skopeo python3 tar >&2 || die "apt-get install failed"
    else
        die "needs ${absent[*]} (Debian packages: apt-get install mmdebstrap umoci skopeo)"
    fi
}
need_tools

work=$(mktemp -d "$IMAGES/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# image_config LAYOUT:TAG: the config every test image carries.
image_config() {
    umoci config --image "$1" \
        --config.user 0:0 --config.workingdir /root \
        --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --config.env SLICEBOX_IMAGE=test \
        --config.entrypoint /bin/sh --config.entrypoint -c --config.cmd 'echo hello' >&2
}

# place NAME: renames the finished $work/NAME into the cache.
place() {
    # umoci writes index.json 0600: the rootless tests read it too.
    chmod -R a+rX "$work/$1"
    rm -rf "${IMAGES:?}/$1"
    mv "$work/$1" "$IMAGES/$1"
    log "$1: built"
}

if [ ! -e "$IMAGES/bookworm-minbase.tar" ]; then
    log "bookworm-minbase.tar: mmdebstrap --variant=minbase $SUITE (about 30 s)"
    mmdebstrap --quiet --variant=minbase "$SUITE" "$work/bookworm-minbase.tar" >&2 \
        || die "mmdebstrap failed"
    place bookworm-minbase.tar
fi

if [ ! -e "$IMAGES/debian-oci/index.json" ]; then
    umoci init --layout "$work/debian-oci" >&2
    umoci new --image "$work/debian-oci:latest" >&2
    umoci raw add-layer --image "$work/debian-oci:latest" "$IMAGES/bookworm-minbase.tar" >&2
    image_config "$work/debian-oci:latest"
    place debian-oci
fi

build_layered() {
    local image=$work/layered-oci:latest bundle=$work/bundle
    umoci init --layout "$work/layered-oci" >&2
    umoci new --image "$image" >&2
    umoci unpack --rootless --image "$image" "$bundle" >&2
    local root=$bundle/rootfs
    mkdir -p "$root/bin" "$root/data/sub" "$root/etc" "$root/keep" "$root/opq/keepdir"
    printf '#!/bin/sh\necho tool\n' >"$root/bin/tool" && chmod 755 "$root/bin/tool"
    echo a >"$root/data/a"; echo b >"$root/data/b"; echo c >"$root/data/sub/c"
    echo original >"$root/etc/config.txt"
    echo x >"$root/keep/x"; echo y >"$root/keep/y"
    echo old1 >"$root/opq/old1"; echo old2 >"$root/opq/keepdir/old2"
    ln -s data/a "$root/link"
    umoci repack --refresh-bundle --image "$image" "$bundle" >&2
    # Layer 2: rm -r a directory, replace a file, delete one, retarget a link.
    rm -r "$root/data" "$root/keep/x"
    echo replaced >"$root/etc/config.txt" && chmod 600 "$root/etc/config.txt"
    ln -sfn keep/y "$root/link"
    umoci repack --refresh-bundle --image "$image" "$bundle" >&2
    # Layer 3: mkdir the removed directory again.
    mkdir "$root/data" && echo fresh >"$root/data/new"
    umoci repack --refresh-bundle --image "$image" "$bundle" >&2
    # Layer 4: an opaque directory, as a hand-made tar (umoci repack writes
    # whiteouts for each file instead).
    mkdir -p "$work/opaque/opq"
    echo new1 >"$work/opaque/opq/new1"
    : >"$work/opaque/opq/.wh..wh..opq"
    tar -C "$work/opaque" --owner=0 --group=0 -cf "$work/opaque.tar" opq
    umoci raw add-layer --image "$image" "$work/opaque.tar" >&2
    image_config "$image"
    place layered-oci
}
[ -e "$IMAGES/layered-oci/index.json" ] || build_layered

if [ ! -e "$IMAGES/layered-oci-archive.tar" ]; then
    skopeo copy --quiet "oci:$IMAGES/layered-oci:latest" \
        "oci-archive:$work/layered-oci-archive.tar:latest" >&2
    place layered-oci-archive.tar
fi

if [ ! -e "$IMAGES/layered-docker.tar" ]; then
    skopeo copy --quiet "oci:$IMAGES/layered-oci:latest" \
        "docker-archive:$work/layered-docker.tar:slicebox/layered:latest" >&2
    place layered-docker.tar
fi

# multi-oci: the layered image for amd64 and for arm64 (its config says
# so), listed by an index that index.json names: an index of an index.
if [ ! -e "$IMAGES/multi-oci/index.json" ]; then
    cp -a "$IMAGES/layered-oci" "$work/multi-oci"
    umoci config --image "$work/multi-oci:latest" --tag arm --architecture arm64 >&2
    python3 - "$work/multi-oci" <<'EOF'
import hashlib, json, os, sys
layout = sys.argv[1]
refs = {m["annotations"]["org.opencontainers.image.ref.name"]: m
        for m in json.load(open(os.path.join(layout, "index.json")))["manifests"]}
platforms = {"latest": {"os": "linux", "architecture": "amd64"},
             "arm": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
inner = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": refs[t]["mediaType"], "digest": refs[t]["digest"],
                        "size": refs[t]["size"], "platform": p} for t, p in platforms.items()]}
data = json.dumps(inner).encode()
digest = hashlib.sha256(data).hexdigest()
open(os.path.join(layout, "blobs/sha256", digest), "wb").write(data)
top = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
       "manifests": [{"mediaType": inner["mediaType"], "digest": "sha256:" + digest,
                      "size": len(data)}]}
json.dump(top, open(os.path.join(layout, "index.json"), "w"))
EOF
    place multi-oci
fi

echo "$IMAGES"
