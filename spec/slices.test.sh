# slice-add, slice-list, slice-show: digests, sources, hostile archives, refs.
## compare_shells: bash dash mksh zsh busybox

#### slice-add from a dir, .tar, .tar.gz and stdin gives one digest
mkdir -p src/sub
echo hello > src/a
echo world > src/sub/b
tar -cf src.tar -C src .
tar -czf src.tar.gz -C src .
tar -cf nodot.tar -C src a sub
d1=$(slice-add --at /opt/eq eq-dir src)
d2=$(slice-add --at /opt/eq eq-tar src.tar)
d3=$(slice-add --at /opt/eq eq-tgz src.tar.gz)
d4=$(tar -cf - -C src . | slice-add --at /opt/eq eq-stdin -)
d5=$(slice-add --at /opt/eq eq-nodot nodot.tar)
echo "$d1" | grep -Ec '^sha256:[0-9a-f]{64}$'
test "$d1" = "$d2" && test "$d1" = "$d3" && test "$d1" = "$d4" && test "$d1" = "$d5" && echo all-equal
# the documented format-1 slice digest of this tree mounted at /opt/eq
echo "$d1"
## STDOUT:
1
all-equal
sha256:6458c456b1a0713ba563d570d94bf7e99b14b2435ddef49b3e8b700d4000eead
## END

#### digest ignores mtimes and modes but not content, the x bit or the mount point
mkdir src
echo hello > src/a
chmod 644 src/a
d1=$(slice-add --at /opt/m m1 src)
touch -t 200001010000 src/a src
chmod 600 src/a
d2=$(slice-add --at /opt/m m1 src)
test "$d1" = "$d2" && echo mtime-mode-same
chmod 700 src/a
d3=$(slice-add --at /opt/m m1 src)
test "$d1" != "$d3" && echo xbit-differs
chmod 600 src/a
d4=$(slice-add --at /opt/other m1 src)
test "$d1" != "$d4" && echo mount-differs
echo hello2 > src/a
d5=$(slice-add --at /opt/m m1 src)
test "$d1" != "$d5" && echo content-differs
## STDOUT:
mtime-mode-same
xbit-differs
mount-differs
content-differs
## END

#### slice-list text and --json; default mount point is /opt/NAME
mkdir -p src/sub
echo hello > src/a
echo world > src/sub/b
d=$(slice-add list-default src)
slice-add --at /srv/tool list-at src >/dev/null
slice-list > list.txt
grep '^list-default	' list.txt | sed "s/$d/DIGEST/"
grep '^list-at	' list.txt | sed "s/	sha256:[0-9a-f]*	/	D	/"
slice-list --json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["name"] in ("list-default", "list-at"):
        print(s["name"], s["mount_point"], s["files"], s["bytes"], len(s["digest"]))'
## STDOUT:
list-default	DIGEST	/opt/list-default	2 files	12 B
list-at	D	/srv/tool	2 files	12 B
list-at /srv/tool 2 12 71
list-default /opt/list-default 2 12 71
## END

#### slice-show: bytes counts every file, distinct each content once, = shared + unique
mkdir dup other
echo twice > dup/a; echo twice > dup/b; echo only-here > dup/c; echo also-there > dup/d
echo also-there > other/x
slice-add --at /opt/other show-other other >/dev/null
slice-add --at /opt/dup show-dup dup >/dev/null
slice-show show-dup | grep -E '^(files|bytes|distinct|shared|unique):'
## STDOUT:
files:       4
bytes:       33 (33 B)
distinct:    27 (27 B) counting each content once: shared + unique
shared:      11 (11 B) also in other slices
unique:      16 (16 B) only in this slice
## END

#### slice-show by name, full digest and unique prefix; --json
mkdir show
echo show-me-unique-content > show/f
d=$(slice-add --at /opt/show show-slice show)
hex=${d#sha256:}
slice-show show-slice > by-name
slice-show "$d" > by-digest
slice-show "$(echo "$hex" | cut -c1-12)" > by-prefix
slice-show "sha256:$(echo "$hex" | cut -c1-10)" > by-sha-prefix
cmp by-name by-digest && cmp by-name by-prefix && cmp by-name by-sha-prefix && echo same
grep -E '^(digest|names|mount point|files|bytes):' by-name | sed "s/$d/DIGEST/"
grep -Ec '^tree: +sha256:[0-9a-f]{64}$' by-name
slice-show --json show-slice | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["digest"] == sys.argv[1], s["names"], s["mount_point"], s["files"], s["bytes"])' "$d"
## STDOUT:
same
digest:      DIGEST
names:       show-slice
mount point: /opt/show
files:       1
bytes:       23 (23 B)
1
True ['show-slice'] /opt/show 1 23
## END

#### unknown and ambiguous refs
slice-show no-such-slice-xyz 2>err; echo "status=$?"
sed "s|$SLICEBOX_STORE|STORE|" err
slice-show 0000000000000000 2>err; echo "status=$?"
sed "s|$SLICEBOX_STORE|STORE|" err
# two slices whose format-1 digests share the prefix 42cf (42cfe312..., 42cff86e...)
mkdir amb
echo 179 > amb/f
slice-add --at /opt/amb amb-a amb
echo 241 > amb/f
slice-add --at /opt/amb amb-b amb
slice-show 42cf >out 2>&1; rc=$?; sed "s|$SLICEBOX_STORE|STORE|" out; echo "status=$rc"
sandbox --slice 42cf -- true >out 2>&1; rc=$?; sed "s|$SLICEBOX_STORE|STORE|" out; echo "status=$rc"
slice-show 42cfe | head -n 1
sandbox --slice 42cff -- cat /opt/amb/f
## STDOUT:
status=1
slice-show: no slice 'no-such-slice-xyz' in the store 'STORE'
status=1
slice-show: no slice '0000000000000000' in the store 'STORE'
sha256:42cfe312660b63275d3f1071bfe9fc6cea88c09d5ed08efcd11efa900839b7ef
sha256:42cff86ec9d25823418245ef567993e91337d8b56aeaff903e9443f38b42372a
slice-show: slice reference '42cf' is ambiguous in the store 'STORE'; it matches: sha256:42cfe312660b63275d3f1071bfe9fc6cea88c09d5ed08efcd11efa900839b7ef, sha256:42cff86ec9d25823418245ef567993e91337d8b56aeaff903e9443f38b42372a
status=1
sandbox: cannot use slice '42cf': slice reference '42cf' is ambiguous in the store 'STORE'; it matches: sha256:42cfe312660b63275d3f1071bfe9fc6cea88c09d5ed08efcd11efa900839b7ef, sha256:42cff86ec9d25823418245ef567993e91337d8b56aeaff903e9443f38b42372a
status=125
digest:      sha256:42cfe312660b63275d3f1071bfe9fc6cea88c09d5ed08efcd11efa900839b7ef
241
## END

#### invalid slice names are refused with status 1
mkdir src
slice-add ../x src 2>&1; echo "status=$?"
slice-add a/b src 2>&1; echo "status=$?"
slice-add .hidden src 2>&1; echo "status=$?"
slice-add '' src 2>&1; echo "status=$?"
slice-add ok-name /no/such/source 2>&1; echo "status=$?"
## STDOUT:
slice-add: invalid slice name '../x': it must start with a letter or digit
status=1
slice-add: invalid slice name 'a/b': it may contain only letters, digits and . _ + -
status=1
slice-add: invalid slice name '.hidden': it must start with a letter or digit
status=1
slice-add: invalid slice name '': it must be 1 to 128 characters long
status=1
slice-add: cannot read '/no/such/source': No such file or directory
status=1
## END

#### hostile tars are refused and the store is unchanged
cat > mk.py <<'PY'
import io, sys, tarfile
kind, out = sys.argv[1], sys.argv[2]
t = tarfile.open(out, 'w', format=tarfile.GNU_FORMAT)
def f(name, data=b'x'):
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
def e(name, typ, **kw):
    i = tarfile.TarInfo(name); i.type = typ
    for k, v in kw.items(): setattr(i, k, v)
    t.addfile(i)
if kind == 'dotdot': f('ok'); f('../evil')
if kind == 'inner-dotdot': f('a/../../evil')
if kind == 'abs': f('/etc/evil')
if kind == 'symlink': e('l', tarfile.SYMTYPE, linkname='/etc'); f('l/passwd')
if kind == 'chr': e('null', tarfile.CHRTYPE, devmajor=1, devminor=3)
if kind == 'blk': e('sda', tarfile.BLKTYPE, devmajor=8, devminor=0)
if kind == 'fifo': e('p', tarfile.FIFOTYPE)
if kind == 'dup': f('a'); f('a', b'y')
if kind == 'hard-out': e('h', tarfile.LNKTYPE, linkname='/etc/shadow')
if kind == 'hard-later': e('h', tarfile.LNKTYPE, linkname='b'); f('b')
t.close()
PY
mkdir good
echo good > good/f
slice-add hostile-target good >/dev/null
slice-list > list-before
find "$SLICEBOX_STORE" | sort > find-before
for k in dotdot inner-dotdot abs symlink chr blk fifo dup hard-out hard-later; do
  python3 mk.py $k $k.tar
  slice-add hostile-target $k.tar 2>&1; echo "status=$?"
done
python3 mk.py dotdot stream.tar
slice-add hostile-new - < stream.tar 2>&1; echo "status=$?"
slice-list > list-after
find "$SLICEBOX_STORE" | sort > find-after
cmp list-before list-after && echo list-unchanged
cmp find-before find-after && echo store-unchanged
slice-show hostile-new 2>err; echo "status=$?"
sed "s|$SLICEBOX_STORE|STORE|" err
## STDOUT:
slice-add: cannot add 'dotdot.tar': entry '../evil' contains '..'; nothing was added
status=1
slice-add: cannot add 'inner-dotdot.tar': entry 'a/../../evil' contains '..'; nothing was added
status=1
slice-add: cannot add 'abs.tar': entry '/etc/evil' is an absolute path; nothing was added
status=1
slice-add: cannot add 'symlink.tar': entry 'l/passwd' lies below a symlink; nothing was added
status=1
slice-add: cannot add 'chr.tar': entry 'null' is a device node; nothing was added
status=1
slice-add: cannot add 'blk.tar': entry 'sda' is a device node; nothing was added
status=1
slice-add: cannot add 'fifo.tar': entry 'p' is a fifo; nothing was added
status=1
slice-add: cannot add 'dup.tar': entry 'a' appears twice in the archive; nothing was added
status=1
slice-add: cannot add 'hard-out.tar': entry 'h' is a hardlink to '/etc/shadow', which is not an earlier regular file of this archive; nothing was added
status=1
slice-add: cannot add 'hard-later.tar': entry 'h' is a hardlink to 'b', which is not an earlier regular file of this archive; nothing was added
status=1
slice-add: cannot add '-': entry '../evil' contains '..'; nothing was added
status=1
list-unchanged
store-unchanged
status=1
slice-show: no slice 'hostile-new' in the store 'STORE'
## END

#### a hardlink to an earlier file is accepted; setuid is dropped
python3 -c '
import io, tarfile
t = tarfile.open("ok.tar", "w")
i = tarfile.TarInfo("bin/tool"); data = b"#!/bin/sh\necho tool-ran\n"
i.size = len(data); i.mode = 0o4755; t.addfile(i, io.BytesIO(data))
h = tarfile.TarInfo("bin/alias"); h.type = tarfile.LNKTYPE; h.linkname = "bin/tool"; t.addfile(h)
s = tarfile.TarInfo("run"); s.type = tarfile.SYMTYPE; s.linkname = "bin/tool"; t.addfile(s)
t.close()'
slice-add --at /opt/hl hardlink-ok ok.tar | grep -Ec '^sha256:[0-9a-f]{64}$'
sandbox --slice hardlink-ok -- sh -c '/opt/hl/run; /opt/hl/bin/alias; test -u /opt/hl/bin/tool && echo setuid || echo no-setuid'
# files and bytes count paths: the hardlink counts as a second 24-byte file
slice-show hardlink-ok | grep -E '^(files|bytes):'
## STDOUT:
1
tool-ran
tool-ran
no-setuid
files:       2
bytes:       48 (48 B)
## END

#### slice --env is set in every stage that mounts the slice
mkdir e
echo x > e/f
slice-add --env SLICE_VAR=from-slice --env 'SLICE_SP=a b' envslice e >/dev/null
sandbox --slice envslice -- sh -c 'echo "$SLICE_VAR|$SLICE_SP"'
sandbox -- sh -c 'echo "${SLICE_VAR-unset}"'
## STDOUT:
from-slice|a b
unset
## END

#### a slice's top-level bin/ is on PATH, ahead of the host's, in --slice order; --env PATH replaces it
mkdir -p b1/bin b2/bin nobin/lib
printf '#!/bin/sh\necho one\n' > b1/bin/tool
printf '#!/bin/sh\necho two\n' > b2/bin/tool
printf '#!/bin/sh\necho mine\n' > b1/bin/ls
chmod +x b1/bin/tool b2/bin/tool b1/bin/ls
slice-add binone b1 --at /opt/one >/dev/null
slice-add bintwo b2 --at /opt/two >/dev/null
slice-add nobin nobin --at /opt/nobin >/dev/null
sandbox --slice binone --slice bintwo -- tool
sandbox --slice bintwo --slice binone -- tool
sandbox --slice binone -- ls
sandbox --slice binone --slice nobin --slice bintwo -- sh -c 'echo "$PATH"' | cut -d: -f1-2
sandbox --clearenv --slice bintwo --slice binone -- sh -c 'echo "$PATH"'
sandbox --slice binone:/opt/elsewhere -- sh -c 'echo "$PATH"' | cut -d: -f1
sandbox --slice binone --env PATH=/usr/bin:/bin -- tool 2>&1; echo "status=$?"
## STDOUT:
one
two
mine
/opt/one/bin:/opt/two/bin
/opt/two/bin:/opt/one/bin:/usr/local/bin:/usr/bin:/bin
/opt/elsewhere/bin
sandbox: cannot execute 'tool': command not found
status=127
## END

#### slice --env: an unset ${NAME} drops with its ':'; other forms are refused, naming them
mkdir p
echo x > p/f
slice-add --env 'PYTHONPATH=/opt/p:${PYTHONPATH}' pp p >/dev/null
unset PYTHONPATH
sandbox --slice pp -- sh -c 'echo "[$PYTHONPATH]"'
PYTHONPATH=/q sandbox --slice pp -- sh -c 'echo "[$PYTHONPATH]"'
for form in 'X=${X:+/a}' 'X=/a:${X:-/b}' 'X=$(id)' 'X=$HOME/x'; do
  slice-add --env "$form" bad p 2>&1; echo "status=$?"
done
echo "slices named bad: $(slice-list | grep -c '^bad')"
## STDOUT:
[/opt/p]
[/opt/p:/q]
slice-add: --env 'X=${X:+/a}': '${X:+/a}' is not supported: only ${NAME} is expanded (to NAME's value, or to nothing)
Usage: slice-add [OPTIONS] NAME SOURCE
status=2
slice-add: --env 'X=/a:${X:-/b}': '${X:-/b}' is not supported: only ${NAME} is expanded (to NAME's value, or to nothing)
Usage: slice-add [OPTIONS] NAME SOURCE
status=2
slice-add: --env 'X=$(id)': '$(id)' is not supported: only ${NAME} is expanded (to NAME's value, or to nothing)
Usage: slice-add [OPTIONS] NAME SOURCE
status=2
slice-add: --env 'X=$HOME/x': '$HOME' is not supported: only ${NAME} is expanded (to NAME's value, or to nothing)
Usage: slice-add [OPTIONS] NAME SOURCE
status=2
slices named bad: 0
## END
