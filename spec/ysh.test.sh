# The YSH module share/slicebox.ysh: procs that run the executable as
# pipeline stages, funcs that return the store as typed data, and failures
# that are YSH errors.
## our_shell: ysh

#### the procs are pipeline stages: stdin and stdout are the pipe itself
use $[ENV.SLICEBOX_BIN_DIR]/../share/slicebox/slicebox.ysh
printf '%s\n' b c a | slicebox sandbox -- sort | slicebox sandbox -- tr a-z A-Z
slicebox sandbox -- sh -c 'echo to-stderr >&2; echo to-stdout' 2>/dev/null
## STDOUT:
A
B
C
to-stdout
## END

#### two versions of a tool at one path, one per stage (procs picked by name)
use $[ENV.SLICEBOX_BIN_DIR]/../share/slicebox/slicebox.ysh --pick sandbox slice-add
for v in 1 2 {
  mkdir -p tool-$v/bin
  write -- '#!/bin/sh' "echo \"tool $v: \$(cat)\"" > tool-$v/bin/tool
  chmod +x tool-$v/bin/tool
  slice-add --at /opt/tool ysh-tool-$v tool-$v >/dev/null
}
echo input | sandbox --slice ysh-tool-1 -- /opt/tool/bin/tool | sandbox --slice ysh-tool-2 -- /opt/tool/bin/tool
## stdout: tool 2: tool 1: input

#### the store as typed data: slices() is a List of Dicts, show() a Dict
use $[ENV.SLICEBOX_BIN_DIR]/../share/slicebox/slicebox.ysh
mkdir -p data/share
write hello > data/share/greeting
slicebox slice-add ysh-data data >/dev/null
var mine = []
for s in (slicebox.slices()) {
  if (s.name === 'ysh-data') {
    call mine->append(s)
  }
}
echo "$[len(mine)] $[mine[0].mount_point] $[mine[0].files] $[mine[0].bytes]"
var info = slicebox.show('ysh-data')
echo "$[info.names[0]] $[info.digest === mine[0].digest] $[type(info.files)]"
echo "$[slicebox.stats().slices > 0] $[len(slicebox.verify('ysh-data'))]"
## STDOUT:
1 /opt/ysh-data 1 6
ysh-data true Int
true 0
## END

#### a failing stage is a YSH error: try catches it, _error.code is its status
use $[ENV.SLICEBOX_BIN_DIR]/../share/slicebox/slicebox.ysh
try { slicebox sandbox -- sh -c 'exit 3' }
echo "stage: $[_error.code]"
try { slicebox sandbox --slice no-such-ysh-slice -- true 2>/dev/null }
echo "setup: $[_error.code]"
try { call slicebox.show('no-such-ysh-slice') }
echo "show: $[_error.code]"
slicebox sandbox -- false
echo not reached
## status: 1
## STDOUT:
stage: 3
setup: 125
show: 1
## END

#### damage is data: verify() lists what it finds; a bad ref is an error
use $[ENV.SLICEBOX_BIN_DIR]/../share/slicebox/slicebox.ysh
# A store of its own: this case damages it.
setglobal ENV.SLICEBOX_STORE = "$[ENV.TMP]/own-store"
mkdir -p tool/bin
write hello > tool/bin/f
slicebox slice-add ysh-verify tool >/dev/null
echo "before: $[len(slicebox.verify())]"
var object = $(find $[ENV.SLICEBOX_STORE]/objects -type f)
chmod u+w $object
write garbage > $object
var damage = slicebox.verify('ysh-verify')
echo "after: $[len(damage)] $[damage[0].path => endsWith('/tree/bin/f')]"
try { call slicebox.verify('no-such-ysh-slice') } 2>err.txt
echo "bad ref: $[_error.code]"
sed "s|$[ENV.SLICEBOX_STORE]|STORE|" err.txt >&2
## STDOUT:
before: 0
after: 1 true
bad ref: 1
## END
## STDERR:
slice-verify: no slice 'no-such-ysh-slice' in the store 'STORE'
## END
