//! docs/builtins.md is generated from the one option table, so the
//! reference cannot drift from `--help`. Regenerate with
//! `SLICEBOX_BLESS=1 cargo test --test docs`.

use slicebox::cli::spec::{COMMANDS, TOOLS};

fn expected() -> String {
    let mut text = String::from(
        "# Builtins reference\n\n\
         Generated from `src/cli/spec.rs` (the one option table behind the parser,\n\
         `--help` and bash's `help`); regenerate with\n\
         `SLICEBOX_BLESS=1 cargo test --test docs`.\n\n\
         Each command is a bash builtin after\n\
         `enable -f libslicebox.so sandbox slice-add slice-list slice-show`, and the\n\
         same command of the `slicebox` executable (`slicebox sandbox …`, or a link\n\
         named `sandbox`). Both share one parser and behave the same.\n\n\
         Errors name the program, the operation, the path and the cause, e.g.\n\
         `sandbox: cannot mount slice 'py' at '/opt/python': No such file or directory`.\n\n\
         ## From OSH and YSH\n\n\
         Oils cannot load the builtins: OSH lists `enable` as a bash builtin it will\n\
         not implement, and has no ABI for native code. OSH and YSH run the\n\
         executable instead: put `PREFIX/bin` on `PATH` and every command below works\n\
         the same, as an ordinary pipeline stage\n\
         (`sandbox --slice node-22 -- /opt/node/bin/node -v | tr . ' '`).\n\n\
         YSH also has a module, `PREFIX/share/slicebox/slicebox.ysh`:\n\n\
         ```ysh\n\
         use ~/.local/share/slicebox/slicebox.ysh   # or: use ... --pick sandbox slice-add\n\
         slicebox sandbox --slice node-22 -- /opt/node/bin/node -v | tr . ' '\n\
         for s in (slicebox.slices()) { echo \"$[s.name] $[s.bytes]\" }\n\
         try { slicebox sandbox -- sh -c 'exit 3' }; echo $[_error.code]   # 3\n\
         ```\n\n\
         Its procs are the commands below (`sandbox`, `slice-add`, ...), each running\n\
         the executable of the same installation. Its funcs return what `--json`\n\
         prints, as YSH data: `slices()` (a List of Dicts), `show(ref)` and `stats()`\n\
         (Dicts), `diff(a, b)` (a List of changes) and `verify(ref=null)` (a List of\n\
         damaged paths: empty when nothing is damaged). A failing command or func is a YSH error: `try` catches it and\n\
         `_error.code` is the exit status.\n",
    );
    for command in COMMANDS {
        text.push_str(&format!(
            "\n## {}\n\n```text\n{}```\n",
            command.name,
            command.help()
        ));
    }
    for command in TOOLS {
        text.push_str(&format!(
            "\n## slicebox {}\n\nA command of the `slicebox` executable only: no builtin, no link.\n\n```text\n{}```\n",
            command.name,
            command.help()
        ));
    }
    text
}

#[test]
fn builtins_reference_matches_the_option_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/builtins.md");
    if std::env::var_os("SLICEBOX_BLESS").is_some() {
        std::fs::write(path, expected()).unwrap();
    }
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected(),
        "docs/builtins.md is stale; run SLICEBOX_BLESS=1 cargo test --test docs"
    );
}
