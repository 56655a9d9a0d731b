# sandbox --on HOST, slice-push and slice-pull, through SLICEBOX_RSH
# pointing at spec/fake-host.sh: a host with its own store, reached over
# pipes. Real sshd and network-namespace hosts: shell-tests/t-remote-ssh.sh.
## compare_shells: bash dash mksh zsh busybox

#### a stage on a host: stdout and stderr apart, its status, the working directory read-only at its path
export SLICEBOX_STORE=$PWD/store SLICEBOX_RSH="$SPEC_DIR/fake-host.sh" REMOTE_STORES=$PWD/hosts
mkdir -p work/sub && echo data > work/sub/in.txt && cd work
sandbox --on h1 -- sh -c 'basename "$(pwd)"; cat sub/in.txt; echo oops >&2; touch x 2>/dev/null || echo read-only; exit 7' 2>../err.txt
echo status=$?
cat ../err.txt
## STDOUT:
work
data
read-only
status=7
oops
## END

#### slices travel by content: a second push sends nothing, a slice sharing a file sends only the rest
export SLICEBOX_STORE=$PWD/store SLICEBOX_RSH="$SPEC_DIR/fake-host.sh" REMOTE_STORES=$PWD/hosts
mkdir -p t1/bin t2/bin
head -c 100000 /dev/zero | tr '\0' x > t1/shared && cp t1/shared t2/shared
printf '#!/bin/sh\necho one\n' > t1/bin/t && printf '#!/bin/sh\necho two\n' > t2/bin/t
chmod +x t1/bin/t t2/bin/t
slice-add t1 t1 --at /opt/t >/dev/null && slice-add t2 t2 --at /opt/t >/dev/null
slice-push h1 t1
slice-push h1 t1
slice-push h1 t2
sandbox --no-cwd --on h1 --slice t2 -- t
SLICEBOX_STORE=$PWD/hosts/h1 slice-list | cut -f1
## STDOUT:
sent 1 of 1 slices to h1 (100019 bytes of content stored there)
sent 0 of 1 slices to h1 (0 bytes of content stored there)
sent 1 of 1 slices to h1 (19 bytes of content stored there)
two
t1
t2
## END

#### two stages of one pipeline see two different slices at the same path on two hosts
export SLICEBOX_STORE=$PWD/store SLICEBOX_RSH="$SPEC_DIR/fake-host.sh" REMOTE_STORES=$PWD/hosts
mkdir -p a/bin b/bin
printf '#!/bin/sh\necho "a: $(cat)"\n' > a/bin/v && printf '#!/bin/sh\necho "b: $(cat)"\n' > b/bin/v
chmod +x a/bin/v b/bin/v
slice-add va a --at /opt/v >/dev/null && slice-add vb b --at /opt/v >/dev/null
echo start | sandbox --no-cwd --on h1 --slice va -- v | sandbox --no-cwd --on h2 --slice vb -- v | sandbox --no-cwd --slice va -- v
## STDOUT:
a: b: a: start
## END

#### stdin streams to the stage and its end arrives; 20 MB come back byte for byte
export SLICEBOX_STORE=$PWD/store SLICEBOX_RSH="$SPEC_DIR/fake-host.sh" REMOTE_STORES=$PWD/hosts
head -c 20000000 /dev/urandom > big
sandbox --no-cwd --on h1 -- cat < big | cmp - big && echo same
seq 1 100000 | sandbox --no-cwd --on h1 -- wc -l
sandbox --no-cwd --on h1 -- cat < /dev/null | wc -c
## STDOUT:
same
100000
0
## END

#### a death by signal comes back as 128+N; SIGPIPE ends a remote yes
export SLICEBOX_STORE=$PWD/store SLICEBOX_RSH="$SPEC_DIR/fake-host.sh" REMOTE_STORES=$PWD/hosts
sandbox --no-cwd --on h1 -- sh -c 'kill -TERM $$'
echo term=$?
sandbox --no-cwd --on h1 -- sh -c 'kill -KILL $$'
echo kill=$?
sandbox --no-cwd --on h1 -- yes | head -2
sandbox --no-cwd --on h1 -- sh -c 'exit 0'
echo zero=$?
## STDOUT:
term=143
kill=137
y
y
zero=0
## END

#### --out DIR=NAME stores the slice on the host and brings it back under NAME
export SLICEBOX_STORE=$PWD/store SLICEBOX_RSH="$SPEC_DIR/fake-host.sh" REMOTE_STORES=$PWD/hosts
sandbox --no-cwd --on h1 --out /opt/made=made -- sh -c 'mkdir /opt/made/bin && printf "#!/bin/sh\necho made\n" > /opt/made/bin/m && chmod +x /opt/made/bin/m'
echo status=$?
slice-list | cut -f1,3
sandbox --no-cwd --slice made -- m
SLICEBOX_STORE=$PWD/hosts/h1 slice-list | cut -f1
## STDOUT:
status=0
made	/opt/made
made
made
## END

#### slice-pull fetches by name; a second pull fetches nothing; what arrives verifies
export SLICEBOX_STORE=$PWD/hosts/h1 SLICEBOX_RSH="$SPEC_DIR/fake-host.sh" REMOTE_STORES=$PWD/hosts
mkdir -p src && echo content > src/f
slice-add remote-one src --at /opt/r >/dev/null
export SLICEBOX_STORE=$PWD/store
slice-pull h1 remote-one
slice-pull h1 remote-one
slice-verify remote-one && echo verified
slice-pull h1 nothing-here
echo status=$?
## STDOUT:
fetched 1 of 1 slices from h1 (8 bytes of content stored here)
fetched 0 of 1 slices from h1 (0 bytes of content stored here)
verified
status=255
## END

#### what cannot mean the same on another host is a usage error; an unreachable host is 255 with the transport's words
export SLICEBOX_STORE=$PWD/store SLICEBOX_RSH="$SPEC_DIR/fake-host.sh" REMOTE_STORES=$PWD/hosts
sandbox --on h1 --bind /tmp -- true 2>/dev/null
echo bind=$?
sandbox --on h1 2>/dev/null
echo no-command=$?
sandbox --ship /tmp -- true 2>/dev/null
echo ship-alone=$?
SLICEBOX_REMOTE_COMMAND=no-such-slicebox sandbox --no-cwd --on h1 -- true 2>err.txt
echo unreachable=$?
grep -c "cannot run the stage on 'h1'.*said:.*no-such-slicebox" err.txt
sandbox --no-cwd --on -oProxyCommand=x -- true 2>err.txt
echo option-host=$?
grep -c "not a host name" err.txt
## STDOUT:
bind=2
no-command=2
ship-alone=2
unreachable=255
1
option-host=255
1
## END

#### --ship DIR is shown read-only at its own path; --env reaches the stage
export SLICEBOX_STORE=$PWD/store SLICEBOX_RSH="$SPEC_DIR/fake-host.sh" REMOTE_STORES=$PWD/hosts
mkdir -p data && echo shipped > data/f
sandbox --no-cwd --on h1 --ship data --env GIVEN=yes -- sh -c "cat '$PWD/data/f'; echo \"\$GIVEN\"; touch '$PWD/data/g' 2>/dev/null || echo read-only"
## STDOUT:
shipped
yes
read-only
## END
