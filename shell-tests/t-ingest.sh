# What an ingest costs (issue 13 item 6): an `--out` of 300,000 files
# leaves bash's size as it was and keeps the helper's own peak memory
# bounded; a 2 GB sparse file takes almost no room in the store; and
# `--timeout` covers the storing of `--out`.
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
# on. bash reads its own VmRSS and VmHWM before and after (no fork).
out=$(SLICEBOX_STORE=$store bash -c '
    enable -f "$SLICEBOX_LIB" sandbox slice-list || exit 99
    sizes() { local key value rest; while read -r key value rest; do # VmHWM, then VmRSS
        case $key in VmRSS: | VmHWM:) printf "%s " "$value" ;; esac; done </proc/$$/status; }
    # A small --out first: what the first sandbox of a shell loads for
    # good is not what an ingest leaves behind.
    sandbox --out /out=warm -- true
    before=$(sizes)
    (for _ in $(seq 3000); do
        for pid in $(ps -o pid=,stat= --ppid $$ | awk "\$2 ~ /^T/ { print \$1 }"); do
            echo "helper $(grep -E "^VmHWM" /proc/$pid/status)"; kill -CONT $pid; exit 0
        done
        sleep 0.05
    done; echo "no helper stopped") &
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
    set -- $before $after
    echo "hwm-grew=$(( $3 - $1 > 1024 )) rss-grew=$(( $4 - $2 > 1024 )) kB: $*"
')
echo "bash's VmHWM and VmRSS before, then after (kB): ${out##*kB: }"
helper_kb=$(printf '%s\n' "$out" | sed -n 's/^helper VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p')
echo "the helper's VmHWM after reading 300,000 files: ${helper_kb:-none} kB (bound: $bound_kb kB)"
expect_match "the helper was stopped and its peak read (the probe ran)" "*helper VmHWM:*" "$out"
expect_eq "the helper's peak memory stays under $((bound_kb / 1024)) MiB for 300,000 files" \
    1 "$(( ${helper_kb:-999999999} < bound_kb ))"
expect_match "--out of 300,000 files leaves bash's VmRSS and VmHWM within 1 MiB" \
    "*hwm-grew=0 rss-grew=0 kB:*" "$out"
expect_eq "the slice holds the 300,000 files" "files:       300000" \
    "$(SLICEBOX_STORE=$store slice-show many | grep '^files:')"

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
