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

#### slice-export names a missing slice and the store; a bad usage is 2
slice-export gone-slice-xyz 2>&1 >/dev/null | sed "s|$SLICEBOX_STORE|STORE|"
slice-export 2>/dev/null; echo "status=$?"
## STDOUT:
slice-export: no slice 'gone-slice-xyz' in the store 'STORE'
status=2
## END
