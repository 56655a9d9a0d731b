# Untrusted text reaches the terminal escaped (control characters in Rust's
# \u{..} notation, very long strings shortened in the middle); JSON output
# carries the real bytes. Destructive commands take only names or full
# digests: a typo never falls through to a digest prefix.
## compare_shells: bash dash mksh zsh busybox

#### control characters in names and arguments are escaped in messages
esc=$(printf '\033')
slice-add x "bad${esc}[31mname" 2>&1 | od -c | grep -c '033' | tr -d ' '
slice-add x "bad${esc}[31mname" 2>&1; echo "status=$?"
sandbox "--x${esc}[2J" -- true 2>&1 | head -n 1
slice-show "a${esc}b" 2>&1 | sed "s|$SLICEBOX_STORE|STORE|"
slice-show "a${esc}b" 2>/dev/null; echo "status=$?"
## STDOUT:
0
slice-add: cannot read 'bad\u{1b}[31mname': No such file or directory
status=1
sandbox: unknown option '--x\u{1b}[2J'
slice-show: no slice 'a\u{1b}b' in the store 'STORE'
status=1
## END

#### a mistyped slice name, command or option gets the closest one as a suggestion
mkdir sug
echo 1 > sug/f
slice-add --at /opt/sug sug-python-3.10 sug >/dev/null
slice-add --at /opt/sug sug-python-3.12 sug >/dev/null
slice-show sug-pyton-3.10 2>&1 | sed "s|$SLICEBOX_STORE|STORE|"
sandbox --slice sug-pyhton-3.12 -- true 2>&1 | sed "s|$SLICEBOX_STORE|STORE|"
slice-show sug-gcc-13 2>&1 | sed "s|$SLICEBOX_STORE|STORE|"
sandbox --slcie sug-python-3.10 -- true 2>&1 | head -n 1
slice-show --jsno sug-python-3.10 2>&1 | head -n 1
slicebox slice-ad 2>&1; echo "status=$?"
slicebox frobnicate 2>&1; echo "status=$?"
## STDOUT:
slice-show: no slice 'sug-pyton-3.10' in the store 'STORE'; did you mean 'sug-python-3.10'?
sandbox: cannot use slice 'sug-pyhton-3.12': no slice 'sug-pyhton-3.12' in the store 'STORE'; did you mean 'sug-python-3.12'?
slice-show: no slice 'sug-gcc-13' in the store 'STORE'
sandbox: unknown option '--slcie'; did you mean '--slice'?
slice-show: unknown option '--jsno'; did you mean '--json'?
slicebox: unknown command 'slice-ad'; did you mean 'slice-add'?
status=2
slicebox: unknown command 'frobnicate'
status=2
## END

#### a very long path is shortened in the middle
long=$(printf '%0500d' 0 | tr 0 a)
slice-add x "/nowhere/$long/end" 2>&1 | wc -c | tr -d ' '
slice-add x "/nowhere/$long/end" 2>&1 | grep -c 'more\]' | tr -d ' '
## STDOUT:
249
1
## END

#### entry names: escaped in text, real bytes in JSON, hex for bytes that are not UTF-8
esc=$(printf '\033')
mkdir a b
echo 1 > "a/e${esc}[31m"
echo 2 > "b/e${esc}[31m"
printf 'x\377y' > name.bin
echo 3 > "b/$(cat name.bin)"
slice-add --at /opt/m msg-a a >/dev/null
slice-add --at /opt/m msg-b b >/dev/null
slice-diff msg-a msg-b
slice-diff --json msg-a msg-b | python3 -c 'import json,sys; d=json.load(sys.stdin); print([(c["kind"], c["path"].encode("utf-8", "surrogateescape"), c.get("path_hex")) for c in d])'
## STDOUT:
M e\u{1b}[31m
+ x�y
[('changed', b'e\x1b[31m', None), ('added', b'x\xef\xbf\xbdy', '78ff79')]
## END

#### slice-rm and slice-tag take names or full digests, never prefixes
mkdir s
echo important > s/f
d=$(slice-add --at /opt/imp important s)
hex=${d#sha256:}
prefix=$(echo "$hex" | cut -c1-8)
slice-rm "$prefix" 2>&1 | sed "s/$prefix/PREFIX/"
slice-rm "sha256:$prefix" 2>&1 | sed "s/$prefix/PREFIX/"
slice-tag "$prefix" other 2>&1 | sed "s/$prefix/PREFIX/"
slice-list | cut -f1 | grep -cx important
slice-show "$prefix" | head -n 1 | sed "s/$hex/HEX/"
slice-tag "$d" other | sed "s/$hex/HEX/"
slice-rm "$d"
slice-list | cut -f1 | grep -cx -e important -e other
## STDOUT:
slice-rm: 'PREFIX' is neither a name nor a full sha256: digest; slice-rm changes the store, so it takes no digest prefixes (slice-show or slice-list gives the full digest)
slice-rm: 'sha256:PREFIX' is neither a name nor a full sha256: digest; slice-rm changes the store, so it takes no digest prefixes (slice-show or slice-list gives the full digest)
slice-tag: 'PREFIX' is neither a name nor a full sha256: digest; slice-tag changes the store, so it takes no digest prefixes (slice-show or slice-list gives the full digest)
1
digest:      sha256:HEX
sha256:HEX
removed important
removed other
0
## END
## status: 1
