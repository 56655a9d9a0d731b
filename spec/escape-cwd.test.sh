# The working directory is shown read-only at its own path, except where it
# would cover what the stage provides itself (/proc, /dev, /tmp) or show
# what a stage never shows (the host's whole root, /sys). Then it is hidden,
# the command starts in /, and one line on stderr says so.
## compare_shells: bash dash mksh zsh busybox

#### cwd /proc or below: hidden; the stage keeps its own /proc
P=$$
export P
cd /proc && sandbox -- sh -c 'pwd; test -e /proc/$P && echo host-pids-visible || echo own-proc' 2>&1
cd /proc/self && sandbox -- sh -c 'pwd; test -e /proc/$P && echo host-pids-visible || echo own-proc' 2>&1 | sed "s|/proc/[0-9]*'|/proc/PID'|"
## STDOUT:
sandbox: note: the working directory '/proc' is not shown inside: it would cover the stage's own /proc; the command starts in / (--no-cwd says so quietly)
/
own-proc
sandbox: note: the working directory '/proc/PID' is not shown inside: it would cover the stage's own /proc; the command starts in / (--no-cwd says so quietly)
/
own-proc
## END

#### cwd /dev: hidden; /dev/null stays writable
cd /dev && sandbox -- sh -c 'echo x > /dev/null && echo devnull-writable; pwd' 2>&1
cd /dev/shm && sandbox -- sh -c 'pwd' 2>&1
## STDOUT:
sandbox: note: the working directory '/dev' is not shown inside: it would cover the stage's own /dev; the command starts in / (--no-cwd says so quietly)
devnull-writable
/
sandbox: note: the working directory '/dev/shm' is not shown inside: it would cover the stage's own /dev; the command starts in / (--no-cwd says so quietly)
/
## END

#### cwd /tmp: hidden; the stage's /tmp stays fresh and writable; below /tmp is shown
cd /tmp && sandbox -- sh -c 'echo x > /tmp/f && echo tmp-writable; ls /tmp; pwd' 2>&1
d=$(mktemp -d /tmp/spec-cwd.XXXXXX)
echo here > "$d/f"
cd "$d" && sandbox -- sh -c 'cat f; test "$(pwd)" = "$0" && echo same-path' "$d"
rm -rf "$d"
## STDOUT:
sandbox: note: the working directory '/tmp' is not shown inside: it would cover the stage's own /tmp; the command starts in / (--no-cwd says so quietly)
tmp-writable
f
/
here
same-path
## END

#### cwd / or /sys: hidden
cd / && sandbox -- sh -c 'pwd; test -e /root && echo host-root-visible || echo not-shown' 2>&1
cd /sys/kernel && sandbox -- sh -c 'pwd; test -e /sys && echo sys-visible || echo no-sys' 2>&1
## STDOUT:
sandbox: note: the working directory '/' is not shown inside: it is the host's whole root; the command starts in / (--no-cwd says so quietly)
/
not-shown
sandbox: note: the working directory '/sys/kernel' is not shown inside: the stage does not show the host's /sys; the command starts in / (--no-cwd says so quietly)
/
no-sys
## END

#### --no-cwd hides any cwd quietly; --chdir starts elsewhere without a note
echo here > f
sandbox --no-cwd -- sh -c 'pwd; test -e "$0/f" && echo cwd-visible || echo cwd-hidden' "$PWD" 2>&1
cd /proc && sandbox --no-cwd -- pwd 2>&1
cd /proc && sandbox --chdir /tmp -- pwd 2>&1
## STDOUT:
/
cwd-hidden
/
/tmp
## END
