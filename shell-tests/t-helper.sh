# Store commands run as builtins do their work in a helper process: bash's
# size after they return is what it was before, a ^C ends them with 130
# and leaves the store as it was, the user's ignored signals stay ignored,
# and no handler of bash's runs in the helper.
. "$(dirname "$0")/lib.sh"

# A tree of 200,000 small files, one of 20,000 for the ^C cases (its
# ingest still takes about a second), and a store, on a tmpfs: the
# ingests then cost seconds, not minutes.
scratch=$(mktemp -d /dev/shm/slicebox-helper.XXXXXX)
trap 'chmod -R u+w "$scratch"; rm -rf "$scratch"' EXIT
python3 - "$scratch" <<'PY'
import os, sys
for tree, dirs in (("tree", 200), ("tree20k", 20)):
    for d in range(dirs):
        os.makedirs(f"{sys.argv[1]}/{tree}/{d}")
        for f in range(1000):
            with open(f"{sys.argv[1]}/{tree}/{d}/{f}", "w") as out:
                out.write(f"{tree}-{d}-{f}\n")
PY
store=$scratch/store

# Read by bash itself (no fork), before and after.
out=$(SLICEBOX_STORE=$store bash -c '
    enable -f "$SLICEBOX_LIB" slice-add slice-list || exit 99
    sizes() { local key value rest; while read -r key value rest; do # VmHWM, then VmRSS
        case $key in VmRSS: | VmHWM:) printf "%s " "$value" ;; esac; done </proc/$$/status; }
    slice-list >/dev/null
    before=$(sizes)
    (exit 7) &
    slice-add big "$1/tree" >/dev/null || echo "slice-add failed: $?"
    after=$(sizes)
    wait $! ; echo "background=$?"
    set -- $before $after
    echo "hwm-grew=$(( $3 - $1 > 1024 )) rss-grew=$(( $4 - $2 > 1024 )) kB: $*"
' bash "$scratch")
echo "bash's VmHWM and VmRSS before, then after (kB): ${out##*kB: }"
expect_match "slice-add of 200,000 files in a builtin leaves bash's VmRSS and VmHWM within 1 MiB" \
    "*hwm-grew=0 rss-grew=0 kB:*" "$out"
expect_match "a background job that ended meanwhile is still bash's to collect" "*background=7*" "$out"
expect_eq "the helper stored the slice" big "$(SLICEBOX_STORE=$store "$SLICEBOX_BIN_DIR/slice-list" | cut -f1)"

# The helper's signal state, read while it stops itself (SLICEBOX_PAUSE_AT):
# no handler, nothing blocked, and ignored only what the user ignored: what
# bash hands any command it runs (grep's own set: what bash inherited, as
# CI's runner hands down signals 32 and 33 ignored, and trap '' USR1), not
# what bash ignores for itself (SIGQUIT).
mkdir "$scratch/small" && echo hi >"$scratch/small/f"
out=$(SLICEBOX_STORE=$store bash -c '
    enable -f "$SLICEBOX_LIB" slice-add || exit 99
    trap "" USR1
    trap "echo trapped" USR2 TERM
    grep "^SigIgn" /proc/self/status | sed "s/^/bash/"
    (for _ in $(seq 200); do
        for pid in $(ps -o pid=,stat= --ppid $$ | awk "\$2 ~ /^T/ { print \$1 }"); do
            grep -E "^Sig(Cgt|Blk|Ign)" /proc/$pid/status; kill -CONT $pid; exit 0
        done
        sleep 0.05
    done; echo "no helper stopped") &
    SLICEBOX_PAUSE_AT=add:walked slice-add small "$1" >/dev/null; echo "status=$?"
    wait
' bash "$scratch/small")
expect_match "the helper has no signal handler (none of bash's traps)" "*SigCgt:	0000000000000000*" "$out"
expect_match "the helper blocks no signal" "*SigBlk:	0000000000000000*" "$out"
bash_ignored=$(printf '%s\n' "$out" | sed -n 's/^bashSigIgn:\t//p')
helper_ignored=$(printf '%s\n' "$out" | sed -n 's/^SigIgn:\t//p')
expect_eq "a command bash runs ignores SIGUSR1 (the probe's premise)" 1 "$(( 0x${bash_ignored:-0} >> 9 & 1 ))"
expect_eq "the helper ignores only what the user ignored (as any command would)" "$bash_ignored" "$helper_ignored"
expect_match "the stopped and continued helper finished" "*status=0*" "$out"

# ^C typed at an interactive bash during slice-add, and with trap '' INT.
out=$(SLICEBOX_STORE=$store python3 - "$SLICEBOX_LIB" "$scratch/tree20k" "$(dirname "$0")" <<'PY'
import os, re, sys

lib, tree = sys.argv[1], sys.argv[2]
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[3])
from interactive_bash import Bash

store = os.environ["SLICEBOX_STORE"]

def store_state():
    return sorted(os.listdir(store + "/refs")), sorted(os.listdir(store + "/slices"))

bash = Bash()
bash.load(lib, "slice-add")
before = store_state()
# The helper draws its progress on the terminal: ^C is typed only once
# it is under way.
bash.send("slice-add --at /opt/c interrupted %s; echo after-status=$?" % tree)
bash.read_until(" files, ", timeout=60)
bash.interrupt()
rest = bash.read_until("PROMPT> ", timeout=30)
if "after-status" in rest:
    sys.exit("the rest of the command line ran after ^C: %r" % rest)
print("interrupted:", bash.answer("echo $?"))
print("store unchanged:", store_state() == before)
bash.send("trap '' INT; slice-add --at /opt/t ignoring %s >/dev/null; echo after-status=$?" % tree)
bash.read_until(" files, ", timeout=60)
bash.interrupt()
done = bash.read_until("PROMPT> ", timeout=120)
print("ignored: after-status=%s" % re.search(r"after-status=(\d+)", done).group(1))
print("exit:", bash.exit())
PY
)
expect_match "^C ended slice-add with 130" "*interrupted: 130*" "$out"
expect_match "^C left the store's names and slices as they were" "*store unchanged: True*" "$out"
expect_match "with trap '' INT, ^C does not end slice-add" "*ignored: after-status=0*" "$out"
expect_match "the interactive shell exits normally afterwards" "*exit: 0*" "$out"
expect_eq "the slice added with ^C ignored is there, the interrupted one is not" "big ignoring small" \
    "$(SLICEBOX_STORE=$store "$SLICEBOX_BIN_DIR/slice-list" | cut -f1 | tr '\n' ' ' | sed 's/ $//')"
expect_eq "the slice added with ^C ignored is sound" "" \
    "$(SLICEBOX_STORE=$store "$SLICEBOX_BIN_DIR/slice-verify" ignoring 2>&1)"
done_checks
