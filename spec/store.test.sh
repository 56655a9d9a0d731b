## compare_shells: bash dash mksh zsh busybox
# The store's maintenance commands, through every front door. Each case
# uses a store of its own in its fresh working directory.

#### re-adding a name keeps the old target as NAME@1, slice-diff shows the change
export SLICEBOX_STORE=$PWD/store
mkdir src; echo one >src/f; echo same >src/g
old=$(slice-add --at /opt/t t src)
echo two >src/f
new=$(slice-add --at /opt/t t src)
test "$(slice-show t | sed -n 's/^digest: *//p')" = "$new" && echo current ok
test "$(slice-show t@1 | sed -n 's/^digest: *//p')" = "$old" && echo history ok
slice-show t@1 | grep '^names:'
slice-diff t@1 t
slice-show t@2 2>&1 | sed "s|$SLICEBOX_STORE|STORE|"
slice-show t@2 2>/dev/null
echo status=$?
## STDOUT:
current ok
history ok
names:       t@1
M f
slice-show: no slice 't@2' in the store 'STORE'
status=1
## END

#### slice-tag points a second name; slice-rm removes names, not data in use
export SLICEBOX_STORE=$PWD/store
mkdir src; echo x >src/f
slice-add --at /opt/t orig src >/dev/null
slice-tag orig alias >/dev/null
slice-rm orig
slice-list | cut -f1
sandbox --slice alias -- cat /opt/t/f
slice-rm orig 2>&1 | sed "s|$SLICEBOX_STORE|STORE|"
slice-rm orig 2>/dev/null
echo status=$?
## STDOUT:
removed orig
alias
x
slice-rm: no slice 'orig' in the store 'STORE'
status=1
## END

#### slice-gc frees what no name uses and store-stats agrees
export SLICEBOX_STORE=$PWD/store
mkdir a b; echo kept >a/f; echo dropped >b/f; echo shared >a/s; echo shared >b/s
slice-add --at /opt/x a a >/dev/null
slice-add --at /opt/x b b >/dev/null
slice-show a | grep -E '^(shared|unique):'
slice-rm b >/dev/null
store-stats | grep '^gc would free'
slice-gc
slice-list | cut -f1
store-stats | grep -E '^(slices|objects|gc would free)'
## STDOUT:
shared:      7 (7 B) also in other slices
unique:      5 (5 B) only in this slice
gc would free:     8 (8 B)
removed 1 slice and 1 object, freed 8 B
a
slices:            1
objects:           2
gc would free:     0 (0 B)
## END

#### what a killed --out stage left: store-stats counts it, slice-gc removes exactly that
export SLICEBOX_STORE=$PWD/store
sandbox --rw-cwd --out /out=killed -- sh -c 'head -c 1048576 /dev/zero >/out/f; touch ready; exec sleep 60' &
stage=$!
i=0; while [ ! -e ready ] && [ "$i" -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
store-stats | grep '^gc would free'
kill -9 "$stage"; wait "$stage" 2>/dev/null
store-stats | grep '^gc would free'
slice-gc
store-stats | grep '^gc would free'
ls -A "$SLICEBOX_STORE/tmp" | wc -l | tr -d ' '
## STDOUT:
gc would free:     0 (0 B)
gc would free:     1048576 (1.0 MiB)
removed 0 slices, 0 objects and 2 leftovers in tmp/, freed 1.0 MiB
gc would free:     0 (0 B)
0
## END

#### slice-verify is silent on a sound store and names a damaged file
export SLICEBOX_STORE=$PWD/store
mkdir src; echo good >src/f
slice-add --at /opt/t t src >/dev/null
slice-verify; echo status=$?
tree=$(slice-show t | sed -n 's/^path: *//p')
chmod u+w "$tree/f"; echo evil >"$tree/f"
slice-verify t | sed "s|$tree|TREE|; s/is sha256:.*, expected/differs, expected/"
slice-verify t >/dev/null 2>&1; echo status=$?
## STDOUT:
status=0
damaged: slice t (sha256:8814f21c318f): TREE/f: content differs, expected sha256:106675dc1490d5cdd6d1f0410731316ce93fc964c6cf6726e2b0d53e19688feb
status=1
## END

#### store commands refuse bad usage with status 2
slice-tag onlyone 2>&1; echo status=$?
slice-diff a 2>&1; echo status=$?
slice-gc extra 2>&1; echo status=$?
## STDOUT:
slice-tag: expected REF and NAME
Usage: slice-tag REF NAME
status=2
slice-diff: expected two REFs
Usage: slice-diff [--json] A B
status=2
slice-gc: expected no operands
Usage: slice-gc [--json]
status=2
## END
