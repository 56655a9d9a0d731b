//! `sandbox`: resolve slices in the store, build the stage, run it, and
//! turn its outcome into an exit status.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{open_store, Context, Exit, Failure, Parsed};
use crate::runtime::{self, Outcome, PlannedSlice, Stage};

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
                String::from_utf8_lossy(other)
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
                    value.to_string_lossy()
                ))
            })?;
        // SAFETY: F_GETFD only queries the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
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
            let failure =
                |e: crate::store::Error| setup_failure(format!("cannot use slice '{name}': {e}"));
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
                entry.to_string_lossy()
            )));
        }
        set_env(&mut env, entry.to_os_string());
    }
    for name in parsed.values("unsetenv") {
        env.retain(|e| env_name(e) != name.as_bytes());
    }

    let workdir = std::env::current_dir()
        .map_err(|e| setup_failure(format!("cannot read the current directory: {e}")))?;
    let stage = Stage {
        argv: parsed.operands.clone(),
        env,
        slices,
        workdir,
        chdir,
        isolate_net,
        stdio: ctx.stdio,
        keep_fds,
        ignored_signals: ctx.ignored_signals.clone(),
    };
    let report = runtime::run(&stage).map_err(|e| setup_failure(e.to_string()))?;
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
