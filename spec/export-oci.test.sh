# slicebox export-oci: a stage's layers, slices and config as an OCI image
# layout, read back by umoci, skopeo and layer-add. The crun run is in
# shell-tests/t-export-oci.sh (it differs as root and rootless).
## compare_shells: bash dash mksh zsh busybox

#### an export of --image, --layer and --slice unpacks (umoci) to what the stage sees
export SLICEBOX_STORE=$PWD/store
images=$SLICEBOX_TOOLCHAIN_CACHE/images
mkdir -p x/bin x/lib && printf '#!/bin/sh\necho hi from x\n' > x/bin/hello
chmod +x x/bin/hello && echo data > x/lib/d.txt && ln -s ../lib/d.txt x/bin/link
slice-add x x --at /opt/x >/dev/null
python3 "$SPEC_DIR/layer-tars.py" tools tools.tar
layer-add lay-tools tools.tar >/dev/null
layer-add lay-image "$images/layered-oci" >/dev/null
slicebox export-oci --image lay-image --layer lay-tools --slice x out >/dev/null
umoci unpack --rootless --image out:latest unpacked >/dev/null 2>&1 || echo "umoci unpack failed"
# The layered image's whiteouts, replaced and opaque dirs, the tools
# layer's symlinks over its dirs, and the slice.
describe='for p in $(find bin data etc keep link opq opt | LC_ALL=C sort); do
  if [ -L "$p" ]; then echo "$p -> $(readlink "$p")"
  elif [ -d "$p" ]; then echo "$p/"
  else echo "$p $(sha256sum < "$p" | cut -c1-16)"; fi; done'
(cd unpacked/rootfs && sh -c "$describe") > want.txt
sandbox --no-cwd --chdir / --image lay-image --layer lay-tools --slice x -- "$describe" > got.txt
wc -l < want.txt | tr -d ' '
grep -c '^opt/x/' want.txt
cmp want.txt got.txt && echo same-tree
## STDOUT:
18
6
same-tree
## END

#### skopeo inspect takes the export: its layers, Env, Cmd and the tag
export SLICEBOX_STORE=$PWD/store
mkdir -p x/bin && printf '#!/bin/sh\necho hi\n' > x/bin/hello && chmod +x x/bin/hello
slice-add x x --at /opt/x >/dev/null
slice-env --env 'X_HOME=/opt/x' x >/dev/null
layer-add lay-image "$SLICEBOX_TOOLCHAIN_CACHE/images/layered-oci" >/dev/null
slicebox export-oci --image lay-image --slice x --env FOO=bar --unsetenv SLICEBOX_IMAGE --tag v1 out -- /opt/x/bin/hello >/dev/null
skopeo inspect oci:out:v1 | python3 -c '
import json, sys
v = json.load(sys.stdin)
print(len(v["Layers"]), v["Os"], v["Architecture"] in ("amd64", "arm64"))
print("\n".join(v["Env"]))'
skopeo inspect --config oci:out:v1 | python3 -c '
import json, sys
c = json.load(sys.stdin)
print(c["config"]["Entrypoint"], c["config"]["Cmd"], c["config"]["WorkingDir"], c["config"]["User"], "created" in c)'
skopeo inspect oci:out:latest >/dev/null 2>&1 || echo "no latest: the tag is v1"
## STDOUT:
5 linux True
PATH=/opt/x/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
X_HOME=/opt/x
FOO=bar
['/bin/sh', '-c'] ['/opt/x/bin/hello'] /root 0:0 False
no latest: the tag is v1
## END

#### the same composition exports to the same bytes; images that share a slice share its layer
export SLICEBOX_STORE=$PWD/store
mkdir -p x/bin && echo hi > x/bin/f && slice-add x x --at /opt/x >/dev/null
layer-add lay-image "$SLICEBOX_TOOLCHAIN_CACHE/images/layered-oci" >/dev/null
d1=$(slicebox export-oci --image lay-image --slice x one)
d2=$(slicebox export-oci --image lay-image --slice x two)
test "$d1" = "$d2" && echo same-manifest
grep -c "$d1" one/index.json
cmp one/index.json two/index.json && echo same-index
diff -r one two && echo same-blobs
# A slice's layer is the same blob with or without a base below it.
slicebox export-oci --slice x alone 2>/dev/null >/dev/null
last() { python3 -c 'import json, sys
i = json.load(open(sys.argv[1] + "/index.json"))
m = json.load(open(sys.argv[1] + "/blobs/sha256/" + i["manifests"][0]["digest"][7:]))
print(m["layers"][-1]["digest"], m["layers"][-1]["mediaType"])' "$1"; }
test "$(last one)" = "$(last alone)" && echo shared-slice-layer
last alone | cut -d' ' -f2
## STDOUT:
same-manifest
1
same-index
same-blobs
shared-slice-layer
application/vnd.oci.image.layer.v1.tar
## END

#### layer-add takes an export back: the same stored layers, and a stage on it sees the slice
export SLICEBOX_STORE=$PWD/store
mkdir -p x/bin x/lib && printf '#!/bin/sh\necho hi from x\n' > x/bin/hello
chmod +x x/bin/hello && echo data > x/lib/d.txt
slice-add x x --at /opt/x >/dev/null
python3 "$SPEC_DIR/layer-tars.py" tools tools.tar
layer-add lay-tools tools.tar >/dev/null
layer-add lay-image "$SLICEBOX_TOOLCHAIN_CACHE/images/layered-oci" >/dev/null
slicebox export-oci --image lay-image --slice x out -- 'cat /opt/x/lib/d.txt; /opt/x/bin/hello' >/dev/null
layer-add back out >/dev/null
layers() { layer-show "$1" | grep '^layer' | cut -f1; }
layers lay-image > before.txt
layers back | head -n "$(wc -l < before.txt)" > after.txt
cmp before.txt after.txt && echo "base layers: $(wc -l < before.txt) the same"
layer-show back | grep -E '^(cmd|layer 4)' | cut -f1,4,5 | sed 's/sha256:[0-9a-f]*/LAYER/'
sandbox --no-cwd --chdir / --image back --layer lay-tools
## STDOUT:
base layers: 4 the same
cmd: ["cat /opt/x/lib/d.txt; /opt/x/bin/hello"]
layer 4: LAYER	0 whiteouts	1 opaque dir
data
hi from x
## END

#### export-oci refuses run-time options, a used DIR and an empty composition, and leaves nothing
export SLICEBOX_STORE=$PWD/store
mkdir -p x && echo hi > x/f && slice-add x x --at /opt/x >/dev/null
for option in --bind=/tmp --out=/o=n --uid=0 --net=none; do
  slicebox export-oci "$option" --slice x out 2>err.txt; echo "status=$?"
  head -n 1 err.txt | cut -d';' -f1
done
# Slices alone make an image, with a note of what it lacks.
slicebox export-oci --slice x out 2>&1 >/dev/null; echo "status=$?"
slicebox export-oci --slice x out -- true 2>&1 >/dev/null; echo "status=$?"
mkdir full && touch full/a && touch file
slicebox export-oci --slice x full 2>&1; echo "status=$?"
slicebox export-oci --slice x file 2>&1; echo "status=$?"
slicebox export-oci emptyexport 2>&1; echo "status=$?"
slicebox export-oci --slice x out extra 2>&1 | head -n 1
ls -A | LC_ALL=C sort | tr '\n' ' '; echo
## STDOUT:
status=2
export-oci: --bind sets up a running stage, which an image does not hold
status=2
export-oci: --out sets up a running stage, which an image does not hold
status=2
export-oci: --uid sets up a running stage, which an image does not hold
status=2
export-oci: --net sets up a running stage, which an image does not hold
export-oci: note: no --layer or --image: the image holds only the slices, not the host's /usr, /bin, /lib* and /etc that a stage would see
status=0
export-oci: cannot export to 'out': it exists and is not empty (give a new or empty directory)
status=1
export-oci: cannot export to 'full': it exists and is not empty (give a new or empty directory)
status=1
export-oci: cannot export to 'file': it exists and is not a directory
status=1
export-oci: nothing to export: give --image, --layer or --slice
Usage: slicebox export-oci [OPTIONS] DIR [-- COMMAND [ARG...]]
status=2
export-oci: unexpected 'extra' after DIR: options go before DIR, and the command after DIR --
err.txt file full out store x 
## END
