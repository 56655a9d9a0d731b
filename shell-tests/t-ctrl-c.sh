# Ctrl-C in an interactive bash stops the sandboxed command, not the shell,
# and leaves the shell's own signal handling as it was.
. "$(dirname "$0")/lib.sh"
out=$(python3 - "$SLICEBOX_LIB" <<'PY'
import os, pty, re, sys, time, select

lib = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])

pending = b""

def read_until(token, timeout=20):
    """Returns the terminal's output up to and including `token`; what
    came after it in the same read is kept for the next call."""
    global pending
    buf, end = pending, time.time() + timeout
    while token.encode() not in buf:
        left = end - time.time()
        if left <= 0:
            sys.exit("timed out waiting for %r; got %r" % (token, buf[-400:]))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    cut = buf.find(token.encode()) + len(token.encode()) if token.encode() in buf else len(buf)
    pending = buf[cut:]
    return buf[:cut].decode(errors="replace")

def answer(command):
    """Runs command; returns its output, tagged so the terminal's echo of
    the typed line cannot be mistaken for it."""
    send("echo \"<<$(%s)>>\" | tr '<>' '[]'" % command)
    text = read_until("]]")
    return re.search(r"\[\[(.*?)\]\]", text).group(1)

def send(line):
    os.write(fd, line.encode() + b"\n")

send("PS1='PROMPT> '; enable -f %s sandbox && echo LOADED" % lib)
read_until("LOADED")
read_until("PROMPT> ")

# The stage says when it runs: ^C is typed only then (no sleep as a guess).
send("sandbox -- sh -c 'echo STAGE-RUNS; exec sleep 58.7531'; echo after-status=$?")
read_until("STAGE-RUNS\r\n")
os.write(fd, b"\x03")
rest = read_until("PROMPT> ", timeout=10)
if "after-status" in rest:
    sys.exit("the rest of the command line ran after ^C: %r" % rest)
interrupted = answer("echo $?")
alive = answer("echo shell-alive")
nxt = answer("sandbox -- sh -c 'exit 7'; echo $?")
send("exit")
_, status = os.waitpid(pid, 0)
print("interrupted:", interrupted)
print("alive:", alive == "shell-alive")
print("next:", nxt)
print("exit:", os.waitstatus_to_exitcode(status))
PY
)
expect_match "Ctrl-C stopped the sandboxed sleep with status 130" "*interrupted: 130*" "$out"
expect_match "the interactive shell survived Ctrl-C" "*alive: True*" "$out"
expect_match "the next sandbox in the same shell still works" "*next: 7*" "$out"
expect_match "the shell exits normally afterwards" "*exit: 0*" "$out"
if pgrep -u "$(id -u)" -f "^sleep 58.7531$" >/dev/null; then fail "the interrupted sleep is still running"; fi
done_checks
