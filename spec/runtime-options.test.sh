# sandbox options beyond slices: tmpfs, dev, writable cwd, identity,
# host name, timeout, rlimits, renumbered descriptors, the default shell,
# the stage's environment, and builds kept as slices (--out).
## compare_shells: bash dash mksh zsh busybox

#### --tmpfs is a fresh writable tmpfs with its size and mode; slices mount below it
mkdir -p tool/bin
printf '#!/bin/sh\necho tool\n' > tool/bin/t; chmod +x tool/bin/t
slice-add --at /scratch/tool/inner opt-tmpfs-tool tool >/dev/null
sandbox --tmpfs /scratch:size=1M,mode=700 --slice opt-tmpfs-tool -- sh -c '
  stat -c "%a" /scratch
  echo data > /scratch/file && cat /scratch/file
  head -c 2000000 /dev/zero > /scratch/big 2>/dev/null; echo "full=$?"
  /scratch/tool/inner/bin/t
  grep -c " /scratch " /proc/self/mountinfo'
sandbox --tmpfs /scratch -- ls -A /scratch; echo "fresh=$?"
## STDOUT:
700
data
full=1
tool
1
fresh=0
## END

#### --tmpfs refuses bad options, naming them
sandbox --tmpfs /s:size=lots -- true 2>&1 | head -n 1
sandbox --tmpfs /s:mode=999 -- true 2>&1 | head -n 1
sandbox --tmpfs /s:colour=red -- true 2>&1 | head -n 1
sandbox --tmpfs relative -- true 2>&1 | head -n 1
sandbox --tmpfs /proc/x -- true; echo "status=$?"
## STDOUT:
sandbox: --tmpfs '/s:size=lots': size needs a number of bytes (with K, M, G)
sandbox: --tmpfs '/s:mode=999': mode needs an octal number such as 700 or 1777
sandbox: --tmpfs '/s:colour=red': the options are size=N and mode=M
sandbox: invalid mount point 'relative': it must be absolute
status=2
## END

#### --dev gives a devpts of the stage's own: /dev/pts, /dev/ptmx, and ptys made inside
sandbox --dev -- sh -c 'readlink /dev/ptmx; ls /dev/pts'
sandbox --dev -- python3 -c '
import os
master, slave = os.openpty()
print(os.ttyname(slave), sorted(os.listdir("/dev/pts")))'
sandbox -- sh -c 'test -e /dev/ptmx; echo "ptmx without --dev: $?"'
## STDOUT:
pts/ptmx
ptmx
/dev/pts/0 ['0', 'ptmx']
ptmx without --dev: 1
## END

#### the working directory is read-only, or writable with --rw-cwd
sandbox -- sh -c 'echo no > here' 2>/dev/null; echo "ro=$?"
test -e here || echo "not written"
sandbox --rw-cwd -- sh -c 'echo yes > here'; echo "rw=$?"
cat here
## STDOUT:
ro=2
not written
rw=0
yes
## END

#### --rw-cwd: mounts below the working directory create nothing in it
# (The cases run below /tmp, where slices and --tmpfs cannot mount; the
# planner's unit tests cover those below a writable working directory.)
mkdir -p tree/bin && echo hi > tree/bin/hi
mkdir w && cd w && touch file
sandbox --rw-cwd --ro-bind "../tree:$PWD/sub/x" -- true 2>/dev/null; echo "dir bind=$?"
sandbox --rw-cwd --ro-bind "file:$PWD/new-file" -- true 2>/dev/null; echo "file bind=$?"
ls -A
# Where the mount points exist, the same mounts work.
mkdir -p sub/x && touch new-file
sandbox --rw-cwd --ro-bind "../tree:$PWD/sub/x" --ro-bind "file:$PWD/new-file" \
  -- sh -c 'cat sub/x/bin/hi; echo rw > written'
cat written
## STDOUT:
dir bind=125
file bind=125
file
hi
rw
## END

#### --hostname names the stage's host; the host's name is untouched
before=$(hostname)
sandbox --hostname build-box -- hostname
test "$(hostname)" = "$before" && echo unchanged
sandbox --hostname '' -- true 2>&1 | head -n 1
## STDOUT:
build-box
unchanged
sandbox: --hostname needs 1 to 64 bytes, not ''
## END

#### --uid and --gid set the ids inside; the other one stays the caller's
sandbox --uid 1234 --gid 99 -- sh -c 'echo "$(id -u) $(id -g)"'
test "$(sandbox --uid 7 -- id -g)" = "$(id -g)" && echo "gid kept"
test "$(sandbox --gid 7 -- id -u)" = "$(id -u)" && echo "uid kept"
sandbox --uid -1 -- true 2>&1 | head -n 1
## STDOUT:
1234 99
gid kept
uid kept
sandbox: --uid needs a number from 0 to 4294967294, not '-1'
## END

#### uid 0 inside has no power over the stage: no capability, no write, remount or unmount
mkdir -p ro/bin && echo v1 > ro/bin/data
slice-add --at /opt/ro opt-uid0-ro ro >/dev/null
sandbox --uid 0 --gid 0 --slice opt-uid0-ro -- sh -c '
  echo "id $(id -u) $(id -g)"
  grep -E "^Cap(Prm|Eff|Bnd|Amb)" /proc/self/status | tr -s "\t" " "
  echo v2 > /opt/ro/bin/data 2>/dev/null; echo "write=$?"
  chmod 777 /opt/ro/bin/data 2>/dev/null; echo "chmod=$?"
  mount -o remount,rw /opt/ro 2>/dev/null; echo "remount=$?"
  umount /opt/ro 2>/dev/null; echo "umount=$?"
  umount -l /usr 2>/dev/null; echo "umount-usr=$?"
  cat /opt/ro/bin/data'
## STDOUT:
id 0 0
CapPrm: 0000000000000000
CapEff: 0000000000000000
CapBnd: 0000000000000000
CapAmb: 0000000000000000
write=2
chmod=1
remount=32
umount=32
umount-usr=32
v1
## END

#### --timeout kills the whole stage and exits 124; a stage that ends in time is untouched
sandbox --timeout 0.3 -- sh -c 'sleep 30 & sleep 30'; echo "status=$?"
sandbox --timeout 1m -- sh -c 'exit 3'; echo "status=$?"
sandbox --timeout 2h -- echo quick
sandbox --timeout soon -- true 2>&1 | head -n 1
sandbox --timeout 0 -- true; echo "status=$?"
## STDOUT:
status=124
status=3
quick
sandbox: --timeout needs a duration above 0 such as 30, 1.5s, 500ms, 2m or 1h, not 'soon'
status=2
## END
## STDERR:
sandbox: stopped the stage: its --timeout of 0.3s passed
sandbox: --timeout needs a duration above 0 such as 30, 1.5s, 500ms, 2m or 1h, not '0'
Usage: sandbox [OPTIONS] [--] [COMMAND [ARG...]]
## END

#### --rlimit sets soft and hard limits; it cannot raise a hard limit
sandbox --rlimit nofile=64 -- sh -c 'echo "$(ulimit -Sn) $(ulimit -Hn)"'
sandbox --rlimit nofile=32:64 --rlimit core=0 -- sh -c 'echo "$(ulimit -Sn) $(ulimit -Hn) $(ulimit -c)"'
sandbox --rlimit fsize=1K -- sh -c 'head -c 5000 /dev/zero > /tmp/f 2>/dev/null; echo "fsize=$?"'
sandbox --rlimit nofile=64:32 -- true 2>&1 | head -n 1
sandbox --rlimit colour=1 -- true 2>&1 | head -n 1
sandbox --rlimit nofile=unlimited -- true 2>&1 | head -n 1 | sed 's/, [0-9]*$/, N/'
## STDOUT:
64 64
32 64 0
fsize=153
sandbox: --rlimit nofile=64:32: the soft limit is above the hard one
sandbox: --rlimit colour=1: unknown limit; the limits are as, core, cpu, data, fsize, memlock, nofile, nproc, stack
sandbox: --rlimit nofile=unlimited: the hard limit cannot go above the current one, N
## END

#### --fd N=M renumbers a descriptor; two descriptors cannot share a number
echo through > in
sandbox --fd 3=7 -- sh -c 'cat <&7; test -e /proc/self/fd/3 || echo "no 3"' 3<in
sandbox --fd 3=7 --fd 4=7 -- true 3<in 4<in 2>&1 | head -n 1
sandbox --fd 3=2 -- true 3<in 2>&1 | head -n 1
## STDOUT:
through
no 3
sandbox: --fd: two descriptors would be number 7 in the stage
sandbox: --fd needs N or N=M, descriptor numbers above 2, not '3=2'
## END

#### without a command, sandbox runs $SHELL (or /bin/sh) inside
echo 'echo "in $0, stage $SLICEBOX_STAGE"' | SHELL=/bin/bash sandbox
echo 'echo "fell back to sh"' | SHELL=/no/such/shell sandbox
echo 'echo "default"' | env -u SHELL sandbox
## STDOUT:
in /bin/bash, stage 1
fell back to sh
default
## END

#### every stage has SLICEBOX_STAGE and SLICEBOX_SLICES; --unsetenv removes them
mkdir -p e1 e2
slice-add opt-env-a e1 >/dev/null; slice-add opt-env-b e2 >/dev/null
sandbox --slice opt-env-a --slice opt-env-b -- sh -c 'echo "$SLICEBOX_STAGE [$SLICEBOX_SLICES]"'
sandbox -- sh -c 'echo "$SLICEBOX_STAGE [$SLICEBOX_SLICES]"'
sandbox --unsetenv SLICEBOX_STAGE -- sh -c 'echo "[${SLICEBOX_STAGE-unset}]"'
## STDOUT:
1 [opt-env-a opt-env-b]
1 []
[unset]
## END

#### slice variables apply in --slice order; ${NAME} is the value so far
mkdir -p p1 p2
slice-add --env 'PATH=/opt/p1/bin:${PATH}' --env TOOL=p1 opt-path-1 p1 >/dev/null
slice-add --env 'PATH=/opt/p2/bin:${PATH}' --env TOOL=p2 opt-path-2 p2 >/dev/null
# (PATH starts with the dir of the executable, shown as BIN.)
sandbox --slice opt-path-1 --slice opt-path-2 -- sh -c 'echo "$PATH $TOOL"' | sed "s|:$SLICEBOX_BIN_DIR:.*| BIN|"
sandbox --slice opt-path-2 --slice opt-path-1 -- sh -c 'echo "$PATH $TOOL"' | sed "s|:$SLICEBOX_BIN_DIR:.*| BIN|"
## STDOUT:
/opt/p2/bin:/opt/p1/bin BIN
/opt/p1/bin:/opt/p2/bin BIN
## END

#### --out DIR=NAME keeps a build's output as a slice; a failed build stores nothing
sandbox --out /opt/hello=opt-out-hello -- sh -c '
  mkdir -p /opt/hello/bin
  printf "#!/bin/sh\necho hello from the build\n" > /opt/hello/bin/hello
  chmod +x /opt/hello/bin/hello'
echo "built=$?"
slice-list | grep -c '^opt-out-hello	.*	/opt/hello	'
sandbox --slice opt-out-hello -- /opt/hello/bin/hello
sandbox --out /opt/broken=opt-out-broken -- sh -c 'echo partial > /opt/broken/f; exit 4'
echo "failed=$?"
slice-show opt-out-broken >/dev/null 2>&1; echo "stored=$?"
## STDOUT:
built=0
1
hello from the build
failed=4
stored=1
## END

#### --out refuses bad specs; an output the store refuses fails the stage, naming it
sandbox --out relative=x -- true 2>&1 | head -n 1
sandbox --out /opt/x -- true 2>&1 | head -n 1
sandbox --out /opt/x=bad/name -- true 2>&1 | head -n 1
sandbox --out /opt/fifo=opt-out-fifo -- mkfifo /opt/fifo/pipe 2>&1; echo "status=$?"
## STDOUT:
sandbox: invalid mount point 'relative': it must be absolute
sandbox: --out needs DIR=NAME, an absolute directory and a slice name, not '/opt/x'
sandbox: invalid slice name 'bad/name': it may contain only letters, digits and . _ + -
sandbox: cannot store --out '/opt/fifo' as slice 'opt-out-fifo': '/opt/fifo/pipe' is a device node, fifo or socket; slices hold only files, directories and symlinks; nothing was stored
status=1
## END

#### --out through a symlink of the stage is refused before the command runs, naming the real path
mkdir -p linked/real && ln -s real linked/l && slice-add --at /opt/outlink opt-outlink linked >/dev/null
sandbox --slice opt-outlink --out /opt/outlink/l/x=opt-outlinked -- touch ran 2>&1; echo "status=$?"
test -e ran || echo "the command did not run"
## STDOUT:
sandbox: --out '/opt/outlink/l/x' goes through a symbolic link of the stage, and a slice is never mounted through one: use its real path, --out '/opt/outlink/real/x'
Usage: sandbox [OPTIONS] [--] [COMMAND [ARG...]]
status=2
the command did not run
## END

#### --out says what it stored when stderr is a terminal, and nothing in a script
# script(1) gives the executable a terminal; the builtin prints the same.
script -qec "sandbox --out /opt/said=out-said -- sh -c 'echo x > /opt/said/f'" /dev/null |
    tr -d '\r' | sed 's/sha256:[0-9a-f]*/DIGEST/'
sandbox --out /opt/quiet=out-quiet -- sh -c 'echo x > /opt/quiet/f' 2>&1; echo "quiet=$?"
## STDOUT:
sandbox: stored --out '/opt/said' as slice 'out-said' (DIGEST)
quiet=0
## END

#### --out and --cache read under slice-add's limits: SLICEBOX_LIMITS, then --limit
build='mkdir -p /opt/bounded/x; echo 1 > /opt/bounded/x/f; echo 22 > /opt/bounded/g'
SLICEBOX_LIMITS=entries=2 sandbox --out /opt/bounded=opt-out-bounded-refused -- sh -c "$build"; echo "status=$?"
slice-show opt-out-bounded-refused >/dev/null 2>&1; echo "stored=$?"
SLICEBOX_LIMITS=entries=2 sandbox --out /opt/bounded=opt-out-bounded --limit entries=3 -- sh -c "$build"; echo "status=$?"
sandbox --out /opt/bounded=opt-out-bounded --limit file=2 -- sh -c "$build"; echo "status=$?"
mkdir limcwd && echo a > limcwd/a && echo b > limcwd/b && cd limcwd
here=$PWD
{ sandbox --net none --cache --out /opt/bounded=opt-out-boundedc --limit entries=1 -- true; echo "status=$?"; } 2>&1 | sed "s|$here|CWD|g"
cd ..
SLICEBOX_LIMITS=colour=red sandbox --out /opt/bounded=opt-out-bounded -- true 2>&1 | head -n 1
SLICEBOX_LIMITS=colour=red sandbox -- true; echo "without --out: $?"
sandbox --limit file=1 -- true 2>&1 | head -n 1
## STDOUT:
status=1
stored=1
status=0
status=1
sandbox: cannot store the working directory 'CWD' for --cache: 'CWD/b' is entry number 2, more than the limit of 1 entries (--limit entries=N raises it)
status=125
sandbox: SLICEBOX_LIMITS: unknown limit 'colour'; the limits are bytes, file, entries, depth, name, path, ratio
without --out: 0
sandbox: --limit needs --out DIR=NAME: it limits what a stage stores
## END
## STDERR:
sandbox: cannot store --out '/opt/bounded' as slice 'opt-out-bounded-refused': '/opt/bounded/x/f' is entry number 3, more than the limit of 2 entries (--limit entries=N raises it); nothing was stored
sandbox: cannot store --out '/opt/bounded' as slice 'opt-out-bounded': '/opt/bounded/g' holds 3 bytes, more than the limit of 2 bytes for one file (--limit file=N raises it); nothing was stored
## END

#### when user namespaces are refused, the message names the setting and what to do (125)
# user.max_user_namespaces is per user namespace: 0 in a child forbids any below it.
unshare -U --map-root-user sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && sandbox -- true'
echo "status=$?"
## STDOUT:
status=125
## END
## STDERR:
sandbox: cannot create namespaces: No space left on device; user.max_user_namespaces is 0, so no user namespace can be made: as root, run sysctl -w user.max_user_namespaces=15000
## END

#### a mount point missing below a read-only dir gets a tmpfs there that shows the same entries
mkdir -p deep/bin parent/lib && echo deep > deep/bin/f && echo lib > parent/lib/f
ln -s lib/f parent/link
slice-add --at /usr/share/slicebox-spec-missing/x opt-shadow-base deep >/dev/null
slice-add --at /opt/shadow-p opt-shadow-parent parent >/dev/null
slice-add --at /opt/shadow-p/not/there opt-shadow-child deep >/dev/null
host=$(ls -A /usr/share | wc -l)
sandbox --slice opt-shadow-base -- sh -c '
  cat /usr/share/slicebox-spec-missing/x/bin/f
  echo "$(ls -A /usr/share | wc -l)" > /tmp/n
  touch /usr/share/new 2>/dev/null; echo "write=$?"
  cat /tmp/n' > out
head -n 2 out
test "$(tail -n 1 out)" = "$((host + 1))" && echo "every host entry is still there"
test -e /usr/share/slicebox-spec-missing || echo "nothing made on the host"
sandbox --slice opt-shadow-child --slice opt-shadow-parent -- sh -c '
  cat /opt/shadow-p/not/there/bin/f /opt/shadow-p/lib/f /opt/shadow-p/link
  ls -A /opt/shadow-p | sort | tr "\n" " "; echo
  touch /opt/shadow-p/x 2>/dev/null; echo "write=$?"'
## STDOUT:
deep
write=1
every host entry is still there
nothing made on the host
deep
lib
lib
lib link not 
write=1
## END

#### a masked /proc (as inside another container) is named with what to do (125)
unshare -Urm sh -c 'mount -t tmpfs none /proc && cd / && sandbox --no-cwd -- true'
echo "status=$?"
## STDOUT:
status=125
## END
## STDERR:
sandbox: cannot write /proc/self/setgroups: No such file or directory; /proc cannot be written here: inside another container /proc may be masked or read-only, so run slicebox on the host or in a container whose /proc is not masked
## END
