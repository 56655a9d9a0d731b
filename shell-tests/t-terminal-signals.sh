# A stage that dies of SIGINT or SIGQUIT while it has a relayed terminal
# signals nobody but slicebox's own host, and only when the user typed the
# key: a payload that kills itself must not reach the caller's process
# group (its script, its siblings). A real ^C typed at the terminal still
# ends the stage with 130. Driven through a real terminal in tmux, for a
# bash script running the builtin and one running the executable.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tmux.sh"
work=$(mktemp -d "$SLICEBOX_TEST_WORK/terminal-signals.XXXXXX")
cd "$work"
# The stage's pty echoes a typed ^C as "^C", on the line of what follows.
# (The scripts' own lines are never echoed: nothing is typed but ^C.)
result() { screen | sed -n "s/^.*RESULT $1=//p" | tail -1; }

# Non-interactive bash: the script, its background sibling and the stage
# share one process group, as in any script run from a terminal.
cat > self-kill.sh <<'EOF2'
[ "$1" = builtin ] && { enable -f "$SLICEBOX_LIB" sandbox || exit 99; }
sleep 93.217 &
sibling=$!
echo "RESULT sibling-pid=$sibling"
sandbox -- python3 -c 'import os, signal; print("QUITTING", flush=True); os.kill(os.getpid(), signal.SIGQUIT)'
echo "RESULT self-quit=$?"
sandbox -- python3 -c 'import os, signal; print("INTERRUPTING", flush=True); os.kill(os.getpid(), signal.SIGINT)'
echo "RESULT self-int=$?"
kill -0 "$sibling" && echo "RESULT sibling=alive"
kill "$sibling"
echo "RESULT script=finished"
EOF2
cat > typed.sh <<'EOF2'
[ "$1" = builtin ] && { enable -f "$SLICEBOX_LIB" sandbox || exit 99; }
sandbox -- sh -c 'echo STAGE-UP; exec sleep 57.913'
echo "RESULT after-ctrl-c=$?"
EOF2

for mode in exe builtin; do
    start "env -i PATH=$PATH HOME=$HOME TERM=xterm SLICEBOX_LIB=$SLICEBOX_LIB SLICEBOX_STORE=$SLICEBOX_STORE \
         bash self-kill.sh $mode; echo RESULT script-status=\$?; sleep 600"
    wait_for 'RESULT script-status='
    expect_match "$mode: the SIGQUIT probe ran" "*QUITTING*" "$(screen)"
    expect_eq "$mode: a stage that kills itself with SIGQUIT ends with 131" 131 "$(result self-quit)"
    expect_eq "$mode: one that kills itself with SIGINT ends with 130" 130 "$(result self-int)"
    expect_eq "$mode: the script's sibling in the same process group got no signal" alive "$(result sibling)"
    expect_eq "$mode: the script itself ran to its end" finished "$(result script)"
    expect_eq "$mode: and exited 0" 0 "$(result script-status)"

    start "env -i PATH=$PATH HOME=$HOME TERM=xterm SLICEBOX_LIB=$SLICEBOX_LIB SLICEBOX_STORE=$SLICEBOX_STORE \
         bash typed.sh $mode; echo RESULT script-status=\$?; sleep 600"
    wait_for '^STAGE-UP$'
    tm send-keys -t T C-c
    wait_for 'RESULT script-status='
    if [ "$mode" = builtin ]; then
        # bash itself had the ^C (as it would have without the relay): it
        # stops the script as after any interrupted command.
        expect_eq "builtin: a typed ^C stops the script running the builtin" "" "$(result after-ctrl-c)"
        expect_eq "builtin: with status 130" 130 "$(result script-status)"
    else
        # The executable dies of the stage's SIGINT; the script, which had
        # no ^C itself (raw mode), goes on, as bash does for any child
        # killed by a signal it did not get.
        expect_eq "exe: a typed ^C ends the stage with 130" 130 "$(result after-ctrl-c)"
    fi
done
if pgrep -u "$(id -u)" -f '^sleep (93\.217|57\.913)$' >/dev/null; then fail "a test sleep is still running"; fi
done_checks
