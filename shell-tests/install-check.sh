#!/usr/bin/env bash
# `make install` puts exactly the documented files into PREFIX, they work
# from there, and `make uninstall` removes exactly those files.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mktemp -d /tmp/slicebox-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
prefix=/opt/slicebox-install-check
mkdir -p "$dest$prefix/share/doc"
touch "$dest$prefix/share/doc/someone-elses-file"

make -s -C "$top" install DESTDIR="$dest" PREFIX="$prefix" >/dev/null
links=$("$top/target/dist/slicebox" --commands | sed 's|^|bin/|')
completions=$("$top/target/dist/slicebox" --commands | sed 's|^|share/bash-completion/completions/|')
pages=$( (echo slicebox; echo slicebox-doctor; echo slicebox-ps; echo slicebox-export-oci; echo slicebox-serve; "$top/target/dist/slicebox" --commands) | sed 's|^\(.*\)$|share/man/man1/\1.1|')
expected="$(printf '%s\nbin/slicebox\n%s\nshare/bash-completion/completions/slicebox\n%s\nshare/zsh/site-functions/_slicebox\n' "$links" "$completions" "$pages" | sort)
include/slicebox.h
lib/bash/libslicebox.so
share/doc/slicebox/README.md
share/doc/slicebox/builtins.md
share/doc/slicebox/c-api.md
share/doc/slicebox/design.md
share/doc/slicebox/formats.md
share/doc/slicebox/performance.md
share/doc/slicebox/reliability.md
share/doc/someone-elses-file
share/slicebox/slicebox.ysh"
expected=$(echo "$expected" | sort)
actual=$(cd "$dest$prefix" && find . -type f -o -type l | sed 's|^\./||' | sort)
[ "$actual" = "$expected" ] || { printf 'install-check: installed files differ\nexpected:\n%s\nactual:\n%s\n' "$expected" "$actual" >&2; exit 1; }
echo "ok: make install puts exactly the documented files into PREFIX"

# The executable ships statically linked: no loader or library is mapped at
# each exec of a stage (docs/performance.md).
needed=$(readelf -d "$dest$prefix/bin/slicebox" | grep -c NEEDED || true)
interp=$(readelf -l "$dest$prefix/bin/slicebox" | grep -c 'Requesting program interpreter' || true)
[ "$needed$interp" = 00 ] || { echo "install-check: the installed slicebox is dynamically linked" >&2; exit 1; }
echo "ok: the installed executable is static (no NEEDED, no interpreter)"

out=$(cd /tmp && PATH="$dest$prefix/bin:$PATH" bash -c "enable -f '$dest$prefix/lib/bash/libslicebox.so' sandbox && sandbox -- echo builtin && dash -c 'sandbox -- echo executable'")
[ "$out" = "builtin
executable" ] || { echo "install-check: installed builtin/executable did not run: $out" >&2; exit 1; }
echo "ok: the installed builtin and executable run"

make -s -C "$top" uninstall DESTDIR="$dest" PREFIX="$prefix" >/dev/null
left=$(cd "$dest$prefix" && find . -type f -o -type l | sed 's|^\./||' | sort)
[ "$left" = "share/doc/someone-elses-file" ] || { printf 'install-check: uninstall left or removed the wrong files:\n%s\n' "$left" >&2; exit 1; }
echo "ok: make uninstall removes exactly what install added"
