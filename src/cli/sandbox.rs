//! `sandbox`: resolve slices in the store, build the stage, run it, and
//! turn its outcome into an exit status.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{is_open, open_store, Context, Exit, Failure, Parsed};
use crate::runtime::{self, Outcome, PlannedSlice, Stage, WorkdirView};
use crate::text::{printable, printable_path};

fn setup_failure(message: String) -> Failure {
    Failure {
        message,
        exit: Exit::SETUP_FAILED,
    }
}

pub fn run(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    if parsed.operands.is_empty() {
        return Err(Failure::usage("expected a COMMAND to run"));
    }
    let isolate_net = match parsed.last("net").map(|v| v.as_bytes()) {
        None | Some(b"host") => false,
        Some(b"none") => true,
        Some(other) => {
            return Err(Failure::usage(format!(
                "--net must be 'host' or 'none', not '{}'",
                printable(other)
            )))
        }
    };
    let mut keep_fds = Vec::new();
    for value in parsed.values("fd") {
        let fd: i32 = value
            .to_str()
            .and_then(|v| v.parse().ok())
            .filter(|fd| *fd > 2)
            .ok_or_else(|| {
                Failure::usage(format!(
                    "--fd needs a descriptor number above 2, not '{}'",
                    printable(value.as_bytes())
                ))
            })?;
        if !is_open(fd) {
            return Err(setup_failure(format!(
                "cannot pass descriptor {fd}: it is not open"
            )));
        }
        keep_fds.push(fd);
    }
    let chdir = parsed.last("chdir").map(PathBuf::from);
    if chdir.as_ref().is_some_and(|d| !d.is_absolute()) {
        return Err(Failure::usage("--chdir needs an absolute path"));
    }

    let mut slices = Vec::new();
    let mut env: Vec<OsString> = if parsed.has("clearenv") {
        Vec::new()
    } else {
        ctx.env.clone()
    };
    let slice_refs: Vec<_> = parsed.values("slice").collect();
    // Held until the stage ends, so slice-gc keeps what it mounts.
    let mut _pin = None;
    if !slice_refs.is_empty() {
        let store = open_store(ctx)?;
        // Resolving and pinning under the shared lock: gc cannot run between.
        let lock = store.lock_shared()?;
        let mut digests = Vec::new();
        for reference in slice_refs {
            let text = reference.to_string_lossy();
            let (name, at) = match text.split_once(':') {
                // `sha256:…` is a digest, not NAME:MOUNTPOINT.
                Some((n, rest)) if n != "sha256" => (n.to_string(), Some(rest.to_string())),
                Some(("sha256", rest)) if rest.contains(':') => {
                    let (hex, at) = rest.split_once(':').expect("checked above");
                    (format!("sha256:{hex}"), Some(at.to_string()))
                }
                _ => (text.to_string(), None),
            };
            let failure = |e: crate::store::Error| {
                setup_failure(format!(
                    "cannot use slice '{}': {e}",
                    printable(name.as_bytes())
                ))
            };
            let digest = store.resolve(&name).map_err(failure)?;
            let manifest = store.manifest(&digest).map_err(failure)?;
            let mount_point = match at {
                Some(at) => crate::store::validate_mount_point(&at)
                    .map_err(|e| Failure::usage(e.to_string()))?,
                None => manifest.mount_point.clone(),
            };
            for entry in &manifest.env {
                set_env(&mut env, OsString::from(entry));
            }
            digests.push(digest);
            slices.push(PlannedSlice {
                label: name,
                tree: store.slice_tree(&digest),
                mount_point: PathBuf::from(mount_point),
            });
        }
        _pin = Some(store.pin(&digests)?);
        drop(lock);
    }
    for entry in parsed.values("env") {
        if !entry.as_bytes().contains(&b'=') {
            return Err(Failure::usage(format!(
                "--env needs NAME=VALUE, not '{}'",
                printable(entry.as_bytes())
            )));
        }
        set_env(&mut env, entry.to_os_string());
    }
    for name in parsed.values("unsetenv") {
        env.retain(|e| env_name(e) != name.as_bytes());
    }

    let cwd = std::env::current_dir()
        .map_err(|e| setup_failure(format!("cannot read the current directory: {e}")))?;
    let binds = parsed
        .options
        .iter()
        .filter_map(|(name, value)| match *name {
            "bind" => Some((true, value.as_deref()?)),
            "ro-bind" => Some((false, value.as_deref()?)),
            _ => None,
        })
        .map(|(writable, value)| planned_bind(value, writable, &cwd))
        .collect::<Result<Vec<_>, _>>()?;
    let base = runtime::host_base();
    let workdir = if parsed.has("no-cwd") {
        None
    } else {
        match runtime::workdir_view(&cwd, &base) {
            WorkdirView::Hidden(why) => {
                if chdir.is_none() {
                    ctx.err(&format!(
                        "sandbox: note: the working directory '{}' is not shown inside: {why}; \
                         the command starts in / (--no-cwd says so quietly)\n",
                        printable_path(&cwd)
                    ));
                }
                None
            }
            WorkdirView::Shown | WorkdirView::InsideBase => Some(cwd),
        }
    };
    let start_dir = chdir
        .or_else(|| workdir.clone())
        .unwrap_or_else(|| PathBuf::from("/"));
    let stage = Stage {
        argv: parsed.operands.clone(),
        env,
        slices,
        base,
        workdir,
        start_dir,
        isolate_net,
        binds,
        stdio: ctx.stdio.map(|fd| if is_open(fd) { fd } else { -1 }),
        keep_fds,
        ignored_signals: ctx.ignored_signals.clone(),
    };
    let mut host_signals = ctx.host_signals.and_then(|make| make());
    let report = runtime::run(&stage, host_signals.as_deref_mut()).map_err(|e| match e {
        // Mount points that can never work are the arguments' fault.
        runtime::Error::Plan(_) => Failure::usage(e.to_string()),
        _ => setup_failure(e.to_string()),
    })?;
    if let Some(message) = &report.message {
        ctx.err(&format!("sandbox: {message}\n"));
    }
    Ok(match report.outcome {
        Outcome::Exited(code) => Exit::code(code),
        Outcome::Signaled(signal) => Exit {
            code: 128 + signal,
            signal: Some(signal),
        },
        Outcome::SetupFailed { .. } | Outcome::InitFailed { .. } => Exit::SETUP_FAILED,
        Outcome::ExecFailed { not_found, .. } => Exit::code(if not_found { 127 } else { 126 }),
    })
}

/// `SRC[:DST]`: DST starts at the last ':' followed by '/', so a SRC may
/// itself hold ':' when DST is given. SRC is resolved on the host, as the
/// caller would; DST is a path inside the stage.
fn planned_bind(
    value: &std::ffi::OsStr,
    writable: bool,
    cwd: &std::path::Path,
) -> Result<runtime::PlannedBind, Failure> {
    let bytes = value.as_bytes();
    let split = bytes
        .windows(2)
        .rposition(|w| w == b":/")
        .filter(|&i| i > 0);
    let (source, target) = match split {
        Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
        None => (bytes, None),
    };
    let option = if writable { "--bind" } else { "--ro-bind" };
    let source = cwd.join(std::ffi::OsStr::from_bytes(source));
    let resolved = std::fs::canonicalize(&source).map_err(|e| {
        setup_failure(format!(
            "cannot bind '{}' ({option}): {}",
            printable_path(&source),
            runtime::strerror(e.raw_os_error().unwrap_or(libc::EIO))
        ))
    })?;
    let is_dir = resolved.is_dir();
    let target = match target {
        Some(t) => PathBuf::from(std::ffi::OsStr::from_bytes(t)),
        None => resolved.clone(),
    };
    Ok(runtime::PlannedBind {
        source: resolved,
        target,
        writable,
        is_dir,
    })
}

fn env_name(entry: &OsString) -> &[u8] {
    let bytes = entry.as_bytes();
    let end = bytes.iter().position(|c| *c == b'=').unwrap_or(bytes.len());
    &bytes[..end]
}

/// Replaces an existing NAME=… entry in place, or appends.
fn set_env(env: &mut Vec<OsString>, entry: OsString) {
    let name = env_name(&entry).to_vec();
    match env.iter_mut().find(|e| env_name(e) == name.as_slice()) {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_env_replaces_by_name() {
        let mut env = vec![OsString::from("A=1"), OsString::from("B=2")];
        set_env(&mut env, OsString::from("A=3"));
        set_env(&mut env, OsString::from("C=4"));
        assert_eq!(
            env,
            vec![
                OsString::from("A=3"),
                OsString::from("B=2"),
                OsString::from("C=4")
            ]
        );
    }
}
