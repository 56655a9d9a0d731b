# What an ingest costs (issue 13 item 6): an `--out` of 300,000 files,
# and a `slice-add` of a tar of 300,000 entries (from a file and from
# stdin), and slice-verify and a repairing add of such a slice, leave
# bash's size as it was and keep the helper's own peak memory bounded;
# a 2 GB sparse file takes almost no room in the store; and `--timeout`
# covers the storing of `--out`.
. "$(dirname "$0")/lib.sh"

# The store on a tmpfs, as in t-helper.sh: 300,000 files cost seconds.
scratch=$(mktemp -d /dev/shm/slicebox-ingest.XXXXXX)
trap 'chmod -R u+w "$scratch"; rm -rf "$scratch"' EXIT
store=$scratch/store
# The most the helper may hold at its peak, in kB (VmHWM): bash's own
# pages it shares after the fork, and the walk's path, not 300,000 entries.
bound_kb=$((64 * 1024))

# The helper stops itself once the whole source is read and staged
# (SLICEBOX_PAUSE_AT=add:staged); a watcher reads its VmHWM and lets it go
# on. bash reads its own VmRSS and VmHWM before and after (no fork). What
# the measured bash sources:
probe=$scratch/probe.sh
cat >"$probe" <<'EOF'
# The status is read whole first (cat retries what a signal interrupts;
# bash's read loop on the file once lost its last line).
sizes() { local key value rest status; status=$(cat /proc/$$/status)
    while read -r key value rest; do # VmHWM, VmRSS, RssFile
        case $key in VmRSS: | VmHWM: | RssFile:) printf "%s " "$value" ;; esac
    done <<<"$status"; }
watch_helper() {
    (for _ in $(seq 3000); do
        for pid in $(ps -o pid=,stat= --ppid $$ | awk '$2 ~ /^T/ { print $1 }'); do
            echo "helper $(grep -E "^VmHWM" /proc/$pid/status)"; kill -CONT $pid; exit 0
        done
        sleep 0.05
    done; echo "no helper stopped") &
}
# What grew beyond the file pages paged in (libslicebox.so's code that a
# first call on a path runs, which a second call does not add again): the
# memory bash holds, not the library it maps.
grew() { set -- $1 $2; local code=$(( $6 - $3 ))
    echo "hwm-grew=$(( $4 - $1 - code > 1024 )) rss-grew=$(( $5 - $2 - code > 1024 )) kB: $* (file pages +$code)"; }
EOF
# check_sizes OUT WHAT BOUND_KB: the helper was stopped and its peak is
# under BOUND_KB, and bash is the size it was.
check_sizes() {
    local helper_kb
    echo "bash's VmHWM, VmRSS and RssFile before, then after (kB): ${1##*kB: }"
    helper_kb=$(printf '%s\n' "$1" | sed -n 's/^helper VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p')
    echo "the helper's VmHWM after $2: ${helper_kb:-none} kB (bound: $3 kB)"
    expect_match "the helper was stopped and its peak read ($2; the probe ran)" "*helper VmHWM:*" "$1"
    expect_eq "the helper's peak memory stays under $(($3 / 1024)) MiB ($2)" \
        1 "$(( ${helper_kb:-999999999} < $3 ))"
    expect_match "$2 leaves bash's VmRSS and VmHWM within 1 MiB (beyond file pages)" "*hwm-grew=0 rss-grew=0 kB:*" "$1"
}
out=$(SLICEBOX_STORE=$store PROBE=$probe bash -c '
    enable -f "$SLICEBOX_LIB" sandbox slice-list || exit 99
    . "$PROBE"
    # A small --out first: what the first sandbox of a shell loads for
    # good is not what an ingest leaves behind.
    sandbox --out /out=warm -- true
    before=$(sizes)
    watch_helper
    export SLICEBOX_PAUSE_AT=add:staged # the environment of the helper bash forks
    sandbox --out /out=many -- python3 -c "
import os
for d in range(300):
    os.mkdir(f\"/out/{d}\")
    for f in range(1000):
        with open(f\"/out/{d}/{f}\", \"w\") as out:
            out.write(f\"{d}-{f}\\n\")
" || echo "sandbox failed: $?"
    after=$(sizes)
    wait
    grew "$before" "$after"
')
check_sizes "$out" "--out of 300,000 files" "$bound_kb"
expect_eq "the slice holds the 300,000 files" "files:       300000" \
    "$(SLICEBOX_STORE=$store slice-show many | grep '^files:')"

# A tar of 300,000 entries: a flat directory of 200,000 files, 100 more
# directories of files and hardlinks (one in ten) to earlier files. Its
# entries are checked and built in arrival order with the filesystem as
# the index, and the flat directory's names are sorted in runs spilled
# to the staging dir: nothing is held per entry. Before, the archive was
# parsed into a tree in memory, and this one took the helper to 118 MB.
# What the helper may hold now, in kB: bash's pages it shares after the
# fork (some 4 MiB), the names the walk keeps in memory (4 MiB at most)
# and its merge buffers, one file's bytes read whole (4 MiB at most), the
# tar reader's buffers; 17 MB was measured for the executable. The add
# from stdin finds every object stored already: what it verified is
# remembered for at most 65,536 objects (some 9 MB), not 300,000 (47 MB).
tar_bound_kb=$((32 * 1024))
tarball=$scratch/300k.tar
python3 - "$tarball" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    def add(name, kind=tarfile.REGTYPE, data=b"", link=""):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.linkname = kind, 0o755, link
        info.size = len(data)
        t.addfile(info, io.BytesIO(data) if data else None)
    add("flat", tarfile.DIRTYPE)
    for i in range(200_000):
        add(f"flat/{i:06d}", data=f"flat {i}\n".encode())
    for d in range(100): # 100 dirs and 99,899 entries in them
        add(f"d{d:02d}", tarfile.DIRTYPE)
        for f in range(1000 if d < 99 else 899):
            if f % 10 == 9:
                add(f"d{d:02d}/h{f:03d}", tarfile.LNKTYPE, link=f"d{d:02d}/f{f - 1:03d}")
            else:
                add(f"d{d:02d}/f{f:03d}", data=f"{d}-{f}\n".encode())
PY
expect_eq "the tar holds 300,000 entries" 300000 "$(tar -tf "$tarball" | wc -l)"
printf 'warm\n' >"$scratch/warm" && tar -cf "$scratch/warm.tar" -C "$scratch" warm
# add_paused path|- NAME TARBALL: slice-add of TARBALL (or of stdin) with
# the builtin, paused once staged.
add_paused() {
    SLICEBOX_STORE=$store PROBE=$probe bash -c '
    enable -f "$SLICEBOX_LIB" slice-add || exit 99
    . "$PROBE"
    # A small add first: what the first one of a shell loads for good is
    # not what an ingest leaves behind.
    slice-add warm "${3%/*}/warm.tar" --at /opt/warm >/dev/null
    before=$(sizes)
    watch_helper
    export SLICEBOX_PAUSE_AT=add:staged
    if [ "$1" = - ]; then
        slice-add "$2" - --at /opt/many <"$3" >/dev/null || echo "slice-add failed: $?"
    else
        slice-add "$2" "$3" --at /opt/many >/dev/null || echo "slice-add failed: $?"
    fi
    after=$(sizes)
    wait
    grew "$before" "$after"
    ' bash "$@"
}
check_sizes "$(add_paused path many-tar "$tarball")" \
    "slice-add of a tar of 300,000 entries" "$tar_bound_kb"
check_sizes "$(add_paused - many-stdin "$tarball")" \
    "slice-add of the same tar from stdin (every object stored already)" "$tar_bound_kb"
shown=$(SLICEBOX_STORE=$store slice-show many-tar)
expect_match "the slice holds the tar's 200,000 + 99,899 files, hardlinks counted" "*files:       299899*" "$shown"
expect_eq "the slice from stdin is the same slice" \
    "$(printf '%s\n' "$shown" | sed -n 's/^digest: *//p')" \
    "$(SLICEBOX_STORE=$store slice-show many-stdin | sed -n 's/^digest: *//p')"
tree=$(printf '%s\n' "$shown" | sed -n 's/^path: *//p')
expect_eq "the flat directory holds its 200,000 files" 200000 "$(ls -f "$tree/flat" | grep -c '^[0-9]')"
expect_eq "a hardlink is the inode of its file" \
    "$(stat -c %i "$tree/d42/f008")" "$(stat -c %i "$tree/d42/h009")"

# slice-verify of that 300,000-entry slice, sound, then damaged, then
# repaired by adding the tar again. Verify reads the listing as a stream
# and merges it with a walk of the tree (its names spilled as an add's
# are), re-hashing files in batches: nothing is held per entry. Before,
# it held the whole listing and tree (208 MB in the executable). What the
# helper may hold: bash's pages it shares after the fork, the walk's
# names (4 MiB at most) and a batch of 1,024 entries. The repairing add
# holds what the add from stdin above holds.
verify_bound_kb=$((16 * 1024))
repair_bound_kb=$((32 * 1024))
# run_paused POINT BUILTIN ARG...: the builtin, paused at POINT; its
# output goes to $scratch/paused.out.
run_paused() {
    SLICEBOX_STORE=$store PROBE=$probe OUT=$scratch/paused.out bash -c '
    point=$1 builtin=$2 && shift 2
    enable -f "$SLICEBOX_LIB" "$builtin" || exit 99
    . "$PROBE"
    "$builtin" --help >/dev/null # what the first call of a shell loads for good
    before=$(sizes)
    watch_helper
    export SLICEBOX_PAUSE_AT=$point
    status=0
    "$builtin" "$@" >"$OUT" 2>&1 || status=$?
    after=$(sizes)
    wait
    echo "status=$status"
    grew "$before" "$after"
    ' bash "$@"
}
out=$(run_paused verify:done slice-verify many-tar)
check_sizes "$out" "slice-verify of a 300,000-entry slice" "$verify_bound_kb"
expect_match "the sound slice verifies (exit 0)" "*status=0*" "$out"
damaged=$tree/flat/123456
chmod u+w "$damaged" && printf 'damaged\n' >"$damaged"
out=$(run_paused verify:done slice-verify many-tar)
check_sizes "$out" "slice-verify of a damaged 300,000-entry slice" "$verify_bound_kb"
expect_match "the damaged slice fails to verify (exit 1)" "*status=1*" "$out"
expect_match "verify names the damaged file" "*damaged: slice *many-tar*/tree/flat/123456: content is *" \
    "$(cat "$scratch/paused.out")"
expect_match "and counts one damaged path" "*1 damaged path*" "$(cat "$scratch/paused.out")"
out=$(run_paused add:published slice-add many-tar "$tarball" --at /opt/many)
check_sizes "$out" "the slice-add that repairs a 300,000-entry slice" "$repair_bound_kb"
expect_match "the repairing add succeeds" "*status=0*" "$out"
expect_match "and says it replaced the object and the slice" "*repaired the store: replaced 1 damaged object; replaced the stored slice*" "$(cat "$scratch/paused.out")"
expect_eq "the repaired file reads back its content" "flat 123456" "$(cat "$damaged")"
status=0
SLICEBOX_STORE=$store slice-verify many-tar >/dev/null || status=$?
expect_eq "the repaired slice verifies" 0 "$status"
rm -f "$tarball"

# A 2 GB sparse file: stored with its hole (objects skip blocks of zeros).
sandbox --out /out=sparse -- sh -c 'truncate -s 2G /out/big && printf end >>/out/big'
shown=$(slice-show sparse)
expect_match "the slice counts the file's full size" "*bytes:       2147483651 *" "$shown"
path=$(printf '%s\n' "$shown" | sed -n 's/^path: *//p')
expect_eq "the stored file reads back its size (the probe found it)" 2147483651 "$(stat -c %s "$path/big")"
used_kb=$(du -sk "$SLICEBOX_STORE" | cut -f1)
echo "store size after storing a 2 GB sparse file: $used_kb kB"
expect_eq "the store grew by far less than 2 GB (under 64 MiB)" 1 "$(( used_kb < 64 * 1024 ))"

# --timeout covers storing --out: a helper held at its first file (a
# pause file nobody removes) is killed when the deadline passes.
pause=$scratch/pause
status=0
err=$(SLICEBOX_PAUSE_AT=add:walked SLICEBOX_PAUSE_FILE=$pause \
    sandbox --timeout 2 --out /out=late -- sh -c 'echo x >/out/f' 2>&1) || status=$?
expect_eq "the ingest reached its pause point (the probe ran)" add:walked "$(cat "$pause" 2>/dev/null)"
expect_eq "--timeout passing while --out is stored exits 124" 124 "$status"
expect_match "and says nothing was stored" "*--timeout passed while storing --out*nothing was stored*" "$err"
expect_eq "no slice 'late' was made" "" "$(slice-list | grep '^late' || true)"
done_checks
