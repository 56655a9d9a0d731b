# --uid/--gid: who the command is inside, and what that can reach.
# Run by root, `--uid 1000` must be the real uid 1000 (root can map it), so
# that nothing only root may read is readable, and no group of root's is
# kept. Run by a user, the ids inside map onto the user's own.
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d "$SLICEBOX_TEST_WORK/identity.XXXXXX")
chmod 755 "$work"
cd "$work"
mkdir shared && chmod 777 shared
if [ "$(id -u)" = 0 ]; then
    echo secret > root-only && chmod 600 root-only
    echo secret > group-root-only && chown 65534:0 group-root-only && chmod 040 group-root-only
    for builtin in exe builtin; do
        run=(sandbox)
        [ $builtin = builtin ] && run=(bash -c 'enable -f "$SLICEBOX_LIB" sandbox && sandbox "$@"' sandbox)
        out=$("${run[@]}" --uid 1000 --gid 1000 --rw-cwd -- sh -c '
            id -u; id -g
            cat root-only 2>&1 | grep -c "Permission denied"
            cat /etc/shadow 2>&1 | grep -c "Permission denied"
            cat group-root-only 2>&1 | grep -c "Permission denied"
            grep "^Groups:" /proc/self/status | tr -d " \t"
            touch shared/made-by-1000' 2>&1 || true)
        expect_eq "$builtin: as root, --uid 1000 --gid 1000 is the real user 1000, without root's files or groups" \
            "$(printf '1000\n1000\n1\n1\n1\nGroups:')" "$out"
        expect_eq "$builtin: what it makes belongs to the real uid and gid 1000" "1000:1000" \
            "$(stat -c %u:%g shared/made-by-1000)"
        rm -f shared/made-by-1000
        # uid 0 stays root's own uid, with no power over the stage's mounts.
        out=$("${run[@]}" --uid 0 --gid 1000 -- sh -c 'id -u; id -g; cat root-only; grep -c "^Groups:.*\b0\b" /proc/self/status' 2>&1 || true)
        expect_eq "$builtin: as root, --uid 0 --gid 1000 is root with group 1000 and no group 0" \
            "$(printf '0\n1000\nsecret\n0')" "$out"
    done
else
    out=$(sandbox --uid 1000 --gid 1000 --rw-cwd -- sh -c 'id -u; id -g; touch shared/made-inside' 2>&1 || true)
    expect_eq "rootless: --uid 1000 --gid 1000 inside" "$(printf '1000\n1000')" "$out"
    expect_eq "rootless: what it makes belongs to the caller outside" "$(id -u):$(id -g)" \
        "$(stat -c %u:%g shared/made-inside)"
fi
done_checks
