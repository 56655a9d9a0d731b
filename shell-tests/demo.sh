#!/usr/bin/env bash
# `make demo`: runs a real two-version pipeline in bash with the installed
# builtins, printing each step. Needs the installed slicebox (make install).
set -euo pipefail
PREFIX=${PREFIX:?set PREFIX to where slicebox is installed}
here=$(cd "$(dirname "$0")" && pwd)
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# The demo adds its slices to your store (as the README's next examples
# expect), which `store-stats` names; rm -rf of it is a full reset.
store=$("$PREFIX/bin/slicebox" store-stats | sed -n 's/^store: *//p')
printf 'the demo adds node-20 and node-22 to the store %s\n' "$store"

step "fetch two real Node.js toolchains (PyPI wheels, cached)"
cache=$(bash "$here/fetch-toolchains.sh")
echo "$cache"

step "BASH_LOADABLES_PATH=$PREFIX/lib/bash enable -f libslicebox.so sandbox slice-add slice-list slice-show"
BASH_LOADABLES_PATH=$PREFIX/lib/bash enable -f libslicebox.so sandbox slice-add slice-list slice-show
type sandbox

step "slice-add node-20 $cache/node-20 --at /opt/node            # a directory"
slice-add node-20 "$cache/node-20" --at /opt/node
step "slice-add node-22 $cache/node-22.tar.gz --at /opt/node     # a tarball"
slice-add node-22 "$cache/node-22.tar.gz" --at /opt/node
step "slice-list"
slice-list

step "sandbox --slice node-20 -- /opt/node/bin/node -e 'console.log(process.version)' | sandbox --slice node-22 -- /opt/node/bin/node -e '…pipe stdin, then print own version'"
sandbox --slice node-20 -- /opt/node/bin/node -e 'console.log(process.version)' |
    sandbox --slice node-22 -- /opt/node/bin/node -e \
        'process.stdin.pipe(process.stdout); process.stdin.on("end", () => console.log(process.version))'

step "sandbox --no-cwd -- sh -c 'ls /; ls /root /home'     # the host's files are not there"
sandbox --no-cwd -- sh -c 'ls /; ls /root /home' || echo "(exit status $?)"

step "sandbox --slice node-22 -- sh -c 'touch /opt/node/x'   # slices are read-only"
sandbox --slice node-22 -- sh -c 'touch /opt/node/x' || echo "(exit status $?)"

step "the same with the executable, from dash"
dash -c "PATH=$PREFIX/bin:\$PATH; sandbox --slice node-22 -- /opt/node/bin/node -p 'process.version'"
printf '\nnode-20 and node-22 are in the store %s (slice-list; slice-rm NAME; or rm -rf it)\n' "$store"
