# layer-add, layer-list, layer-show, layer-rm: tarballs, whiteouts, hostile
# layers, gc and verify, and a real root filesystem.
## compare_shells: bash dash mksh zsh busybox

#### layer-add, layer-list, layer-show, layer-rm; a re-add is a no-op
python3 "$SPEC_DIR/layer-tars.py" whiteouts w.tar
d1=$(layer-add lay-basic w.tar)
echo "$d1" | grep -Ec '^sha256:[0-9a-f]{64}$'
d2=$(layer-add lay-basic w.tar)
test "$d1" = "$d2" && echo same-stack
layer-list | grep '^lay-basic	' | sed "s/$d1/STACK/"
layer-show --files lay-basic | tail -n +3
layer-show --json lay-basic | python3 -c '
import json, sys
v = json.load(sys.stdin)
l = v["layers"][0]
print(len(v["layers"]), l["entries"], l["whiteouts"], l["opaque_dirs"], l["bytes"])'
layer-rm lay-basic && echo removed
layer-show lay-basic; echo "status=$?"
n=$(layer-list | grep -c '^lay-basic	'); echo "$n"
## STDOUT:
1
same-stack
lay-basic	STACK	1 layer
drwxr-xr-x 0/0 0 d
w--------- 0/0 0 d/gone
-rwsr-xr-x 1000/100 5 d/kept
drwxr-x--- 0/0 0 e (opaque)
-rw-r--r-- 0/0 4 e/hard link to e/new
-rw-r--r-- 0/0 4 e/new
1 6 1 1 13
removed
status=1
0
## END

#### the same layer from a file, gzip, zstd and stdin is one layer
python3 "$SPEC_DIR/layer-tars.py" whiteouts w.tar
gzip -k w.tar
zstd -q -k w.tar
a=$(layer-add lay-f w.tar)
b=$(layer-add lay-gz w.tar.gz)
c=$(layer-add lay-zst w.tar.zst)
d=$(layer-add lay-in - < w.tar)
test "$a" = "$b" && test "$a" = "$c" && test "$a" = "$d" && echo one-stack
layer-show lay-gz | sed -n 2p | cut -f1 > g
layer-show lay-f | sed -n 2p | cut -f1 > f
cmp f g && echo one-layer
## STDOUT:
one-stack
one-layer
## END

#### hostile layers are refused, naming the entry, and add nothing
export SLICEBOX_STORE=$PWD/store
for kind in $(python3 "$SPEC_DIR/layer-tars.py" kinds); do
  python3 "$SPEC_DIR/layer-tars.py" hostile "$kind" "$kind.tar"
  layer-add "lay-$kind" "$kind.tar" 2>err.txt
  echo "$kind status=$?"
  sed 's/^layer-add: //' err.txt
done
layer-list | wc -l | tr -d ' '
find store/objects store/layers -type f | wc -l | tr -d ' '
## STDOUT:
whiteout-dotdot status=1
cannot add 'whiteout-dotdot.tar': entry 'a/.wh...' is a whiteout that names '..', outside its directory; nothing was added
whiteout-outside status=1
cannot add 'whiteout-outside.tar': entry '../.wh.x' contains '..'; nothing was added
whiteout-root status=1
cannot add 'whiteout-root.tar': entry '.wh..wh..opq' makes the layer root opaque, which would hide every lower layer; nothing was added
whiteout-self status=1
cannot add 'whiteout-self.tar': entry 'a/.wh.' is a whiteout that names its own directory; nothing was added
device-outside-dev status=1
cannot add 'device-outside-dev.tar': entry 'etc/null' is a device node or fifo outside /dev; nothing was added
absolute status=1
cannot add 'absolute.tar': entry '/etc/passwd' is an absolute path; nothing was added
hardlink-escape status=1
cannot add 'hardlink-escape.tar': entry 'a' is a hardlink to '../../etc/passwd', which is not an earlier regular file of this layer; nothing was added
below-symlink status=1
cannot add 'below-symlink.tar': entry 'a/passwd' lies below a symlink of the layer; nothing was added
overlay-xattr status=1
cannot add 'overlay-xattr.tar': entry 'd/' carries the OverlayFS attribute 'trusted.overlay.redirect', which only slicebox sets; nothing was added
twice status=1
cannot add 'twice.tar': entry 'f' appears twice in the layer; nothing was added
0
0
## END

#### slice-gc keeps the objects a layer uses and frees them once it is removed
export SLICEBOX_STORE=$PWD/store
mkdir -p src/d
printf 'only in this layer\n' > src/d/f
tar -cf l.tar -C src .
layer-add lay-gc l.tar >/dev/null
slice-gc >/dev/null
slice-verify >/dev/null && echo verified
find store/objects -type f | wc -l | tr -d ' '
layer-rm lay-gc
slice-gc
find store/objects store/layers store/layer-stacks store/layer-blobs store/layer-trees ! -type d | wc -l | tr -d ' '
## STDOUT:
verified
1
removed 0 slices, 1 object and 4 unused layer files, freed 19 B
0
## END

#### slice-verify names a missing object of a layer
export SLICEBOX_STORE=$PWD/store
mkdir src
echo data > src/f
tar -cf l.tar -C src .
layer-add lay-v l.tar >/dev/null
rm -f store/objects/*/*
slice-verify >out.txt; echo "status=$?"
grep -c 'is missing, and the layer sha256:' out.txt
## STDOUT:
status=1
1
## END

#### --from-upper: 0/0 character devices are whiteouts, opaque dirs are kept
export SLICEBOX_STORE=$PWD/store
mkdir -p up/gone-parent up/op
echo new > up/op/f
mknod up/gone-parent/x c 0 0 2>/dev/null || { echo "mknod refused"; exit 1; }
python3 -c '
import os
try:
    os.setxattr("up/op", "trusted.overlay.opaque", b"y")
except PermissionError:
    os.setxattr("up/op", "user.overlay.opaque", b"y")'
layer-add --from-upper up lay-up >/dev/null
layer-show --files lay-up | tail -n +3 | cut -d' ' -f1,4-
# A fifo: what an unprivileged user can make, and as foreign to a layer.
mkfifo up/op/dev-elsewhere || echo "mkfifo refused"
layer-add --from-upper up lay-up2 2>&1 | sed "s,'[^']*/up',UP,"
## STDOUT:
drwxr-xr-x gone-parent
w--------- gone-parent/x
drwxr-xr-x op (opaque)
-rw-r--r-- op/f
layer-add: cannot add 'up': entry 'op/dev-elsewhere' is a device node or fifo outside /dev; nothing was added
## END

#### a Debian minbase root filesystem: the listing is tar -tv's, /dev nodes skipped
image=$SLICEBOX_TOOLCHAIN_CACHE/images/bookworm-minbase.tar
test -f "$image" || { echo "missing $image"; exit 1; }
export SLICEBOX_STORE=$PWD/store
layer-add lay-minbase "$image" 2>err.txt >/dev/null
cat err.txt
python3 "$SPEC_DIR/layer-tars.py" tv "$image" > want.txt
layer-show --files lay-minbase | tail -n +3 > got.txt
wc -l < want.txt | tr -d ' '
cmp want.txt got.txt && echo same-listing
grep -c '^-rws' got.txt | awk '$1 > 0 { print "setuid kept" }'
# It is a root a stage runs on: Debian's own tools, its own /etc.
sandbox --layer lay-minbase -- sh -c '. /etc/os-release; echo "$VERSION_CODENAME"
  dpkg-query -W -f "\${Package}\n" dpkg; apt-get --version | head -n 1 | cut -d" " -f1'
# dpkg -i as root over the base, kept with --upper, becomes a layer.
mkdir -p pkg/DEBIAN pkg/usr/share/hello-sb && chmod 755 pkg pkg/DEBIAN
echo hi > pkg/usr/share/hello-sb/greeting
printf 'Package: hello-sb\nVersion: 1\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: a test package\n' > pkg/DEBIAN/control
root_path=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
sandbox --layer lay-minbase --uid 0 --gid 0 --env "$root_path" --upper up -- sh -c '
  dpkg-deb -b pkg /tmp/p.deb >/dev/null && dpkg -i /tmp/p.deb >/dev/null && echo installed'
layer-add --from-upper up lay-hello >/dev/null
sandbox --layer lay-minbase --layer lay-hello -- sh -c '
  dpkg-query -W -f "\${Package}: \${Status}\n" hello-sb; cat /usr/share/hello-sb/greeting'
sandbox --layer lay-minbase -- sh -c 'test -e /usr/share/hello-sb || echo "not in the base"'
## STDOUT:
layer-add: lay-minbase: skipped 8 device nodes under /dev (every stage gets its own /dev)
8734
same-listing
setuid kept
bookworm
dpkg
apt
installed
hello-sb: install ok installed
hi
not in the base
## END

#### sandbox --layer: the layers are the root, bottom first; whiteouts hide, opaque dirs replace
export SLICEBOX_STORE=$PWD/store
for l in tools lower whiteouts; do
  python3 "$SPEC_DIR/layer-tars.py" "$l" "$l.tar"
  layer-add "lay-$l" "$l.tar" >/dev/null
done
sandbox --layer lay-tools --layer lay-lower --layer lay-whiteouts -- sh -c '
  ls /d /e; cat /d/kept /e/new
  test -e /etc/passwd || echo "no host /etc"
  test -e /usr/bin/env || echo "no host /usr"'
echo "status=$?"
# The same layers in the other order: the lower layer's files are on top.
sandbox --layer lay-tools --layer lay-whiteouts --layer lay-lower -- ls /d /e
## STDOUT:
/d:
kept

/e:
hard
new
kept
new
no host /etc
no host /usr
status=0
/d:
gone
kept

/e:
hard
new
old
## END

#### sandbox --layer: the root is writable, and what a stage writes is gone when it ends
export SLICEBOX_STORE=$PWD/store
python3 "$SPEC_DIR/layer-tars.py" tools tools.tar
layer-add lay-tools tools.tar >/dev/null
# A layer's 0644 file is the caller's, as root's is root's in the image:
# writable, through a copy-up, so the stored object is as it was.
sandbox --layer lay-tools -- sh -c 'echo one > /new && mkdir -p /usr/x && cat /new
  echo two >> /etc/motd && cat /etc/motd'
sandbox --layer lay-tools -- sh -c 'test -e /new || echo "/new is gone"
  test -e /usr/x || echo "/usr/x is gone"; cat /etc/motd'
sandbox --layer lay-tools --uid 0 -- sh -c 'id -u; stat -c "%A %u" /etc/motd'
slice-verify && echo "store sound"
## STDOUT:
one
hello
two
/new is gone
/usr/x is gone
hello
0
-rw-r--r-- 0
store sound
## END

#### sandbox --layer: a layer's symlinks at the stage's mount points are never followed out
export SLICEBOX_STORE=$PWD/store
python3 "$SPEC_DIR/layer-tars.py" tools tools.tar
layer-add lay-tools tools.tar >/dev/null
mkdir -p host-dir && echo secret > host-dir/file
python3 "$SPEC_DIR/layer-tars.py" link tmp /etc link-tmp.tar
python3 "$SPEC_DIR/layer-tars.py" link proc "$PWD/host-dir" link-proc.tar
python3 "$SPEC_DIR/layer-tars.py" link dev / link-dev.tar
python3 "$SPEC_DIR/layer-tars.py" link opt "$PWD/host-dir" link-opt.tar
for name in tmp proc dev opt; do
  layer-add "lay-link-$name" "link-$name.tar" >/dev/null
done
mkdir -p src && echo bound > src/f
for name in tmp proc dev; do
  out=$(sandbox --layer lay-tools --layer "lay-link-$name" -- cat /etc/passwd 2>&1)
  echo "status=$?"
  echo "$out"
done
# A bind destination through the layer's link to a host path is refused
# too, and the host dir is as it was.
sandbox --layer lay-tools --layer lay-link-opt --bind "$PWD/src:/opt/b" -- cat /opt/b/f 2>&1 | sed "s,$PWD,CASE,"
cat host-dir/file; ls host-dir
## STDOUT:
status=125
sandbox: cannot mount tmpfs on /tmp: '/tmp' is a symbolic link, and mount points are never resolved through one
status=125
sandbox: cannot mount proc on /proc: '/proc' is a symbolic link, and mount points are never resolved through one
status=125
sandbox: cannot mount tmpfs on /dev: '/dev' is a symbolic link, and mount points are never resolved through one
sandbox: cannot bind 'CASE/src' at '/opt/b': '/opt' is a symbolic link, and mount points are never resolved through one
secret
file
## END

#### sandbox --layer: a running stage keeps its layers through layer-rm and slice-gc
export SLICEBOX_STORE=$PWD/store
python3 "$SPEC_DIR/layer-tars.py" tools tools.tar
layer-add lay-tools tools.tar >/dev/null
sandbox --layer lay-tools -- sh -c 'sleep 2; cat /usr/bin/busybox | wc -c' > size.txt &
sleep 1
layer-rm lay-tools && slice-gc >/dev/null && echo collected
wait
test "$(cat size.txt)" -gt 100000 && echo "the stage read its layer"
slice-gc >/dev/null
ls "$SLICEBOX_STORE/layer-trees" | wc -l
sandbox --layer lay-tools -- true 2>&1 | sed "s,$PWD,CASE,"
## STDOUT:
collected
the stage read its layer
0
sandbox: cannot use layer 'lay-tools': no layer 'lay-tools' in the store 'CASE/store' (layer-list lists the layer names)
## END

#### layer-add of an image: an OCI layout, an oci-archive and a docker archive are one stack
export SLICEBOX_STORE=$PWD/store
images=$SLICEBOX_TOOLCHAIN_CACHE/images
a=$(layer-add lay-oci "$images/layered-oci")
b=$(layer-add lay-archive "$images/layered-oci-archive.tar")
c=$(layer-add lay-docker "$images/layered-docker.tar")
test "$a" = "$b" && test "$a" = "$c" && echo one-stack
layer-show lay-oci | grep -E '^(workdir|user|entrypoint|cmd):'
layer-show lay-oci | grep -c '^layer '
# Its whiteouts, opaque dir and replaced files, seen from a stage.
python3 "$SPEC_DIR/layer-tars.py" tools tools.tar
layer-add lay-tools tools.tar >/dev/null
sandbox --layer lay-tools --layer lay-oci -- sh -c 'cd /; ls data keep opq; readlink link'
# Several platforms: the host's by default, another asked for, none is an error.
layer-add --platform linux/arm64 lay-arm "$images/multi-oci" >/dev/null && echo arm-added
layer-add --platform linux/s390x lay-s390x "$images/multi-oci" 2>&1 | sed 's/.*: index.json: //'
layer-add --platform linux/arm64 lay-bad tools.tar 2>&1 | head -n 1
## STDOUT:
one-stack
workdir: /root
user: 0:0
entrypoint: ["/bin/sh","-c"]
cmd: ["echo hello"]
4
data:
new

keep:
y

opq:
new1
keep/y
arm-added
it has no image for the platform linux/s390x; it has: linux/amd64, linux/arm64/v8
layer-add: --platform is for an image SOURCE
## END

#### layer-add of an image whose blob is not what its manifest says names it and makes no name
export SLICEBOX_STORE=$PWD/store
cp -r "$SLICEBOX_TOOLCHAIN_CACHE/images/layered-oci" img
chmod -R u+w img
# The top layer's blob: same size, one byte changed (gzip's trailer).
top=$(python3 -c '
import json
index = json.load(open("img/index.json"))
digest = index["manifests"][0]["digest"].split(":")[1]
manifest = json.load(open("img/blobs/sha256/" + digest))
print(manifest["layers"][-1]["digest"].split(":")[1])')
python3 -c '
import sys
path = "img/blobs/sha256/" + sys.argv[1]
data = bytearray(open(path, "rb").read())
data[-1] ^= 1
open(path, "wb").write(bytes(data))' "$top"
out=$(layer-add lay-bad img 2>&1)
echo "status=$?"
echo "$out" | sed "s,$top,TOP,; s,sha256:[0-9a-f]*,DIGEST,g"
n=$(layer-list | grep -c lay-bad); echo "$n"
## STDOUT:
status=1
layer-add: cannot add 'img (blobs/sha256/TOP)': its bytes hash to DIGEST, not to the digest DIGEST the manifest names; nothing was added
0
## END

#### sandbox --image: the image's Entrypoint, Cmd, Env, WorkingDir and User, unless an option says otherwise
export SLICEBOX_STORE=$PWD/store
python3 "$SPEC_DIR/layer-tars.py" image img
layer-add app img >/dev/null
sandbox --image app
sandbox --image app -- 'echo "operands replace Cmd: $GREETING"'
sandbox --image app --env GREETING=overridden --chdir / --uid 7 -- 'echo "$GREETING in $PWD as $(id -u)"'
# --layer goes on top of the image's layers.
python3 "$SPEC_DIR/layer-tars.py" whiteouts w.tar
layer-add extra w.tar >/dev/null
sandbox --image app --layer extra -- 'cat /d/kept'
# A stack from a tarball has no config to take.
out=$(sandbox --image extra 2>&1); echo "status=$?"; echo "$out"
## STDOUT:
from the image in /srv/app as 0
operands replace Cmd: from the image
overridden in / as 7
kept
status=125
sandbox: cannot use image 'extra': it has no image config (it was added from a layer tarball: use --layer)
## END

#### sandbox --upper DIR keeps a stage's changes, and layer-add --from-upper makes them a layer
export SLICEBOX_STORE=$PWD/store
for l in tools lower; do
  python3 "$SPEC_DIR/layer-tars.py" "$l" "$l.tar"
  layer-add "lay-$l" "$l.tar" >/dev/null
done
sandbox --no-cwd --layer lay-tools --layer lay-lower --upper up -- sh -c '
  rm /d/gone; rm -r /e; mkdir /e; echo fresh > /e/fresh; mkdir /new; echo x > /new/f
  echo changed > /d/kept.new && mv /d/kept.new /d/kept'
echo "status=$?"
test -d up.work && echo "up.work is the work dir"
layer-add --from-upper up lay-changes >/dev/null
layer-show --files lay-changes | tail -n +3 | grep -E ' (d|d/gone|e|new/f)( |$)' | cut -d' ' -f1,4-
sandbox --no-cwd --layer lay-tools --layer lay-lower --layer lay-changes -- sh -c 'ls /d /e /new; cat /d/kept'
# --upper needs layers, and is no declared output of --cache.
sandbox --upper up2 -- true 2>&1 | head -n 1
test -e up2 || echo "up2 not made"
# An upper among the store's files would write into shared objects.
tree=$(ls -d store/layer-trees/* | head -n 1)
sandbox --layer lay-tools --upper "$tree/usr" -- true 2>&1 | head -n 1 | sed "s,$PWD,CASE,; s,trees/[0-9a-f]*/,trees/HEX/,"
## STDOUT:
status=0
up.work is the work dir
drwxr-xr-x d
w--------- d/gone
drwxr-xr-x e (opaque)
-rw-r--r-- new/f
/d:
kept

/e:
fresh

/new:
f
changed
sandbox: --upper needs a root of layers: --layer or --image
up2 not made
sandbox: --upper 'CASE/store/layer-trees/HEX/usr' is inside the store: a stage would write into its files
## END

#### a stage on an image's layers sees what umoci unpack makes of it: names, contents, link targets, modes
export SLICEBOX_STORE=$PWD/store
image=$SLICEBOX_TOOLCHAIN_CACHE/images/layered-oci
umoci unpack --rootless --image "${image}:latest" unpacked >/dev/null 2>&1 || echo "umoci unpack failed"
python3 "$SPEC_DIR/layer-tars.py" tools tools.tar
layer-add lay-tools tools.tar >/dev/null
layer-add lay-image "$image" >/dev/null
# The image's own names (the tools layer below adds usr/, lib* and etc/motd).
describe='for p in $(find bin data etc/config.txt keep link opq | LC_ALL=C sort); do
  if [ -L "$p" ]; then echo "$p -> $(readlink "$p")"
  elif [ -d "$p" ]; then echo "$p/"
  else echo "$p $(sha256sum < "$p" | cut -c1-16)"; fi; done'
modes='for p in $(find bin data etc/config.txt keep opq | LC_ALL=C sort); do stat -c "%a %n" "$p"; done'
(cd unpacked/rootfs && sh -c "$describe") > want.txt
(cd unpacked/rootfs && sh -c "$modes") > want-modes.txt
sandbox --no-cwd --chdir / --layer lay-tools --layer lay-image -- /usr/bin/sh -c "$describe" > got.txt
sandbox --no-cwd --chdir / --layer lay-tools --layer lay-image -- /usr/bin/sh -c "$modes" > got-modes.txt
wc -l < want.txt | tr -d ' '
cmp want.txt got.txt && echo same-tree
# Modes too: 0644 and 0755 files are their objects, 0600 a copy.
differ=$(paste -d' ' want-modes.txt got-modes.txt | awk '$1 != $3 { print $2 }')
echo "modes that differ: ${differ:-none}"
## STDOUT:
10
same-tree
modes that differ: none
## END
