# Signals and the executable: one sent before the stage exists ends the
# command as it would any other; one sent while it runs reaches the
# payload; and a stage never outlives the process that started it.
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d "$SLICEBOX_TEST_WORK/signals.XXXXXX")
cd "$work"
mkdir src
echo x > src/f
slice-add --at /opt/sig sig src >/dev/null

# poll_until CMD...: retries a check for up to 10 s (a handshake, not a guess).
poll_until() {
    local i
    for i in $(seq 200); do "$@" && return 0; sleep 0.05; done
    return 1
}

# SIGTERM while sandbox waits for the store lock that a gc would hold.
waiting_on_lock() { grep -Eq -- "-> FLOCK +ADVISORY +READ +$1 " /proc/locks; }
exec 9>"$SLICEBOX_STORE/lock"
flock -x 9
sandbox --slice sig -- touch "$work/RAN" &
pid=$!
poll_until waiting_on_lock "$pid" || fail "sandbox never waited for the store lock"
kill -TERM "$pid"
wait "$pid" && status=0 || status=$?
flock -u 9
exec 9>&-
expect_eq "SIGTERM during the lock wait ends sandbox as it would any command" 143 "$status"
expect_eq "and the payload never runs" absent "$(test -e RAN && echo present || echo absent)"

# While the stage runs, a signal to the executable reaches the payload.
mkdir handshake
sandbox --bind handshake:/handshake -- \
    sh -c 'trap "echo got-term; exit 7" TERM; echo ready > /handshake/ready; while :; do sleep 0.05; done' >out &
pid=$!
poll_until test -s handshake/ready || { kill -9 "$pid"; fail "the stage did not start"; }
kill -TERM "$pid"
wait "$pid" && status=0 || status=$?
expect_eq "SIGTERM to the executable is forwarded to the payload" got-term "$(cat out)"
expect_eq "and its exit status comes back" 7 "$status"

# kill -9 of the caller: every process of the stage dies with it.
alive() { pgrep -u "$(id -u)" -f "^sleep $1\$" >/dev/null; }
gone() { ! alive "$1"; }
sandbox -- sh -c 'sleep 598.123 & sleep 597.123' &
pid=$!
poll_until alive 597.123 || fail "the stage did not start"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
poll_until gone 597.123 || fail "the payload survived kill -9 of the executable"
poll_until gone 598.123 || fail "a background process of the stage survived kill -9 of the executable"
expect_eq "kill -9 of the executable leaves no process of the stage" gone gone

bash -c 'enable -f "$SLICEBOX_LIB" sandbox; sandbox -- sh -c "sleep 596.123 & sleep 595.123"' &
pid=$!
poll_until alive 595.123 || fail "the builtin's stage did not start"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
poll_until gone 595.123 || fail "the payload survived kill -9 of the bash running the builtin"
poll_until gone 596.123 || fail "a background process survived kill -9 of the bash running the builtin"
expect_eq "kill -9 of bash running the builtin leaves no process of the stage" gone gone
done_checks
