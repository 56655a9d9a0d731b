# SIGKILL at 200 points of a remote receive: the receiving server is
# killed at delays spread over a whole push (and beyond it), and at each of
# its durable steps (SLICEBOX_CRASH_AT); after each kill the remote store
# holds the slice whole or not at all, verifies, and keeps no garbage that
# slice-gc does not remove.
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d "$SLICEBOX_TEST_WORK/remote-kill.XXXXXX")
cd "$work"

# The transport: this machine over pipes, the server's pid in server.pid.
cat > rsh <<'EOF'
#!/bin/sh
echo $$ > "$KILL_WORK/server.pid"
shift
SLICEBOX_STORE="$KILL_WORK/remote" exec "$@"
EOF
chmod +x rsh
export KILL_WORK=$work SLICEBOX_RSH=$work/rsh

# A slice of 600 small files and a few larger ones.
mkdir -p src/small src/big
for i in $(seq 600); do echo "file $i" > "src/small/$i"; done
for i in 1 2 3; do head -c 1500000 /dev/urandom > "src/big/$i"; done
slice-add victim src --at /opt/victim >/dev/null

# How long a whole push takes here: the longest of three, timed as the
# loop below runs them.
remote() { SLICEBOX_STORE=$work/remote "$@"; }
whole_ns=0
for _ in 1 2 3; do
    rm -rf remote server.pid
    start=$(date +%s%N)
    slice-push h victim >/dev/null &
    wait $!
    took=$(( $(date +%s%N) - start ))
    [ "$took" -le "$whole_ns" ] || whole_ns=$took
done
echo "a whole push takes up to $(( whole_ns / 1000000 )) ms"
expect_eq "an uncut push stores the slice" victim "$(remote slice-list | cut -f1)"

# check_remote WHAT STATUS: the remote store after a kill.
garbage=0
check_remote() {
    [ -d remote ] || return 0
    if [ -n "$(ls remote/tmp)" ]; then garbage=$((garbage + 1)); fi
    named=$(remote slice-list | cut -f1)
    case $named in
    victim) remote slice-verify victim >/dev/null || fail "a named slice does not verify after $1" ;;
    '') ;;
    *) fail "unexpected names after $1: $named" ;;
    esac
    [ "$2" != 0 ] || [ "$named" = victim ] || fail "a push that succeeded left no slice ($1)"
    remote slice-gc >/dev/null || fail "slice-gc failed after $1"
    leftovers=$(ls remote/tmp)
    [ -z "$leftovers" ] || fail "slice-gc left $leftovers in tmp/ after $1"
    remote slice-verify >/dev/null || fail "the store does not verify after $1"
}

# Each durable step of a receive.
steps=(receive:staged add:one-object-published receive:objects-published receive:slices-published)
for step in "${steps[@]}"; do
    rm -rf remote
    SLICEBOX_CRASH_AT=$step slice-push h victim >/dev/null 2>&1 && status=0 || status=$?
    expect_eq "killed at $step: the push fails" 255 "$status"
    check_remote "a kill at $step" "$status"
done

cut=0 completed=0
for k in $(seq 0 $((199 - ${#steps[@]}))); do
    rm -rf remote server.pid
    # Delays from 0 to 1.5 times the longest whole push: the last ones
    # are killed after the end.
    delay_us=$(( whole_ns * 15 / 10 * k / 196 / 1000 ))
    slice-push h victim >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do [ -s server.pid ] && break; sleep 0.01; done
    [ -s server.pid ] || fail "the server never started (iteration $k)"
    sleep "$(( delay_us / 1000000 )).$(printf '%06d' $(( delay_us % 1000000 )))"
    kill -KILL "$(cat server.pid)" 2>/dev/null || true
    wait "$pid" && status=0 || status=$?
    if [ "$status" = 0 ]; then completed=$((completed + 1)); else cut=$((cut + 1)); fi
    check_remote "a kill at $delay_us µs (iteration $k)" "$status"
done
echo "kills: $cut pushes cut, $completed completed before the kill, $garbage left garbage for gc"
expect_eq "200 kills: one at each durable step, the rest spread over a push" 200 "$((cut + completed + ${#steps[@]}))"
expect_eq "a good part of them cut a push short (the probe ran)" 1 "$(( cut >= 50 ))"
expect_eq "some landed while the receive was staging (its garbage was there for gc)" 1 "$(( garbage >= 5 ))"
expect_eq "after every kill the remote store verified, named the slice whole or not at all, and gc left no garbage" ok ok
done_checks
