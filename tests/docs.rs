//! docs/builtins.md is generated from the one option table, so the
//! reference cannot drift from `--help`. Regenerate with
//! `SLICEBOX_BLESS=1 cargo test --test docs`.

use slicebox::cli::spec::COMMANDS;

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
         `sandbox: cannot mount slice 'py' at '/opt/python': No such file or directory`.\n",
    );
    for command in COMMANDS {
        text.push_str(&format!(
            "\n## {}\n\n```text\n{}```\n",
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
