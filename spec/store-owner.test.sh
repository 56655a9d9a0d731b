# A store belongs to one user: slicebox makes it private (0700), makes an
# existing one that other users may enter private, and refuses one that
# another user owns, as git refuses a repository another user owns. A
# store that cannot be used is a setup failure for sandbox (125) and a
# failure (1) for the store commands, and the message names the store, the
# operation and the cause, never "(os error N)".
## compare_shells: bash dash mksh zsh busybox

#### a new store is private to its owner; its parents follow the umask
umask 022
SLICEBOX_STORE=$PWD/data/deep/store slice-list; echo "status=$?"
stat -c '%a %n' data/deep data/deep/store
ls data/deep/store
## STDOUT:
status=0
755 data/deep
700 data/deep/store
lock
objects
pins
refs
slices
tmp
## END

#### a store that other users may enter is made private, and says so once
mkdir open-store
chmod 751 open-store
SLICEBOX_STORE=$PWD/open-store slice-list 2>&1 | sed "s|$PWD|PWD|"
SLICEBOX_STORE=$PWD/open-store slice-list 2>&1
stat -c %a open-store
## STDOUT:
slicebox: note: the store 'PWD/open-store' was open to other users (mode 751); it is private to you now (mode 700)
700
## END

#### a store another user owns is refused, with its path, its owner and what to do
# As root: a world-writable dir that uid 4242 owns (root is refused too).
# Otherwise: /tmp, which root owns.
if [ "$(id -u)" = 0 ]; then
  mkdir foreign; chmod 1777 foreign; chown 4242 foreign; store=$PWD/foreign
else
  store=/tmp
fi
owner=$(stat -c %u "$store")
mkdir src; echo x > src/f
SLICEBOX_STORE=$store slice-list 2>err; echo "slice-list=$?"
grep -c "^slice-list: cannot use the store '$store': it belongs to .*uid $owner.*, not to you, .*(uid $(id -u)).*set SLICEBOX_STORE to a directory of yours" err
SLICEBOX_STORE=$store slice-add --at /opt/f f src 2>/dev/null; echo "slice-add=$?"
SLICEBOX_STORE=$store sandbox --slice f -- true 2>err; echo "sandbox=$?"
grep -c "^sandbox: cannot use the store '$store': it belongs to " err
echo "made in it: $(ls -A "$store" | grep -c -x -e objects -e refs -e slices -e lock)"
## STDOUT:
slice-list=1
1
slice-add=1
sandbox=125
1
made in it: 0
## END

#### store failures name the operation, the path and the cause, never "(os error N)"; sandbox says 125
touch file
SLICEBOX_STORE=$PWD/file/store slice-list 2>&1 | sed "s|$PWD|PWD|"
SLICEBOX_STORE=$PWD/file/store slice-list 2>/dev/null; echo "slice-list=$?"
SLICEBOX_STORE=$PWD/file/store sandbox --slice x -- true 2>&1 | sed "s|$PWD|PWD|"
SLICEBOX_STORE=$PWD/file/store sandbox --slice x -- true 2>/dev/null; echo "sandbox=$?"
SLICEBOX_STORE=$PWD/file slice-list 2>&1 | sed "s|$PWD|PWD|"
SLICEBOX_STORE=/proc/no-such-dir/store slice-list 2>&1; echo "status=$?"
## STDOUT:
slice-list: cannot open store 'PWD/file/store': Not a directory
slice-list=1
sandbox: cannot open store 'PWD/file/store': Not a directory
sandbox=125
slice-list: cannot open store 'PWD/file': Not a directory
slice-list: cannot create store directory '/proc/no-such-dir': No such file or directory
status=1
## END
