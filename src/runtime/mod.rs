//! The kernel work: a stage description becomes namespaces, mounts and one
//! exec. `plan` decides the mount order, `syscall` is the seam every
//! state-changing call goes through, `process` clones, execs and waits,
//! `seccomp` builds the payload's system call filter, and `terminal`
//! gives a stage on a terminal a pty of its own.

pub mod plan;
pub mod process;
pub mod seccomp;
pub mod syscall;
pub mod terminal;

use std::ffi::{CString, OsString};
use std::fs;
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::text::printable_path;
pub use plan::{
    workdir_view, HostEntry, PlanInput, PlannedBind, PlannedSlice, PlannedTmpfs, WorkdirView,
};
pub use process::{now_ns, ChildTimes, HostSignals, InitStep, Outcome, MAX_FDS};

/// One sandboxed process, fully resolved: store lookups are done.
#[derive(Debug, Clone)]
pub struct Stage {
    pub argv: Vec<OsString>,
    /// Tried when `argv[0]` is not found inside (the user's `$SHELL` may
    /// not exist there: `/bin/sh` then).
    pub fallback: Option<OsString>,
    /// `NAME=VALUE` entries, the payload's whole environment.
    pub env: Vec<OsString>,
    pub slices: Vec<PlannedSlice>,
    /// How the host's base dirs look (`host_base()`).
    pub base: Vec<(PathBuf, HostEntry)>,
    /// The caller's working directory (absolute), shown read-only at its
    /// own path; `None` hides it.
    pub workdir: Option<PathBuf>,
    /// Where the working directory's content comes from instead (a
    /// `--cache` stage's stored snapshot of it).
    pub workdir_source: Option<PathBuf>,
    /// Where the payload starts, resolved inside the stage.
    pub start_dir: PathBuf,
    pub isolate_net: bool,
    pub binds: Vec<PlannedBind>,
    /// The caller's descriptors for the payload's 0, 1, 2 (-1: closed).
    pub stdio: [RawFd; 3],
    /// (caller's descriptor, its number in the payload), for `--fd`.
    pub fds: Vec<(RawFd, RawFd)>,
    pub ignored_signals: Vec<i32>,
    pub dev: bool,
    pub tmpfs: Vec<PlannedTmpfs>,
    pub rw_workdir: bool,
    pub hostname: Option<OsString>,
    /// The payload's uid and gid inside a nested user namespace.
    pub identity: Option<(u32, u32)>,
    pub rlimits: Vec<Rlimit>,
    pub timeout: Option<std::time::Duration>,
    /// The system call filter the payload installs last before exec.
    pub seccomp: seccomp::Filter,
    /// Record the times of the start's steps (`SLICEBOX_TIMES`).
    pub timed: bool,
}

/// One `--rlimit`: a `libc::RLIMIT_*` resource and its soft and hard values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Plan(#[from] plan::PlanError),
    #[error("argument contains a NUL byte")]
    Nul,
    #[error("cannot build the seccomp filter: {0}")]
    Seccomp(#[from] seccompiler::BackendError),
    #[error("cannot {what}: {}{hint}", strerror_of(.source))]
    Spawn {
        what: &'static str,
        source: std::io::Error,
        hint: String,
    },
}

/// What became of a stage, with the message to print when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    pub message: Option<String>,
    /// With `Stage::timed`: when planning began, and the child's times.
    pub times: Option<(u64, ChildTimes)>,
}

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn cstring(bytes: impl Into<Vec<u8>>) -> Result<CString, Error> {
    CString::new(bytes).map_err(|_| Error::Nul)
}

/// How the payload becomes `--uid`/`--gid` (see `process::Identity`).
fn identity(asked: (u32, u32)) -> process::Identity {
    identity_for(
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
        asked,
    )
}

fn identity_for(euid: u32, egid: u32, (uid, gid): (u32, u32)) -> process::Identity {
    if euid != 0 {
        return process::Identity {
            switch_to: None,
            nested: Some(process::NestedMaps {
                uid_map: format!("{uid} {euid} 1\n").into_bytes(),
                gid_map: format!("{gid} {egid} 1\n").into_bytes(),
                maps_root: false,
            }),
        };
    }
    // Root maps the ids themselves (see plan's stage maps) and switches to
    // them; uid 0 still gets a nested namespace, so that it has no power
    // over the stage's mounts.
    process::Identity {
        switch_to: Some((uid, gid)),
        nested: (uid == 0).then(|| process::NestedMaps {
            uid_map: b"0 0 1\n".to_vec(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
            maps_root: true,
        }),
    }
}

/// Reads how the host's base dirs look (dir, symlink, absent).
pub fn host_base() -> Vec<(PathBuf, HostEntry)> {
    plan::BASE_DIRS
        .iter()
        .filter_map(|dir| {
            let meta = fs::symlink_metadata(dir).ok()?;
            if meta.file_type().is_symlink() {
                Some((
                    PathBuf::from(dir),
                    HostEntry::Symlink(fs::read_link(dir).ok()?),
                ))
            } else if meta.is_dir() {
                Some((PathBuf::from(dir), HostEntry::Dir))
            } else {
                None
            }
        })
        .collect()
}

/// Where execve looks for `command`: as given when it holds a slash, else
/// in each PATH entry of the payload's environment.
fn exec_candidates(command: &OsString, env: &[OsString]) -> Result<Vec<CString>, Error> {
    let bytes = command.as_bytes();
    if bytes.contains(&b'/') {
        return Ok(vec![cstring(bytes)?]);
    }
    let path = env
        .iter()
        .find_map(|e| e.as_bytes().strip_prefix(b"PATH="))
        .unwrap_or(DEFAULT_PATH.as_bytes());
    path.split(|c| *c == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { &b"."[..] } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(bytes);
            cstring(full)
        })
        .collect()
}

/// Runs the stage to completion. `host` reports signals the caller's host
/// (bash) received itself while the stage ran.
pub fn run(stage: &Stage, host: Option<&mut (dyn HostSignals + 'static)>) -> Result<Report, Error> {
    let planning = now_ns();
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    if stage.isolate_net {
        flags |= libc::CLONE_NEWNET;
    }
    let mut stdio = stage.stdio;
    let attached = terminal::Terminal::attach(&mut stdio).map_err(|source| Error::Spawn {
        what: "give the stage a terminal of its own",
        source,
        hint: String::new(),
    })?;
    let (mut terminal, terminal_slot) = match attached {
        Some((t, slot)) => (Some(t), Some(slot)),
        None => (None, None),
    };
    let input = PlanInput {
        outer_uid: nix::unistd::geteuid().as_raw(),
        outer_gid: nix::unistd::getegid().as_raw(),
        base: stage.base.clone(),
        slices: stage.slices.clone(),
        workdir: stage.workdir.clone(),
        workdir_source: stage.workdir_source.clone(),
        start_dir: stage.start_dir.clone(),
        isolate_net: stage.isolate_net,
        binds: stage.binds.clone(),
        landlock_abi: if stage.isolate_net {
            syscall::landlock_abi()
        } else {
            0
        },
        terminal: terminal.as_ref().map(|t| t.number()),
        dev: stage.dev,
        tmpfs: stage.tmpfs.clone(),
        rw_workdir: stage.rw_workdir,
        identity: stage.identity,
        hostname: stage
            .hostname
            .as_ref()
            .map(|h| cstring(h.clone().into_vec()))
            .transpose()?,
    };
    let plan = plan::plan(&input)?;
    let caller_maps = plan::caller_writes_id_maps(&input).then(|| plan::stage_id_maps(&input));
    let prepared = process::Prepared {
        clone_flags: flags as libc::c_ulong,
        plan,
        exec_candidates: {
            let mut candidates = exec_candidates(&stage.argv[0], &stage.env)?;
            if let Some(fallback) = &stage.fallback {
                candidates.extend(exec_candidates(fallback, &stage.env)?);
            }
            candidates
        },
        argv: stage
            .argv
            .iter()
            .map(|a| cstring(a.clone().into_vec()))
            .collect::<Result<_, _>>()?,
        env: stage
            .env
            .iter()
            .map(|e| cstring(e.clone().into_vec()))
            .collect::<Result<_, _>>()?,
        stdio,
        terminal_slot,
        fds: stage.fds.clone(),
        ignored_signals: stage.ignored_signals.clone(),
        rlimits: stage.rlimits.clone(),
        identity: stage.identity.map(identity),
        caller_maps,
        timeout: stage.timeout,
        seccomp: stage.seccomp.program()?,
        timed: stage.timed,
    };
    let (outcome, child_times) = process::spawn_and_wait(&prepared, terminal.as_mut(), host)
        .map_err(|e| Error::Spawn {
            what: e.what,
            hint: e.hint,
            source: e.source,
        })?;
    let message = match outcome {
        Outcome::SetupFailed(failure) => Some(setup_message(&prepared.plan, failure)),
        Outcome::InitFailed { step, errno } => {
            Some(format!("cannot {}: {}", step.what(), strerror(errno)))
        }
        Outcome::TimedOut => Some(format!(
            "stopped the stage: its --timeout of {} passed",
            stage
                .timeout
                .map(|t| format!("{}s", t.as_secs_f64()))
                .unwrap_or_default()
        )),
        Outcome::ExecFailed { errno, not_found } => Some(format!(
            "cannot execute '{}': {}",
            crate::text::printable(stage.argv[0].as_bytes()),
            if not_found {
                "command not found".to_string()
            } else {
                strerror(errno)
            }
        )),
        _ => None,
    };
    Ok(Report {
        outcome,
        message,
        times: child_times.map(|t| (planning, t)),
    })
}

/// "cannot <step>: <cause>", naming the component a walk stopped at.
fn setup_message(plan: &plan::Plan, failure: plan::StepFailure) -> String {
    let Some(step) = plan.steps.get(failure.step) else {
        return format!("cannot set up the stage: {}", strerror(failure.errno));
    };
    let cause = match (step.op.target(), failure.component) {
        (Some(target), component) if component >= 0 => {
            let at = target.prefix(component as usize);
            match failure.errno {
                libc::ELOOP => format!(
                    "'{}' is a symbolic link, and mount points are never resolved through one",
                    printable_path(&at)
                ),
                libc::ENOTDIR => format!("'{}' is not a directory", printable_path(&at)),
                errno => format!("'{}': {}", printable_path(&at), strerror(errno)),
            }
        }
        (_, plan::SOURCE_FAILED) => format!(
            "'{}': {}",
            step.source().map_or(String::new(), printable_path),
            strerror(failure.errno)
        ),
        _ if matches!(step.op, plan::Op::Chdir { .. }) && failure.errno == libc::ELOOP => format!(
            "{} (links to a process's descriptors, cwd or root are not followed)",
            strerror(failure.errno)
        ),
        _ => strerror(failure.errno),
    };
    // The id maps are the first thing a stage writes: when /proc refuses
    // them, the usual cause is a /proc that another container masks.
    let hint = match &step.op {
        plan::Op::WriteFile { path, .. } if path.to_bytes().starts_with(b"/proc/self/") => {
            "; /proc cannot be written here: inside another container /proc may be masked \
             or read-only, so run slicebox on the host or in a container whose /proc is not masked"
        }
        _ => "",
    };
    format!("cannot {}: {cause}{hint}", step.what())
}

fn strerror_of(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(errno) => strerror(errno),
        None => error.to_string(),
    }
}

pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // "No such file or directory (os error 2)" -> the part users know.
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search_uses_the_payload_path_and_keeps_slashed_commands() {
        let env = vec![OsString::from("PATH=/opt/node/bin::/usr/bin")];
        let found = exec_candidates(&OsString::from("node"), &env).unwrap();
        assert_eq!(
            found,
            vec![
                c"/opt/node/bin/node".to_owned(),
                c"./node".to_owned(),
                c"/usr/bin/node".to_owned()
            ]
        );
        let direct = exec_candidates(&OsString::from("./tool.py"), &env).unwrap();
        assert_eq!(direct, vec![c"./tool.py".to_owned()]);
        let default = exec_candidates(&OsString::from("true"), &[]).unwrap();
        assert_eq!(default.len(), 3);
    }

    #[test]
    fn a_refused_id_map_names_a_masked_proc() {
        let input = PlanInput::bare();
        let plan = plan::plan(&input).unwrap();
        let failure = plan::StepFailure {
            step: 0,
            errno: libc::EACCES,
            component: -1,
        };
        let message = setup_message(&plan, failure);
        assert!(
            message.starts_with("cannot write /proc/self/setgroups: Permission denied"),
            "{message}"
        );
        assert!(message.contains("masked"), "{message}");
    }

    #[test]
    fn strerror_drops_the_os_error_suffix() {
        assert_eq!(strerror(libc::ENOENT), "No such file or directory");
    }
}
