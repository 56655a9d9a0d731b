# The default seccomp filter (issue 13, item 1): each refused call, with
# the prober spec/try-syscall.py, whose arguments make an allowed call fail
# with EBADF, EFAULT, EINVAL or EOPNOTSUPP (or succeed harmlessly): EPERM
# or ENOSYS can only be the filter's answer. Calls that check a capability
# first run "traced" (see the prober): ENOSYS there means let through.
# Each output line is printed by the probe after its call. x86_64 numbers.
## compare_shells: bash dash mksh zsh busybox

#### add_key is refused with EPERM
sandbox -- python3 - add_key < "$SPEC_DIR/try-syscall.py"
## STDOUT:
add_key: EPERM
## END

#### keyctl is refused with EPERM
sandbox -- python3 - keyctl < "$SPEC_DIR/try-syscall.py"
## STDOUT:
keyctl: EPERM
## END

#### request_key is refused with EPERM
sandbox -- python3 - request_key < "$SPEC_DIR/try-syscall.py"
## STDOUT:
request_key: EPERM
## END

#### keyctl through the x32 ABI is refused with EPERM (a kernel without x32 says ENOSYS)
sandbox -- python3 - keyctl-x32 < "$SPEC_DIR/try-syscall.py"
## STDOUT:
keyctl-x32: EPERM
## END

#### ioctl TIOCSTI is refused with EPERM, also with high bits set in the request (CVE-2019-10063)
sandbox -- python3 - ioctl-TIOCSTI ioctl-TIOCSTI-high-bits < "$SPEC_DIR/try-syscall.py"
## STDOUT:
ioctl-TIOCSTI: EPERM
ioctl-TIOCSTI-high-bits: EPERM
## END

#### ioctl TIOCLINUX is refused with EPERM
sandbox -- python3 - ioctl-TIOCLINUX < "$SPEC_DIR/try-syscall.py"
## STDOUT:
ioctl-TIOCLINUX: EPERM
## END

#### perf_event_open is refused with EPERM
sandbox -- python3 - perf_event_open < "$SPEC_DIR/try-syscall.py"
## STDOUT:
perf_event_open: EPERM
## END

#### kexec_load is refused with EPERM (traced)
sandbox -- python3 - kexec_load < "$SPEC_DIR/try-syscall.py"
## STDOUT:
kexec_load: EPERM
## END

#### kexec_file_load is refused with EPERM (traced)
sandbox -- python3 - kexec_file_load < "$SPEC_DIR/try-syscall.py"
## STDOUT:
kexec_file_load: EPERM
## END

#### bpf is refused with EPERM
sandbox -- python3 - bpf < "$SPEC_DIR/try-syscall.py"
## STDOUT:
bpf: EPERM
## END

#### userfaultfd is refused with EPERM
sandbox -- python3 - userfaultfd < "$SPEC_DIR/try-syscall.py"
## STDOUT:
userfaultfd: EPERM
## END

#### io_uring_setup fails with ENOSYS, as on a kernel without io_uring
sandbox -- python3 - io_uring_setup < "$SPEC_DIR/try-syscall.py"
## STDOUT:
io_uring_setup: ENOSYS
## END

#### io_uring_enter fails with ENOSYS
sandbox -- python3 - io_uring_enter < "$SPEC_DIR/try-syscall.py"
## STDOUT:
io_uring_enter: ENOSYS
## END

#### io_uring_register fails with ENOSYS
sandbox -- python3 - io_uring_register < "$SPEC_DIR/try-syscall.py"
## STDOUT:
io_uring_register: ENOSYS
## END

#### init_module is refused with EPERM (traced)
sandbox -- python3 - init_module < "$SPEC_DIR/try-syscall.py"
## STDOUT:
init_module: EPERM
## END

#### finit_module is refused with EPERM (traced)
sandbox -- python3 - finit_module < "$SPEC_DIR/try-syscall.py"
## STDOUT:
finit_module: EPERM
## END

#### delete_module is refused with EPERM (traced)
sandbox -- python3 - delete_module < "$SPEC_DIR/try-syscall.py"
## STDOUT:
delete_module: EPERM
## END

#### acct is refused with EPERM (traced)
sandbox -- python3 - acct < "$SPEC_DIR/try-syscall.py"
## STDOUT:
acct: EPERM
## END

#### quotactl is refused with EPERM
sandbox -- python3 - quotactl < "$SPEC_DIR/try-syscall.py"
## STDOUT:
quotactl: EPERM
## END

#### quotactl_fd is refused with EPERM
sandbox -- python3 - quotactl_fd < "$SPEC_DIR/try-syscall.py"
## STDOUT:
quotactl_fd: EPERM
## END

#### syslog is refused with EPERM (traced)
sandbox -- python3 - syslog < "$SPEC_DIR/try-syscall.py"
## STDOUT:
syslog: EPERM
## END

#### personality ADDR_NO_RANDOMIZE is refused with EPERM; the query passes
sandbox -- python3 - personality-ADDR_NO_RANDOMIZE personality-query < "$SPEC_DIR/try-syscall.py"
## STDOUT:
personality-ADDR_NO_RANDOMIZE: EPERM
personality-query: ok
## END

#### unshare with CLONE_NEWUSER is refused with EPERM
sandbox -- python3 - unshare-NEWUSER < "$SPEC_DIR/try-syscall.py"
## STDOUT:
unshare-NEWUSER: EPERM
## END

#### clone with CLONE_NEWUSER is refused with EPERM
sandbox -- python3 - clone-NEWUSER < "$SPEC_DIR/try-syscall.py"
## STDOUT:
clone-NEWUSER: EPERM
## END

#### clone3 fails with ENOSYS, so that libc falls back to clone
sandbox -- python3 - clone3 < "$SPEC_DIR/try-syscall.py"
## STDOUT:
clone3: ENOSYS
## END

#### other calls pass: ioctl TIOCGWINSZ on a bad descriptor fails with EBADF, getpid works
sandbox -- python3 - ioctl-TIOCGWINSZ getpid getppid < "$SPEC_DIR/try-syscall.py"
## STDOUT:
ioctl-TIOCGWINSZ: EBADF
getpid: ok
getppid: ok
## END

#### a call through the i386 ABI (int 0x80) kills the process with SIGSYS
sandbox -- python3 - int80-getpid < "$SPEC_DIR/try-syscall.py"
echo "status=$?"
## STDOUT:
int80-getpid: calling
status=159
## END

#### fork and posix_spawn work: clone3's ENOSYS sends libc to clone
sandbox -- python3 -c 'import os, subprocess
print("spawned", subprocess.run(["true"]).returncode)
pid = os.fork()
if pid == 0:
    os._exit(7)
print("forked", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))'
sandbox -- sh -c 'true & wait $!; echo "background job $?"'
## STDOUT:
spawned 0
forked 7
background job 0
## END

#### the filter is installed in the payload only, once: Seccomp 2 in /proc/self/status
sandbox -- grep -E '^Seccomp(_filters)?:' /proc/self/status
sandbox -- grep -E '^Seccomp:' /proc/1/status
## STDOUT:
Seccomp:	2
Seccomp_filters:	1
Seccomp:	0
## END

#### a nested user namespace is refused by default, with the message unshare(1) prints
sandbox -- unshare -U true 2>&1; echo "status=$?"
## STDOUT:
unshare: unshare failed: Operation not permitted
status=1
## END

#### --allow-userns lets the command make user namespaces and keeps every other rule
sandbox --allow-userns -- unshare -U sh -c 'echo "nested as $(id -u)"'
sandbox --allow-userns -- python3 - unshare-NEWUSER clone-NEWUSER clone3 keyctl < "$SPEC_DIR/try-syscall.py"
## STDOUT:
nested as 65534
unshare-NEWUSER: EINVAL
clone-NEWUSER: EINVAL
clone3: EINVAL
keyctl: EPERM
## END

#### --uid 0 still gets its nested user namespace, made before the filter
sandbox --uid 0 -- python3 - keyctl unshare-NEWUSER < "$SPEC_DIR/try-syscall.py"
sandbox --uid 0 -- id -u
## STDOUT:
keyctl: EPERM
unshare-NEWUSER: EPERM
0
## END

#### --seccomp-fd N installs the user's program in place of the default one
# getpid -> ENOMSG (42); everything else allowed, keyctl included.
python3 -c 'import struct, sys
code = [(0x20, 0, 0, 0), (0x15, 0, 1, 39), (0x06, 0, 0, 0x50000 | 42), (0x06, 0, 0, 0x7fff0000)]
sys.stdout.buffer.write(b"".join(struct.pack("=HBBI", *i) for i in code))' > getpid.bpf
sandbox --seccomp-fd 3 -- python3 - getpid keyctl add_key personality-ADDR_NO_RANDOMIZE < "$SPEC_DIR/try-syscall.py" 3< getpid.bpf
sandbox --seccomp-fd 3 -- sh -c 'test -e /proc/self/fd/3 || echo "descriptor 3 is not passed on"' 3< getpid.bpf
## STDOUT:
getpid: ENOMSG
keyctl: ENOTSUP
add_key: EFAULT
personality-ADDR_NO_RANDOMIZE: ok
descriptor 3 is not passed on
## END

#### --seccomp-fd refuses what is not a whole program, before the stage starts
printf '0123456789ab' > twelve.bpf
: > empty.bpf
python3 -c 'import sys; sys.stdout.buffer.write(b"\x06\x00\x00\x00\x00\x00\xff\x7f" * 4097)' > long.bpf
sandbox --seccomp-fd 3 -- echo ran 3< twelve.bpf 2>&1; echo "status=$?"
sandbox --seccomp-fd 3 -- echo ran 3< empty.bpf 2>&1; echo "status=$?"
sandbox --seccomp-fd 3 -- echo ran 3< long.bpf 2>&1; echo "status=$?"
sandbox --seccomp-fd 7 -- echo ran 2>&1; echo "status=$?"
sandbox --seccomp-fd x -- echo ran 2>&1; echo "status=$?"
sandbox --allow-userns --seccomp-fd 3 -- echo ran 3< twelve.bpf 2>&1; echo "status=$?"
## STDOUT:
sandbox: --seccomp-fd 3: 12 bytes is not a whole number of 8-byte instructions (struct sock_filter)
Usage: sandbox [OPTIONS] [--] [COMMAND [ARG...]]
status=2
sandbox: --seccomp-fd 3: the program is empty
Usage: sandbox [OPTIONS] [--] [COMMAND [ARG...]]
status=2
sandbox: --seccomp-fd 3: the program has more than 4096 instructions
Usage: sandbox [OPTIONS] [--] [COMMAND [ARG...]]
status=2
sandbox: cannot read the seccomp program of --seccomp-fd 7: descriptor 7 is not open
status=125
sandbox: --seccomp-fd needs a descriptor number, not 'x'
Usage: sandbox [OPTIONS] [--] [COMMAND [ARG...]]
status=2
sandbox: --allow-userns changes the default seccomp filter, which --seccomp-fd replaces
Usage: sandbox [OPTIONS] [--] [COMMAND [ARG...]]
status=2
## END

#### a program the kernel refuses ends the stage with 125, naming the step
# One instruction that loads and never returns.
python3 -c 'import sys; sys.stdout.buffer.write(b"\x20\x00\x00\x00\x00\x00\x00\x00")' > noreturn.bpf
sandbox --seccomp-fd 3 -- echo ran 3< noreturn.bpf 2>&1; echo "status=$?"
## STDOUT:
sandbox: cannot install the seccomp filter: Invalid argument
status=125
## END
