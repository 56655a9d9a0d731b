# Remote stages over a real OpenSSH server on 127.0.0.1, started here with
# a generated host key and user key, logged into as the mode's own user.
# As root, two more "hosts" made of network namespaces joined by veth
# pairs, each with its own sshd and store, and a remote store on a full
# filesystem. spec/remote.test.sh covers the protocol's behaviour over a
# plain pipe; this is the real transport, and what breaks it.
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d "$SLICEBOX_TEST_WORK/remote-ssh.XXXXXX")
cd "$work"

# poll_until CMD...: retries a check for up to 10 s (a handshake, not a guess).
poll_until() {
    local i
    for i in $(seq 200); do "$@" && return 0; sleep 0.05; done
    return 1
}

. "$(dirname "$0")/sshd.sh"
sshd_init "$work"
netns_made=()
cleanup() {
    local ns
    sshd_stop
    # A namespace whose last process is still exiting is busy a moment.
    for ns in "${netns_made[@]}"; do
        for _ in $(seq 50); do ip netns delete "$ns" 2>/dev/null && break; sleep 0.1; done
    done
    if mountpoint -q "$work/full" 2>/dev/null; then umount "$work/full"; fi
}
trap cleanup EXIT
start_sshd() { sshd_start "$@" || fail "sshd '$1' did not start"; }

start_sshd here 127.0.0.1 "$(free_port)"

export SLICEBOX_RSH="ssh -F $work/ssh_config"
export SLICEBOX_REMOTE_COMMAND="$SLICEBOX_BIN_DIR/slicebox"
mkdir -p tool/bin proj
printf '#!/bin/sh\necho "tool on $(cat /etc/hostname 2>/dev/null || echo ?): $*"\n' > tool/bin/tool
chmod +x tool/bin/tool
slice-add tool tool --at /opt/tool >/dev/null
echo input-data > proj/in.txt
cd proj

# A stage over ssh: its stdout and stderr apart, its status, the working
# directory shown, and the remote server's environment, not ours.
export ONLY_HERE=1
status=0
out=$(sandbox --on here --slice tool -- sh -c 'cat in.txt; tool x; echo "${ONLY_HERE:-unset}"; echo err >&2; exit 7' 2>../err.txt) || status=$?
expect_eq "a stage over ssh: stdout, with the slice and the working directory" \
    "input-data"$'\n'"tool on ?: x"$'\n'"unset" "$(printf '%s\n' "$out" | sed 's/tool on [^:]*:/tool on ?:/')"
expect_eq "its stderr stays apart" err "$(cat ../err.txt)"
expect_eq "its status comes back" 7 "$status"
tool_hex=$(slice-list | cut -f2 | sed 's/^sha256://')
expect_eq "the slice is in the remote user's store, unnamed (a stage names nothing there)" \
    "present none" "$(test -d "$work/store-here/slices/$tool_hex" && echo present) $(SLICEBOX_STORE=$work/store-here slice-list | wc -l | sed 's/^0$/none/')"

# ssh's connection is shared between stages (ControlMaster), and a re-run
# sends nothing: the remote store's objects are the same afterwards.
objects() { find "$work/store-here/objects" -type f | wc -l; }
before=$(objects)
sandbox --on here --slice tool -- true
expect_eq "a second run stores nothing new on the host" "$before" "$(objects)"
control=${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/slicebox-ssh}
control=${control:-/tmp/slicebox-ssh-$(id -u)}
expect_match "a shared ssh connection is kept for the next stage" "*Master running*" \
    "$(ssh -F "$work/ssh_config" -o ControlPath="$control/%C" -O check here 2>&1)"

# A signal sent to the local sandbox reaches the remote stage.
sandbox --on here -- sh -c 'trap "echo got-term; exit 9" TERM; echo ready; while :; do sleep 0.05; done' > ../out &
pid=$!
poll_until grep -q ready ../out || { kill -9 "$pid"; fail "the remote stage did not start"; }
kill -TERM "$pid"
wait "$pid" && status=0 || status=$?
expect_eq "SIGTERM to sandbox reaches the remote stage" "ready got-term" "$(tr '\n' ' ' < ../out | sed 's/ $//')"
expect_eq "and the status it chose comes back" 9 "$status"

# A dropped connection kills the remote stage: the local sandbox killed
# outright, then the transport killed under a running sandbox.
alive() { pgrep -u "$(id -u)" -f "^sleep $1\$" >/dev/null; }
gone() { ! alive "$1"; }
sandbox --on here -- sleep 597.321 &
pid=$!
poll_until alive 597.321 || fail "the remote stage did not start"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
poll_until gone 597.321 || fail "the remote stage outlived kill -9 of the local sandbox"
expect_eq "kill -9 of the local sandbox ends the remote stage" gone gone

SLICEBOX_RSH="ssh -F $work/ssh_config -o ControlPath=none" sandbox --on here -- sleep 596.321 2>../err.txt &
pid=$!
poll_until alive 596.321 || fail "the remote stage did not start"
pkill -KILL -u "$(id -u)" -f "^ssh -F $work/ssh_config -o ControlPath=none here" || fail "no transport to kill"
wait "$pid" && status=0 || status=$?
poll_until gone 596.321 || fail "the remote stage outlived its connection"
expect_eq "a broken connection is status 255" 255 "$status"
expect_match "and says what broke" "*cannot run the stage on 'here': the connection*" "$(cat ../err.txt)"

# A push cut off mid-transfer leaves nothing but garbage slice-gc removes.
mkdir -p ../bigslice
head -c 48000000 /dev/urandom > ../bigslice/blob
slice-add big ../bigslice --at /opt/big >/dev/null
SLICEBOX_RSH="ssh -F $work/ssh_config -o ControlPath=none" slice-push here big 2>/dev/null &
pid=$!
staging() { compgen -G "$work/store-here/tmp/stage-*/incoming/*" >/dev/null || compgen -G "$work/store-here/tmp/stage-*/objects/*" >/dev/null; }
if poll_until staging; then
    pkill -KILL -u "$(id -u)" -f "^ssh -F $work/ssh_config -o ControlPath=none here" || true
fi
wait "$pid" 2>/dev/null || true
remote() { SLICEBOX_STORE=$work/store-here "$@"; }
expect_eq "a cut push names nothing on the host" "" "$(remote slice-list | grep '^big' || true)"
remote slice-gc >/dev/null
expect_eq "and slice-gc leaves its tmp/ empty" "" "$(ls "$work/store-here/tmp")"
slice-push here big >/dev/null
expect_eq "a later push completes" big "$(remote slice-list | cut -f1 | grep '^big')"
remote slice-verify big || fail "the pushed slice does not verify"

# docs/remote.md, run as written, in bash with the builtins, against two
# more hosts: hostA and hostB, each an sshd with its own store.
cd "$work"
start_sshd hostA 127.0.0.1 "$(free_port)"
start_sshd hostB 127.0.0.1 "$(free_port)"
mkdir guide
{
    printf 'set -eu\nenable -f "$SLICEBOX_LIB" sandbox slice-add slice-push slice-pull\n'
    awk '/^```sh$/ { inside = 1; blocks++; next } /^```/ { inside = 0; next } inside { print }
         END { printf "echo \"ran %d blocks of the guide\"\n", blocks }' "$(dirname "$0")/../docs/remote.md"
} > guide.sh
out=$(cd guide && SLICEBOX_STORE=$work/store-guide bash "$work/guide.sh" 2>&1) ||
    fail "the guide's commands failed:"$'\n'"$out"
printf '%s\n' "$out" | sed 's/^/  guide: /'
expect_match "every block of docs/remote.md ran" "*ran 4 blocks of the guide*" "$out"
expect_match "a stage on hostA sorted the shipped file, and its status came back" \
    "*a?b?c*on *status 3*" "$out"
expect_match "slice-push sent once, then nothing" \
    "*sent 1 of 1 slices to hostA*sent 0 of 1 slices to hostA*" "$out"
expect_match "the fan-out over hostA and hostB counted every line" "*total: 100000*" "$out"
expect_match "hostB's --out came back" "*Linux*" "$out"
counter_hex=$(SLICEBOX_STORE=$work/store-guide slice-list | grep '^counter' | cut -f2 | sed 's/^sha256://')
expect_eq "hostA names the pushed slice; hostB holds it unnamed, from its stage" "counter present" \
    "$(SLICEBOX_STORE=$work/store-hostA slice-list | grep '^counter' | cut -f1) $(test -d "$work/store-hostB/slices/$counter_hex" && echo present)"

if [ "$(id -u)" != 0 ]; then
    done_checks
    exit 0
fi

# As root: a remote store on a full filesystem is a clear error, and
# nothing is half-written there.
mkdir full
mount -t tmpfs -o size=4m tmpfs full
status=0
slice-push --remote-store "$work/full/store" here big 2>err.txt || status=$?
expect_eq "a push to a full filesystem fails" 255 "$status"
expect_match "and names the cause" "*No space left on device*" "$(cat err.txt)"
expect_eq "no slice is left there" "" "$(ls full/store/slices)"
expect_eq "nor any staging" "" "$(ls full/store/tmp)"
umount full

# Two hosts of network namespaces, each with its own sshd and store,
# joined to this one by veth pairs; one pipeline crosses both and this
# machine, byte for byte, with 1 GiB going through.
# Each run's /30 subnets are its own (10.X.Y.4n/30 from its pid), so that
# two runs at once never share an address.
subnet="10.$(( $$ / 250 % 250 + 1 )).$(( $$ % 250 ))"
for n in 1 2; do
    ns=sbx-host$n-$$
    ip netns add "$ns"
    netns_made+=("$ns")
    ip link add "sbxv$n-$$" type veth peer name eth0 netns "$ns"
    ip addr add "$subnet.$((4 * n + 1))/30" dev "sbxv$n-$$"
    ip link set "sbxv$n-$$" up
    ip netns exec "$ns" ip addr add "$subnet.$((4 * n + 2))/30" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
    start_sshd "host$n" "$subnet.$((4 * n + 2))" 22 "$ns"
done
# yes dies of SIGPIPE when head has its 1 GiB: no failure under pipefail.
gibibyte() { yes 0123456789abcdef | head -c 1073741824 || true; }
want=$(gibibyte | sha256sum)
got=$(gibibyte \
    | sandbox --no-cwd --on host1 -- cat \
    | sandbox --no-cwd -- cat \
    | sandbox --no-cwd --on host2 --slice tool -- sh -c 'cat; tool >&2' 2>tool.txt | sha256sum)
expect_eq "1 GiB crosses host1, this machine and host2 byte for byte" "$want" "$got"
expect_match "host2's stage had the slice" "tool on *" "$(cat tool.txt)"
expect_eq "each host keeps its own store: host2 got the slice" present \
    "$(test -d "$work/store-host2/slices/$tool_hex" && echo present)"
expect_eq "and host1, which did not need it, has none" absent \
    "$(test -e "$work/store-host1/slices/$tool_hex" && echo present || echo absent)"

# The same hosts through `ip netns exec` as the transport: no sshd at all.
out=$(SLICEBOX_RSH="ip netns exec" sandbox --no-cwd --on "sbx-host1-$$" --remote-store "$work/store-netns" --slice tool -- sh -c "tool y; ip -o -4 addr show eth0 | grep -o '$subnet\.6'")
expect_eq "SLICEBOX_RSH='ip netns exec' runs the stage in that namespace" "tool on ?: y $subnet.6" \
    "$(printf '%s\n' "$out" | sed 's/tool on [^:]*:/tool on ?:/' | tr '\n' ' ' | sed 's/ $//')"

# spec/remote.test.sh's cases with every host a network namespace of its
# own, entered by `ip netns exec` (spec/fake-host.sh).
for h in h1 h2; do
    ip netns add "sbxspec$$-$h"
    netns_made+=("sbxspec$$-$h")
done
spec=$(cd "$(dirname "$0")/../spec" && pwd)
out=$(SPEC_REMOTE_NETNS=sbxspec$$ python3 "$spec/run.py" --shells bash-exe,dash "$spec/remote.test.sh" 2>&1) ||
    fail "spec/remote.test.sh over ip netns exec:"$'\n'"$out"
expect_match "spec/remote.test.sh passes with its hosts in network namespaces" "*cases x 2 shells, 0 FAIL*" "$out"
done_checks
