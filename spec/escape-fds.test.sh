# Only the descriptors the user names reach the stage: pid 1 closes every
# other caller fd before any path from the user is used, and --chdir is
# resolved inside the stage without following links into /proc/PID.
## compare_shells: bash dash mksh zsh busybox

#### --chdir through a descriptor the user did not pass finds nothing
sandbox --chdir /dev/fd/9 -- touch WROTE 9<. 2>&1
echo "status=$?"
sandbox --chdir /proc/self/fd/9 -- touch WROTE 9<. 2>&1
echo "status=$?"
test -e WROTE && echo wrote-on-host || echo nothing-written
## STDOUT:
sandbox: cannot change directory to '/dev/fd/9': No such file or directory
status=125
sandbox: cannot change directory to '/proc/self/fd/9': No such file or directory
status=125
nothing-written
## END

#### --chdir never follows a link to a descriptor, cwd or root, even of stdin
sandbox --chdir /dev/stdin -- touch WROTE <. 2>&1
echo "status=$?"
sandbox --chdir /proc/1/root -- true 2>&1
echo "status=$?"
sandbox --chdir /proc/self/cwd -- true 2>&1
echo "status=$?"
test -e WROTE && echo wrote-on-host || echo nothing-written
## STDOUT:
sandbox: cannot change directory to '/dev/stdin': Too many levels of symbolic links (links to a process's descriptors, cwd or root are not followed)
status=125
sandbox: cannot change directory to '/proc/1/root': Too many levels of symbolic links (links to a process's descriptors, cwd or root are not followed)
status=125
sandbox: cannot change directory to '/proc/self/cwd': Too many levels of symbolic links (links to a process's descriptors, cwd or root are not followed)
status=125
nothing-written
## END

#### --chdir follows ordinary symlinks inside the stage
mkdir -p s/real
ln -s real s/link
ln -s /opt/fds-s/real s/abs
slice-add --at /opt/fds-s fds-s s >/dev/null
sandbox --slice fds-s --chdir /opt/fds-s/link -- pwd -P
sandbox --slice fds-s --chdir /opt/fds-s/abs -- pwd -P
## STDOUT:
/opt/fds-s/real
/opt/fds-s/real
## END

#### a directory descriptor of the caller's is not in the stage without --fd
mkdir d
sandbox -- sh -c 'ls /proc/self/fd | sort -n | tr "\n" " "; echo' 8<d 9<.
sandbox --fd 9 -- sh -c 'ls /proc/self/fd | sort -n | tr "\n" " "; echo' 8<d 9<.
## STDOUT:
0 1 2 3 
0 1 2 3 9 
## END

#### pid 1's descriptors, memory and root are out of the payload's reach
sandbox -- sh -c 'readlink /proc/1/fd/0 /proc/1/fd/1 >/dev/null 2>&1 || echo fd-denied
cat /proc/1/environ >/dev/null 2>&1 || echo environ-denied
ls /proc/1/root/ >/dev/null 2>&1 || echo root-denied
head -c1 /proc/1/mem >/dev/null 2>&1 || echo mem-denied'
## STDOUT:
fd-denied
environ-denied
root-denied
mem-denied
## END

#### --fd N=M never lands on slicebox's own report socket
# Whatever number the report socket has, a descriptor passed onto it must
# not swallow the report: an exec failure is still named, and nothing of
# slicebox's is written to the user's file.
for m in 3 4 5 6 7 8; do
  sandbox --fd 9=$m -- /no/such/command 9>f-$m 2>err-$m; echo "$m: status=$? bytes=$(wc -c < f-$m) $(grep -c 'cannot execute' err-$m)"
done
## STDOUT:
3: status=127 bytes=0 1
4: status=127 bytes=0 1
5: status=127 bytes=0 1
6: status=127 bytes=0 1
7: status=127 bytes=0 1
8: status=127 bytes=0 1
## END

#### --fd M above the descriptor limit is a usage error, not an overflow
sandbox --fd 9=2147483647 -- true 9<. 2>&1 | head -n 1 | sed 's/the highest is [0-9]*/the highest is N/'
sandbox --fd 9=2147483647 -- true 9<.; echo "status=$?"
## STDOUT:
sandbox: --fd 9=2147483647: 2147483647 is too high a number; the highest is N (the descriptor limit, ulimit -n, less room for moving descriptors)
status=2
## END
