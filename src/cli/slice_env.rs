//! `slice-env NAME [--env K=V]... [--unset K]...`: show a slice's
//! environment, or make a new version of NAME with it changed: a new
//! manifest over the same tree (the tree's objects are shared, nothing is
//! copied), so NAME@1 is the previous version until slice-gc.

use super::{Context, Exit, Failure, Parsed};
use crate::store::{IngestOptions, Limits, Source};
use crate::text::printable;

/// The variable an entry sets: what comes before the first `=`.
fn variable(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(name, _)| name)
}

/// `env` with every `--unset` removed, then every `--env` set in place
/// (or appended), in command-line order.
fn changed(env: &[String], parsed: &Parsed) -> Result<Vec<String>, Failure> {
    let mut out = env.to_vec();
    for (option, value) in &parsed.options {
        let Some(value) = value else { continue };
        let value = value
            .to_str()
            .ok_or_else(|| Failure::usage(format!("--{option} must be valid UTF-8")))?;
        match *option {
            "unset" => out.retain(|e| variable(e) != value),
            "env" => {
                if !value.contains('=') {
                    return Err(Failure::usage(format!(
                        "--env takes NAME=VALUE, not '{}'",
                        printable(value.as_bytes())
                    )));
                }
                match out.iter_mut().find(|e| variable(e) == variable(value)) {
                    Some(entry) => *entry = value.to_string(),
                    None => out.push(value.to_string()),
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

pub fn run(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [name] = parsed.operands.as_slice() else {
        return Err(Failure::usage("expected one NAME"));
    };
    let name = name
        .to_str()
        .ok_or_else(|| Failure::usage("NAME must be valid UTF-8"))?;
    let store = super::open_store_or(ctx, Exit::FAILURE)?;
    let editing = parsed.has("env") || parsed.has("unset");
    if editing {
        // A new version of a name: digests and NAME@N are not names.
        crate::store::validate_name(name)?;
    }
    let digest = store.resolve_exact(name, "slice-env")?;
    let manifest = store.manifest(&digest)?;
    if !editing {
        let text: String = manifest
            .env
            .iter()
            .map(|e| format!("{}\n", printable(e.as_bytes())))
            .collect();
        ctx.out(&text);
        return Ok(Exit::SUCCESS);
    }
    let env = changed(&manifest.env, parsed)?;
    // Under the shared lock, gc cannot take the new slice before NAME
    // points at it.
    let _lock = store.lock_shared()?;
    let added = store.add_unnamed(
        &Source::Directory(store.slice_tree(&digest)),
        &IngestOptions {
            mount_point: manifest.mount_point.clone(),
            env,
            limits: Limits::default(),
            progress: None,
            prefix_check: crate::store::PrefixCheck::Off,
            stat_cache: false,
            from_archive: crate::store::FromArchive::default(),
        },
    )?;
    if added.info.manifest.tree != manifest.tree {
        return Err(Failure {
            message: format!(
                "cannot change '{}': its stored tree is damaged (slice-verify names the damage; \
                 re-adding its source repairs it); '{}' is unchanged",
                printable(name.as_bytes()),
                printable(name.as_bytes())
            ),
            exit: Exit::FAILURE,
        });
    }
    store.tag(&added.info.digest.to_string(), name)?;
    ctx.out(&format!("{}\n", added.info.digest));
    Ok(Exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::spec::SLICE_ENV;
    use std::ffi::OsString;

    fn edit(env: &[&str], args: &[&str]) -> Vec<String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let parsed = crate::cli::parse(&SLICE_ENV, &args).unwrap();
        let env: Vec<String> = env.iter().map(|e| e.to_string()).collect();
        changed(&env, &parsed).unwrap()
    }

    #[test]
    fn env_sets_in_place_or_appends_and_unset_removes() {
        assert_eq!(
            edit(&["A=1", "B=2"], &["n", "--env", "B=3", "--env", "C=4"]),
            ["A=1", "B=3", "C=4"]
        );
        assert_eq!(edit(&["A=1", "B=2"], &["n", "--unset", "A"]), ["B=2"]);
        assert_eq!(
            edit(&["A=1"], &["n", "--unset", "A", "--env", "A=2"]),
            ["A=2"]
        );
        assert_eq!(edit(&["AB=1"], &["n", "--unset", "A"]), ["AB=1"]);
    }
}
