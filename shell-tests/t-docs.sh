# Every shell block of README.md and docs/*.md runs, as written, in order,
# for a user who has done `make install` into ~/.local and `make demo`.
# A block that cannot run here says so on the line before its fence:
#   <!-- doc-test: not run: REASON -->
# and a guide that a test of its own runs block by block (with what its
# blocks need) says so once: <!-- doc-test: every block is run by TEST -->
# and those marks are counted and listed. `make demo` itself runs first,
# through shell-tests/demo.sh against this ~/.local, as make demo does.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
top=$here/..
cache=${SLICEBOX_TOOLCHAIN_CACHE:?}

# A HOME of its own, laid out as `make install PREFIX=~/.local` leaves it.
home=$(mktemp -d "$PWD/docs-home.XXXXXX")
local=$home/.local
mkdir -p "$local/bin" "$local/lib/bash" "$local/share/slicebox"
for b in "$SLICEBOX_BIN_DIR"/*; do ln -s "$b" "$local/bin/"; done
ln -s "$SLICEBOX_LIB" "$local/lib/bash/libslicebox.so"
ln -s "$SLICEBOX_BIN_DIR/../share/slicebox/slicebox.ysh" "$local/share/slicebox/slicebox.ysh"
run_as_user() { # the user's environment: their HOME, their default store
    env -u SLICEBOX_STORE HOME="$home" PATH="$local/bin:$PATH" "$@"
}

out=$(cd "$home" && run_as_user PREFIX="$local" bash "$here/demo.sh" 2>&1) ||
    fail "make demo's script failed:"$'\n'"$out"
expect_match "make demo runs the two-version pipeline" "*v20.*v22.*" "${out//$'\n'/ }"
expect_match "make demo says where its store is" "*the store $home/.local/share/slicebox/store*" "$out"

# The files the blocks name, in a directory of their own.
work=$home/work
mkdir -p "$work"
cp -a "$cache/node-20" "$work/node-v20-tree"
cp "$cache/node-22.tar.gz" "$work/node-v22.tar.gz"
mkdir "$work/v22.1" && tar -xzf "$cache/node-22.tar.gz" -C "$work/v22.1" &&
    echo "a later build" >"$work/v22.1/NOTES" &&
    tar -czf "$work/node-v22.1.tar.gz" -C "$work/v22.1" . && rm -rf "$work/v22.1"

# The README's layer example: a Debian minbase tarball (fetch-images.sh).
ln -s "$cache/images/bookworm-minbase.tar" "$work/debian.tar"

# The README's build example works in hello/: a main.c and a Makefile
# whose install target copies hello to $(PREFIX)/bin, as it says.
mkdir "$work/hello"
printf '#include <stdio.h>\nint main(void) { puts("hello from the README"); return 0; }\n' >"$work/hello/main.c"
printf 'PREFIX = /usr/local\nhello: main.c\n\tcc -o hello main.c\ninstall: hello\n\tmkdir -p $(PREFIX)/bin\n\tcp hello $(PREFIX)/bin/hello\n' >"$work/hello/Makefile"

# Blocks as file:line, language, "run" or the reason they do not.
blocks=$(python3 - "$top" "$work" <<'PY'
import glob, os, re, sys
top, out = sys.argv[1], sys.argv[2]
n = 0
docs = ['README.md'] + sorted(os.path.relpath(p, top) for p in glob.glob(os.path.join(top, 'docs', '*.md')))
for name in docs:
    path = os.path.join(top, name)
    if not os.path.exists(path):
        continue
    lines = open(path).read().split('\n')
    runner = re.search(r'<!-- doc-test: every block is run by (\S+) -->', '\n'.join(lines))
    if runner:
        print(f'{name}\t-\t-\tevery block is run by {runner.group(1)}')
        continue
    i = 0
    while i < len(lines):
        m = re.match(r'^```(sh|bash|ysh)\s*$', lines[i])
        if not m:
            i += 1
            continue
        mark = re.match(r'<!-- doc-test: not run: (.*) -->', lines[i - 1] if i else '')
        j = i + 1
        while not lines[j].startswith('```'):
            j += 1
        n += 1
        body = os.path.join(out, f'block-{n:02d}.{m.group(1)}')
        open(body, 'w').write('\n'.join(lines[i + 1:j]) + '\n')
        print(f'{name}:{i + 1}\t{m.group(1)}\t{body}\t{mark.group(1) if mark else "run"}')
        i = j + 1
PY
)
ran=0 marked=0
while IFS=$'\t' read -r where lang body verdict; do
    if [ "$verdict" != run ]; then
        marked=$((marked + 1))
        echo "not run: $where: $verdict"
        continue
    fi
    case $lang in
    ysh) shell=(ysh) ;;
    *) shell=(bash -e) ;;
    esac
    # docs/remote.md's hosts are this machine over pipes, each with a store
    # of its own (spec/fake-host.sh); t-remote-ssh.sh runs the same
    # blocks against real sshd.
    remote=()
    case $where in docs/remote.md:*)
        remote=(SLICEBOX_RSH="$top/spec/fake-host.sh" REMOTE_STORES="$work/hosts") ;;
    esac
    # Not the list of blocks on stdin: a block reads its own (as
    # `sandbox --on` does, ahead, as ssh does).
    out=$(cd "$work" && run_as_user "${remote[@]}" "${shell[@]}" "$body" 2>&1 </dev/null) ||
        fail "the block at $where failed:"$'\n'"$(cat "$body")"$'\n'"--- it printed:"$'\n'"$out"
    ran=$((ran + 1))
    expect_eq "the block at $where runs as written" ok ok
done <<<"$blocks"
echo "doc blocks: $ran run, $marked marked not run"
expect_eq "most blocks run (at most 4 marks)" 1 "$(( ran > 0 && marked <= 4 ))"
rm -rf "$home"
done_checks
