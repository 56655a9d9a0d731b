# The generated man pages render cleanly, and the generated completion
# scripts complete from the option table and from the store.
. "$(dirname "$0")/lib.sh"
share=$(dirname "$SLICEBOX_BIN_DIR")/share

# ---- man pages: every command has one, and groff warns about none.
pages=$(cd "$share/man/man1" && ls)
expect_eq "a man page for slicebox and for every command" \
    "$( (echo slicebox; echo slicebox-doctor; echo slicebox-ps; echo slicebox-export-oci; echo slicebox-serve; slicebox --commands) | sed 's/$/.1/' | sort)" "$(echo "$pages" | sort)"
for page in $pages; do
    warnings=$(groff -man -Tutf8 -ww -z "$share/man/man1/$page" 2>&1)
    expect_eq "groff -ww renders $page without a warning" "" "$warnings"
done
expect_match "man -l shows sandbox's --slice option" "*--slice REF[[]:MOUNTPOINT[]]*" \
    "$(MANWIDTH=80 man -l "$share/man/man1/sandbox.1" 2>&1)"

# ---- bash completion, called as bash's programmable completion would.
mkdir -p tree/bin && echo tool >tree/bin/tool
slice-add python-3.10 tree >/dev/null
slice-add python-3.12 tree >/dev/null
slice-add node-22 tree >/dev/null
# shellcheck source=/dev/null
. "$share/bash-completion/completions/slicebox"
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMPREPLY=()
    _slicebox
    [ ${#COMPREPLY[@]} = 0 ] || printf '%s\n' "${COMPREPLY[@]}" | sort
}
expect_eq "complete -p names the function for sandbox" "complete -F _slicebox sandbox" "$(complete -p sandbox)"
expect_eq "sandbox --sl<TAB> gives --slice" "--slice" "$(complete_words sandbox --sl)"
expect_eq "sandbox --slice <TAB> offers the store's slices (slice-list executable)" \
    $'node-22\npython-3.10\npython-3.12' "$(complete_words sandbox --slice '')"
expect_eq "sandbox --slice py<TAB> offers the pythons" \
    $'python-3.10\npython-3.12' "$(complete_words sandbox --slice py)"
expect_eq "sandbox --slice=py<TAB> (split at =) offers the pythons" \
    $'python-3.10\npython-3.12' "$(complete_words sandbox --slice = py)"
expect_eq "sandbox --net <TAB> offers host and none" $'host\nnone' "$(complete_words sandbox --net '')"
expect_eq "slicebox slice-ad<TAB> gives the command" "slice-add" "$(complete_words slicebox slice-ad)"
expect_eq "slicebox do<TAB> gives the executable's own doctor" "doctor" "$(complete_words slicebox do)"
expect_eq "slicebox slice-show <TAB> offers slices" \
    $'node-22\npython-3.10\npython-3.12' "$(complete_words slicebox slice-show '')"
expect_eq "slice-diff's second operand is a slice too" "node-22" "$(complete_words slice-diff python-3.10 no)"
expect_eq "options after the payload's name are the payload's" "" \
    "$(complete_words sandbox --slice node-22 ls --sl)"
expect_eq "the payload's name is a command" "true" "$(complete_words sandbox --slice node-22 -- tru | grep -x true | sort -u)"
enable -f "$SLICEBOX_LIB" slice-list
expect_eq "with the slice-list builtin enabled, the slices come from it" \
    $'python-3.10\npython-3.12' "$(complete_words sandbox --slice py)"
enable -d slice-list

# ---- zsh completion: loads sourced and autoloaded, registers every command.
if command -v zsh >/dev/null; then
    zfile=$share/zsh/site-functions/_slicebox
    expect_eq "zsh -n parses _slicebox" "" "$(zsh -n "$zfile" 2>&1)"
    expect_eq "sourced after compinit, _slicebox completes every command" \
        "$(slicebox --commands | sed 's/.*/_slicebox/' | tr '\n' ' ')" \
        "$(zsh -fc 'autoload -U compinit; compinit -D; source "$1"; for c in $(slicebox --commands); do print -n "$_comps[$c] "; done' zsh "$zfile" 2>&1)"
    expect_eq "autoloaded from fpath, compinit finds _slicebox for sandbox" "_slicebox" \
        "$(zsh -fc 'fpath=("$1" $fpath); autoload -U compinit; compinit -D; print -r -- $_comps[sandbox]' zsh "$(dirname "$zfile")" 2>&1)"

    # What a user's TAB gets: an interactive zsh in a pseudo-terminal runs
    # the generated _slicebox (zsh-complete.zsh); each answer ends with
    # completion-ran, so an empty list is told from a widget that never ran.
    zcomplete() {
        zsh -f "$(dirname "$0")/zsh-complete.zsh" "$(dirname "$zfile")" "$1" 2>&1
    }
    ran=completion-ran
    expect_eq "zsh: slicebox sli<TAB> offers every slice- command" \
        "$(slicebox --commands | grep '^slice-' | sort)"$'\n'$ran "$(zcomplete 'slicebox sli')"
    expect_eq "zsh: slicebox do<TAB> gives the executable's own doctor" "doctor"$'\n'$ran \
        "$(zcomplete 'slicebox do')"
    expect_eq "zsh: sandbox --sl<TAB> gives --slice" "--slice"$'\n'$ran "$(zcomplete 'sandbox --sl')"
    expect_eq "zsh: sandbox --slice <TAB> offers the store's slices" \
        $'node-22\npython-3.10\npython-3.12\n'$ran "$(zcomplete 'sandbox --slice ')"
    expect_eq "zsh: sandbox --slice py<TAB> offers the pythons" \
        $'python-3.10\npython-3.12\n'$ran "$(zcomplete 'sandbox --slice py')"
    expect_eq "zsh: sandbox --net <TAB> offers host and none" $'host\nnone\n'$ran \
        "$(zcomplete 'sandbox --net ')"
    expect_eq "zsh: slicebox slice-show <TAB> offers slices" \
        $'node-22\npython-3.10\npython-3.12\n'$ran "$(zcomplete 'slicebox slice-show ')"
    expect_eq "zsh: slice-diff's second operand is a slice too" "node-22"$'\n'$ran \
        "$(zcomplete 'slice-diff python-3.10 no')"
    expect_eq "zsh: a word nothing completes gets no match (the widget still ran)" $ran \
        "$(zcomplete 'sandbox --zz')"
else
    fail "zsh is not installed (.ci/run installs it)"
fi
done_checks
