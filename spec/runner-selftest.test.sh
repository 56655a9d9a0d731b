# Self-test for spec/run.py: needs no slicebox at all.
## compare_shells: bash dash mksh zsh busybox

#### echo hi
echo hi
## stdout: hi

#### multi-line stdout and exit status
printf '%s\n' one two
echo err >&2
exit 3
## status: 3
## STDOUT:
one
two
## END

#### pipeline status is the last command's
false | true
echo "a=$?"
true | false
echo "b=$?"
## STDOUT:
a=0
b=1
## END

#### PIPESTATUS
false | true
echo "${PIPESTATUS[0]}"
## stdout: 1
## N-I dash/busybox status: 2
## N-I dash/busybox stdout-json: ""
## N-I zsh stdout-json: "\n"

#### stdout-json without trailing newline, cwd is a fresh empty dir
printf 'x'
ls -A | wc -l | tr -d ' ' >&2
test -z "$(ls -A)" || exit 1
## stdout-json: "x"
