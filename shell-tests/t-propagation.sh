# Host mounts made while a stage runs do not appear inside it, even under
# a shared mount (the systemd default for /): the stage's tree is private
# once it is set up. The "host" here is a mount namespace of our own where
# the working directory is a shared tmpfs, so the test needs no changes to
# the machine and runs the same rootless (with a user namespace) and as root.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" = 0 ]; then ns=(unshare -m); else ns=(unshare -Urm); fi
out=$("${ns[@]}" bash -c '
set -e
d=$(mktemp -d "$SLICEBOX_TEST_WORK/shared.XXXXXX")
mount -t tmpfs propagation-test "$d"
mount --make-shared "$d"
mkdir "$d/sub" "$d/other"
cd "$d"
coproc STAGE { sandbox --bind "$d/other:/bound" -- sh -c "
    echo ready
    read go
    test -e sub/marker && echo cwd-mount-visible || echo cwd-mount-hidden
    test -e /bound/marker && echo bind-mount-visible || echo bind-mount-hidden
    grep -c propagation-late /proc/self/mountinfo || true"; }
pid=$STAGE_PID
read -r line <&"${STAGE[0]}"
[ "$line" = ready ] || { echo "stage did not start: $line"; exit 1; }
mount -t tmpfs propagation-late "$d/sub"
mount -t tmpfs propagation-late "$d/other"
touch "$d/sub/marker" "$d/other/marker"
test -e "$d/sub/marker" && echo host-sees-its-mount
echo go >&"${STAGE[1]}"
cat <&"${STAGE[0]}"
wait "$pid"
')
expect_eq "the host mounted under the shared cwd and a bind source while the stage ran" \
    "host-sees-its-mount" "$(echo "$out" | sed -n 1p)"
expect_eq "a mount made under the cwd on the host stays outside" "cwd-mount-hidden" "$(echo "$out" | sed -n 2p)"
expect_eq "a mount made under a --bind source on the host stays outside" "bind-mount-hidden" "$(echo "$out" | sed -n 3p)"
expect_eq "the stage's mount table has none of them" "0" "$(echo "$out" | sed -n 4p)"

# Nothing the stage mounts reaches the host either: a stage may not even
# mount (no capabilities), and its own setup mounts stay in its namespace.
before=$(wc -l </proc/self/mountinfo)
sandbox -- true
expect_eq "the host's mount table is the same after a stage" "$before" "$(wc -l </proc/self/mountinfo)"
done_checks
