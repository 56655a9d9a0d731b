# Setup never resolves a path outside the stage's root: mount points are
# walked inside the new root one component at a time and never through a
# symlink, and the host's root is at no path at all while they are made.
## compare_shells: bash dash mksh zsh busybox

#### the adversarial pass's nested slices cannot reach the host root
mkdir a b
ln -s /oldroot a/b
ln -s /oldroot b/x
slice-add --at /opt/a esc-nest-a a >/dev/null
slice-add --at /opt/a/b/tmp esc-nest-b b >/dev/null
echo secret > secret
sandbox --slice esc-nest-a --slice esc-nest-b -- cat "$PWD/secret" 2>&1
echo "status=$?"
## STDOUT:
sandbox: cannot mount slice 'esc-nest-b' at '/opt/a/b/tmp': '/opt/a/b' is a symbolic link, and mount points are never resolved through one
status=125
## END

#### symlinks at any depth, absolute or relative, or as the mount point itself
mkdir -p s1/d s2 s3/x/y m
ln -s / s1/d/up
ln -s ../../.. s3/x/y/rel
ln -s /etc s2/last
echo m > m/f
slice-add --at /opt/e1 esc-d1 s1 >/dev/null
slice-add --at /opt/e2 esc-d2 s2 >/dev/null
slice-add --at /opt/e3 esc-d3 s3 >/dev/null
slice-add --at /opt/e1/d/up/tmp/m esc-m1 m >/dev/null
slice-add --at /opt/e2/last esc-m2 m >/dev/null
slice-add --at /opt/e3/x/y/rel/m esc-m3 m >/dev/null
sandbox --slice esc-d1 --slice esc-m1 -- true 2>&1; echo "status=$?"
sandbox --slice esc-m2 --slice esc-d2 -- true 2>&1; echo "status=$?"
sandbox --slice esc-d3 --slice esc-m3 -- true 2>&1; echo "status=$?"
## STDOUT:
sandbox: cannot mount slice 'esc-m1' at '/opt/e1/d/up/tmp/m': '/opt/e1/d/up' is a symbolic link, and mount points are never resolved through one
status=125
sandbox: cannot mount slice 'esc-m2' at '/opt/e2/last': '/opt/e2/last' is a symbolic link, and mount points are never resolved through one
status=125
sandbox: cannot mount slice 'esc-m3' at '/opt/e3/x/y/rel/m': '/opt/e3/x/y/rel' is a symbolic link, and mount points are never resolved through one
status=125
## END

#### links into /proc (magic links) are refused like any symlink
mkdir pm m
ln -s /proc/self/root pm/r
ln -s /proc/1/cwd pm/c
echo m > m/f
slice-add --at /opt/pm esc-pm pm >/dev/null
slice-add --at /opt/m esc-pm-m m >/dev/null
sandbox --slice esc-pm --slice esc-pm-m:/opt/pm/r/tmp -- true 2>&1; echo "status=$?"
sandbox --slice esc-pm --slice esc-pm-m:/opt/pm/c/x -- true 2>&1; echo "status=$?"
## STDOUT:
sandbox: cannot mount slice 'esc-pm-m' at '/opt/pm/r/tmp': '/opt/pm/r' is a symbolic link, and mount points are never resolved through one
status=125
sandbox: cannot mount slice 'esc-pm-m' at '/opt/pm/c/x': '/opt/pm/c' is a symbolic link, and mount points are never resolved through one
status=125
## END

#### two and three nested slices mount in any order; a symlink in the middle one is refused
mkdir -p l1/inner l2/deeper l3 l2b
echo one > l1/f
echo two > l2/f
echo three > l3/f
ln -s / l2b/deeper
slice-add --at /opt/n esc-l1 l1 >/dev/null
slice-add --at /opt/n/inner esc-l2 l2 >/dev/null
slice-add --at /opt/n/inner/deeper esc-l3 l3 >/dev/null
slice-add --at /opt/n/inner esc-l2b l2b >/dev/null
sandbox --slice esc-l2 --slice esc-l1 -- cat /opt/n/f /opt/n/inner/f
sandbox --slice esc-l3 --slice esc-l1 --slice esc-l2 -- cat /opt/n/f /opt/n/inner/f /opt/n/inner/deeper/f
sandbox --slice esc-l3 --slice esc-l1 --slice esc-l2b -- true 2>&1; echo "status=$?"
## STDOUT:
one
two
one
two
three
sandbox: cannot mount slice 'esc-l3' at '/opt/n/inner/deeper': '/opt/n/inner/deeper' is a symbolic link, and mount points are never resolved through one
status=125
## END

#### the host's old root is at no path: /oldroot is an ordinary dir of the stage
mkdir o
echo mine > o/f
slice-add --at /opt/o esc-o o >/dev/null
sandbox --slice esc-o:/oldroot/tmp -- sh -c 'ls /oldroot; ls /oldroot/tmp'
sandbox --slice esc-o:/oldroot/root -- sh -c 'cat /oldroot/root/f; ls /oldroot'
test -e /oldroot && echo host-has-oldroot || echo no-oldroot-on-host
## STDOUT:
tmp
f
mine
root
no-oldroot-on-host
## END

#### setup creates nothing on the host: not in a read-only bind, not in a writable one
mkdir o rw
echo mine > o/f
slice-add --at /opt/o esc-mk o >/dev/null
# In a read-only bind, the missing dir is made in a tmpfs over the bind.
sandbox --ro-bind rw:/r --slice esc-mk:/r/made/deeper -- cat /r/made/deeper/f 2>&1
test -e rw/made && echo made-on-host || echo nothing-in-ro-bind
sandbox --bind rw:/w --slice esc-mk:/w/sub/x -- true 2>&1
test -e rw/sub && echo made-on-host || echo nothing-in-bind
mkdir rw/exists
sandbox --bind rw:/w --slice esc-mk:/w/exists -- cat /w/exists/f
ls rw
## STDOUT:
mine
nothing-in-ro-bind
sandbox: cannot mount slice 'esc-mk' at '/w/sub/x': '/w/sub': No such file or directory
nothing-in-bind
mine
exists
## END

#### a --bind destination through a symlink lands where the link points inside the stage, never outside
mkdir -p s/d bsrc
ln -s / s/d/up
ln -s ../../../../proc s/d/proc-link
ln -s loop1 s/d/loop2; ln -s loop2 s/d/loop1
echo b > bsrc/f
slice-add --at /opt/bs esc-bs s >/dev/null
here=$(pwd -P)
# up -> / is the stage's root: /opt/bs/d/up/tmp/b is the stage's /tmp/b.
sandbox --slice esc-bs --bind bsrc:/opt/bs/d/up/tmp/b-esc -- cat /tmp/b-esc/f
test -e /tmp/b-esc && echo on-host || echo "not on the host"
sandbox --slice esc-bs --ro-bind bsrc:/opt/bs/d/proc-link/x -- true; echo "status=$?"
sandbox --slice esc-bs --ro-bind bsrc:/opt/bs/d/loop1 -- true; echo "status=$?"
sandbox --slice esc-bs --ro-bind bsrc:/opt/bs/d/b -- cat /opt/bs/d/b/f 2>&1 | sed "s|$here/bsrc|BSRC|"
sandbox --ro-bind bsrc:/opt/nb/b -- cat /opt/nb/b/f
## STDOUT:
b
not on the host
status=2
status=2
b
b
## END
## STDERR:
sandbox: mount point '/proc/x' is inside the stage's own /proc
Usage: sandbox [OPTIONS] [--] [COMMAND [ARG...]]
sandbox: bind destination '/opt/bs/d/loop1' goes through more than 40 symbolic links
Usage: sandbox [OPTIONS] [--] [COMMAND [ARG...]]
## END
