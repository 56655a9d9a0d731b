# try-syscall.py NAME...: calls each system call NAME with arguments
# chosen so that, when a seccomp filter lets it through, the kernel fails
# it with EBADF, EFAULT, EINVAL or EOPNOTSUPP (or it succeeds harmlessly)
# before it could do anything; EPERM or ENOSYS then can only be a filter's
# answer, as in Flatpak's tests/try-syscall.c. Prints "NAME: ERRNO" (or
# "NAME: ok") per call, so a line proves the probe ran.
#
# Calls whose first check is a capability (kexec, modules, acct, syslog)
# would answer EPERM for an unprivileged caller with or without a filter.
# Those run "traced": the probe first stacks a filter of its own that
# answers the call with SECCOMP_RET_TRACE, which with no tracer fails it
# with ENOSYS before the kernel runs it. An errno answer of an earlier
# filter takes precedence over TRACE, so EPERM means the stage's filter
# refused the call and ENOSYS that it let it through.
#
# x86_64 only (the numbers below). Read from stdin inside a stage:
#   sandbox -- python3 - keyctl < try-syscall.py
import ctypes
import errno
import os
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L = ctypes.c_long
NULL = None
X32 = 0x40000000
TIOCSTI, TIOCLINUX, TIOCGWINSZ = 0x5412, 0x541C, 0x5413
CLONE_NEWUSER, CLONE_FS = 0x10000000, 0x200

# name: (number, arguments, traced)
CALLS = {
    'add_key': (248, [NULL, NULL, NULL, 0, L(-1)], False),          # EFAULT
    'keyctl': (250, [L(0x7fff)], False),                            # EOPNOTSUPP
    'keyctl-x32': (X32 | 250, [L(0x7fff)], False),                  # ENOSYS without x32
    'request_key': (249, [NULL, NULL, NULL, L(0)], False),          # EFAULT
    'ioctl-TIOCSTI': (16, [L(-1), L(TIOCSTI), NULL], False),        # EBADF
    'ioctl-TIOCSTI-high-bits': (16, [L(-1), L((1 << 32) | TIOCSTI), NULL], False),
    'ioctl-TIOCLINUX': (16, [L(-1), L(TIOCLINUX), NULL], False),
    'ioctl-TIOCGWINSZ': (16, [L(-1), L(TIOCGWINSZ), NULL], False),
    'perf_event_open': (298, [NULL, L(0), L(-1), L(-1), L(0)], False),  # EFAULT
    'kexec_load': (246, [L(0), L(0), NULL, L(0xffff0000)], True),
    'kexec_file_load': (320, [L(-1), L(-1), L(0), NULL, L(-1)], True),
    'bpf': (321, [L(0), NULL, L(8)], False),                        # EFAULT
    'userfaultfd': (323, [L(3)], False),                            # EINVAL
    'io_uring_setup': (425, [L(0), NULL], False),                   # EFAULT
    'io_uring_enter': (426, [L(-1), L(0), L(0), L(0), NULL, L(0)], False),  # EBADF
    'io_uring_register': (427, [L(-1), L(0), NULL, L(0)], False),   # EBADF
    'init_module': (175, [NULL, L(0), NULL], True),
    'finit_module': (313, [L(-1), NULL, L(0)], True),
    'delete_module': (176, [NULL, L(0)], True),
    'acct': (163, [L(1)], True),
    'quotactl': (179, [L(0xffff), NULL, L(0), NULL], False),       # EINVAL
    'quotactl_fd': (443, [L(-1), L(0), L(0), NULL], False),         # EBADF
    'syslog': (103, [L(9999), NULL, L(0)], True),
    'personality-ADDR_NO_RANDOMIZE': (135, [L(0x0040000)], False),  # ok
    'personality-query': (135, [L(0xffffffff)], False),             # ok
    'unshare-NEWUSER': (272, [L(CLONE_NEWUSER | 1)], False),        # EINVAL
    'clone-NEWUSER': (56, [L(CLONE_NEWUSER | CLONE_FS), NULL, NULL, NULL, L(0)], False),
    'clone3': (435, [NULL, L(0)], False),                           # EINVAL
    'getpid': (39, [], False),                                      # ok
    'getppid': (110, [], False),                                    # ok
}

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_RET_TRACE, SECCOMP_RET_ALLOW = 0x7ff00000, 0x7fff0000


def trace(nr):
    """Stacks a filter answering `nr` with SECCOMP_RET_TRACE."""
    libc.prctl(38, 1, 0, 0, 0)             # PR_SET_NO_NEW_PRIVS, as in a stage
    code = [
        (0x20, 0, 0, 0),                   # A = seccomp_data.nr
        (0x15, 0, 1, nr),                  # if A == nr
        (0x06, 0, 0, SECCOMP_RET_TRACE),   #   return TRACE
        (0x06, 0, 0, SECCOMP_RET_ALLOW),   # return ALLOW
    ]
    program = ctypes.create_string_buffer(b''.join(struct.pack('=HBBI', *i) for i in code))
    fprog = struct.pack('=HxxxxxxQ', len(code), ctypes.addressof(program))
    if libc.syscall(317, L(SECCOMP_SET_MODE_FILTER), L(0), ctypes.c_char_p(fprog)) != 0:
        sys.exit('try-syscall: cannot stack the tracing filter: ' + os.strerror(ctypes.get_errno()))


def probe(name):
    nr, args, traced = CALLS[name]
    if traced:
        trace(nr)
    result = libc.syscall(L(nr), *args)
    if result < 0:
        answer = errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    else:
        answer = 'ok'
    os.write(1, f'{name}: {answer}\n'.encode())


def int80_getpid():
    """getpid through the i386 ABI (int 0x80) from this 64-bit process."""
    import mmap
    code = b'\xb8\x14\x00\x00\x00\xcd\x80\xc3'   # mov eax, 20; int 0x80; ret
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    function = ctypes.CFUNCTYPE(ctypes.c_int)(address)
    os.write(1, b'int80-getpid: calling\n')
    pid = function()
    os.write(1, f'int80-getpid: {"ok" if pid == os.getpid() else pid}\n'.encode())


for name in sys.argv[1:]:
    if name == 'int80-getpid':
        int80_getpid()
    else:
        probe(name)
