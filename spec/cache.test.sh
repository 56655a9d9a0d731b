# sandbox --out DIR=NAME --cache: memoized stages, early cutoff, gc.
## compare_shells: bash dash mksh zsh busybox
# Each case uses a store of its own, beside its working directory (not in
# it: the working directory is an input): the cells of a run share one store,
# and a stage with the same inputs in another cell would be a cache hit.

#### a --cache stage runs once; the same inputs reuse its output, a changed input runs it again
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
printf 'one\n' > input
build() {
  sandbox --net none --clearenv --out /opt/c1=cache-c1 --cache -- \
    sh -c 'cat input > /opt/c1/copy; echo ran >&2' 2>&1 | sed 's/sha256:[0-9a-f]*/DIGEST/'
}
build
build
printf 'two\n' > input
build
sandbox --no-cwd --slice cache-c1 -- cat /opt/c1/copy
## STDOUT:
ran
sandbox: --cache: 'cache-c1' is DIGEST, stored by an earlier run of this stage; the command did not run
ran
two
## END

#### a stage sees mtime 1 (1970-01-01T00:00:01Z) on a slice's files and on its --cache working dir
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
mkdir -p mt; echo x > mt/f; touch -d '2020-01-02 03:04:05' mt/f
slice-add cache-mtime mt --at /opt/mt >/dev/null
sandbox --no-cwd --slice cache-mtime -- stat -c '%Y %n' /opt/mt/f /opt/mt
echo y > here; touch -d '2020-01-02 03:04:05' here
sandbox --net none --clearenv --out /opt/o=cache-mtime-out --cache -- \
  sh -c 'stat -c "%Y %n" here . > /opt/o/times'
sandbox --no-cwd --slice cache-mtime-out -- cat /opt/o/times
## STDOUT:
1 /opt/mt/f
1 /opt/mt
1 here
1 .
## END

#### every declared input is in the digest: argv, env, slices, ids, options
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
mkdir -p s1 s2; echo 1 > s1/f; echo 2 > s2/f
slice-add cache-in-1 s1 --at /opt/in >/dev/null; slice-add cache-in-2 s2 --at /opt/in >/dev/null
run() {
  sandbox --net none --clearenv --no-cwd --out /opt/o=cache-in-out --cache "$@" 2>&1 |
    sed 's/.*did not run$/cached/'
}
run --slice cache-in-1 -- sh -c 'cat /opt/in/f > /opt/o/f'
run --slice cache-in-1 -- sh -c 'cat /opt/in/f > /opt/o/f'
run --slice cache-in-2 -- sh -c 'cat /opt/in/f > /opt/o/f'
run --slice cache-in-2 --env X=1 -- sh -c 'cat /opt/in/f > /opt/o/f'
run --slice cache-in-2 --env X=1 --uid 1234 -- sh -c 'cat /opt/in/f > /opt/o/f'
run --slice cache-in-2 --env X=1 --uid 1234 -- sh -c 'cat /opt/in/f  > /opt/o/f'
run --slice cache-in-2 --env X=1 --uid 1234 -- sh -c 'cat /opt/in/f  > /opt/o/f'
# A file bound read-only is an input by its content.
echo a > rb
run --ro-bind rb:/in/rb -- sh -c 'cat /in/rb > /opt/o/f'
run --ro-bind rb:/in/rb -- sh -c 'cat /in/rb > /opt/o/f'
echo b > rb
run --ro-bind rb:/in/rb -- sh -c 'cat /in/rb > /opt/o/f'
echo end
## STDOUT:
cached
cached
cached
end
## END

#### early cutoff: a rebuild with identical bytes leaves the next stage cached
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
printf 'v1\n# comment one\n' > src.txt
stage_a() {
  sandbox --net none --clearenv --out /opt/a=cache-a --cache -- \
    sh -c 'head -n 1 src.txt > /opt/a/out; echo "a ran" >&2'
}
stage_b() {
  sandbox --net none --clearenv --no-cwd --slice cache-a --out /opt/b=cache-b --cache -- \
    sh -c 'tr a-z A-Z < /opt/a/out > /opt/b/out; echo "b ran" >&2'
}
{ stage_a; stage_b; } 2>&1
printf 'v1\n# comment two\n' > src.txt
{ stage_a; stage_b; } 2>&1 | sed 's/sha256:[0-9a-f]*/DIGEST/'
sandbox --no-cwd --slice cache-b -- cat /opt/b/out
## STDOUT:
a ran
b ran
a ran
sandbox: --cache: 'cache-b' is DIGEST, stored by an earlier run of this stage; the command did not run
V1
## END

#### a failed --cache stage stores and remembers nothing
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
sandbox --net none --out /opt/f=cache-fail --cache -- sh -c 'echo x > /opt/f/x; exit 3'; echo "status=$?"
sandbox --net none --out /opt/f=cache-fail --cache -- sh -c 'echo x > /opt/f/x; exit 3'; echo "status=$?"
slice-show cache-fail >/dev/null 2>&1; echo "stored=$?"
## STDOUT:
status=3
status=3
stored=1
## END

#### stdin of a --cache stage is /dev/null
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
echo piped | sandbox --net none --out /opt/i=cache-stdin --cache -- sh -c 'cat > /opt/i/got; wc -c < /opt/i/got'
## STDOUT:
0
## END

#### slice-gc keeps cache entries whose output is named and drops the others
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
build() {
  sandbox --net none --clearenv --no-cwd --out /opt/g=cache-g --cache -- \
    sh -c 'echo g > /opt/g/g; echo ran >&2' 2>&1 | sed 's/.*did not run$/cached/'
}
build
slice-gc
build
slice-rm cache-g
slice-gc | sed 's/freed .*/freed N/'
build
## STDOUT:
ran
removed 0 slices and 0 objects, freed 0 B
cached
removed cache-g
removed 1 slice, 1 object and 1 cache entry, freed N
ran
## END

#### --cache refuses stages whose inputs are not declared, and says why
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
sandbox --cache -- true 2>&1 | head -n 1
sandbox --out /opt/x=cache-x --cache -- true 2>&1 | head -n 1
sandbox --net none --out /opt/x=cache-x --cache --bind /tmp -- true 2>&1 | head -n 1
sandbox --net none --out /opt/x=cache-x --cache --rw-cwd -- true 2>&1 | head -n 1
sandbox --net none --out /opt/x=cache-x --cache --fd 3 -- true 3</dev/null 2>&1 | head -n 1
## STDOUT:
sandbox: --cache: it needs --out DIR=NAME, the output it remembers
sandbox: --cache: it needs --net none: through the host's network a stage reads what no digest covers
sandbox: --cache: it refuses --bind '/tmp': a writable host path is an input and an output at once (--ro-bind is hashed)
sandbox: --cache: it refuses --rw-cwd: a writable working directory is an input and an output at once
sandbox: --cache: it refuses --fd: what a descriptor holds is not part of the digest
## END

#### a --cache stage sees the snapshot it was hashed by, not what a writer changes meanwhile
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
echo A > input
build() {
  slicebox sandbox --net none --clearenv --out /opt/r=cache-race --cache -- \
    /bin/sh -c 'cat input > /opt/r/seen; echo ran >&2' 2>&1 | sed 's/.*did not run$/cached/'
}
# The executable waits once its inputs are stored (and hashed), and before
# the command runs, until the test removes its pause file: the input
# changes right there.
( export SLICEBOX_PAUSE_AT=sandbox:inputs-stored SLICEBOX_PAUSE_FILE="$TMP.pause"
  build > "$TMP.paused" ) &
tries=0
until [ -e "$TMP.pause" ]; do
  tries=$((tries + 1)); [ $tries -lt 3000 ] || { echo "it never paused"; exit 1; }
  sleep 0.01
done
echo "paused with its inputs stored"
echo B > input
rm "$TMP.pause"; wait; cat "$TMP.paused"
sandbox --no-cwd --slice cache-race -- cat /opt/r/seen
# Filed under A's digest: B's content runs the stage, A's is cached.
build
sandbox --no-cwd --slice cache-race -- cat /opt/r/seen
echo A > input
build
## STDOUT:
paused with its inputs stored
ran
A
ran
B
cached
## END

#### --cache: a file --ro-bind counts with its executable bit; the host name is fixed
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
echo 'echo tool' > tool
build() {
  sandbox --net none --clearenv --no-cwd --ro-bind "tool:/in/tool" --out /opt/x=cache-x --cache -- \
    /bin/sh -c 'ls -l /in/tool | cut -c1-10 > /opt/x/mode; hostname > /opt/x/host; echo ran >&2' 2>&1 |
    sed 's/.*did not run$/cached/'
}
build
chmod +x tool
build
build
sandbox --no-cwd --slice cache-x -- cat /opt/x/mode /opt/x/host
## STDOUT:
ran
ran
cached
-rwxr-xr-x
localhost
## END

#### the seccomp filter is in the digest: --allow-userns and each --seccomp-fd program run the stage again
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
python3 -c 'import sys; sys.stdout.buffer.write(b"\x06\0\0\0\0\0\xff\x7f")' > allow.bpf
python3 -c 'import sys; sys.stdout.buffer.write(b"\x06\0\0\0\0\0\xff\x7f" * 2)' > allow-twice.bpf
run() {
  sandbox --net none --clearenv --no-cwd --out /opt/o=cache-sc-out --cache "$@" -- sh -c 'echo x > /opt/o/f' 2>&1 |
    sed 's/.*did not run$/cached/'
}
run; run
run --allow-userns; run --allow-userns
run --seccomp-fd 3 3< allow.bpf; run --seccomp-fd 3 3< allow.bpf
run --seccomp-fd 3 3< allow-twice.bpf
echo end
## STDOUT:
cached
cached
cached
end
## END

#### under --cache only declared variables are inputs: a cd or an unrelated variable never runs it again; a --keep-env variable does
SLICEBOX_STORE=$TMP.store; export SLICEBOX_STORE
here=$PWD
run() {
  sandbox --net none --out /opt/o=cache-env-out --cache "$@" -- \
    sh -c 'echo "${KEPT-unset} ${OLDPWD-no-oldpwd} $PATH" > /opt/o/f; echo ran >&2' 2>&1 |
    sed 's/.*did not run$/cached/'
}
run
cd / && cd "$here"
run
UNRELATED=1; export UNRELATED
run
KEPT=a; export KEPT
run --keep-env KEPT
run --keep-env KEPT
KEPT=b
run --keep-env KEPT
sandbox --no-cwd --slice cache-env-out -- cat /opt/o/f
## STDOUT:
ran
cached
cached
ran
cached
ran
b no-oldpwd /usr/local/bin:/usr/bin:/bin
## END
