# layer-mount and layer-umount: the composed view of layers at a dir, for
# the commands that follow. As root the kernel's OverlayFS, rootless
# fuse-overlayfs: each case runs in both modes, and the mount table shows
# which one ran.
## compare_shells: bash dash mksh zsh busybox

#### layer-mount: the layers' view at DIR, read-only, until layer-umount
export SLICEBOX_STORE=$PWD/store
for l in lower whiteouts; do
  python3 "$SPEC_DIR/layer-tars.py" "$l" "$l.tar"
  layer-add "lay-$l" "$l.tar" >/dev/null
done
mkdir view
layer-mount lay-lower lay-whiteouts view && echo mounted
ls view/d view/e
cat view/d/kept
touch view/new 2>/dev/null || echo "read-only"
# The mount table: the kernel's OverlayFS for root, fuse-overlayfs for a
# user, and setuid bits and device nodes never honoured.
line=$(awk -v d="$PWD/view" '$5 == d' /proc/self/mountinfo | tail -n 1)
fstype=$(echo "$line" | sed 's/.* - \([^ ]*\) .*/\1/')
case $(id -u):$fstype in
0:overlay | [1-9]*:fuse.fuse-overlayfs) echo "the mount this user gets" ;;
*) echo "unexpected: uid $(id -u), $fstype" ;;
esac
echo "$line" | awk '{ print $6 }' | tr , '\n' | grep -E '^(nosuid|nodev)$' | sort
layer-mount | sed "s,$PWD,CASE,; s,	overlay	,	HOW	,; s,	fuse-overlayfs	,	HOW	,"
layer-umount view && echo unmounted
ls view | wc -l | tr -d ' '
awk -v d="$PWD/view" '$5 == d' /proc/self/mountinfo | wc -l | tr -d ' '
## STDOUT:
mounted
view/d:
kept

view/e:
hard
new
kept
read-only
the mount this user gets
nodev
nosuid
CASE/view	lay-lower lay-whiteouts	HOW	ro
unmounted
0
0
## END

#### layer-mount --upper: changes go to the upper dir, and layer-add --from-upper makes them a layer
export SLICEBOX_STORE=$PWD/store
python3 "$SPEC_DIR/layer-tars.py" lower lower.tar
layer-add lay-lower lower.tar >/dev/null
mkdir view
layer-mount --upper up lay-lower view
layer-mount | cut -f 4 | sed "s,$PWD,CASE,"
rm view/d/gone && rm -r view/e && mkdir view/e && echo fresh > view/e/fresh
echo "new file" > view/new
layer-umount view && echo unmounted
test -d up.work && echo "up.work is the work dir"
layer-add --from-upper up lay-changes >/dev/null
# fuse-overlayfs also copies up files it did not change: only what changed.
layer-show --files lay-changes | tail -n +3 | grep -E ' (d|d/gone|e|e/fresh|new)( |$)' | cut -d' ' -f1,4-
layer-mount lay-lower lay-changes view
ls view view/d view/e
cat view/new
layer-umount view
## STDOUT:
rw, upper CASE/up
unmounted
up.work is the work dir
drwxr-xr-x d
w--------- d/gone
drwxr-xr-x e (opaque)
-rw-r--r-- e/fresh
-rw-r--r-- new
view:
d
e
new

view/d:
kept

view/e:
fresh
new file
## END

#### layer-add --from-upper reads fuse-overlayfs's whiteouts and opaque markers
export SLICEBOX_STORE=$PWD/store
python3 - <<'PY'
import os
os.makedirs("up/e"); os.makedirs("up/f"); os.makedirs("up/d")
open("up/e/.wh..wh..opq", "w").close()
os.mknod("up/e/.wh..opq", 0o600 | 0o020000, 0)   # fuse-overlayfs's pair
open("up/e/fresh", "w").write("fresh\n")
os.setxattr("up/f", "user.fuseoverlayfs.opaque", b"y")
open("up/d/.wh.gone", "w").close()                 # where mknod fails
PY
layer-add --from-upper up lay-fuse >/dev/null && echo added
layer-show --files lay-fuse | tail -n +3 | cut -d' ' -f1,4-
mkdir -p bad/d && : > bad/d/.wh..
layer-add --from-upper bad lay-bad 2>&1; echo "status=$?"
## STDOUT:
added
drwxr-xr-x d
w--------- d/gone
drwxr-xr-x e (opaque)
-rw-r--r-- e/fresh
drwxr-xr-x f (opaque)
layer-add: cannot add 'bad': entry 'd/.wh..' is a whiteout that names its own directory or '..'; nothing was added
status=1
## END

#### a view keeps its layers through layer-rm and slice-gc; an unmounted one lets them go
export SLICEBOX_STORE=$PWD/store
python3 "$SPEC_DIR/layer-tars.py" lower lower.tar
layer-add lay-lower lower.tar >/dev/null
mkdir view
layer-mount lay-lower view
layer-rm lay-lower && slice-gc >/dev/null
cat view/d/kept
ls store/layer-trees | wc -l | tr -d ' '
layer-umount view && slice-gc >/dev/null
ls store/layer-trees | wc -l | tr -d ' '
# Unmounted by hand, not by layer-umount: its record goes with the next gc.
layer-add lay-lower lower.tar >/dev/null
layer-mount lay-lower view
if [ "$(id -u)" = 0 ]; then umount view; else fusermount3 -u view; fi
ls store/mounts | grep '^mount\.' | wc -l | tr -d ' '
layer-mount | wc -l | tr -d ' '
slice-gc >/dev/null
ls store/mounts | grep '^mount\.' | wc -l | tr -d ' '
## STDOUT:
old
1
0
1
0
0
## END

#### layer-mount and layer-umount refuse, naming the dir and the cause
export SLICEBOX_STORE=$PWD/store
python3 "$SPEC_DIR/layer-tars.py" lower lower.tar
layer-add lay-lower lower.tar >/dev/null
mkdir view plain
layer-umount plain 2>&1 | sed "s,$PWD,CASE,"
layer-mount lay-lower missing 2>&1
layer-mount lay-lower lower.tar 2>&1
layer-mount nosuch view 2>&1 | sed "s,$PWD,CASE,"
layer-mount view 2>&1 | head -n 1
layer-mount lay-lower store 2>&1 | sed "s,$PWD,CASE,"
layer-mount lay-lower view && layer-mount lay-lower view 2>&1 | sed "s,$PWD,CASE,"
# A view in use stays mounted, as umount leaves it.
sh -c 'exec 3<view/d/kept; echo ready; exec sleep 60' >ready.txt &
holder=$!
while ! test -s ready.txt; do sleep 0.05; done
layer-umount view 2>&1 | sed "s,$PWD,CASE,; s,': .*busy.*,': busy,"
kill "$holder"; wait "$holder"
layer-umount view && echo unmounted
ls store/mounts | grep '^mount\.' | wc -l | tr -d ' '
## STDOUT:
layer-umount: cannot unmount 'CASE/plain': it is not a layer-mount: nothing is mounted there
layer-mount: cannot mount layers at 'missing': No such file or directory
layer-mount: cannot mount layers at 'lower.tar': it is not a directory
layer-mount: cannot use layer 'nosuch': no layer 'nosuch' in the store 'CASE/store' (layer-list lists the layer names)
layer-mount: expected REF… DIR
layer-mount: cannot mount layers at 'store': it is inside the store
layer-mount: cannot mount layers at 'CASE/view': the layers lay-lower are mounted there already (layer-umount it first)
layer-umount: cannot unmount 'CASE/view': busy
unmounted
0
## END

#### without root, layer-mount needs fuse-overlayfs, and says how to get it
export SLICEBOX_STORE=$PWD/store
python3 "$SPEC_DIR/layer-tars.py" lower lower.tar
layer-add lay-lower lower.tar >/dev/null
mkdir view
# The command itself, found before PATH is emptied (a builtin stays one).
cmd=$(command -v layer-mount)
want="layer-mount: cannot mount layers at '$PWD/view': the kernel's OverlayFS needs mount power here (root), and fuse-overlayfs is not in PATH; fix: apt-get install fuse-overlayfs fuse3"
if PATH=/nonexistent "$cmd" lay-lower view 2>err.txt; then
  # Root mounts the kernel's OverlayFS, which needs no program.
  test "$(id -u)" = 0 && test -e view/d/kept && echo "as this user should"
  layer-umount view
else
  test "$(id -u)" != 0 && test "$(cat err.txt)" = "$want" && echo "as this user should"
  cat err.txt >&2
fi
ls store/mounts | grep '^mount\.' | wc -l | tr -d ' '
## STDOUT:
as this user should
0
## END

#### layer-mount of a real image shows what umoci unpack makes of it
export SLICEBOX_STORE=$PWD/store
image=$SLICEBOX_TOOLCHAIN_CACHE/images/layered-oci
umoci unpack --rootless --image "${image}:latest" unpacked >/dev/null 2>&1 || echo "umoci unpack failed"
layer-add lay-image "$image" >/dev/null
mkdir view
layer-mount lay-image view
describe='for p in $(find . | LC_ALL=C sort); do
  if [ -L "$p" ]; then echo "$p -> $(readlink "$p")"
  elif [ -d "$p" ]; then echo "$p/ $(stat -c %a "$p")"
  else echo "$p $(stat -c %a "$p") $(sha256sum < "$p" | cut -c1-16)"; fi; done'
(cd unpacked/rootfs && sh -c "$describe") > want.txt
(cd view && sh -c "$describe") > got.txt
layer-umount view
wc -l < want.txt | tr -d ' '
cmp want.txt got.txt && echo same-tree
## STDOUT:
12
same-tree
## END
