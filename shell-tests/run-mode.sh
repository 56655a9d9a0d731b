#!/usr/bin/env bash
# One mode (root or rootless) of the shell tests; called by run-all.sh with
# a clean environment. Fails on the first failing part.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$SLICEBOX_TEST_WORK"

# Whatever a test does, the host's mount table must be the same afterwards
# and no process of a stage may outlive the suite.
mounts_before=$(cat /proc/self/mountinfo | wc -l)

python3 "$here/../spec/run.py" "$here"/../spec/*.test.sh

for t in "$here"/t-*.sh; do
    echo "--- $(basename "$t") ($SLICEBOX_TEST_MODE)"
    SLICEBOX_STORE="$SLICEBOX_TEST_WORK/store-$(basename "$t" .sh)" bash "$t"
done

mounts_after=$(cat /proc/self/mountinfo | wc -l)
if [ "$mounts_before" != "$mounts_after" ]; then
    echo "FAIL: the host's mount table changed during the suite: $mounts_before -> $mounts_after lines" >&2
    exit 1
fi
# A stage killed at the very end (tmux's teardown) may still be exiting:
# poll a little for running pid 1s to vanish; zombies are already dead.
running_stages() { ps -u "$(id -u)" -o pid=,stat=,comm= | awk '$3 == "slicebox-init" && $2 !~ /^Z/'; }
for _ in $(seq 100); do [ -z "$(running_stages)" ] && break; sleep 0.05; done
if [ -n "$(running_stages)" ]; then
    echo "FAIL: stages outlived the suite:" >&2
    running_stages >&2
    exit 1
fi
echo "ok: the host's mount table is unchanged and no stage outlived the suite ($SLICEBOX_TEST_MODE)"
