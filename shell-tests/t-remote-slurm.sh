# Remote stages through a real workload manager: a single-node Slurm
# (shell-tests/slurm-single-node.sh starts munge, slurmctld and slurmd on
# 127.0.0.1) runs `slicebox serve` as a job step, with
# SLICEBOX_RSH='srun -u -N1 -n1 -w' and the node as HOST. Byte-exact
# stdio, exact statuses, and srun's own lines kept out of the stage's
# stderr. Starting Slurm's daemons needs root: the rootless mode says so
# and checks nothing.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ]; then
    echo "t-remote-slurm.sh: Slurm's daemons need root; the root mode runs this test"
    exit 0
fi
work=$(mktemp -d "$SLICEBOX_TEST_WORK/remote-slurm.XXXXXX")
cd "$work"
slurm=$(cd "$(dirname "$0")" && pwd)/slurm-single-node.sh
# The daemons and runuser live in sbin, which a test's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
SN_OVERSUBSCRIBE=FORCE:8 bash "$slurm" start >slurm.log 2>&1 || { cat slurm.log >&2; fail "Slurm did not start"; }
trap 'bash "$slurm" stop >>slurm.log 2>&1' EXIT
node=$(hostname -s)
export SLICEBOX_RSH="srun -u -N1 -n1 -w" SLICEBOX_REMOTE_COMMAND="$SLICEBOX_BIN_DIR/slicebox"
# srun passes the caller's environment on, SLICEBOX_STORE too: the job
# gets a store of its own.
on=(--on "$node" --remote-store "$work/job-store")

mkdir -p tool/bin
printf '#!/bin/sh\necho "tool: $*"\n' > tool/bin/tool && chmod +x tool/bin/tool
slice-add tool tool --at /opt/tool >/dev/null
status=0
out=$(sandbox --no-cwd "${on[@]}" --slice tool -- sh -c 'tool hi; echo err >&2; exit 3' 2>err.txt) || status=$?
expect_eq "a stage through srun: its stdout, with the slice" "tool: hi" "$out"
expect_eq "its status" 3 "$status"
expect_eq "its stderr alone: none of srun's own lines" err "$(cat err.txt)"

head -c 64000000 /dev/urandom > data
sandbox --no-cwd "${on[@]}" -- cat < data > back
expect_eq "64 MB through srun and back, byte for byte" "$(sha256sum < data)" "$(sha256sum < back)"

sandbox --no-cwd "${on[@]}" -- sh -c 'kill -TERM $$' 2>/dev/null && status=0 || status=$?
expect_eq "a death by SIGTERM comes back as 143" 143 "$status"
sandbox --no-cwd "${on[@]}" -- sh -c 'kill -KILL $$' 2>/dev/null && status=0 || status=$?
expect_eq "a death by SIGKILL comes back as 137" 137 "$status"
done_checks
