# Re-adding a source heals what it covers: damaged objects are replaced and
# a damaged stored slice (content, manifest, listing) is swapped for a good
# one, atomically and without disturbing a stage that still mounts it. A
# stage refuses a slice whose metadata is damaged, naming it.
## compare_shells: bash dash mksh zsh busybox

#### a damaged object is replaced by re-adding the source
mkdir src
echo "hello from rep-obj" > src/f
slice-add --at /opt/rep rep-obj src >/dev/null
sum=$(sha256sum src/f | cut -c1-64)
obj="$SLICEBOX_STORE/objects/$(echo "$sum" | cut -c1-2)/$(echo "$sum" | cut -c3-)"
chmod u+w "$obj"
printf 'HELLO FROM REP-OBJ\n' > "$obj"
slice-verify rep-obj >/dev/null 2>&1; echo "verify=$?"
slice-add --at /opt/rep rep-obj src 2>&1 >/dev/null
slice-verify rep-obj; echo "verify=$?"
sandbox --slice rep-obj -- cat /opt/rep/f
## STDOUT:
verify=1
slice-add: repaired the store: replaced 1 damaged object; replaced the stored slice, whose tree or metadata was damaged
verify=0
hello from rep-obj
## END

#### an object two slices share: verify of one names both; re-adding either source repairs both
mkdir a b
echo "shared by two" > a/f
echo "shared by two" > b/g
slice-add --at /opt/a rep-a a >/dev/null
slice-add --at /opt/b rep-b b >/dev/null
sum=$(sha256sum a/f | cut -c1-64)
obj="$SLICEBOX_STORE/objects/$(echo "$sum" | cut -c1-2)/$(echo "$sum" | cut -c3-)"
chmod u+w "$obj"
printf 'SHARED BY TWO\n' > "$obj"
slice-verify rep-a 2>&1 | sed 's/ (sha256:[0-9a-f]*)//; s|/slices/[0-9a-f]*/|/slices/HEX/|g; s/content is .*/content differs/' | sed "s|$SLICEBOX_STORE|STORE|g"
slice-add --at /opt/b rep-b b 2>&1 >/dev/null
slice-verify; echo "verify=$?"
sandbox --slice rep-a --slice rep-b -- cat /opt/a/f /opt/b/g
## STDOUT:
damaged: slice rep-a: STORE/slices/HEX/tree/f: content differs
damaged: slice rep-b: STORE/slices/HEX/tree/g: is the same stored file as STORE/slices/HEX/tree/f, which is damaged
slice-verify: 2 damaged paths
slice-add: repaired the store: replaced 1 damaged object; replaced the stored slice, whose tree or metadata was damaged; rebuilt 1 other slice that linked a damaged object
verify=0
shared by two
shared by two
## END

#### a damaged --out slice is repaired by running its stage again
sandbox --out /opt/rep=rep-out -- sh -c 'echo "built by a stage" > /opt/rep/f'
sum=$(printf 'built by a stage\n' | sha256sum | cut -c1-64)
obj="$SLICEBOX_STORE/objects/$(echo "$sum" | cut -c1-2)/$(echo "$sum" | cut -c3-)"
chmod u+w "$obj"
printf 'BUILT BY A STAGE\n' > "$obj"
slice-verify rep-out >/dev/null 2>&1; echo "verify=$?"
sandbox --out /opt/rep=rep-out -- sh -c 'echo "built by a stage" > /opt/rep/f'
slice-verify rep-out; echo "verify=$?"
sandbox --slice rep-out -- cat /opt/rep/f
## STDOUT:
verify=1
verify=0
built by a stage
## END

#### a lost manifest or listing: the stage refuses the slice; re-adding rewrites them
mkdir src
echo hello > src/f
d=$(slice-add --at /opt/rep rep-meta src)
dir="$SLICEBOX_STORE/slices/${d#sha256:}"
rm "$dir/manifest.json"
hex=${d#sha256:}
sandbox --slice rep-meta -- true 2>&1 | sed "s|$SLICEBOX_STORE|STORE|g; s|$hex|HEX|g"
slice-add --at /opt/rep rep-meta src 2>&1 >/dev/null
sandbox --slice rep-meta -- cat /opt/rep/f
rm "$dir/listing"
slice-verify rep-meta 2>&1 | sed "s|$SLICEBOX_STORE|STORE|g; s|$hex|HEX|g; s|sha256:$(echo "$hex" | cut -c1-12)|SHORT|"
slice-add --at /opt/rep rep-meta src 2>&1 >/dev/null
slice-verify rep-meta; echo "verify=$?"
## STDOUT:
sandbox: cannot use slice 'rep-meta': cannot read manifest 'STORE/slices/HEX/manifest.json': No such file or directory
slice-add: repaired the store: replaced the stored slice, whose tree or metadata was damaged
hello
damaged: slice rep-meta (SHORT): STORE/slices/HEX/listing: cannot read listing 'STORE/slices/HEX/listing': No such file or directory
slice-verify: 1 damaged path
slice-add: repaired the store: replaced the stored slice, whose tree or metadata was damaged
verify=0
## END

#### a stage that mounts the damaged slice keeps its view while it is repaired and gc runs
mkdir src
echo hello > src/f
echo "hello from rep-live" > src/f
slice-add --at /opt/rep rep-live src >/dev/null
sum=$(sha256sum src/f | cut -c1-64)
obj="$SLICEBOX_STORE/objects/$(echo "$sum" | cut -c1-2)/$(echo "$sum" | cut -c3-)"
chmod u+w "$obj"
printf 'HELLO FROM REP-LIVE\n' > "$obj"
mkfifo go
sandbox --slice rep-live -- sh -c 'cat /opt/rep/f; read x; cat /opt/rep/f' <go >stage.out &
exec 3>go
while ! test -s stage.out; do sleep 0.01; done
slice-add --at /opt/rep rep-live src 2>/dev/null >/dev/null
slice-gc >/dev/null
echo go >&3
exec 3>&-
wait
cat stage.out
sandbox --slice rep-live -- cat /opt/rep/f
slice-gc >/dev/null
healed=$(ls "$SLICEBOX_STORE/tmp" | grep -c healed); echo "$healed"
## STDOUT:
HELLO FROM REP-LIVE
HELLO FROM REP-LIVE
hello from rep-live
0
## END

#### a lost tree: the stage names it, verify reports it, slice-list the rest, re-adding restores it
SLICEBOX_STORE=$PWD/own-store
export SLICEBOX_STORE
mkdir src other
echo hello > src/f
echo other > other/f
d=$(slice-add --at /opt/rep rep-tree src)
slice-add --at /opt/rep rep-other other >/dev/null
hex=${d#sha256:}
dir="$SLICEBOX_STORE/slices/$hex"
chmod -R u+w "$dir/tree"
rm -r "$dir/tree"
sandbox --slice rep-tree -- true 2>&1 | sed "s|$SLICEBOX_STORE|STORE|g; s|$hex|HEX|g"
slice-verify rep-tree 2>&1 | sed "s|$SLICEBOX_STORE|STORE|g; s|$hex|HEX|g; s|sha256:$(echo "$hex" | cut -c1-12)|SHORT|"
slice-add --at /opt/rep rep-tree src 2>&1 >/dev/null
sandbox --slice rep-tree -- cat /opt/rep/f
echo '{}' > "$dir/manifest.json"
slice-list >list.out 2>list.err; echo "status=$?"
cut -f1 list.out
sed "s|$SLICEBOX_STORE|STORE|g; s|$hex|HEX|g" list.err
## STDOUT:
sandbox: cannot mount slice 'rep-tree' at '/opt/rep': 'STORE/slices/HEX/tree': No such file or directory
damaged: slice rep-tree (SHORT): STORE/slices/HEX/tree: is missing
slice-verify: 1 damaged path
slice-add: repaired the store: replaced the stored slice, whose tree or metadata was damaged
hello
status=1
rep-other
slice-list: slice 'rep-tree' is damaged: store is damaged at 'STORE/slices/HEX/manifest.json': missing field `format` at line 1 column 2 (re-adding its source repairs it)
## END

#### a stage of many slices reads the ref index; an entry that does not check out is not used, slice-verify names it, slice-gc rewrites it
SLICEBOX_STORE=$PWD/own-store
export SLICEBOX_STORE
i=0; set --
while [ "$i" -lt 40 ]; do
  i=$((i + 1)); mkdir -p many/$i; echo "slice $i" > many/$i/f
  slice-add --at /opt/m$i idx-$i many/$i >/dev/null
  set -- "$@" --slice idx-$i
done
grep -c '^idx-' "$SLICEBOX_STORE/refs/.index"
sandbox "$@" -- cat /opt/m1/f /opt/m40/f
# The index holds the manifests: a stage of 32 or more slices does not read
# slices/<hex>/manifest.json, one of fewer does (and refuses a lost one).
d3=$(slice-show --json idx-3 | sed -n 's/.*"digest": *"sha256:\([0-9a-f]*\)".*/\1/p' | head -n 1)
mv "$SLICEBOX_STORE/slices/$d3/manifest.json" manifest.saved
sandbox "$@" -- cat /opt/m3/f
sandbox --slice idx-3 -- true 2>/dev/null; echo "alone=$?"
mv manifest.saved "$SLICEBOX_STORE/slices/$d3/manifest.json"
# A changed mount point: the entry no longer hashes to its digest.
sed 's|"/opt/m7"|"/opt/elsewhere"|' "$SLICEBOX_STORE/refs/.index" > index.new
cat index.new > "$SLICEBOX_STORE/refs/.index"
sandbox "$@" -- sh -c 'cat /opt/m7/f; test -e /opt/elsewhere || echo "not at /opt/elsewhere"'
slice-verify >/dev/null 2>&1; echo "verify=$?"
slice-verify 2>&1 | grep -c 'refs/.index'
slice-gc >/dev/null
slice-verify; echo "verify=$?"
slice-rm idx-40 >/dev/null
grep -c '^idx-40	' "$SLICEBOX_STORE/refs/.index"
sandbox "$@" -- true 2>&1 | sed "s|$SLICEBOX_STORE|STORE|"
sandbox "$@" -- true 2>/dev/null; echo "status=$?"
## STDOUT:
40
slice 1
slice 40
slice 3
alone=125
slice 7
not at /opt/elsewhere
verify=1
1
verify=0
0
sandbox: cannot use slice 'idx-40': no slice 'idx-40' in the store 'STORE'; did you mean 'idx-10'?
status=125
## END

#### a stage of many slices takes which slices have a bin/ from the ref index, as one of few finds it
SLICEBOX_STORE=$PWD/own-store
export SLICEBOX_STORE
i=0; set --
while [ "$i" -lt 40 ]; do
  i=$((i + 1)); mkdir -p pb/$i
  case $i in
    3 | 17 | 40) mkdir pb/$i/bin ;;
    5) echo "a file, not a directory" > pb/$i/bin ;;
    *) echo "slice $i" > pb/$i/f ;;
  esac
  slice-add --at /opt/p$i pb-$i pb/$i >/dev/null
  set -- "$@" --slice pb-$i
done
slice-gc >/dev/null
grep -c '	bin	' "$SLICEBOX_STORE/refs/.index"
sandbox "$@" -- sh -c 'echo "$PATH"' | cut -d: -f1-3
sandbox --slice pb-3 --slice pb-5 --slice pb-17 -- sh -c 'echo "$PATH"' | cut -d: -f1-2
# The index is what a stage of 32 or more slices reads: with pb-17's bin/
# taken away behind its back, it still lists it; a stage of one does not.
d17=$(slice-show --json pb-17 | sed -n 's/.*"digest": *"sha256:\([0-9a-f]*\)".*/\1/p' | head -n 1)
mv "$SLICEBOX_STORE/slices/$d17/tree/bin" bin.saved
listed='case $PATH in */opt/p17/bin*) echo listed ;; *) echo "not listed" ;; esac'
sandbox "$@" -- sh -c "$listed"
sandbox --slice pb-17 -- sh -c "$listed"
mv bin.saved "$SLICEBOX_STORE/slices/$d17/tree/bin"
## STDOUT:
3
/opt/p3/bin:/opt/p17/bin:/opt/p40/bin
/opt/p3/bin:/opt/p17/bin
listed
not listed
## END

#### a ref changed behind the index's back: stages of 1 and of 40 slices see the same slice
SLICEBOX_STORE=$PWD/own-store
export SLICEBOX_STORE
i=0; set --
while [ "$i" -lt 40 ]; do
  i=$((i + 1)); mkdir -p many/$i; echo "slice $i" > many/$i/f
  slice-add --at /opt/m$i sw-$i many/$i >/dev/null
  set -- "$@" --slice sw-$i
done
mkdir x1 x2; echo "other one" > x1/f; echo "other two" > x2/f
slice-add --at /opt/m1 sw-x1 x1 >/dev/null
slice-add --at /opt/m2 sw-x2 x2 >/dev/null
slice-gc >/dev/null
refs=$SLICEBOX_STORE/refs
grep -c '^sw-' "$refs/.index"
# In place, as cp does: the same inode and size, only the ctime tells.
cp "$refs/sw-x1" "$refs/sw-1"
sandbox --slice sw-1 -- cat /opt/m1/f
sandbox "$@" -- cat /opt/m1/f
# Renamed over it, as an older slicebox that knows no index writes a ref.
cp "$refs/sw-x2" ref.new && mv ref.new "$refs/sw-2"
sandbox --slice sw-2 -- cat /opt/m2/f
sandbox "$@" -- cat /opt/m2/f
# The stale entries are not used, so they are not damage; gc rewrites them.
slice-verify; echo "verify=$?"
slice-gc >/dev/null
sandbox "$@" -- cat /opt/m1/f /opt/m2/f
## STDOUT:
42
other one
other one
other two
other two
verify=0
other one
other two
## END
