#!/usr/bin/env bash
# bench/remote.sh BUILD_DIR
#
# Remote stages against their peers, in one run, over a real sshd on
# 127.0.0.1 (shell-tests/sshd.sh; as the current user, root or not):
#
#   first push      slice-push of cmake 3.31.6's wheel tree (a real
#                   toolchain of about 70 MB) to an empty store, against
#                   `tar | zstd -3` of the same tree and `rsync -a` over
#                   the same ssh
#   upgrade push    cmake 4.1.0 onto a host that holds 3.31.6, against
#                   zstd -3 of the content the host lacks and rsync
#                   --delete onto the 3.31.6 copy
#   no-op re-run    `sandbox --on --slice cmake-4 -- true` the second time:
#                   bytes each way, and the round trips the client waited on
#   stdio           512 MiB through `sandbox --on HOST -- cat`, against
#                   `ssh HOST cat` and a local `cat`
#   start           `sandbox --on HOST -- true` over the shared connection,
#                   against a fresh `ssh HOST true`
#   missing set     pushing a 10,000-file slice whose files the host holds
#                   (but one), with 25 ms added each way (a 50 ms round
#                   trip) by bench/wire-proxy.py, against the same at 0 ms
#
# Bytes on the wire are counted by bench/wire-proxy.py around the ssh
# process (what slicebox's protocol sends, not ssh's own framing). Times
# are medians of BENCH_RUNS (default 5; 15 for start). The wheels come
# from BENCH_WHEELS (a dir with both), else pip download. Writes the
# block between <!-- remote:begin --> and <!-- remote:end --> of
# docs/performance.md (BENCH_DOC=- prints only).
set -euo pipefail
bin=$(cd "${1:?usage: bench/remote.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
top=$here/..
runs=${BENCH_RUNS:-5}
doc=${BENCH_DOC:-$top/docs/performance.md}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/slicebox-bench-remote.XXXXXX")
. "$top/shell-tests/sshd.sh"
sshd_init "$work"
trap 'sshd_stop; rm -rf "$work"' EXIT
sshd_start here 127.0.0.1 "$(free_port)"
cfg=$work/ssh_config
sb() { "$bin/slicebox" "$@"; }
export SLICEBOX_STORE=$work/local SLICEBOX_REMOTE_COMMAND=$bin/slicebox
export SLICEBOX_RSH="ssh -F $cfg"
remote_store=$work/store-here
say() { echo "remote.sh: $*" >&2; }

# counted FILE DELAY_MS COMMAND...: COMMAND with its transport wrapped.
counted() {
    local file=$1 delay=$2
    shift 2
    SLICEBOX_RSH="$here/wire-proxy.py $delay $file -- ssh -F $cfg" "$@"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
now() { date +%s%N; }
ms_since() { echo "scale=2; ($(now) - $1) / 1000000" | bc; }
mb() { echo "scale=1; $1 / 1000000" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

# The trees.
wheels=${BENCH_WHEELS:-$work/wheels}
if ! compgen -G "$wheels/cmake-3.31.6-*.whl" >/dev/null; then
    mkdir -p "$wheels"
    for v in 3.31.6 4.1.0; do
        pip download -q --no-deps --only-binary=:all: "cmake==$v" -d "$wheels" >&2
    done
fi
for v in 3.31.6 4.1.0; do
    mkdir -p "$work/cmake-$v"
    python3 -m zipfile -e "$wheels"/cmake-"$v"-*.whl "$work/cmake-$v"
    chmod -R u+rwX "$work/cmake-$v"
done
sb slice-add cmake-3 "$work/cmake-3.31.6" --at /opt/cmake >/dev/null
sb slice-add cmake-4 "$work/cmake-4.1.0" --at /opt/cmake >/dev/null
tree_mb=$(du -sb "$work/cmake-3.31.6" | cut -f1)

say "first push"
start=$(now)
counted "$work/first" 0 sb slice-push here cmake-3 >/dev/null
first_ms=$(ms_since "$start")
read -r first_up _ _ < "$work/first"
tar_zstd=$(tar -C "$work/cmake-3.31.6" -cf - . | zstd -3 -T1 -q -c | wc -c)
start=$(now)
rsync_first=$(rsync -a --stats -e "ssh -F $cfg" "$work/cmake-3.31.6/" "here:$work/rsync-dest/" |
    awk '/^Total bytes sent/ { gsub(",", "", $4); print $4 }')
rsync_first_ms=$(ms_since "$start")

say "upgrade push"
counted "$work/upgrade" 0 sb slice-push here cmake-4 >/dev/null
read -r upgrade_up _ _ < "$work/upgrade"
lacking=$(python3 - "$SLICEBOX_STORE" "$(sb slice-list | awk '$1 == "cmake-3" { print $2 }')" \
    "$(sb slice-list | awk '$1 == "cmake-4" { print $2 }')" <<'PY' | zstd -3 -T1 -q -c | wc -c
import os, sys
store, old, new = sys.argv[1], sys.argv[2].split(':')[1], sys.argv[3].split(':')[1]
def objects(hexd):
    out = []
    for line in open(os.path.join(store, 'slices', hexd, 'listing'), 'rb'):
        kind, payload, size = line.split(b' ', 3)[:3]
        if kind in (b'f', b'x') and int(size) > 0:
            out.append((payload.decode(), kind == b'x'))
    return out
have = set(objects(old))
seen = set()
for content, executable in objects(new):
    if (content, executable) in have or (content, executable) in seen:
        continue
    seen.add((content, executable))
    name = os.path.join(store, 'objects', content[:2], content[2:] + ('.x' if executable else ''))
    sys.stdout.buffer.write(open(name, 'rb').read())
PY
)
rsync_upgrade=$(rsync -a --delete --stats -e "ssh -F $cfg" "$work/cmake-4.1.0/" "here:$work/rsync-dest/" |
    awk '/^Total bytes sent/ { gsub(",", "", $4); print $4 }')

say "no-op re-run"
counted "$work/noop1" 0 sb sandbox --no-cwd --on here --slice cmake-4 -- true
counted "$work/noop2" 0 sb sandbox --no-cwd --on here --slice cmake-4 -- true
read -r noop_up noop_down noop_turns < "$work/noop2"

say "stdio, 512 MiB"
mib512=$((512 << 20))
for _ in $(seq "$runs"); do
    start=$(now); head -c "$mib512" /dev/zero | ssh -F "$cfg" here cat | wc -c >/dev/null; ms_since "$start" >> "$work/t-ssh-cat"
    start=$(now); head -c "$mib512" /dev/zero | sb sandbox --no-cwd --on here -- cat | wc -c >/dev/null; ms_since "$start" >> "$work/t-sb-cat"
    start=$(now); head -c "$mib512" /dev/zero | cat | wc -c >/dev/null; ms_since "$start" >> "$work/t-pipe"
done

say "start"
sb sandbox --no-cwd --on here -- true
control=${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/slicebox-ssh}
control=${control:-/tmp/slicebox-ssh-$(id -u)}
for _ in $(seq 15); do
    start=$(now); ssh -F "$cfg" -o ControlPath="$control/%C" here true; ms_since "$start" >> "$work/t-mux-true"
    start=$(now); ssh -F "$cfg" -o ControlPath=none here true; ms_since "$start" >> "$work/t-ssh-true"
    start=$(now); sb sandbox --no-cwd --on here -- true; ms_since "$start" >> "$work/t-sb-true"
    start=$(now); sb sandbox --no-cwd -- true; ms_since "$start" >> "$work/t-local-true"
done

say "missing set, 10,000 files"
mkdir -p "$work/many"
python3 - "$work/many" <<'PY'
import os, sys
for i in range(10000):
    d = os.path.join(sys.argv[1], f"d{i // 100}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "w") as f:
        f.write(f"file {i}\n")
PY
sb slice-add many "$work/many" --at /opt/many >/dev/null
sb slice-push here many >/dev/null
for delay in 0 25; do
    for _ in $(seq "$runs"); do
        echo "$RANDOM$RANDOM" > "$work/many/extra"
        sb slice-add "many-$delay" "$work/many" --at /opt/many >/dev/null
        start=$(now)
        counted "$work/miss-$delay" "$delay" sb slice-push here "many-$delay" >/dev/null
        ms_since "$start" >> "$work/t-miss-$delay"
    done
done
read -r _ _ miss_turns < "$work/miss-25"

m() { median < "$work/t-$1"; }
ssh_cat=$(m ssh-cat) sb_cat=$(m sb-cat) pipe=$(m pipe)
ssh_true=$(m ssh-true) sb_true=$(m sb-true) local_true=$(m local-true) mux_true=$(m mux-true)
miss0=$(m miss-0) miss25=$(m miss-25)
block=$(cat <<EOF
<!-- remote:begin -->
Measured by \`bench/remote.sh\` on $(date -u +%Y-%m-%d) ($(id -un), sshd on 127.0.0.1,
load $(cut -d' ' -f1 /proc/loadavg) at the end). cmake 3.31.6's wheel tree is $(mb "$tree_mb") MB.

| what | slicebox | peer | ratio | target |
| --- | --- | --- | --- | --- |
| first push, bytes sent | $(mb "$first_up") MB | tar \| zstd -3: $(mb "$tar_zstd") MB; rsync -a: $(mb "$rsync_first") MB | $(ratio "$first_up" "$tar_zstd")× tar+zstd | ≤ 1.1× |
| first push, time | $first_ms ms | rsync -a: $rsync_first_ms ms | $(ratio "$first_ms" "$rsync_first_ms")× | |
| upgrade push (4.1.0 onto 3.31.6), bytes sent | $(mb "$upgrade_up") MB | zstd -3 of what the host lacks: $(mb "$lacking") MB; rsync --delete: $(mb "$rsync_upgrade") MB | $(ratio "$upgrade_up" "$lacking")× | ≤ 1.1× |
| no-op re-run of a stage, bytes | $noop_up up, $noop_down down | | $noop_turns round trips waited on | ≤ 64 KiB, ≤ 2 round trips |
| stdio, 512 MiB through cat (median of $runs) | $sb_cat ms | ssh cat: $ssh_cat ms; local pipe: $pipe ms | $(ratio "$ssh_cat" "$sb_cat")× ssh's throughput | ≥ 0.9× |
| remote /bin/true, shared connection (median of 15) | $sb_true ms | fresh ssh true: $ssh_true ms; ssh true on the same shared connection: $mux_true ms; local sandbox: $local_true ms | $(ratio "$sb_true" "$ssh_true")× fresh ssh, $(ratio "$sb_true" "$mux_true")× shared ssh | ≤ 0.25× |
| push of a 10,000-file slice the host holds but one file, 50 ms RTT (median of $runs) | $miss25 ms | the same at 0 ms: $miss0 ms | $(echo "scale=1; ($miss25 - $miss0) / 50" | bc) round trips of delay, $miss_turns turns seen | ≤ 3 round trips |
<!-- remote:end -->
EOF
)
echo "$block"
if [ "$doc" != - ]; then
    python3 - "$doc" "$block" <<'PY'
import sys
path, block = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = '<!-- remote:begin -->', '<!-- remote:end -->'
if begin in text:
    head, rest = text.split(begin, 1)
    text = head + block + rest.split(end, 1)[1]
else:
    text = text.rstrip('\n') + '\n\n## Remote stages (issue 17)\n\n' + block + '\n'
open(path, 'w').write(text)
PY
fi
