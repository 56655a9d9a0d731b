# What one source may hold: --limit and SLICEBOX_LIMITS raise or lower the
# limits, each refusal names the entry and the limit, and limits that Linux
# itself could never meet are refused before anything is read.
## compare_shells: bash dash mksh zsh busybox

#### a source over a limit is refused, naming the entry and how to raise it
mkdir -p d/x
echo a > d/x/f
echo b > d/g
slice-add --limit entries=2 lim d; echo "status=$?"
SLICEBOX_LIMITS=depth=1 slice-add lim d; echo "status=$?"
slice-add --limit file=1 lim d; echo "status=$?"
slice-list | grep "^lim	" || echo "no slice lim"
## STDOUT:
status=1
status=1
status=1
no slice lim
## END
## STDERR:
slice-add: cannot add 'd': entry 'x/f' is entry number 3, more than the limit of 2 entries (--limit entries=N raises it); nothing was added
slice-add: cannot add 'd': entry 'x/f' is 2 levels deep, more than the limit of 1 (--limit depth=N raises it); nothing was added
slice-add: cannot add 'd': entry 'g' holds 2 bytes, more than the limit of 1 bytes for one file (--limit file=N raises it); nothing was added
## END

#### a later setting wins: --limit over SLICEBOX_LIMITS
mkdir -p d/x
echo a > d/x/f
SLICEBOX_LIMITS=depth=1,entries=1 slice-add --limit depth=2 --limit entries=2 lim d >/dev/null; echo "status=$?"
## STDOUT:
status=0
## END

#### bad limits and limits past what Linux takes are usage errors
mkdir d
slice-add --limit name=256 lim d; echo "status=$?"
slice-add --limit path=4096 lim d; echo "status=$?"
slice-add --limit bytes=lots lim d; echo "status=$?"
SLICEBOX_LIMITS=colour=1 slice-add lim d; echo "status=$?"
## STDOUT:
status=2
status=2
status=2
status=2
## END
## STDERR:
slice-add: --limit name=256 is more than 255, the longest name Linux takes
Usage: slice-add [OPTIONS] NAME SOURCE
slice-add: --limit path=4096 is more than 4095, the longest path Linux takes
Usage: slice-add [OPTIONS] NAME SOURCE
slice-add: --limit bytes= needs a number (with K, M, G or T), not 'lots'
Usage: slice-add [OPTIONS] NAME SOURCE
slice-add: SLICEBOX_LIMITS: unknown limit 'colour'; the limits are bytes, file, entries, depth, name, path, ratio
Usage: slice-add [OPTIONS] NAME SOURCE
## END

#### a slice at the path limit works, however long the store's own path is
long=$(printf '%0100d' 0 | tr 0 d)
top=$PWD
mkdir src
cd src
i=0
while [ $i -lt 39 ]; do mkdir $long; cd $long; i=$((i + 1)); done
echo deep > f
cd "$top"
SLICEBOX_STORE=$top/$long/$long/$long/store
export SLICEBOX_STORE
slice-add --at /opt/deep deep src >/dev/null; echo "add=$?"
slice-verify; echo "verify=$?"
sandbox --slice deep -- find /opt/deep -name f -exec cat {} +
store-stats >/dev/null; echo "stats=$?"
slice-add --at /opt/deep deep src >/dev/null; echo "again=$?"
slice-rm deep >/dev/null
slice-gc >/dev/null; echo "gc=$?"
find "$SLICEBOX_STORE/slices" "$SLICEBOX_STORE/tmp" -mindepth 1 | wc -l | tr -d ' '
## STDOUT:
add=0
verify=0
deep
stats=0
again=0
gc=0
0
## END
