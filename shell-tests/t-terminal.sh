# A stage on a terminal gets a pty of its own, relayed by the caller: keys,
# ^C, window size and an interactive shell inside all work, ^Z is refused
# (documented), the caller's terminal modes come back unchanged, and the
# payload never holds a descriptor of the caller's terminal, so TIOCSTI
# cannot push input into it. Driven through a real terminal in tmux, for
# the executable and for the bash builtin.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tmux.sh"
tiocsti=$(cat /proc/sys/dev/tty/legacy_tiocsti 2>/dev/null || echo absent)
echo "NOTE: dev.tty.legacy_tiocsti=$tiocsti (1 lets any process holding a terminal push input into it)"

work=$(mktemp -d "$SLICEBOX_TEST_WORK/terminal.XXXXXX")
cd "$work"

send() { tm send-keys -t T -l -- "$1"; tm send-keys -t T Enter; }
# Keys typed while a stage runs are the stage's (type-ahead is not kept),
# so the next line is typed only once the shell prompts again.
prompts() { screen | grep -c '^P>$' || true; }
wait_prompt() {
    local i
    for i in $(seq 400); do
        [ "$(prompts)" -gt "$1" ] && return 0
        sleep 0.05
    done
    printf '%s\n' "--- screen:" "$(screen)" >&2
    fail "timed out waiting for a new prompt"
}
result() { screen | sed -n "s/^ *RESULT $1=//p" | tail -1; }

start_shell() {
    start "env -i PATH=$PATH HOME=$HOME TERM=xterm SLICEBOX_STORE=$SLICEBOX_STORE bash --norc --noprofile -i"
    send "PS1='P> '; cd '$work'"
    if [ "$1" = builtin ]; then
        send "enable -f '$SLICEBOX_LIB' sandbox && echo LOADED-\$((1+1))"
        wait_for '^LOADED-2$'
    fi
    send "stty -g > modes-before; echo READY-\$((2+2))"
    wait_for '^READY-4$'
}

cat > winch.py <<'EOF'
import os, signal, sys
def show(*_):
    cols, rows = os.get_terminal_size(0)
    print("SIZE %dx%d" % (cols, rows), flush=True)
signal.signal(signal.SIGWINCH, show)
show()
sys.stdin.readline()
EOF
cat > sti.py <<'EOF'
import fcntl, os, sys, termios
line = "touch %s/INJECTED\n" % sys.argv[1]
fds = [0, 1, 2]
try:
    fds.append(os.open("/dev/tty", os.O_RDWR))
except OSError:
    pass
for fd in fds:
    try:
        for ch in line:
            fcntl.ioctl(fd, termios.TIOCSTI, ch.encode())
    except OSError:
        pass
print("RESULT tried=%d" % len(fds))
EOF

for mode in exe builtin; do
    start_shell "$mode"

    # ^C: the stage dies of SIGINT, the shell abandons the rest of the line.
    send "sandbox -- sh -c 'echo STAGE-UP; exec sleep 57.321'; echo RESULT not-abandoned=1"
    wait_for '^STAGE-UP$'
    before=$(prompts)
    tm send-keys -t T C-c
    wait_prompt "$before"
    send "echo RESULT ctrl-c=\$?"
    wait_for '^RESULT ctrl-c='
    expect_eq "$mode: ^C ends the stage with 130" 130 "$(result ctrl-c)"
    expect_eq "$mode: ^C abandons the rest of the command line" "" "$(result not-abandoned)"

    # ^Z: refused; the stage keeps running and finishes normally.
    send "sandbox -- sh -c 'echo SUSPEND-ME; read line; echo RESULT after-z=\$line'; echo RESULT z-status=\$?"
    wait_for '^SUSPEND-ME$'
    tm send-keys -t T C-z
    send "still-running"
    wait_for '^RESULT z-status='
    expect_eq "$mode: ^Z does not suspend the stage" "still-running" "$(result after-z)"
    expect_eq "$mode: the stage then exits normally" 0 "$(result z-status)"

    # Window size: the stage's terminal starts with ours and follows it.
    tm resize-window -t T -x 200 -y 30
    send "sandbox -- python3 winch.py; echo RESULT winch-done=\$?"
    wait_for '^SIZE 200x30$'
    tm resize-window -t T -x 220 -y 40
    wait_for '^SIZE 220x40$'
    send ""
    wait_for "^RESULT winch-done="
    ok_size=$(screen | grep -c '^SIZE 220x40$')
    expect_eq "$mode: a resize reaches the stage as SIGWINCH with the new size" 1 "$ok_size"
    tm resize-window -t T -x 200 -y 30

    # An interactive shell inside, with its own job control. Keys typed
    # while a stage runs go to the stage (as with ssh -t), so each line is
    # typed once the one before has answered.
    send "sandbox -- bash --norc --noprofile -i; echo RESULT inner-exit=\$?"
    wait_for '^bash-[0-9.]*[$#] ?$'
    send "PS1='IN> '; echo RESULT inner=\$((6*7))"
    wait_for '^RESULT inner='
    send "sleep 31.7 & kill %1; wait; tty; exit 3"
    wait_for '^RESULT inner-exit='
    expect_eq "$mode: an interactive shell inside runs commands" 42 "$(result inner)"
    expect_eq "$mode: its exit status comes back" 3 "$(result inner-exit)"
    expect_match "$mode: inside, tty names the stage's own terminal" "*/dev/pts/*" "$(screen | grep '^/dev/pts/' | tail -1)"

    # With --dev the stage's own devpts covers /dev/pts: its terminal is
    # at /dev/console, where ttyname() finds it.
    send "sandbox --dev -- sh -c 'echo RESULT devtty=\$(tty)'"
    wait_for '^RESULT devtty='
    expect_eq "$mode: with --dev, tty names the stage's terminal at /dev/console" /dev/console "$(result devtty)"

    # No command: $SHELL starts inside, interactive, and a prompt can see
    # it is in a stage.
    send "PS1='STAGE-IN> ' SHELL=/bin/sh sandbox; echo RESULT default-exit=\$?"
    wait_for '^STAGE-IN> ?$'
    send "echo RESULT stage=\$SLICEBOX_STAGE:\$-; exit 5"
    wait_for '^RESULT default-exit='
    expect_match "$mode: without a command, an interactive \$SHELL runs in the stage" "1:*i*" "$(result stage)"
    expect_eq "$mode: and its exit status comes back" 5 "$(result default-exit)"

    # Modes: whatever the stage does to its terminal, ours comes back as it was.
    send "sandbox -- sh -c 'stty raw -echo -isig; echo RAW-SET'; stty -g > modes-after; cmp -s modes-before modes-after; echo RESULT modes=\$?"
    wait_for '^ *RESULT modes='
    expect_eq "$mode: the caller's terminal modes are restored" 0 "$(result modes)"

    # TIOCSTI: nothing the stage pushes reaches the caller's terminal.
    rm -f INJECTED
    send "sandbox -- python3 sti.py '$work'; echo RESULT sti-done=1"
    wait_for '^RESULT sti-done=1$'
    send "echo RESULT after-sti=1"
    wait_for '^RESULT after-sti=1$'
    expect_eq "$mode: TIOCSTI inside did not run a command in the caller's shell" "absent" \
        "$(test -e INJECTED && echo present || echo absent)"

    # No descriptor of the caller's terminal inside: compare device numbers.
    send "echo RESULT outer=\$(stat -L -c %t:%T /proc/\$\$/fd/0)"
    wait_for '^RESULT outer='
    send "sandbox -- sh -c 'echo RESULT inner-devs=\$(stat -L -c %t:%T /proc/\$\$/fd/0 /proc/\$\$/fd/1 /proc/\$\$/fd/2 | sort -u | tr \"\\n\" \" \")'"
    wait_for '^RESULT inner-devs='
    outer=$(result outer)
    inner=$(result inner-devs)
    [ -n "$outer" ] || { screen >&2; fail "$mode: could not read the caller's terminal"; }
    case " $inner" in *" $outer "*) fail "$mode: the stage holds the caller's terminal $outer: $inner" ;; esac
    expect_eq "$mode: the stage's stdin, stdout and stderr are one pty, not the caller's terminal" \
        1 "$(echo $inner | wc -w)"

    # A background stage is not stopped: it does not read the terminal.
    send "sandbox -- sh -c 'sleep 0.3; echo BG-DONE' & wait \$!; echo RESULT bg=\$?"
    wait_for '^RESULT bg='
    expect_eq "$mode: a background stage with a terminal runs to its end" 0 "$(result bg)"

    send "exit"
done
done_checks
