# Ctrl-C in an interactive bash stops the sandboxed command, not the shell,
# and leaves the shell's own signal handling as it was.
. "$(dirname "$0")/lib.sh"
out=$(python3 - "$SLICEBOX_LIB" "$(dirname "$0")" <<'PY'
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[2])
from interactive_bash import Bash

bash = Bash()
bash.load(sys.argv[1], "sandbox")

# The stage says when it runs: ^C is typed only then (no sleep as a guess).
bash.send("sandbox -- sh -c 'echo STAGE-RUNS; exec sleep 58.7531'; echo after-status=$?")
bash.read_until("STAGE-RUNS\r\n")
bash.interrupt()
rest = bash.read_until("PROMPT> ", timeout=10)
if "after-status" in rest:
    sys.exit("the rest of the command line ran after ^C: %r" % rest)
interrupted = bash.answer("echo $?")
alive = bash.answer("echo shell-alive")
nxt = bash.answer("sandbox -- sh -c 'exit 7'; echo $?")
status = bash.exit()
print("interrupted:", interrupted)
print("alive:", alive == "shell-alive")
print("next:", nxt)
print("exit:", status)
PY
)
expect_match "Ctrl-C stopped the sandboxed sleep with status 130" "*interrupted: 130*" "$out"
expect_match "the interactive shell survived Ctrl-C" "*alive: True*" "$out"
expect_match "the next sandbox in the same shell still works" "*next: 7*" "$out"
expect_match "the shell exits normally afterwards" "*exit: 0*" "$out"
if pgrep -u "$(id -u)" -f "^sleep 58.7531$" >/dev/null; then fail "the interrupted sleep is still running"; fi
done_checks
