//! The man pages and completion scripts under share/ are generated from
//! the one option table (`slicebox --generate …`), as ripgrep and fd do:
//! this test fails when a committed copy differs from what the table
//! gives now. Regenerate with `SLICEBOX_BLESS=1 cargo test --test generated`.

use std::path::{Path, PathBuf};

use slicebox::cli::generate;

fn share() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("share")
}

fn expected() -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = generate::man_pages()
        .into_iter()
        .map(|(name, text)| (share().join("man/man1").join(name), text))
        .collect();
    files.push((
        share().join("bash-completion/completions/slicebox"),
        generate::bash_completion(),
    ));
    files.push((
        share().join("zsh/site-functions/_slicebox"),
        generate::zsh_completion(),
    ));
    files
}

#[test]
fn committed_man_pages_and_completions_match_the_option_table() {
    let bless = std::env::var_os("SLICEBOX_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, text) in expected() {
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; run SLICEBOX_BLESS=1 cargo test --test generated"
    );
}

/// A page for a command that is gone would still be installed.
#[test]
fn no_man_page_without_a_command() {
    let wanted: Vec<PathBuf> = expected().into_iter().map(|(p, _)| p).collect();
    let dir = share().join("man/man1");
    let entries = std::fs::read_dir(&dir).expect("share/man/man1 exists");
    let mut checked = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        assert!(wanted.contains(&path), "{} has no command", path.display());
        checked += 1;
    }
    assert_eq!(
        checked,
        slicebox::cli::spec::COMMANDS.len() + slicebox::cli::spec::TOOLS.len() + 1
    );
}
