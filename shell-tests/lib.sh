# Helpers shared by shell-tests/t-*.sh (bash). Each check names what it
# proves; the first failure stops the script with a non-zero status.
set -euo pipefail
: "${SLICEBOX_BIN_DIR:?}" "${SLICEBOX_LIB:?}" "${SLICEBOX_STORE:?}"
export PATH="$SLICEBOX_BIN_DIR:$PATH"
checks=0

fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [ "$2" != "$3" ]; then
        fail "$1"$'\n'"  expected: $(printf %q "$2")"$'\n'"  actual:   $(printf %q "$3")"
    fi
    checks=$((checks + 1))
    printf 'ok: %s\n' "$1"
}

# expect_match WHAT GLOB ACTUAL
expect_match() {
    # shellcheck disable=SC2053
    [[ $3 == $2 ]] || fail "$1"$'\n'"  expected to match: $2"$'\n'"  actual: $(printf %q "$3")"
    checks=$((checks + 1))
    printf 'ok: %s\n' "$1"
}

done_checks() { printf '%d checks passed\n' "$checks"; }
