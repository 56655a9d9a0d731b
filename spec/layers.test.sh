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
find store/objects store/layers store/layer-stacks store/layer-blobs -type f | wc -l | tr -d ' '
## STDOUT:
verified
1
removed 0 slices, 1 object and 3 unused layer files, freed 19 B
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
mknod up/op/dev-elsewhere c 1 3 || echo "mknod refused"
layer-add --from-upper up lay-up2 2>&1 | sed "s,'[^']*/up',UP,"
## STDOUT:
drwxr-xr-x gone-parent
w--------- gone-parent/x
drwxr-xr-x op (opaque)
-rw-r--r-- op/f
layer-add: cannot add 'up': entry 'op/dev-elsewhere' is a device node or fifo outside /dev; nothing was added
## END

#### a Debian minbase root filesystem: the listing is tar -tv's, /dev nodes skipped
image=/var/cache/slicebox-toolchains/images/bookworm-minbase.tar
test -f "$image" || { echo "missing $image"; exit 1; }
export SLICEBOX_STORE=$PWD/store
layer-add lay-minbase "$image" 2>err.txt >/dev/null
cat err.txt
python3 "$SPEC_DIR/layer-tars.py" tv "$image" > want.txt
layer-show --files lay-minbase | tail -n +3 > got.txt
wc -l < want.txt | tr -d ' '
cmp want.txt got.txt && echo same-listing
grep -c '^-rws' got.txt | awk '$1 > 0 { print "setuid kept" }'
## STDOUT:
layer-add: lay-minbase: skipped 8 device nodes under /dev (every stage gets its own /dev)
8734
same-listing
setuid kept
## END
