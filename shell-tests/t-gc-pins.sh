# slice-gc never deletes what a running stage mounts, and frees it once
# the stage is gone; slice-verify then finds nothing wrong.
. "$(dirname "$0")/lib.sh"
mkdir -p src/bin
printf 'hello from the slice\n' >src/bin/data
slice-add pinned src --at /opt/pinned >/dev/null

# The stage reads its file, waits until gc has run, then reads it again.
mkfifo go
sandbox --slice pinned -- sh -c 'cat /opt/pinned/bin/data; read x </dev/stdin; cat /opt/pinned/bin/data' <go >stage.out &
stage=$!
exec 3>go
sleep 0.5
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
slice-verify >/dev/null
expect_eq "slice-verify finds nothing wrong afterwards" 0 $?
done_checks
