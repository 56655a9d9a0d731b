# slice-gc never deletes what a running stage mounts, and frees it once
# the stage is gone; slice-verify then finds nothing wrong.
. "$(dirname "$0")/lib.sh"
mkdir -p src/bin
printf 'hello from the slice\n' >src/bin/data
slice-add pinned src --at /opt/pinned >/dev/null

# The stage reads its file, waits until gc has run, then reads it again.
# Its first line is the handshake: once it is out, the stage runs (and its
# pin was written before it started).
mkfifo go
sandbox --slice pinned -- sh -c 'cat /opt/pinned/bin/data; read x </dev/stdin; cat /opt/pinned/bin/data' <go >stage.out &
stage=$!
exec 3>go
for _ in $(seq 400); do [ -s stage.out ] && break; sleep 0.05; done
[ -s stage.out ] || fail "the stage never started"
slice-rm pinned >/dev/null
slice-gc >/dev/null
expect_eq "gc keeps the slice of a running stage" 1 "$(ls "$SLICEBOX_STORE/slices" | wc -l)"
echo go >&3
exec 3>&-
wait "$stage"
expect_eq "the stage read its slice before and after gc" "hello from the slice
hello from the slice" "$(cat stage.out)"
slice-gc >/dev/null
expect_eq "once the stage ended, gc frees the slice" 0 "$(ls "$SLICEBOX_STORE/slices" | wc -l)"
expect_eq "and its objects" 0 "$(find "$SLICEBOX_STORE/objects" -type f | wc -l)"
if slice-verify >verify.out; then verified=0; else verified=$?; fi
expect_eq "slice-verify finds nothing wrong afterwards" "0 " "$verified $(cat verify.out)"

# Two callers that are both pid 1 of their own pid namespace (two
# containers sharing one store) pin without colliding: the second one
# ending must not drop the first one's pin.
command -v unshare >/dev/null || fail "unshare (util-linux) is needed to make pid namespaces"
slicebox=$(command -v slicebox) || fail "slicebox is not on PATH"
as_pid_1() { unshare --user --map-root-user --pid --fork --kill-child sh -c 'echo "pid $$" >&2; exec "$@"' sh "$@"; }
mkdir -p one two
printf 'one\n' >one/f
printf 'two\n' >two/f
one=$(slice-add pin-one one --at /opt/one)
slice-add pin-two two --at /opt/two >/dev/null
rm -f go stage.out
mkfifo go
as_pid_1 "$slicebox" sandbox --slice pin-one -- sh -c 'cat /opt/one/f; read x; cat /opt/one/f' <go >stage.out 2>one.err &
stage=$!
exec 3>go
for _ in $(seq 400); do [ -s stage.out ] && break; sleep 0.05; done
[ -s stage.out ] || fail "the stage in its own pid namespace never started: $(cat one.err)"
expect_eq "the second caller ran as pid 1 too" "pid 1
two" "$(as_pid_1 "$slicebox" sandbox --slice pin-two -- cat /opt/two/f 2>&1)"
expect_eq "the first caller is pid 1 of its namespace" "pid 1" "$(cat one.err)"
slice-rm pin-one >/dev/null
slice-gc >/dev/null
expect_eq "gc keeps the slice the first pid 1 still mounts" yes \
    "$([ -d "$SLICEBOX_STORE/slices/${one#sha256:}" ] && echo yes || echo no)"
echo go >&3
exec 3>&-
wait "$stage"
expect_eq "that stage read its slice before and after gc" "one
one" "$(cat stage.out)"
slice-gc >/dev/null
expect_eq "once it ended, gc frees the slice" no \
    "$([ -d "$SLICEBOX_STORE/slices/${one#sha256:}" ] && echo yes || echo no)"
done_checks
