#!/usr/bin/env bash
# One mode (root or rootless) of the shell tests; called by run-all.sh with
# a clean environment. Fails on the first failing part.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$SLICEBOX_TEST_WORK"

# Whatever a test does, the host's mount table must be the same afterwards
# and no process of a stage may outlive the suite.
mounts_before=$(cat /proc/self/mountinfo)

# SLICEBOX_ONLY="spec/x.test.sh t-y.sh" runs just those (SPEC_FILTER and
# SPEC_SHELLS narrow the spec cases); unset, everything runs.
specs=("$here"/../spec/*.test.sh) tests=("$here"/t-*.sh)
if [ -n "${SLICEBOX_ONLY:-}" ]; then
    specs=() tests=()
    for only in $SLICEBOX_ONLY; do
        case $only in
        spec/*) specs+=("$here/../$only") ;;
        *) tests+=("$here/$only") ;;
        esac
    done
fi
[ ${#specs[@]} = 0 ] || python3 "$here/../spec/run.py" ${SPEC_FILTER:+--filter "$SPEC_FILTER"} \
    ${SPEC_SHELLS:+--shells "$SPEC_SHELLS"} "${specs[@]}"

for t in "${tests[@]}"; do
    echo "--- $(basename "$t") ($SLICEBOX_TEST_MODE)"
    SLICEBOX_STORE="$SLICEBOX_TEST_WORK/store-$(basename "$t" .sh)" bash "$t"
done

mounts_after=$(cat /proc/self/mountinfo)
if [ "$mounts_before" != "$mounts_after" ]; then
    echo "FAIL: the host's mount table changed during the suite (< before, > after):" >&2
    diff <(echo "$mounts_before") <(echo "$mounts_after") >&2 || true
    exit 1
fi
# Every process of a stage is in a pid namespace of its own, so any
# process of ours in another pid namespace outlived its stage. A stage
# killed at the very end (tmux's teardown) may still be exiting: poll a
# little for them to vanish; zombies are already dead.
our_pid_ns=$(readlink /proc/self/ns/pid)
running_stages() {
    local pid ns
    for pid in $(ps -u "$(id -u)" -o pid=,stat= | awk '$2 !~ /^Z/ { print $1 }'); do
        ns=$(readlink "/proc/$pid/ns/pid" 2>/dev/null) || continue
        [ "$ns" = "$our_pid_ns" ] || ps -o pid=,stat=,args= -p "$pid" || true
    done
}
for _ in $(seq 100); do [ -z "$(running_stages)" ] && break; sleep 0.05; done
if [ -n "$(running_stages)" ]; then
    echo "FAIL: stages outlived the suite:" >&2
    running_stages >&2
    exit 1
fi
echo "ok: the host's mount table is unchanged and no stage outlived the suite ($SLICEBOX_TEST_MODE)"
