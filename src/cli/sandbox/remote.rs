//! `sandbox --on HOST`: the same command line, run on HOST. Slices are
//! resolved here and sent by content; the working directory and each
//! `--ship DIR` travel as read-only snapshots (the `--cache` kind, so an
//! unchanged dir is not read again and a second run sends nothing); the
//! stage's stdio is relayed; its `--out` slice comes back.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::cache::snapshot;
use super::options::Options;
use super::slices::split_reference;
use super::{setup_failure, store_setup_failure, Context, Exit, Failure, Parsed};
use crate::cli::remote::{ignore_sigpipe, in_session, reach};
use crate::remote::conn::{Offered, Shipped};
use crate::store::Store;
use crate::text::{printable, printable_path};

/// Options that name this machine's paths or descriptors, or need its
/// terminal or its layers: none of them can mean the same on HOST.
const LOCAL_ONLY: [&str; 10] = [
    "bind",
    "ro-bind",
    "fd",
    "seccomp-fd",
    "layer",
    "image",
    "upper",
    "dev",
    "rw-cwd",
    "cache",
];

const OPERATION: &str = "run the stage on";

/// Runs the stage on `host`. In a builtin the session runs in a helper
/// process: what comes from the peer never grows the shell.
pub(super) fn run(parsed: &Parsed, ctx: &Context, host: &OsStr) -> Result<Exit, Failure> {
    if let Some(option) = LOCAL_ONLY.iter().find(|o| parsed.has(o)) {
        return Err(Failure::usage(format!(
            "--on refuses --{option}: it names this machine's paths, descriptors or terminal \
             (--ship DIR sends a directory)"
        )));
    }
    if parsed.operands.is_empty() {
        return Err(Failure::usage(
            "--on needs a COMMAND (an interactive shell on HOST is ssh's job)",
        ));
    }
    let options = Options::parse(parsed, ctx)?;
    let inner = Context {
        long_lived: false,
        ..ctx.clone()
    };
    ctx.run_untrusted(None, || client(parsed, &inner, host, &options))
        .unwrap_or_else(crate::cli::helper::HelperError::outcome)
}

fn client(
    parsed: &Parsed,
    ctx: &Context,
    host: &OsStr,
    options: &Options,
) -> Result<Exit, Failure> {
    let store = super::super::open_store(ctx)?;
    let (mut args, mut offers) = remote_args(parsed, &store)?;
    let (shipped, _pin) = match ship(parsed, ctx, &store, options, &mut offers)? {
        Ok(shipped) => shipped,
        // A signal (^C) ended the snapshots.
        Err(ended) => return Ok(ended),
    };
    args.push("--no-cwd".into());
    if let (None, Some(first)) = (parsed.last("chdir"), shipped.first()) {
        if !options.no_cwd {
            args.extend(["--chdir".to_string(), first.path.clone()]);
        }
    }
    args.push("--".into());
    for operand in &parsed.operands {
        args.push(utf8(operand)?);
    }
    ignore_sigpipe();
    let reach = reach(ctx, host, parsed.last("remote-store"));
    let limits = crate::cli::remote::limits(ctx)?;
    let (exit, pulled) = in_session(OPERATION, &reach, |session| {
        session.push(&store, &offers)?;
        let exit = session.run(args, shipped, ctx.stdio)?;
        // The --out slice comes back and is named here too.
        let pulled = match (&options.output, exit.out) {
            (Some((_, name)), Some(digest)) => {
                let (_, _, pin) = session.pull(&store, &[digest.to_string()], limits)?;
                Some((name, digest, pin))
            }
            _ => None,
        };
        Ok((exit, pulled))
    })?;
    if let Some((name, digest, _pin)) = pulled {
        store.set_ref(name, &digest)?;
    }
    Ok(Exit {
        code: exit.code,
        signal: exit.signal,
    })
}

/// The command line HOST runs, but for the shipped dirs: every option as
/// given, each `--slice` by full digest, and the slices to offer.
fn remote_args(parsed: &Parsed, store: &Store) -> Result<(Vec<String>, Vec<Offered>), Failure> {
    let mut args = Vec::new();
    let mut offers = Vec::new();
    for (name, value) in &parsed.options {
        match *name {
            "on" | "ship" | "remote-store" | "no-cwd" => {}
            "slice" => {
                let value = value.as_deref().unwrap_or_default();
                let (reference, at) = split_reference(value);
                let digest = store.resolve(&reference).map_err(store_setup_failure)?;
                offers.push(Offered { digest, name: None });
                args.push("--slice".into());
                args.push(match at {
                    Some(at) => format!("{digest}:{at}"),
                    None => digest.to_string(),
                });
            }
            _ => {
                args.push(format!("--{name}"));
                if let Some(value) = value {
                    args.push(utf8(value)?);
                }
            }
        }
    }
    Ok((args, offers))
}

/// Snapshots the working directory (unless `--no-cwd`) and each `--ship
/// DIR`, pinned until the session ends, as slices to offer.
fn ship(
    parsed: &Parsed,
    ctx: &Context,
    store: &Store,
    options: &Options,
    offers: &mut Vec<Offered>,
) -> Result<Result<(Vec<Shipped>, crate::store::Pin), Exit>, Failure> {
    let mut dirs = Vec::new();
    if !options.no_cwd {
        let cwd = std::env::current_dir().map_err(|e| {
            setup_failure(format!(
                "cannot read the current directory: {}",
                crate::text::io_cause(&e)
            ))
        })?;
        dirs.push(("the working directory", cwd));
    }
    for dir in parsed.values("ship") {
        let real = std::fs::canonicalize(dir)
            .ok()
            .filter(|d| d.is_dir())
            .ok_or_else(|| {
                setup_failure(format!(
                    "cannot ship '{}': it is not a directory",
                    printable_path(Path::new(dir))
                ))
            })?;
        dirs.push(("--ship", real));
    }
    // Held from the first snapshot to the pin: gc cannot remove an
    // unnamed snapshot in between.
    let lock = store.lock_shared().map_err(store_setup_failure)?;
    let mut shipped = Vec::new();
    for (what, dir) in dirs {
        refuse_store_inside(store, &dir, what)?;
        let (slice, _tree) = match snapshot(ctx, store, &dir, what, &dir, options.limits)? {
            Ok(stored) => stored,
            Err(ended) => return Ok(Err(ended)),
        };
        offers.push(Offered {
            digest: slice,
            name: None,
        });
        shipped.push(Shipped {
            slice,
            path: dir
                .to_str()
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "--on cannot ship '{}': its path is not UTF-8",
                        printable_path(&dir)
                    ))
                })?
                .to_string(),
        });
    }
    let digests: Vec<_> = offers.iter().map(|o| o.digest).collect();
    let pin = store.pin(&digests).map_err(store_setup_failure)?;
    drop(lock);
    Ok(Ok((shipped, pin)))
}

/// A dir that holds the store would ship the store itself.
fn refuse_store_inside(store: &Store, dir: &Path, what: &str) -> Result<(), Failure> {
    let root: PathBuf = store.root().canonicalize().unwrap_or_default();
    if root.starts_with(dir) {
        return Err(Failure::usage(format!(
            "--on cannot ship {what} '{}': it holds the store '{}' (cd elsewhere, or --no-cwd)",
            printable_path(dir),
            printable_path(&root)
        )));
    }
    Ok(())
}

fn utf8(value: &OsStr) -> Result<String, Failure> {
    value.to_str().map(str::to_string).ok_or_else(|| {
        Failure::usage(format!(
            "--on sends the command line as UTF-8, and '{}' is not",
            printable(value.as_encoded_bytes())
        ))
    })
}
