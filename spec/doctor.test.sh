# `slicebox doctor`: one line per check, and each kernel check really runs
# (a stage's seccomp filter, which refuses user namespaces, makes it fail).
## compare_shells: bash dash mksh zsh busybox

#### doctor prints one line per check and exits 0 where stages run
slicebox doctor >out; echo "status=$?"
cut -c6- out | sed 's/: .*//'
grep -c '^FAIL' out
grep -c '^ok   user namespaces: a child made user and mount namespaces' out
grep -c '^ok   new mount API: ' out
grep -c '^ok   seccomp: a child installed a filter' out
grep -c "^ok   store: '$SLICEBOX_STORE'" out
## STDOUT:
status=0
user namespaces
new mount API
OverlayFS in a user namespace
Landlock
seccomp
layer whiteouts
/dev/fuse
fuse-overlayfs
subordinate ids
store
0
1
1
1
1
## END

#### doctor mounts a userxattr overlay over a whiteout and an opaque dir, and finds fuse-overlayfs
slicebox doctor >out
grep -c '^ok   layer whiteouts: a child made a 0/0 character device and a user.overlay.opaque dir, and an overlay mounted with userxattr hid what they cover$' out
# fuse-overlayfs: where PATH has it, its path; the line agrees with the shell.
line=$(grep 'fuse-overlayfs: ' out)
if found=$(command -v fuse-overlayfs) && command -v fusermount3 >/dev/null; then
    case $line in "ok   fuse-overlayfs: $found (with "*) echo agrees ;; *) echo "disagrees: $line" ;; esac
else
    case $line in "note fuse-overlayfs: "*" is not in PATH; fix: "*) echo agrees ;; *) echo "disagrees: $line" ;; esac
fi
# Without it in PATH: a note with the fix, and doctor still succeeds.
bin=$(command -v slicebox)
PATH=/nonexistent "$bin" doctor >out; echo "status=$?"
grep '^note fuse-overlayfs' out
## STDOUT:
1
agrees
status=0
note fuse-overlayfs: fuse-overlayfs is not in PATH; fix: apt-get install fuse-overlayfs fuse3 (layer-mount uses it rootless where kernel OverlayFS cannot reach the caller's mounts; stages do not need it)
## END

#### inside a stage user namespaces are refused: doctor says FAIL, names the step and the fix
bin=$(command -v slicebox)
sandbox --ro-bind "$bin" -- "$bin" doctor >out; echo "status=$?"
grep -c '^FAIL user namespaces: unshare(CLONE_NEWUSER) failed: Operation not permitted; fix: ' out
grep -c '^FAIL new mount API: not tried: unshare(CLONE_NEWUSER) failed' out
# --allow-userns leaves unshare to the stage: the probe gets past it (as
# root it then stops at the uid map, which needs CAP_SETFCAP for uid 0).
sandbox --allow-userns --ro-bind "$bin" -- "$bin" doctor >out
grep -c 'unshare(CLONE_NEWUSER) failed' out
grep -c 'user namespaces: ' out
## STDOUT:
status=1
1
1
0
1
## END

#### a damaged slice is a FAIL line naming the store, the slice and the fix
mkdir -p dstore/tree
echo 1 >dstore/tree/f
SLICEBOX_STORE=$PWD/dstore/s slice-add --at /opt/d doc-d dstore/tree >/dev/null
chmod -R u+w dstore/s/slices
rm -rf dstore/s/slices/*/tree
SLICEBOX_STORE=$PWD/dstore/s slicebox doctor >out; echo "status=$?"
grep '^FAIL store' out | sed "s|$PWD|PWD|; s/yours ([^;]*);/yours (OWNER);/"
## STDOUT:
status=1
FAIL store: 'PWD/dstore/s' is yours (OWNER); damaged: doc-d; fix: re-add their sources (slice-verify names every damaged file)
## END
