# A payload cannot signal anything outside its stage: it runs in a session
# and process group of its own, inside its own pid namespace. Each case
# runs in its own process group: a signal that escaped would kill the
# case's shell and cut its output short.
## compare_shells: bash dash mksh zsh busybox

#### kill(0, SIGKILL) reaches neither the caller nor the caller's other children
sleep 600 &
s=$!
sandbox -- python3 -c 'import os; os.kill(0, 9)'
echo "stage=$?"
kill -0 "$s" && echo caller-child-alive
kill "$s"
echo caller-alive
## STDOUT:
stage=137
caller-child-alive
caller-alive
## END

#### kill(-1, SIGKILL) reaches only the stage's own processes
sleep 600 &
s=$!
sandbox -- sh -c 'sleep 600 & kill -9 -1 2>/dev/null; wait; echo payload-alive'
echo "stage=$?"
kill -0 "$s" && echo caller-child-alive
kill "$s"
## STDOUT:
payload-alive
stage=0
caller-child-alive
## END

#### the caller's process group and pid cannot be named from inside
sleep 600 &
s=$!
pg=$(ps -o pgid= -p $$ | tr -d ' ')
sandbox --env PG="$pg" --env S="$s" -- python3 -c '
import os, signal
for what, call in (("pgid", lambda: os.killpg(int(os.environ["PG"]), signal.SIGKILL)),
                   ("pid", lambda: os.kill(int(os.environ["S"]), signal.SIGKILL))):
    try:
        call()
        print(what, "signalled")
    except ProcessLookupError:
        print(what, "not found")
'
kill -0 "$s" && echo caller-child-alive
kill "$s"
## STDOUT:
pgid not found
pid not found
caller-child-alive
## END

#### another stage of the same pipeline survives kill(0) in its neighbour
# The second stage echoes only after its stdin ends, i.e. after the first
# stage is dead: the kill has happened by then.
sandbox -- python3 -c 'import os; os.kill(0, 9)' | sandbox -- sh -c 'cat; echo other-stage-alive'
## STDOUT:
other-stage-alive
## END

#### the payload leads a session and process group of its own; pid 1 a group of its own
# pid 1 stays in the caller's session, whose leader is outside the stage's
# pid namespace (sid 0 inside).
sandbox -- python3 -c '
import os
print("payload", os.getpid(), os.getpgrp(), os.getsid(0))
print("pid 1", os.getpgid(1), os.getsid(1))
'
## STDOUT:
payload 2 2 2
pid 1 1 0
## END

#### without a terminal, the stage has no controlling terminal at all
sandbox -- sh -c 'exec 3</dev/tty' 2>&1 | sed 's/.*\/dev\/tty: //'
## STDOUT:
No such device or address
## END
