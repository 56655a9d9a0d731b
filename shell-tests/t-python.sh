# docs/python-and-node.md, run as written: every ```sh block of the guide,
# in order, with the bash builtins. Two real CPythons (pyenv's 3.10 and
# 3.12, each built for its own prefix, copied by fetch-pythons.sh) become
# slices at the prefix slice-add finds, run one pipeline each on its own
# side, and share a slice of pure-Python packages; then a real Node.js.
. "$(dirname "$0")/lib.sh"
cache=${SLICEBOX_TOOLCHAIN_CACHE:?}
guide=$(dirname "$0")/../docs/python-and-node.md
[ -f "$guide" ] || fail "no guide at $guide"
for minor in 3.10 3.12; do
    ls -d "$cache"/pyenv/versions/"$minor".* >/dev/null 2>&1 ||
        fail "no CPython $minor in $cache/pyenv/versions: fetch-pythons.sh copies pyenv's builds (root's 'pyenv root'); this machine has none, and no registry we reach ships one"
done
ls "$cache"/wheels/six-1.16.0-*.whl >/dev/null 2>&1 || fail "no six wheel in $cache/wheels (fetch-pythons.sh downloads it from PyPI)"

work=$(mktemp -d "$SLICEBOX_TEST_WORK/python.XXXXXX")
script=$work/guide.sh
# The guide's blocks; `pyenv root` is the test's copy, pip finds the
# wheels in the cache and never the network.
{
    printf 'set -eu\nenable -f "$SLICEBOX_LIB" sandbox slice-add slice-list\n'
    printf 'pyenv() { [ "$1" = root ] && echo "%s/pyenv"; }\n' "$cache"
    printf 'export PIP_NO_INDEX=1 PIP_FIND_LINKS="%s/wheels" PIP_DISABLE_PIP_VERSION_CHECK=1\n' "$cache"
    awk '/^```sh$/ { inside = 1; blocks++; next } /^```/ { inside = 0; next } inside { print }
         END { printf "echo \"ran %d blocks of the guide\"\n", blocks }' "$guide"
} >"$script"
unset PYTHONPATH
out=$(cd "$work" && bash "$script" 2>&1) || fail "the guide's commands failed:"$'\n'"$out"
printf '%s\n' "$out" | sed 's/^/  guide: /'

expect_match "every block of the guide ran" "*ran 5 blocks of the guide*" "$out"
expect_match "each CPython mounts at the prefix it was built for" \
    "*'python-3.10' mounts at /root/.pyenv/versions/3.10.*, the prefix it was built for*'python-3.12' mounts at /root/.pyenv/versions/3.12.*, the prefix it was built for*" "$out"
expect_match "slice-list shows each at its build prefix" \
    "*python-3.10	sha256:*	/root/.pyenv/versions/3.10.*python-3.12	sha256:*	/root/.pyenv/versions/3.12.*" "$out"
expect_match "the pipeline: 3.10's ./tool.py feeds 3.12's ./other.py, each #!/usr/bin/env python3" \
    "*from the first stage: 3.10.*
3.12.*" "$out"
expect_match "a slice added elsewhere is told the prefix it needs" \
    "*'python-3.10-moved' was built for /root/.pyenv/versions/3.10.* add it with --at /root/.pyenv/versions/3.10.*, or rebuild it for /opt/python*" "$out"
expect_match "and a script whose interpreter is missing names that interpreter" \
    "*sandbox: cannot run 'pip3' (/opt/python/bin/pip3): its interpreter '/root/.pyenv/versions/3.10.*/bin/python3.10' is not in the stage*status 127*" "$out"
expect_match "the package slice serves both Pythons, with PYTHONPATH and no empty element" \
    "*six 1.16.0 on 3.10.* /opt/pylib
six 1.16.0 on 3.12.* /opt/pylib*" "$out"
expect_match "a Node.js tree from the wheel: node, and a #!/usr/bin/env node script, from the slice's bin/ on PATH" \
    "*node v22.20.0
tool.js on v22.20.0*" "$out"
expect_eq "the host's python3 is not what the stages ran" "no" \
    "$(case $out in *"$(python3 -c 'import sys; print(sys.version)')"*) echo yes ;; *) echo no ;; esac)"
done_checks
