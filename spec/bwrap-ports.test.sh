# Checks ported from bubblewrap's tests/test-run.sh that apply to
# sandbox's options. Every cell runs them rootless and as root.
## compare_shells: bash dash mksh zsh busybox

#### read-only stays read-only: write, chmod, remount rw and unmount fail, also as uid 0
mkdir -p dir && echo kept > dir/file
try_writes() {
  sandbox "$@" --ro-bind dir:/mnt/ro -- sh -c '
    echo changed > /mnt/ro/file 2>/dev/null; echo "write=$?"
    chmod 600 /mnt/ro/file 2>/dev/null; echo "chmod=$?"
    mount -o remount,rw /mnt/ro 2>/dev/null; echo "remount=$?"
    umount /mnt/ro 2>/dev/null; echo "umount=$?"
    cat /mnt/ro/file'
}
try_writes
try_writes --uid 0 --gid 0
## STDOUT:
write=2
chmod=1
remount=32
umount=32
kept
write=2
chmod=1
remount=32
umount=32
kept
## END

#### unreadable host files and dirs stay unreadable through a bind, also as root
mkdir -p locked/dir && echo secret > locked/file && echo inner > locked/dir/f
chmod 000 locked/file locked/dir
sandbox --ro-bind locked:/mnt/l -- sh -c '
  cat /mnt/l/file 2>/dev/null; echo "file=$?"
  ls /mnt/l/dir 2>/dev/null; echo "dir=$?"
  cat /mnt/l/dir/f 2>/dev/null; echo "below=$?"'
chmod 755 locked/dir
## STDOUT:
file=1
dir=2
below=1
## END

#### /dev has the expected nodes, with a devpts of its own under --dev
sandbox -- ls -A /dev | tr '\n' ' '; echo
sandbox --dev -- ls -A /dev | tr '\n' ' '; echo
sandbox --dev -- sh -c 'for n in null zero full random urandom tty; do test -c /dev/$n || echo "$n is not a char device"; done
  echo x > /dev/null && head -c 4 /dev/zero | wc -c
  test -c /dev/pts/ptmx && echo ptmx'
## STDOUT:
fd full null random shm stderr stdin stdout tty urandom zero 
fd full null ptmx pts random shm stderr stdin stdout tty urandom zero 
4
ptmx
## END

#### there are no capabilities, as any uid inside
caps() {
  sandbox "$@" -- grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status | awk '{ print $2 }' | sort | uniq -c
}
caps
caps --uid 0 --gid 0
caps --uid 1000
## STDOUT:
      5 0000000000000000
      5 0000000000000000
      5 0000000000000000
## END

#### -- ends the options: what follows is the command and its own arguments
sandbox -- --help 2>&1; echo "status=$?"
sandbox -- echo --net none --slice x
sandbox echo -- --bogus
## STDOUT:
sandbox: cannot execute '--help': command not found
status=127
--net none --slice x
-- --bogus
## END

#### no mount made inside reaches the host, not even below a writable bind
mkdir -p shared
before=$(wc -l < /proc/self/mountinfo)
# A user namespace of its own gives the payload the power to mount, in a
# mount namespace of its own (ctypes: unshare(1) would exec and lose it);
# the default seccomp filter refuses one without --allow-userns.
sandbox --allow-userns --bind shared:/mnt/shared -- python3 -c '
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare(0x10000000 | 0x00020000) == 0, ctypes.get_errno()
assert libc.mount(b"none", b"/mnt/shared", b"tmpfs", 0, None) == 0, ctypes.get_errno()
print("mounted")'
after=$(wc -l < /proc/self/mountinfo)
test "$before" = "$after" && echo "host mount table unchanged"
ls -A shared
## STDOUT:
mounted
host mount table unchanged
## END

#### mount points made for a stage are 0755 dirs of the stage's own, nothing on the host
sandbox --tmpfs /a/b/c -- stat -c '%a %n' /a /a/b /a/b/c
test -e /a || echo "nothing on the host"
## STDOUT:
755 /a
755 /a/b
755 /a/b/c
nothing on the host
## END

#### a bind over a destination that is a symlink binds over what it points to
mkdir -p tree/real bsrc2
echo original > tree/real/f
ln -s real tree/conf
echo bound > bsrc2/f
slice-add --at /opt/bwl bwrap-link tree >/dev/null
sandbox --slice bwrap-link --ro-bind bsrc2:/opt/bwl/conf -- sh -c 'cat /opt/bwl/conf/f /opt/bwl/real/f; readlink /opt/bwl/conf'
## STDOUT:
bound
bound
real
## END
