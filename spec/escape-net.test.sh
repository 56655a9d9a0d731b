# What --net none promises about Unix sockets. Abstract sockets belong to
# the network namespace: the stage's are its own. Path sockets are files:
# a read-only mount does not stop connect(2). On kernels with Landlock ABI 9
# or later, --net none lets the stage connect only to sockets it made itself
# or that lie below a --bind; on older kernels (this CI's, for one) a socket
# in the visible working directory stays connectable, as the README says,
# and --no-cwd is the way to hide it.
## compare_shells: bash dash mksh zsh busybox

#### abstract sockets: the host's are out of reach with --net none, reachable with --net host
cat > sockets.py <<'EOF'
import socket, sys
mode, where = sys.argv[1], "\0" + sys.argv[2]
if mode == "serve":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(where)
    s.listen(8)
    open(sys.argv[3], "w").close()
    while True:
        c, _ = s.accept()
        try:
            c.sendall(b"hello")
        except OSError:
            pass
        c.close()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    c.connect(where)
    print("connected:", c.recv(5).decode())
except OSError as e:
    print("refused:", e.strerror)
EOF
name=slicebox-spec-$$
python3 sockets.py serve "$name" ready &
server=$!
while ! test -e ready; do sleep 0.01; done
sandbox --net none -- python3 sockets.py connect "$name"
sandbox --net host -- python3 sockets.py connect "$name"
kill "$server"
## STDOUT:
refused: Connection refused
connected: hello
## END

#### path sockets: the cwd's per the kernel's Landlock ABI, a --bind one always, the stage's own always
cat > sockets.py <<'EOF'
import ctypes, os, socket, sys
mode, where = sys.argv[1], sys.argv[2:3] and sys.argv[2]
if mode == "serve":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(where)
    s.listen(8)
    open(sys.argv[3], "w").close()
    while True:
        c, _ = s.accept()
        try:
            c.sendall(b"hello")
        except OSError:
            pass
        c.close()
elif mode == "abi":
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    print(max(0, libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint(1))))
    sys.exit()
elif mode == "own":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(where)
    s.listen(1)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    c.connect(where)
    print("connected")
except OSError as e:
    print("refused:", e.strerror)
EOF
mkdir run
python3 sockets.py serve run/cwd.sock ready &
server=$!
while ! test -e ready; do sleep 0.01; done
cwd=$(sandbox --net none -- python3 sockets.py connect run/cwd.sock)
abi=$(python3 sockets.py abi)
if [ "$abi" -ge 9 ]; then promise="refused: Permission denied"; else promise=connected; fi
if [ "$cwd" = "$promise" ]; then echo "cwd socket: as documented for Landlock ABI >= 9 or below"; else echo "cwd socket: $cwd with Landlock ABI $abi"; fi
echo "NOTE: Landlock ABI $abi: the cwd's socket was '$cwd'" >&2
sandbox --net none --no-cwd -- python3 /dev/stdin connect "$PWD/run/cwd.sock" < sockets.py
sandbox --net none --bind run/cwd.sock:/run/bound.sock -- python3 sockets.py connect /run/bound.sock
sandbox --net none -- python3 sockets.py own /tmp/own.sock
kill "$server"
## STDOUT:
cwd socket: as documented for Landlock ABI >= 9 or below
refused: No such file or directory
connected
connected
## END
