# Kernel keyrings: the default seccomp filter refuses every keyring call
# (issue 13: the caller's keyrings were found by serial in /proc/keys and
# linked in). Beneath it, each stage has a session keyring of its own, so
# the caller's keys can be neither found, read, revoked nor added to: the
# cases that test that layer replace the filter with an allow-all program
# (--seccomp-fd), one instruction: return ALLOW.
## compare_shells: bash dash mksh zsh busybox

#### issue 13: the caller's user and named session keyrings, found in /proc/keys, cannot be linked in and read
key=$(keyctl add user "spec-user-key-$$" s3cret-user @u)
keyctl new_session "spec-ring-$$" >/dev/null
skey=$(keyctl add user "spec-session-key-$$" s3cret-session @s)
sandbox -- sh -c '
  serial() { awk -v name="$1:" "\$9 == name { print \$1 }" /proc/keys; }
  cause() { sed "s/^.*: //"; }
  for ring in "_uid.$(id -u)" "$1"; do
    n=$(serial "$ring")
    test -n "$n" && echo "found ${ring%%-[0-9]*} in /proc/keys"
    echo "link it into our session keyring: $(keyctl link "0x$n" @s 2>&1 | cause)"
    user=${user:-$n}
  done
  echo "read the user key: $(keyctl print "$2" 2>&1 | cause)"
  echo "read the session key: $(keyctl print "$3" 2>&1 | cause)"
  echo "unlink the user key from the user keyring: $(keyctl unlink "$2" "0x$user" 2>&1 | cause)"
' sh "spec-ring-$$" "$key" "$skey" | sed "s/_uid\.$(id -u)/_uid.N/"
keyctl unlink "$key" @u && echo "the user key was still in the user keyring"
## STDOUT:
found _uid.N in /proc/keys
link it into our session keyring: Operation not permitted
found spec-ring in /proc/keys
link it into our session keyring: Operation not permitted
read the user key: Operation not permitted
read the session key: Operation not permitted
unlink the user key from the user keyring: Operation not permitted
the user key was still in the user keyring
## END

#### beneath the filter: the caller's session and user keys are out of reach; keys added inside stay inside
python3 -c 'import sys; sys.stdout.buffer.write(b"\x06\0\0\0\0\0\xff\x7f")' > allow-all.bpf
cat > keys.py <<'EOF'
import ctypes, os, sys, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SESSION, USER = -3, -4
def keyctl(*args):
    r = libc.syscall(250, *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    if r < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r
def add(desc, data, ring):
    r = libc.syscall(248, b"user", desc, data, ctypes.c_size_t(len(data)), ctypes.c_long(ring))
    if r < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r
def attempt(what, f):
    try:
        f(); print(what, "ok")
    except OSError as e:
        print(what, "refused:", e.strerror)
mode = sys.argv[1]
if mode == "outside":
    keyctl(1, b"slicebox-spec")                       # join a fresh session keyring
    s = add(b"spec-secret", b"s3cret", SESSION)
    u = add(b"spec-user-secret", b"u3cret", USER)
    env = dict(os.environ, SKEY=str(s), UKEY=str(u))
    subprocess.run(sys.argv[2:] + ["python3", "keys.py", "inside"], env=env)
    buf = ctypes.create_string_buffer(64)
    attempt("outside: session key still readable", lambda: keyctl(11, s, buf, 64))
    attempt("outside: a key added inside is in our session keyring",
            lambda: keyctl(10, SESSION, b"user", b"spec-planted", 0))
else:
    s, u = int(os.environ["SKEY"]), int(os.environ["UKEY"])
    buf = ctypes.create_string_buffer(64)
    attempt("search session", lambda: keyctl(10, SESSION, b"user", b"spec-secret", 0))
    attempt("search user", lambda: keyctl(10, USER, b"user", b"spec-user-secret", 0))
    attempt("read session key", lambda: keyctl(11, s, buf, 64))
    attempt("read user key", lambda: keyctl(11, u, buf, 64))
    attempt("revoke session key", lambda: keyctl(3, s))
    attempt("add to session", lambda: add(b"spec-planted", b"x", SESSION))
EOF
python3 keys.py outside sandbox --seccomp-fd 0 -- < allow-all.bpf
## STDOUT:
search session refused: Required key not available
search user refused: Required key not available
read session key refused: Permission denied
read user key refused: Permission denied
revoke session key refused: Permission denied
add to session ok
outside: session key still readable ok
outside: a key added inside is in our session keyring refused: Required key not available
## END

#### beneath the filter: every stage gets a fresh session keyring, not the previous stage's
python3 -c 'import sys; sys.stdout.buffer.write(b"\x06\0\0\0\0\0\xff\x7f")' > allow-all.bpf
cat > ring.py <<'EOF'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
print(libc.syscall(250, ctypes.c_long(0), ctypes.c_long(-3), ctypes.c_long(0)))
EOF
a=$(sandbox --seccomp-fd 3 -- python3 ring.py 3< allow-all.bpf)
b=$(sandbox --seccomp-fd 3 -- python3 ring.py 3< allow-all.bpf)
out=$(python3 ring.py)
test "$a" -gt 0 && test "$a" != "$b" && test "$a" != "$out" && test "$b" != "$out" && echo three-keyrings
## STDOUT:
three-keyrings
## END
