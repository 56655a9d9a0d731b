# Two real Node.js versions at the same path in one pipeline, through the
# bash builtins and through the executable; the tarball route too.
. "$(dirname "$0")/lib.sh"
cache=${SLICEBOX_TOOLCHAIN_CACHE:?}
enable -f "$SLICEBOX_LIB" sandbox slice-add slice-list slice-show

slice-add node-20 "$cache/node-20" --at /opt/node >/dev/null
slice-add node-22 "$cache/node-22.tar.gz" --at /opt/node >/dev/null
expect_eq "slice-list names both versions at one mount point" \
    "node-20 /opt/node
node-22 /opt/node" "$(slice-list | cut -f1,3 | tr '\t' ' ')"

pipeline() {
    sandbox --slice node-20 -- /opt/node/bin/node -e 'console.log(process.version)' |
        sandbox --slice node-22 -- /opt/node/bin/node -e \
            'process.stdin.pipe(process.stdout); process.stdin.on("end", () => console.log(process.version))'
}
out=$(pipeline)
expect_match "builtins: v20 then v22 from the same path in one pipeline" 'v20.*
v22.*' "$out"

out=$(enable -n sandbox; pipeline)
expect_match "executable: v20 then v22 from the same path in one pipeline" 'v20.*
v22.*' "$out"

expect_eq "the host's own node is not what answers" "v22" \
    "$(sandbox --slice node-22 -- /opt/node/bin/node -p 'process.version.slice(0,3)')"

# A payload that reads a file from the working directory, as ./tool.js would.
printf 'console.log(require("fs").readFileSync("/dev/stdin","utf8").trim().toUpperCase())\n' >tool.js
expect_eq "./tool.js runs from the read-only working directory" "HELLO" \
    "$(echo hello | sandbox --slice node-20 -- /opt/node/bin/node ./tool.js)"

set +e
sandbox --slice node-22 -- /opt/node/bin/node -e 'require("fs").writeFileSync("/opt/node/x", "")' 2>/dev/null
status=$?
set -e
expect_eq "node cannot write into its own slice" 1 "$status"

# Identical files across the two versions are stored once.
enable -f "$SLICEBOX_LIB" store-stats
shared=$(slice-show --json node-20 | sed -n 's/.*"shared_bytes": \([0-9]*\).*/\1/p')
expect_eq "the two versions share over 1 MB of stored files (${shared:-0} bytes)" 1 \
    "$(( ${shared:-0} > 1000000 ))"
ratio=$(store-stats --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["disk_bytes"] <= 1.01 * s["distinct_content_bytes"])')
expect_eq "file bytes on disk are at most 1.01 x the distinct content" True "$ratio"
done_checks
