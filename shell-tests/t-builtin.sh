# What only the bash builtin can get wrong: it runs inside the shell's own
# process, so it must leave the shell exactly as it found it.
. "$(dirname "$0")/lib.sh"

expect_eq "enable -f finds the library through BASH_LOADABLES_PATH" "sandbox is a shell builtin" \
    "$(BASH_LOADABLES_PATH=$(dirname "$SLICEBOX_LIB") bash -c 'enable -f libslicebox.so sandbox && type sandbox')"

enable -f "$SLICEBOX_LIB" sandbox slice-add slice-list slice-show
expect_match "help shows the generated long help" "*--slice REF\[:MOUNTPOINT\]*" "$(help sandbox)"
expect_match "help indents the long help's lines as bash's own" $'*\n      --slice REF*' "$(help sandbox)"
expect_eq "help -d puts each builtin's description on its own line" \
    "sandbox - Run COMMAND in its own small container built from slices.
slice-add - Store SOURCE as a slice and point NAME at it." "$(help -d sandbox slice-add)"

shell_pid=$$
inner_parent=$(sandbox -- sh -c 'echo $PPID')
expect_eq "the payload's parent is the stage's pid 1, not the shell" 1 "$inner_parent"

cwd_before=$PWD
umask_before=$(umask)
traps_before=$(trap -p)
sandbox --chdir /tmp -- true
expect_eq "the shell's cwd is unchanged" "$cwd_before" "$PWD"
expect_eq "the shell's umask is unchanged" "$umask_before" "$(umask)"
expect_eq "the shell's traps are unchanged" "$traps_before" "$(trap -p)"

# bash reaps children in its SIGCHLD handler; a background job finishing
# during a sandbox must not steal the sandbox's status, and vice versa.
sleep 0.2 &
bg=$!
sandbox -- sh -c 'sleep 0.5; exit 3' && status=0 || status=$?
expect_eq "status survives a background job exiting meanwhile" 3 "$status"
wait "$bg" && bg_status=0 || bg_status=$?
expect_eq "the background job's status is still bash's to collect" 0 "$bg_status"

FOO=temporary sandbox -- sh -c 'echo "$FOO"' >out
expect_eq "temporary assignments reach the payload via bash's export env" temporary "$(cat out)"
LOCALVAR=notexported
expect_eq "unexported shell variables do not" "" "$(sandbox -- sh -c 'echo "${LOCALVAR:-}"')"

# Regression: pid 1 once inherited bash's SIGCHLD handler, which could
# reap the payload first and make ~1% of runs fail with a silent 125.
# pid 1 has no handler at all: it keeps every signal blocked and reads
# SIGCHLD and the ones it forwards from a signalfd (all but SIGKILL,
# SIGSTOP and the two glibc reserves for its threads).
expect_eq "the stage's pid 1 has no signal handler, none of bash's" \
    "SigCgt:	0000000000000000" "$(sandbox -- grep SigCgt /proc/1/status)"
expect_eq "the stage's pid 1 blocks every signal" \
    "SigBlk:	fffffffe7ffbfeff" "$(sandbox -- grep SigBlk /proc/1/status)"
failures=0
for i in $(seq 400); do sandbox -- true || failures=$((failures + 1)); done
expect_eq "400 quick stages in a row all succeed (bash's SIGCHLD handler is not inherited)" 0 "$failures"

for i in 1 2 3 4 5 6 7 8 9 10; do sandbox -- true; done
leaked=$(ls /proc/$$/fd | wc -l)
for i in 1 2 3 4 5 6 7 8 9 10; do sandbox -- true; done
expect_eq "no descriptors leak into the shell across runs" "$leaked" "$(ls /proc/$$/fd | wc -l)"

zombies=$(ps -o stat= --ppid $$ | grep -c Z || true)
expect_eq "no zombies are left behind" 0 "$zombies"

enable -d sandbox
expect_eq "enable -d unloads the builtin" "file" "$(type -t sandbox)"
done_checks
