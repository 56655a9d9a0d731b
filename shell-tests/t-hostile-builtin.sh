# Hostile archives through the bash builtin `slice-add`, which runs inside
# the shell's own process: each must make it return 1 and leave the store
# unchanged, and bash must live on (the next command runs, nothing leaks).
# Regression: a 100,000-deep archive once took bash down with SIGSEGV.
# The corpus is tests/hostile/build-corpus.py's (cases in its expected.tsv).
. "$(dirname "$0")/lib.sh"

script=$(cd "$(dirname "$0")/.." && pwd)/tests/hostile/build-corpus.py
[ -f "$script" ] || fail "the corpus script is not at $script: run-all.sh stages spec/ and shell-tests/; it must stage tests/hostile/ too"
command -v python3 >/dev/null || fail "python3 is not on PATH: it builds the hostile-archive corpus"
corpus=$(mktemp -d "${TMPDIR:-/tmp}/hostile-corpus.XXXXXX")
trap 'chmod -R u+w "$corpus" 2>/dev/null; rm -rf "$corpus"' EXIT
python3 "$script" "$corpus" >/dev/null

declare -A limits expect
while IFS=$'\t' read -r file outcome lim exp; do
    [[ $file == \#* ]] && continue
    [ "$outcome" = reject ] || continue
    limits[$file]=$lim
    expect[$file]=$exp
done <"$corpus/expected.tsv"

# Every path, type, mode, size, link count, symlink target and content.
store_state() {
    (
        cd "$SLICEBOX_STORE"
        find . -type d -printf '%p %y %m\n'
        find . ! -type d -printf '%p %y %m %s %n %l\n'
        find . -type f -exec sha256sum {} +
    ) | LC_ALL=C sort
}

# store_unchanged WHAT: the store is as it was before the hostile adds.
store_unchanged() {
    local now
    now=$(store_state)
    [ "$now" = "$before" ] ||
        fail "$1: the store changed:"$'\n'"$(diff <(printf '%s\n' "$before") <(printf '%s\n' "$now") | head -20)"
    checks=$((checks + 1))
    printf 'ok: %s\n' "$1: the store is unchanged"
}

enable -f "$SLICEBOX_LIB" slice-add
expect_eq "slice-add is the loaded builtin" builtin "$(type -t slice-add)"

base=$corpus/base
mkdir -p "$base/bin" "$base/share"
printf '#!/bin/sh\necho base\n' >"$base/bin/tool"
chmod 755 "$base/bin/tool"
printf 'the base slice\n' >"$base/share/readme"
ln -s ../bin/tool "$base/share/link"
slice-add base "$base" >/dev/null
before=$(store_state)

shell_pid=$$
cwd_before=$PWD
umask_before=$(umask)
fds_before=$(ls /proc/$$/fd | wc -l)
messages=()

# run_case FILE [stdin]: the builtin on one archive, from the file or from
# stdin; checks its status, that this shell lives on and the store.
run_case() {
    local file=$1 via=${2:-file} args=() status=0 lim
    if [ "${limits[$file]}" != - ]; then
        IFS=, read -ra lim <<<"${limits[$file]}"
        for l in "${lim[@]}"; do args+=(--limit "$l"); done
    fi
    if [ "$via" = stdin ]; then
        slice-add "${args[@]}" victim - <"$corpus/$file" >"$corpus/out" 2>"$corpus/err" || status=$?
    else
        slice-add "${args[@]}" victim "$corpus/$file" >"$corpus/out" 2>"$corpus/err" || status=$?
    fi
    expect_eq "$file ($via): the shell lives on after the builtin" "$shell_pid" "$$"
    expect_eq "$file ($via): slice-add returns 1" 1 "$status"
    expect_eq "$file ($via): nothing on stdout" "" "$(cat "$corpus/out")"
    store_unchanged "$file ($via)"
    messages+=("$file ($via)"$'\t'"$(cat "$corpus/err")")
}

run_case deep-100000.tar
run_case deep-100000.tar stdin
run_case deep-100000-raised-limits.tar
run_case deep-100000-raised-limits.tar stdin
run_case gzip-bomb-2GiB.tar.gz
run_case gzip-bomb-2GiB-file-limit.tar.gz stdin
run_case hardlink-bomb.tar.gz
run_case hardlink-bomb.tar.gz stdin
run_case entry-count-bomb.tar.gz
run_case file-1TiB-no-data.tar
run_case gzip-truncated.tar.gz stdin
run_case truncated-in-data.tar
run_case below-symlink.tar
run_case hardlink-outside.tar
run_case pax-header-over-1MiB.tar.gz
run_case control-chars-name.tar
run_case garbage.bin stdin
run_case zstd-garbage.tar.zst

expect_eq "the shell's cwd is unchanged" "$cwd_before" "$PWD"
expect_eq "the shell's umask is unchanged" "$umask_before" "$(umask)"
expect_eq "no descriptors leak into the shell" "$fds_before" "$(ls /proc/$$/fd | wc -l)"
expect_eq "the builtin is still loaded and works" "base" \
    "$(slice-add base "$base" >/dev/null && echo base)"

# Last, so that a wrong message does not hide a crash or a changed store;
# every message is checked before the first wrong one fails the script.
# Each refusal says why, in the documented form, with no raw control byte.
# check_message WHAT OK-OR-NOT ERR
wrong=()
check_message() {
    if [ "$2" = ok ]; then
        checks=$((checks + 1))
        printf 'ok: %s\n' "$1"
    else
        wrong+=("$1"$'\n'"  stderr: $(printf '%s' "$3" | tr '\000-\011\013-\037\177' '?')")
    fi
}
for m in "${messages[@]}"; do
    what=${m%%$'\t'*} err=${m#*$'\t'} file=${what%% *}
    fragment=${expect[$file]}
    ok=no; [[ $err == *"$fragment"* ]] && ok=ok
    check_message "$what: stderr says why: $fragment" $ok "$err"
    ok=no; [[ $err == "slice-add: cannot add '"*"': "*"; nothing was added" ]] && ok=ok
    check_message "$what: stderr reads \"slice-add: cannot add '...': ...; nothing was added\"" $ok "$err"
    ok=no; [ "$err" = "$(printf %s "$err" | tr -d '\000-\011\013-\037\177')" ] && ok=ok
    check_message "$what: stderr holds no raw control character" $ok "$err"
done
[ ${#wrong[@]} -eq 0 ] || fail "${#wrong[@]} refusals did not say why as they should:"$'\n'"$(printf '%s\n' "${wrong[@]}")"
done_checks
