# slice-env: show a slice's environment, or change it as a new version of
# the name (same tree, new manifest, the old version as NAME@1).
## compare_shells: bash dash mksh zsh busybox

#### slice-env shows, changes as a new version, and keeps the tree
mkdir -p se/bin
printf '#!/bin/sh\necho "A=$A B=${B:-unset}"\n' > se/bin/show
chmod +x se/bin/show
d1=$(slice-add --at /opt/se --env 'PATH=/opt/se/bin:${PATH}' --env A=1 --env B=2 se-slice se)
slice-env se-slice
d2=$(slice-env se-slice --env A=one --unset B --env C=3); echo "status=$?"
[ "$d1" != "$d2" ] && echo "a new digest"
slice-env se-slice
[ "$(slice-show se-slice | grep '^digest')" = "$(slice-show "$d2" | grep '^digest')" ] && echo "the name points at it"
[ "$(slice-show se-slice@1 | grep '^digest')" = "$(slice-show "$d1" | grep '^digest')" ] && echo "the old version is se-slice@1"
[ "$(slice-show --json "$d1" | grep '"tree"')" = "$(slice-show --json "$d2" | grep '"tree"')" ] && echo "same tree"
sandbox --slice se-slice -- show
sandbox --slice se-slice@1 -- show
## STDOUT:
PATH=/opt/se/bin:${PATH}
A=1
B=2
status=0
a new digest
PATH=/opt/se/bin:${PATH}
A=one
C=3
the name points at it
the old version is se-slice@1
same tree
A=one B=unset
A=1 B=2
## END

#### slice-env refuses a digest to change and names a missing slice
mkdir -p se2
echo 1 > se2/f
d=$(slice-add --at /opt/se2 se2-slice se2)
slice-env "$d" --env X=1 2>&1 | cut -c1-38
slice-env se2-nothing-here --env X=1 2>&1 | sed "s|$SLICEBOX_STORE|STORE|"
slice-env se2-slice --env X 2>&1 | head -n 1
## STDOUT:
slice-env: invalid slice name 'sha256:
slice-env: no slice 'se2-nothing-here' in the store 'STORE'
slice-env: --env takes NAME=VALUE, not 'X'
## END
