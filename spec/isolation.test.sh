# sandbox isolation: what the payload can see, write and do.
## compare_shells: bash dash mksh zsh busybox

#### two slices at the same path in two stages of one pipeline
mkdir v1 v2
echo 1 > v1/version
echo 2 > v2/version
slice-add --at /opt/tool iso-tool-v1 v1 >/dev/null
slice-add --at /opt/tool iso-tool-v2 v2 >/dev/null
sandbox --slice iso-tool-v1 -- cat /opt/tool/version | sandbox --slice iso-tool-v2 -- sh -c 'cat; cat /opt/tool/version'
sandbox -- sh -c 'test -e /opt/tool && echo visible || echo no-opt-tool'
## STDOUT:
1
2
no-opt-tool
## END

#### --slice REF:MOUNTPOINT mounts elsewhere; two mounts of slices in one stage
mkdir v1 v2
echo 1 > v1/version
echo 2 > v2/version
slice-add --at /opt/tool iso-tool-v1 v1 >/dev/null
d2=$(slice-add --at /opt/tool iso-tool-v2 v2)
sandbox --slice iso-tool-v1:/srv/x -- sh -c 'cat /srv/x/version; test -e /opt/tool || echo no-default'
sandbox --slice iso-tool-v1:/a/one --slice "$d2:/a/two" -- sh -c 'cat /a/one/version /a/two/version'
sandbox --slice iso-tool-v1:relative -- true 2>&1; echo "status=$?"
## STDOUT:
1
no-default
1
2
sandbox: invalid mount point 'relative': it must be absolute
Usage: sandbox [OPTIONS] [--] [COMMAND [ARG...]]
status=2
## END

#### two explicit mounts at one mount point are refused, naming both; a base dir may be covered
mkdir -p dup/a dup/b hostdir && echo a > dup/a/f && echo b > dup/b/f
slice-add --at /opt/dup iso-dup-a dup/a >/dev/null
slice-add --at /opt/dup iso-dup-b dup/b >/dev/null
here=$PWD
sandbox --slice iso-dup-a --slice iso-dup-b -- true 2>&1 | head -n 1
sandbox --slice iso-dup-a --bind "$here/hostdir:/opt/dup" -- true 2>&1 | head -n 1 | sed "s|$here|HERE|"
sandbox --ro-bind "$here/hostdir:/opt/dup" --tmpfs /opt/dup -- true 2>&1 | head -n 1 | sed "s|$here|HERE|"
sandbox --slice iso-dup-a --out /opt/dup=iso-dup-out -- true 2>&1 | head -n 1
sandbox --tmpfs /opt/dup --slice iso-dup-b:/opt/dup/inner -- cat /opt/dup/inner/f
sandbox --ro-bind "$here/dup/a:/etc" -- cat /etc/f
sandbox --slice iso-dup-a --slice iso-dup-b -- true 2>/dev/null; echo "status=$?"
## STDOUT:
sandbox: slice 'iso-dup-a' and slice 'iso-dup-b' want the same mount point '/opt/dup': one would hide the other
sandbox: slice 'iso-dup-a' and --bind 'HERE/hostdir' want the same mount point '/opt/dup': one would hide the other
sandbox: --ro-bind 'HERE/hostdir' and --tmpfs want the same mount point '/opt/dup': one would hide the other
sandbox: slice 'iso-dup-a' and --out want the same mount point '/opt/dup': one would hide the other
b
a
status=2
## END

#### a stage with 500 slices resolves them all, and names the first missing one in --slice order
mkdir many; echo m > many/file
slice-add --at /opt/many iso-many many >/dev/null
i=0; set --
while [ "$i" -lt 500 ]; do i=$((i + 1)); set -- "$@" --slice "iso-many:/m/$i"; done
sandbox "$@" -- sh -c 'cat /m/1/file /m/500/file; ls /m | wc -l'
sandbox "$@" --slice iso-many-nope --slice iso-many-also-nope -- true 2>err; echo "status=$?"
sed "s|$SLICEBOX_STORE|STORE|" err >&2
sandbox --slice iso-many-first-nope "$@" --slice iso-many-also-nope -- true 2>err; echo "status=$?"
sed "s|$SLICEBOX_STORE|STORE|" err >&2
## STDOUT:
m
m
500
status=125
status=125
## END
## STDERR:
sandbox: cannot use slice 'iso-many-nope': no slice 'iso-many-nope' in the store 'STORE'
sandbox: cannot use slice 'iso-many-first-nope': no slice 'iso-many-first-nope' in the store 'STORE'
## END

#### slices, /usr and / are read-only; remount and umount of a slice fail
mkdir v
echo 1 > v/version
slice-add --at /opt/ro iso-ro v >/dev/null
sandbox --slice iso-ro -- rm -f /opt/ro/version 2>&1; echo "status=$?"
sandbox --slice iso-ro -- touch /opt/ro/new 2>&1; echo "status=$?"
sandbox -- touch /usr/new 2>&1; echo "status=$?"
sandbox --env LC_ALL=C -- mkdir /newdir 2>&1; echo "status=$?"
sandbox --slice iso-ro -- awk '$5 == "/opt/ro" { split($6, o, ","); print o[1] }' /proc/self/mountinfo
sandbox --slice iso-ro -- sh -c 'mount -o remount,rw /opt/ro 2>/dev/null; echo "remount=$?"; umount /opt/ro 2>/dev/null; echo "umount=$?"; cat /opt/ro/version; touch /opt/ro/version 2>/dev/null || echo still-ro'
## STDOUT:
rm: cannot remove '/opt/ro/version': Read-only file system
status=1
touch: cannot touch '/opt/ro/new': Read-only file system
status=1
touch: cannot touch '/usr/new': Read-only file system
status=1
mkdir: cannot create directory '/newdir': Read-only file system
status=1
ro
remount=32
umount=32
1
still-ro
## END

#### cwd is visible read-only at its own path; /tmp is fresh and writable
echo from-host > here.txt
sandbox -- cat here.txt
sandbox -- sh -c "test \"\$(pwd)\" = '$PWD' && echo same-path"
sandbox -- touch here2.txt 2>&1; echo "status=$?"
marker=/tmp/slicebox-spec-marker-$$
: > "$marker"
sandbox -- sh -c "test -e '$marker' && echo host-tmp-visible || echo host-tmp-hidden"
sandbox -- sh -c "echo inside > '$marker.in' && cat '$marker.in'"
test -e "$marker.in" && echo leaked-out || echo stayed-inside
rm -f "$marker"
## STDOUT:
from-host
same-path
touch: cannot touch 'here2.txt': Read-only file system
status=1
host-tmp-hidden
inside
stayed-inside
## END

#### host dirs are absent: /root /home /var /run /srv /mnt, $HOME, the store
sandbox -- sh -c 'for d in /root /home /var /run /srv /mnt /media /boot /opt; do test -e $d && echo "visible: $d"; done; echo checked'
sandbox -- sh -c 'test -e "$HOME" && echo home-visible || echo home-hidden'
sandbox -- sh -c 'test -e "$SLICEBOX_STORE" && echo store-visible || echo store-hidden'
top=$(echo "$PWD" | cut -d/ -f2)
sandbox -- ls -A / | grep -vxE "bin|dev|etc|lib|lib32|lib64|libx32|proc|sbin|tmp|usr|$top"
echo end
## STDOUT:
checked
home-hidden
store-hidden
end
## END

#### minimal /dev
sandbox -- ls -A /dev
sandbox -- readlink /dev/stdin /dev/stdout /dev/stderr /dev/fd
sandbox -- sh -c 'echo gone > /dev/null; head -c 4 /dev/zero | od -An -tx1; head -c 8 /dev/urandom | wc -c; echo x > /dev/shm/f && cat /dev/shm/f'
sandbox -- sh -c 'echo x > /dev/full' 2>/dev/null; echo "full=$?"
## STDOUT:
fd
full
null
random
shm
stderr
stdin
stdout
tty
urandom
zero
/proc/self/fd/0
/proc/self/fd/1
/proc/self/fd/2
/proc/self/fd
 00 00 00 00
8
x
full=1
## END

#### own pid namespace: the payload is pid 2, its parent pid 1
sandbox -- sh -c 'echo "pid=$$ ppid=$PPID"'
sandbox -- sh -c "test -d /proc/$$ && echo host-pid-visible || echo host-pid-hidden"
sandbox -- sh -c 'cat /proc/self/stat' | cut -d' ' -f1 | grep -Ecx '[0-9]+'
## STDOUT:
pid=2 ppid=1
host-pid-hidden
1
## END

#### same uid/gid as the caller; no capabilities; no_new_privs
uid=$(id -u)
gid=$(id -g)
sandbox -- sh -c "test \"\$(id -u)\" = $uid && test \"\$(id -g)\" = $gid && echo same-ids"
sandbox -- grep -E '^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs):' /proc/self/status
## STDOUT:
same-ids
CapInh:	0000000000000000
CapPrm:	0000000000000000
CapEff:	0000000000000000
CapAmb:	0000000000000000
NoNewPrivs:	1
## END

#### --net none leaves only lo; --net host shares the host's interfaces
sandbox --net none -- cat /proc/net/dev | sed 1,2d | cut -d: -f1 | tr -d ' '
sed 1,2d /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort > host-ifs
sandbox --net host -- cat /proc/net/dev | sed 1,2d | cut -d: -f1 | tr -d ' ' | sort > sandbox-ifs
sandbox -- cat /proc/net/dev | sed 1,2d | cut -d: -f1 | tr -d ' ' | sort > default-ifs
cmp host-ifs sandbox-ifs && cmp host-ifs default-ifs && echo host-net-shared
## STDOUT:
lo
host-net-shared
## END
