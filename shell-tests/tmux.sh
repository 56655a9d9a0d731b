# A real terminal for the terminal tests, in tmux (sourced after lib.sh).
command -v tmux >/dev/null || fail "tmux is needed for the terminal tests (apt-get install tmux)"

# A tmux server per session: a new one right after kill-server may find
# the old one still exiting.
tmux_session=0
tm() { tmux -L "slicebox-$$-$tmux_session" "$@"; }
trap 'tm kill-server 2>/dev/null || true' EXIT
# start COMMAND-LINE: a fresh 200x30 terminal running it, as session T.
start() {
    tm kill-server 2>/dev/null || true
    tmux_session=$((tmux_session + 1))
    tm new-session -d -s T -x 200 -y 30 "$1"
}
screen() { tm capture-pane -p -t T -S -300; }
# wait_for ERE: the screen shows a line matching it (a handshake, polled).
wait_for() {
    local i
    for i in $(seq 400); do
        screen | grep -Eq -- "$1" && return 0
        sleep 0.05
    done
    printf '%s\n' "--- screen:" "$(screen)" >&2
    fail "timed out waiting for /$1/ on the terminal"
}
