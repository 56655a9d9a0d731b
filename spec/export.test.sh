# slice-export: a deterministic tar that slice-add takes back to the same slice.
## compare_shells: bash dash mksh zsh busybox

#### slice-export | slice-add gives the same slice digest; two exports are the same bytes
mkdir -p ex/bin ex/empty
printf '#!/bin/sh\necho hi\n' > ex/bin/tool
chmod +x ex/bin/tool
: > ex/emptyfile
ln -s bin/tool ex/link
long=$(printf '%0120d' 0 | tr 0 n)
echo x > "ex/$long"
ln -s "$long/$long" ex/longlink
d1=$(slice-add --at /opt/ex --env 'PATH=/opt/ex/bin:${PATH}' ex-one ex)
slice-export ex-one > a.tar; echo "status=$?"
slice-export ex-one > b.tar
cmp a.tar b.tar && echo "same bytes"
d2=$(slice-add --at /opt/ex --env 'PATH=/opt/ex/bin:${PATH}' ex-two - < a.tar)
[ "$d1" = "$d2" ] && echo "same slice digest"
d3=$(slice-add --at /opt/elsewhere --env 'PATH=/opt/ex/bin:${PATH}' ex-three - < a.tar)
[ "$d1" != "$d3" ] && echo "another mount point is another slice"
tar -tvf a.tar --numeric-owner | awk '{ print $1, $2, $3, $4, $5, substr($6, 1, 9) }' | head -n 7
sandbox --slice ex-two -- /opt/ex/bin/tool
## STDOUT:
status=0
same bytes
same slice digest
another mount point is another slice
drwxr-xr-x 0/0 0 1970-01-01 00:00 bin/
-rwxr-xr-x 0/0 18 1970-01-01 00:00 bin/tool
drwxr-xr-x 0/0 0 1970-01-01 00:00 empty/
-rw-r--r-- 0/0 0 1970-01-01 00:00 emptyfile
lrwxrwxrwx 0/0 0 1970-01-01 00:00 link
lrwxrwxrwx 0/0 0 1970-01-01 00:00 longlink
-rw-r--r-- 0/0 2 1970-01-01 00:00 nnnnnnnnn
hi
## END

#### slice-export carries --at and --env: slice-add takes the tar back whole, tar(1) ignores them
mkdir -p rt/bin
printf '#!/bin/sh\necho "$RT_GREETING from $0"\n' > rt/bin/greet
chmod +x rt/bin/greet
d1=$(slice-add --at /opt/rt --env 'PATH=/opt/rt/bin:${PATH}' --env 'RT_GREETING=a b' rt-one rt)
slice-export rt-one > rt.tar
d2=$(slice-add rt-two - < rt.tar)
[ "$d1" = "$d2" ] && echo "same slice digest with no options"
slice-show rt-two | grep -E '^(mount point|env):'
sandbox --slice rt-two -- greet
# An explicit option wins over the archive's: --at alone keeps its env.
d3=$(slice-add --at /opt/other rt-three rt.tar)
[ "$d3" != "$d1" ] && echo "--at overrides"
slice-show rt-three | grep -E '^(mount point|env):'
slice-add --env ONLY=1 rt-four rt.tar >/dev/null
slice-env rt-four
# Other tools read the tar as before: no warning, the same files.
tar -tf rt.tar 2>&1
mkdir out && tar -xf rt.tar -C out 2>&1 && ls out out/bin
## STDOUT:
same slice digest with no options
mount point: /opt/rt
env:         PATH=/opt/rt/bin:${PATH}
env:         RT_GREETING=a b
a b from /opt/rt/bin/greet
--at overrides
mount point: /opt/other
env:         PATH=/opt/rt/bin:${PATH}
env:         RT_GREETING=a b
ONLY=1
bin/
bin/greet
out:
bin

out/bin:
greet
## END

#### an archive whose SLICEBOX.at or SLICEBOX.env is hostile is refused, naming it; nothing is added
mkdir -p h && echo x > h/f
for at in /proc/x opt/relative /opt/../etc; do
  tar --format=pax --pax-option="globexthdr.name=pax_global_header,SLICEBOX.at=$at" -cf bad.tar h
  slice-add hostile bad.tar; echo "status=$?"
done
tar --format=pax --pax-option='globexthdr.name=pax_global_header,SLICEBOX.env=X=$(id)' -cf bad.tar h
slice-add hostile - < bad.tar; echo "status=$?"
slice-list | grep -c hostile
# Written by another tool, the records work as slice-export's do.
tar --format=pax --pax-option='globexthdr.name=pax_global_header,SLICEBOX.at=/opt/fine' -cf good.tar h
slice-add fine good.tar >/dev/null && slice-show fine | grep '^mount point:'
## STDOUT:
status=1
status=1
status=1
status=1
0
mount point: /opt/fine
## END
## STDERR:
slice-add: cannot add 'bad.tar': its SLICEBOX.at record is refused: invalid mount point '/proc/x': /proc, /dev and /tmp are provided by the sandbox; nothing was added
slice-add: cannot add 'bad.tar': its SLICEBOX.at record is refused: invalid mount point 'opt/relative': it must be absolute; nothing was added
slice-add: cannot add 'bad.tar': its SLICEBOX.at record is refused: invalid mount point '/opt/../etc': it must not contain '.' or '..'; nothing was added
slice-add: cannot add '-': its SLICEBOX.env record 'X=$(id)' is refused: '$(id)' is not supported: only ${NAME} is expanded (to NAME's value, or to nothing); nothing was added
## END

#### slice-export names a missing slice and the store; a bad usage is 2
slice-export gone-slice-xyz 2>&1 >/dev/null | sed "s|$SLICEBOX_STORE|STORE|"
slice-export 2>/dev/null; echo "status=$?"
## STDOUT:
slice-export: no slice 'gone-slice-xyz' in the store 'STORE'
status=2
## END
