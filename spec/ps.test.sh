# `slicebox ps`: running stages, from the pins they hold in the store.
## compare_shells: bash dash mksh zsh busybox

#### ps lists a running stage with its holder, age, slice and command; after it ends, not
mkdir -p pst
echo 1 > pst/f
slice-add --at /opt/pst ps-slice pst >/dev/null
slicebox ps
sandbox --slice ps-slice -- sh -c 'sleep 30' 'two words' &
holder=$!
i=0
# The pin is written before the stage's pid 1 exists: wait for both.
while [ $i -lt 200 ] && ! slicebox ps | grep -q '^[0-9].*sleep 30'; do sleep 0.05; i=$((i + 1)); done
slicebox ps | awk -v h=$holder '$2 == h { print ($1 ~ /^[0-9]+$/ ? "pid" : "no pid"), ($3 ~ /^[0-9]+s$/ ? "age" : "no age"), $4 }'
slicebox ps | sed 1d | sed 's/.*ps-slice *//'
slicebox ps --json | grep -c "\"holder\": $holder"
kill $holder
wait $holder
slicebox ps | grep -c ps-slice || true
## STDOUT:
PID      HOLDER   AGE     SLICES                   COMMAND
pid age ps-slice
sh -c 'sleep 30' 'two words'
1
0
## END

#### ps lists a stage without slices and one with --out; a stage whose holder is SIGKILLed is not listed
# Waits until `ps` shows a line matching $1 (or 10 s pass).
listed() {
  i=0
  while [ $i -lt 200 ] && ! slicebox ps | grep -q "$1"; do sleep 0.05; i=$((i + 1)); done
  slicebox ps | grep -c "$1"
}
sandbox -- sleep 31 &
plain=$!
listed '^[0-9].* - *sleep 31$'
slicebox ps | awk -v h=$plain '$2 == h { print ($1 ~ /^[0-9]+$/ ? "pid" : "no pid"), ($3 ~ /^[0-9]+s$/ ? "age" : "no age"), $4, $5, $6 }'
sandbox --out /opt/o=ps-out -- sleep 32 &
out=$!
listed '^[0-9].* - *sleep 32$'
kill $plain
wait $plain
echo "after kill: $(slicebox ps | grep -c 'sleep 31')"
kill -9 $out
wait $out; echo "status=$?"
echo "after SIGKILL: $(slicebox ps | grep -c 'sleep 32')"
echo "json rows: $(slicebox ps --json | grep -c '"holder"')"
## STDOUT:
1
pid age - sleep 31
1
after kill: 0
status=137
after SIGKILL: 0
json rows: 0
## END
