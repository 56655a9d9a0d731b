# A real multi-file C program built in a stage with its output bound at
# the final prefix (--out), kept as a slice, then run from another stage
# with only that slice and the base; then the same build memoized (--cache).
. "$(dirname "$0")/lib.sh"
enable -f "$SLICEBOX_LIB" sandbox slice-add slice-list slice-show

command -v cc >/dev/null || fail "no C compiler on this machine (.ci/run installs g++, which brings gcc)"
work=$(mktemp -d "$SLICEBOX_TEST_WORK/build.XXXXXX")
cd "$work"
mkdir src && cd src
cat >greet.h <<'C'
const char *greeting(const char *who);
C
cat >greet.c <<'C'
#include <stdio.h>
#include "greet.h"
const char *greeting(const char *who) {
    static char text[128];
    snprintf(text, sizeof text, "hello, %s, from a stored build", who);
    return text;
}
C
cat >main.c <<'C'
#include <stdio.h>
#include "greet.h"
int main(int argc, char **argv) {
    puts(greeting(argc > 1 ? argv[1] : "world"));
    return 0;
}
C
cat >Makefile <<'MK'
PREFIX = /opt/hello
$(PREFIX)/bin/hello: main.o greet.o
	mkdir -p $(PREFIX)/bin
	cc -o $@ main.o greet.o
%.o: %.c greet.h
	cc -c -o $@ $<
MK

# make writes its objects next to the sources: the working directory is
# writable here (--rw-cwd), and only /opt/hello is kept.
sandbox --rw-cwd --out /opt/hello=hello-1.0 -- make -s >/dev/null
expect_eq "the build's output is a slice at its final prefix" \
    "hello-1.0 /opt/hello" "$(slice-list | grep '^hello-1.0	' | cut -f1,3 | tr '\t' ' ')"
expect_eq "the built program runs from another stage with only that slice and the base" \
    "hello, slices, from a stored build" \
    "$(cd / && sandbox --no-cwd --slice hello-1.0 -- /opt/hello/bin/hello slices)"
expect_eq "the program is not on the host" "absent" "$(test -e /opt/hello/bin/hello && echo present || echo absent)"

status=0
sandbox --rw-cwd --out /opt/hello=hello-broken -- sh -c 'make -s >/dev/null && exit 9' || status=$?
expect_eq "a build that fails returns its status" 9 "$status"
expect_eq "and stores nothing" "" "$(slice-list | grep '^hello-broken	' || true)"

# Memoized: the source is read-only input (compiled in /tmp), so the
# stage is fully declared.
cd "$work/src" && rm -f ./*.o
memo() {
    sandbox --net none --clearenv --env PATH=/usr/bin:/bin --out /opt/hello=hello-memo --cache -- \
        sh -c 'cd /tmp && cc -o greet.o -c "$OLDPWD/greet.c" -I"$OLDPWD" && cc -o main.o -c "$OLDPWD/main.c" -I"$OLDPWD" &&
               mkdir -p /opt/hello/bin && cc -o /opt/hello/bin/hello main.o greet.o && echo compiled >&2' 2>&1
}
expect_eq "a --cache build compiles the first time" "compiled" "$(memo)"
expect_match "and is reused while its sources are unchanged" "sandbox: --cache: 'hello-memo' is sha256:*, stored by an earlier run of this stage; the command did not run" "$(memo)"
sed -i 's/from a stored build/from a rebuilt build/' greet.c
expect_eq "a changed source compiles again" "compiled" "$(memo)"
expect_eq "and the new program is what the name points at" "hello, memo, from a rebuilt build" \
    "$(cd / && sandbox --no-cwd --slice hello-memo -- /opt/hello/bin/hello memo)"

# The README's build example, as written: an in-tree Makefile built out of
# tree in the stage's /tmp with the host's cc, then memoized with --cache
# (its cleared environment has PATH). Run twice: the second --cache run
# reuses the first's output.
mkdir -p "$work/readme/hello" && cd "$work/readme/hello"
cat >main.c <<'C'
#include <stdio.h>
int main(void) { puts("hello from the README's build"); return 0; }
C
printf 'PREFIX = /usr/local\nhello: main.c\n\tcc -o hello main.c\ninstall: hello\n\tmkdir -p $(PREFIX)/bin\n\tcp hello $(PREFIX)/bin/hello\n' >Makefile
readme=$(dirname "$0")/../README.md
block=$(awk '/^```sh$/ { inside = 1; text = ""; next }
             /^```/ { if (inside && text ~ /out \/opt\/hello=hello-1.0/) print text; inside = 0; next }
             inside { text = text $0 "\n" }' "$readme")
expect_match "the README has the build block" "cd hello*--cache*" "$block"
cd "$work/readme"
first=$(bash -c "set -e; enable -f \"\$SLICEBOX_LIB\" sandbox; $block" 2>&1) || fail "the README's build block failed: $first"
expect_eq "the README's build block builds and runs hello, then compiles once more under --cache" \
    "hello from the README's build" "$first"
second=$(bash -c "set -e; enable -f \"\$SLICEBOX_LIB\" sandbox; $block" 2>&1) || fail "the README's build block failed again: $second"
expect_match "run again, the --cache stage is skipped" \
    "hello from the README's build
sandbox: --cache: 'hello-1.0' is sha256:*, stored by an earlier run of this stage; the command did not run" "$second"
expect_eq "the working directory stayed clean (the build ran in /tmp)" "Makefile main.c" "$(cd hello && echo *)"
done_checks
