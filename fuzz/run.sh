#!/usr/bin/env bash
# Fuzzes slicebox's parsers with cargo-fuzz (libFuzzer + AddressSanitizer)
# on STABLE Rust. See docs/reliability.md, "Fuzzing".
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]
#
# Runs each TARGET (default: all of them) for SECONDS (default 60), one after
# the other, on the seed corpus fuzz/corpus/TARGET (for tar_ingest also the
# hostile corpus of tests/hostile, built here) plus a working corpus outside
# the repository, and prints per target the executions, the final
# coverage (cov:) and the corpus size. Exits non-zero if any target found a
# crash, timeout, leak or out-of-memory input; the inputs' paths are printed.
#
# Settings (environment):
#   FUZZ_WORK_DIR    working corpora, artifacts and logs
#                    (default: ${TMPDIR:-/tmp}/slicebox-fuzz)
#   FUZZ_TARGET_DIR  cargo target dir of the fuzz build (default: fuzz/target)
#   FUZZ_SANITIZER   address (default) or none
#   FUZZ_TOOLCHAIN   a rustup toolchain name, e.g. stable (default: cargo's own)
#   FUZZ_JOBS        libFuzzer -fork=N workers per target (default 1)
#
# Stable Rust: cargo-fuzz passes -Zsanitizer=address, which stable rustc
# accepts only with RUSTC_BOOTSTRAP=1; stable ships the ASan runtime
# (librustc-stable_rt.asan.a), so nothing else is needed.
set -uo pipefail

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seconds=${1:-60}
if [ $# -gt 0 ]; then shift; fi
all_targets=(tar_ingest manifest_json listing args interpreter image_json protocol)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

case $seconds in
    '' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;;
esac
for t in "${targets[@]}"; do
    [ -f "$fuzz_dir/fuzz_targets/$t.rs" ] || {
        echo "run.sh: no fuzz target '$t' (have: ${all_targets[*]})" >&2
        exit 2
    }
done

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo=(cargo)
[ -n "${FUZZ_TOOLCHAIN:-}" ] && cargo=(cargo "+$FUZZ_TOOLCHAIN")

# libFuzzer itself is C++, built by libfuzzer-sys.
if ! command -v c++ >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing g++ (libfuzzer-sys builds libFuzzer from C++)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ ||
            { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++; }
    else
        echo "run.sh: a C++ compiler (c++) is needed to build libFuzzer" >&2
        exit 2
    fi
fi

if ! "${cargo[@]}" fuzz --version >/dev/null 2>&1; then
    echo "== cargo-fuzz is missing: cargo install cargo-fuzz --locked (26 to 66 s on this 2-core machine)"
    start=$(date +%s)
    "${cargo[@]}" install cargo-fuzz --locked || { echo "run.sh: cannot install cargo-fuzz" >&2; exit 2; }
    echo "== cargo-fuzz installed in $(($(date +%s) - start)) s"
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$fuzz_dir/target}
sanitizer=${FUZZ_SANITIZER:-address}
work=${FUZZ_WORK_DIR:-${TMPDIR:-/tmp}/slicebox-fuzz}
jobs=${FUZZ_JOBS:-1}
mkdir -p "$work"

echo "== $("${cargo[@]}" --version); $(rustc ${FUZZ_TOOLCHAIN:+"+$FUZZ_TOOLCHAIN"} --version); $("${cargo[@]}" fuzz --version)"
echo "== sanitizer: $sanitizer; RUSTC_BOOTSTRAP=1; target dir: $CARGO_TARGET_DIR; work dir: $work"

# Release build with debug assertions and overflow checks (cargo-fuzz's
# default without -O), so that an arithmetic overflow is a crash too.
# cargo fuzz build takes one target or none (= all of them).
build=(fuzz build --fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer")
[ ${#targets[@]} = 1 ] && build+=("${targets[0]}")
mkdir -p "$work/logs"
start=$(date +%s)
echo "== RUSTC_BOOTSTRAP=1 ${cargo[*]} ${build[*]}"
if ! (cd "$fuzz_dir" && "${cargo[@]}" "${build[@]}") >"$work/logs/build.log" 2>&1; then
    tail -n 40 "$work/logs/build.log" >&2
    echo "run.sh: the fuzz build failed (log: $work/logs/build.log)" >&2
    exit 2
fi
echo "== built in $(($(date +%s) - start)) s"

max_len_for() {
    case $1 in
        tar_ingest) echo 1048576 ;;
        *) echo 65536 ;;
    esac
}

# The hostile corpus seeds tar_ingest too: every archive slice-add must
# refuse, up to libFuzzer's length limit.
hostile=$(mktemp -d "$work/hostile.XXXXXX")
trap 'rm -rf "$hostile"' EXIT
python3 "$fuzz_dir/../tests/hostile/build-corpus.py" "$hostile/all" >/dev/null || {
    echo "run.sh: cannot build the hostile corpus" >&2
    exit 2
}
hostile_seeds=$hostile/seeds
mkdir -p "$hostile_seeds"
find "$hostile/all" -type f ! -name expected.tsv -size -1025k -exec cp {} "$hostile_seeds/" \;

failed=0
passed=0
summary=()
for t in "${targets[@]}"; do
    corpus="$work/corpus/$t"
    artifacts="$work/artifacts/$t"
    log="$work/logs/$t.log"
    mkdir -p "$corpus" "$artifacts" "$work/logs"
    flags=(
        -max_total_time="$seconds"
        -max_len="$(max_len_for "$t")"
        -rss_limit_mb=2048
        -timeout=10
        -artifact_prefix="$artifacts/"
        -print_final_stats=1
    )
    [ -f "$fuzz_dir/dict/$t.dict" ] && flags+=(-dict="$fuzz_dir/dict/$t.dict")
    [ "$jobs" != 1 ] && flags+=(-fork="$jobs" -ignore_crashes=0 -ignore_timeouts=0 -ignore_ooms=0)
    before=$(find "$artifacts" -type f | wc -l)
    echo
    echo "== $t: ${seconds}s, ${flags[*]}"
    start=$(date +%s)
    # The outer timeout only guards against libFuzzer itself wedging:
    # -timeout catches a slow input long before it.
    seeds=("$fuzz_dir/corpus/$t")
    [ "$t" = tar_ingest ] && seeds+=("$hostile_seeds")
    (cd "$fuzz_dir" && timeout -k 30 $((seconds + 600)) \
        "${cargo[@]}" fuzz run --fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer" "$t" \
        "$corpus" "${seeds[@]}" -- "${flags[@]}") >"$log" 2>&1
    status=$?
    elapsed=$(($(date +%s) - start))
    execs=$(grep -oE 'stat::number_of_executed_units: +[0-9]+' "$log" | tail -n 1 | grep -o '[0-9]*$')
    if [ -z "$execs" ]; then
        # Fork mode, or a run that died before its final stats.
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
    fi
    cov=$(grep -oE ' cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
    ft=$(grep -oE ' ft: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
    corp=$(grep -oE ' corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -n 1 | sed 's/ corp: //')
    files=$(find "$corpus" -type f | wc -l)
    rss=$(grep -oE 'stat::peak_rss_mb: +[0-9]+' "$log" | tail -n 1 | grep -o '[0-9]*$')
    echo "   executions: ${execs:-?} in ${elapsed}s; cov: ${cov:-?} ft: ${ft:-?}; corpus: ${corp:-?} (libFuzzer), $files files in $corpus; peak rss: ${rss:-?} MB"
    new=$(($(find "$artifacts" -type f | wc -l) - before))
    if [ "$status" -ne 0 ] || [ "$new" -gt 0 ]; then
        failed=1
        echo "   FAILED (exit $status); log: $log"
        grep -E '^==[0-9]+==ERROR|^thread .* panicked|panicked at|^ALARM|out-of-memory|timeout after|deadly signal|LeakSanitizer' "$log" | head -n 5 | sed 's/^/   | /'
        grep -oE 'Test unit written to .*' "$log" | sed 's/^Test unit written to /   artifact: /'
        if [ "$status" = 124 ] || [ "$status" = 137 ]; then
            echo "   (the run did not end by itself: libFuzzer was stopped by the outer timeout)"
        fi
        echo "   reproduce: (cd $fuzz_dir && RUSTC_BOOTSTRAP=1 ${cargo[*]} fuzz run --sanitizer $sanitizer $t ARTIFACT)"
        echo "   minimize:  (cd $fuzz_dir && RUSTC_BOOTSTRAP=1 ${cargo[*]} fuzz tmin --sanitizer $sanitizer $t ARTIFACT)"
        summary+=("$t: FAILED, executions ${execs:-?}, cov ${cov:-?}, corpus ${corp:-?}")
    else
        summary+=("$t: ok, executions ${execs:-?}, cov ${cov:-?}, corpus ${corp:-?}")
        passed=$((passed + 1))
    fi
done

echo
echo "== summary (${seconds}s per target, sanitizer $sanitizer)"
printf '   %s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "== fuzzing found failing inputs: see the artifacts above"
else
    echo "== no crash, timeout, leak or out-of-memory input found"
fi
# One line per run that CI's log readers understand: targets passed/failed.
echo "fuzz: $passed passed, $((${#targets[@]} - passed)) failed"
[ "$failed" -eq 0 ]
