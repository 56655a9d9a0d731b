#!/usr/bin/env bash
# One mode (root or rootless) of the shell tests; called by run-all.sh with
# a clean environment. Fails on the first failing part.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$SLICEBOX_TEST_WORK"

python3 "$here/../spec/run.py" "$here"/../spec/*.test.sh

for t in "$here"/t-*.sh; do
    echo "--- $(basename "$t") ($SLICEBOX_TEST_MODE)"
    SLICEBOX_STORE="$SLICEBOX_TEST_WORK/store-$(basename "$t" .sh)" bash "$t"
done
