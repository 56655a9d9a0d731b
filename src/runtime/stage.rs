//! The one description of a stage: everything the runtime needs to build
//! and run it, resolved already (store lookups, host paths), and the
//! few facts about the host the runtime reads itself (`Facts`).

use std::ffi::OsString;
use std::fs;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use super::seccomp;

/// The host's system dirs a stage sees read-only when it names no layer.
pub const BASE_DIRS: &[&str] = &[
    "/bin", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/sbin", "/usr",
];

/// How a host base path looks, read by the parent before cloning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEntry {
    Dir,
    Symlink(PathBuf),
}

#[derive(Debug, Clone)]
pub struct PlannedSlice {
    pub label: String,
    pub tree: PathBuf,
    pub mount_point: PathBuf,
}

/// A stored layer of the stage's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLayer {
    pub label: String,
    /// Its tree on the host: whiteouts as 0/0 character devices, opaque
    /// dirs marked with `user.overlay.opaque`.
    pub tree: PathBuf,
}

/// A fresh tmpfs the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTmpfs {
    pub target: PathBuf,
    /// Bytes; `None` is the kernel's default (half of RAM).
    pub size: Option<u64>,
    pub mode: u32,
}

/// A host path the user bound into the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBind {
    /// Absolute, as the host resolves it.
    pub source: PathBuf,
    pub target: PathBuf,
    pub writable: bool,
    pub is_dir: bool,
    /// The stage's `--out` dir (its source is the store's, not the user's).
    pub is_output: bool,
}

/// What becomes of the caller's working directory inside the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkdirView {
    /// Bound read-only at its own path.
    Shown,
    /// Already visible inside a base dir.
    InsideBase,
    /// Not shown; the reason completes "it would …" / "it is …".
    Hidden(&'static str),
}

/// The rules for the working directory: it never covers a directory the
/// stage provides itself, and the host's root or /sys are never shown.
pub fn workdir_view(workdir: &Path, base: &[(PathBuf, HostEntry)]) -> WorkdirView {
    if workdir == Path::new("/") {
        return WorkdirView::Hidden("it is the host's whole root");
    }
    for (dir, why) in [
        ("/proc", "it would cover the stage's own /proc"),
        ("/dev", "it would cover the stage's own /dev"),
        ("/sys", "the stage does not show the host's /sys"),
    ] {
        if workdir.starts_with(dir) {
            return WorkdirView::Hidden(why);
        }
    }
    if workdir == Path::new("/tmp") {
        return WorkdirView::Hidden("it would cover the stage's own /tmp");
    }
    if base
        .iter()
        .any(|(b, e)| *e == HostEntry::Dir && workdir.starts_with(b))
    {
        return WorkdirView::InsideBase;
    }
    WorkdirView::Shown
}

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
    /// The root's layers, bottom first: their OverlayFS replaces the
    /// host's base dirs (`base` is empty then). None: a tmpfs root.
    pub layers: Vec<PlannedLayer>,
    /// The overlay's upper and work dirs on the host (`--upper DIR` and
    /// `DIR.work`), which keep what the stage changes; `None`: a tmpfs of
    /// the stage's own that goes with it.
    pub upper: Option<(PathBuf, PathBuf)>,
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
    /// Which dispositions the caller may have changed since it started.
    pub caller_signals: CallerSignals,
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

/// What the caller did to its signal dispositions, so the payload resets
/// only what needs it: each reset is a system call of every stage's start.
/// Exec itself resets caught signals to the default; only ignored ones
/// survive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallerSignals {
    /// Any disposition may have changed (bash, a host of the C API): the
    /// payload sets every one.
    #[default]
    Changed,
    /// Only handlers were installed, and SIGPIPE ignored (by Rust's
    /// runtime), since the process started with what `ignored_signals`
    /// lists (the slicebox executable): the payload sets SIGPIPE and the
    /// signals its pid 1 resets.
    Inherited,
}

/// One `--rlimit`: a `libc::RLIMIT_*` resource and its soft and hard values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

/// Reads how the host's base dirs look (dir, symlink, absent).
pub fn host_base() -> Vec<(PathBuf, HostEntry)> {
    BASE_DIRS
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

/// What the runtime reads of the host when a stage starts, beside the
/// stage itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The caller's effective uid and gid.
    pub outer_uid: u32,
    pub outer_gid: u32,
    /// The kernel's Landlock ABI version (0: none; read only for `--net none`).
    pub landlock_abi: u32,
    /// The number of the stage's own pty in the host's /dev/pts, shown at
    /// the same path inside so that ttyname() works (with `dev`, whose
    /// devpts covers that path, at /dev/console).
    pub terminal: Option<u32>,
}

impl Facts {
    pub fn read(stage: &Stage, terminal: Option<u32>) -> Facts {
        Facts {
            outer_uid: nix::unistd::geteuid().as_raw(),
            outer_gid: nix::unistd::getegid().as_raw(),
            landlock_abi: if stage.isolate_net {
                super::sys::landlock_abi()
            } else {
                0
            },
            terminal,
        }
    }
}

#[cfg(test)]
impl Facts {
    /// A caller of uid and gid 1000, with no Landlock and no terminal.
    pub(crate) fn user() -> Facts {
        Facts {
            outer_uid: 1000,
            outer_gid: 1000,
            landlock_abi: 0,
            terminal: None,
        }
    }
}

#[cfg(test)]
impl Stage {
    /// `true` with nothing else, for tests to fill in.
    pub(crate) fn bare() -> Stage {
        Stage {
            argv: vec![OsString::from("true")],
            fallback: None,
            env: Vec::new(),
            slices: Vec::new(),
            layers: Vec::new(),
            upper: None,
            base: Vec::new(),
            workdir: None,
            workdir_source: None,
            start_dir: PathBuf::from("/"),
            isolate_net: false,
            binds: Vec::new(),
            stdio: [0, 1, 2],
            fds: Vec::new(),
            ignored_signals: Vec::new(),
            caller_signals: CallerSignals::Changed,
            dev: false,
            tmpfs: Vec::new(),
            rw_workdir: false,
            hostname: None,
            identity: None,
            rlimits: Vec::new(),
            timeout: None,
            seccomp: seccomp::Filter::Default {
                allow_userns: false,
            },
            timed: false,
        }
    }
}
