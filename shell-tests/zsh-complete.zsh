#!/usr/bin/env zsh
# zsh-complete.zsh DIR LINE: what zsh's completion offers when a user types
# LINE and presses TAB, with the completion functions of DIR (a
# site-functions dir holding _slicebox) first on fpath. It runs the real
# thing: an interactive `zsh -f` in a pseudo-terminal (zsh/zpty) with
# compinit, and TAB bound to a completion widget that runs _main_complete,
# the function compinit binds to TAB. A wrapper around the `compadd`
# builtin records every match that reaches the completion list (after
# matching against what was typed). Prints the matches sorted, one a line,
# then `completion-ran` (so a caller can tell "no matches" from "never ran");
# exits 1 when the widget did not finish within 20 s, 2 on bad usage.
emulate -L zsh
setopt err_return no_unset
if (( $# != 2 )); then
    print -u2 "usage: zsh-complete.zsh SITE-FUNCTIONS-DIR LINE"
    exit 2
fi
zmodload zsh/zpty
local dir=${1:A} line=$2
local out=$(mktemp -d "${TMPDIR:-/tmp}/zsh-complete.XXXXXX")
local matches=$out/matches done=$out/done log=$out/log

# The interactive zsh's set-up, one command a line. compadd calls that ask
# for matches without adding them (-O, -A, -D: _describe and _arguments make
# such) pass through unrecorded; every other call is recorded, then made.
local -a setup=(
    "PS1='' PS2='' RPS1=''"
    "fpath=(${(q)dir} \$fpath); autoload -U compinit; compinit -u -D"
    "compadd() { if (( \${argv[(I)-[OAD]]} )); then builtin compadd \"\$@\"; return; fi; local -a __got; builtin compadd -O __got \"\$@\"; (( \$#__got )) && print -rl -- \$__got >>${(q)matches}; builtin compadd \"\$@\"; }"
    "_sbx_tab() { _main_complete; print -r -- ran >${(q)done}; }"
    "zle -C sbx-tab complete-word _sbx_tab"
    "bindkey '^I' sbx-tab"
)
TERM=xterm zpty sbx zsh -f -i
local command
for command in $setup; do
    zpty -w sbx "$command"
done
zpty -w -n sbx "$line"$'\t'
integer tries=0
while [[ ! -e $done ]] && (( tries++ < 400 )); do
    sleep 0.05
    # Drain the terminal so the shell never blocks writing to it.
    zpty -r -t sbx >>$log 2>/dev/null || true
done
zpty -d sbx
if [[ ! -e $done ]]; then
    print -u2 "zsh-complete: the completion widget did not finish for '$line' in 20 s; the terminal showed:"
    cat -v $log >&2
    rm -rf $out
    exit 1
fi
[[ -e $matches ]] && sort -u $matches
print completion-ran
rm -rf $out
