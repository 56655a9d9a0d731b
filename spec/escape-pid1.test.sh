# The stage's pid 1 keeps no capability once setup is done, cannot be
# ptraced or read by the payload (it is not dumpable), and does not show
# the caller's command line.
## compare_shells: bash dash mksh zsh busybox

#### pid 1 holds no capability in any set, and no_new_privs
sandbox -- grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/1/status
## STDOUT:
CapInh:	0000000000000000
CapPrm:	0000000000000000
CapEff:	0000000000000000
CapBnd:	0000000000000000
CapAmb:	0000000000000000
NoNewPrivs:	1
## END

#### the payload cannot ptrace pid 1 or read its memory
sandbox -- python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, 1, None, None)   # PTRACE_ATTACH
print("attach", "refused: " + os.strerror(ctypes.get_errno()) if r != 0 else "succeeded")
try:
    open("/proc/1/mem", "rb").read(1)
    print("mem readable")
except OSError as e:
    print("mem refused:", e.strerror)
'
## STDOUT:
attach refused: Operation not permitted
mem refused: Permission denied
## END

#### /proc/1/cmdline and comm name slicebox, not the caller's command line
sh -c 'sandbox -- sh -c "tr \"\\0\" \"|\" </proc/1/cmdline; echo; cat /proc/1/comm"' caller-secret-word
## STDOUT:
slicebox-init|
slicebox-init
## END
