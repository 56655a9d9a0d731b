//! Everything the cloned child needs, made by the caller before the clone:
//! the plan, C strings and pointer arrays for execve, descriptors, limits,
//! the identity and the seccomp program. The child only reads it.

use std::ffi::{CString, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use libc::{c_char, c_int};

use super::error::Error;
use super::stage::{CallerSignals, Facts, Rlimit, Stage};
use super::steps::Plan;
use super::sys::{CAP_SETFCAP, CAP_SETGID, CAP_SETUID};
use super::{plan, seccomp};

pub struct Prepared {
    pub clone_flags: libc::c_ulong,
    pub plan: Plan,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// Paths execve tries in order (the PATH search, done inside the new root).
    pub exec_candidates: Vec<CString>,
    /// Caller descriptors that become the payload's 0, 1 and 2; -1 leaves
    /// that one closed.
    pub stdio: [RawFd; 3],
    /// Which of 0, 1, 2 is the stage's own terminal, to make it the
    /// payload's controlling terminal.
    pub terminal_slot: Option<usize>,
    /// Caller descriptors passed through, each as (its number, the
    /// payload's number); targets are above 2 and distinct.
    pub fds: Vec<(RawFd, RawFd)>,
    /// Signals left ignored in the payload; every other one is reset.
    pub ignored_signals: Vec<c_int>,
    pub caller_signals: CallerSignals,
    pub rlimits: Vec<Rlimit>,
    /// The payload's uid_map and gid_map in a user namespace nested in the
    /// stage's, entered after setup (`--uid`, `--gid`).
    pub identity: Option<Identity>,
    /// The stage's uid_map and gid_map, when the caller writes them (as
    /// root, with `--uid`/`--gid`); pid 1 waits for them before setup.
    pub caller_maps: Option<(Vec<u8>, Vec<u8>)>,
    pub timeout: Option<std::time::Duration>,
    /// The payload's system call filter, installed last before exec.
    pub seccomp: seccomp::Program,
    /// Record when each part of the start happened (`SLICEBOX_TIMES`).
    pub timed: bool,
}

/// Who the payload is inside (`--uid`, `--gid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// As root: ids the payload takes in the stage's own user namespace,
    /// which maps each to the same id outside. A real uid other than 0
    /// has no power at all, and root can map it, so it runs as exactly
    /// that user (it cannot read what only root may read).
    pub switch_to: Option<(u32, u32)>,
    /// The maps of a user namespace nested in the stage's, entered after
    /// setup: how a caller without root runs as another id, and how uid 0
    /// looks like root without power over the stage's mounts.
    pub nested: Option<NestedMaps>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedMaps {
    pub uid_map: Vec<u8>,
    pub gid_map: Vec<u8>,
    /// The uid map's outside uid is 0 (sandbox runs as root).
    pub maps_root: bool,
}

impl Identity {
    /// The capabilities pid 1 leaves the payload to take its identity:
    /// CAP_SETUID and CAP_SETGID to switch ids, CAP_SETFCAP for a nested
    /// map of uid 0 (the kernel's verify_root_map). The payload loses them
    /// all when it switches to a uid other than 0, or enters the nested
    /// namespace, whose bounding set it empties.
    pub(crate) fn capabilities(&self) -> u64 {
        let switch = if self.switch_to.is_some() {
            1 << CAP_SETUID | 1 << CAP_SETGID
        } else {
            0
        };
        let map_root = if self.nested.as_ref().is_some_and(|n| n.maps_root) {
            1 << CAP_SETFCAP
        } else {
            0
        };
        switch | map_root
    }
}

impl Prepared {
    /// What the child of `stage` needs, with its `plan`; `stdio` are the
    /// descriptors that become 0, 1, 2 (a terminal replaced by the stage's
    /// own pty, the payload's controlling terminal at `terminal_slot`).
    pub fn new(
        stage: &Stage,
        facts: &Facts,
        plan: Plan,
        stdio: [RawFd; 3],
        terminal_slot: Option<usize>,
    ) -> Result<Prepared, Error> {
        let mut clone_flags = libc::CLONE_NEWUSER
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS;
        if stage.isolate_net {
            clone_flags |= libc::CLONE_NEWNET;
        }
        let mut exec_candidates = exec_candidates(&stage.argv[0], &stage.env)?;
        if let Some(fallback) = &stage.fallback {
            exec_candidates.extend(self::exec_candidates(fallback, &stage.env)?);
        }
        let strings = |all: &[OsString]| -> Result<Vec<CString>, Error> {
            all.iter().map(|s| cstring(s.clone().into_vec())).collect()
        };
        Ok(Prepared {
            clone_flags: clone_flags as libc::c_ulong,
            plan,
            argv: strings(&stage.argv)?,
            env: strings(&stage.env)?,
            exec_candidates,
            stdio,
            terminal_slot,
            fds: stage.fds.clone(),
            ignored_signals: stage.ignored_signals.clone(),
            caller_signals: stage.caller_signals,
            rlimits: stage.rlimits.clone(),
            identity: stage
                .identity
                .map(|asked| identity_for(facts.outer_uid, facts.outer_gid, asked)),
            caller_maps: plan::caller_writes_id_maps(stage, facts)
                .then(|| plan::stage_id_maps(stage, facts)),
            timeout: stage.timeout,
            seccomp: stage.seccomp.program()?,
            timed: stage.timed,
        })
    }
}

/// The shell a script without a `#!` line runs with.
pub(crate) const SCRIPT_SHELL: &std::ffi::CStr = c"/bin/sh";

/// `argv` for running a script with `SCRIPT_SHELL`: slot 1 is the script.
pub(crate) fn script_argv(argv: &[*const c_char]) -> Vec<std::cell::Cell<*const c_char>> {
    [SCRIPT_SHELL.as_ptr(), std::ptr::null()]
        .into_iter()
        .chain(argv.iter().skip(1).copied())
        .map(std::cell::Cell::new)
        .collect()
}

/// Null-terminated pointer arrays for execve, built before cloning.
pub(crate) fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The most `--fd`s a stage takes (the payload sorts them without allocating).
pub const MAX_FDS: usize = 64;

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn cstring(bytes: impl Into<Vec<u8>>) -> Result<CString, Error> {
    CString::new(bytes).map_err(|_| Error::Nul)
}

/// How the payload becomes `--uid`/`--gid` for a caller of `euid` and
/// `egid`.
pub(crate) fn identity_for(euid: u32, egid: u32, (uid, gid): (u32, u32)) -> Identity {
    if euid != 0 {
        return Identity {
            switch_to: None,
            nested: Some(NestedMaps {
                uid_map: format!("{uid} {euid} 1\n").into_bytes(),
                gid_map: format!("{gid} {egid} 1\n").into_bytes(),
                maps_root: false,
            }),
        };
    }
    // Root maps the ids themselves (see plan's stage maps) and switches to
    // them; uid 0 still gets a nested namespace, so that it has no power
    // over the stage's mounts.
    Identity {
        switch_to: Some((uid, gid)),
        nested: (uid == 0).then(|| NestedMaps {
            uid_map: b"0 0 1\n".to_vec(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
            maps_root: true,
        }),
    }
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
}
