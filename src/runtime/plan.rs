//! Turns a stage into the ordered list of setup steps the cloned child
//! executes. Planning happens in the parent, where allocation is allowed;
//! the child only walks the list. Each step carries the words of its error
//! message, so a failure in the child is reported as an index and an errno.
//!
//! Two rules keep setup inside the stage:
//! - Every host path (base dirs, the working directory, the store, the dev
//!   nodes) is opened *before* the stage's root exists, as a detached
//!   mount or an fd. After that, nothing is looked up in the host's tree:
//!   the host's root is never a path inside the new root.
//! - Every target inside the new root is reached by a walk from the root's
//!   fd, one component at a time, with `openat2(RESOLVE_NO_SYMLINKS |
//!   RESOLVE_BENEATH)`. A symlink on the way is an error that names it;
//!   slices and other foreign content can therefore never redirect a mount.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use super::syscall::{Errno, MountAttr, Syscall};
use crate::text::{printable, printable_path};

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const READ_ONLY: u64 = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;
/// One component below a directory, never through a symlink.
const WALK: u64 = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH;

/// Where the stage's root tmpfs is mounted, in the child's private copy of
/// the host's mount tree, while it is assembled. Every host source is
/// opened before this mount covers it.
const ASSEMBLY_POINT: &CStr = c"/tmp";
/// The slot of the new root's fd.
const ROOT: usize = 0;

/// The host's system dirs a stage sees read-only when it names no layer.
pub const BASE_DIRS: &[&str] = &[
    "/bin", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/sbin", "/usr",
];
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// A path inside the new root, split for a walk that never follows a
/// symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    components: Vec<CString>,
    /// Whether missing dirs on the way may be made. Not inside a writable
    /// bind of a host dir: setup never creates anything on the host.
    create: bool,
    /// Components from this index on are known not to exist yet (new dirs
    /// of the stage's own tmpfs): the walk makes them without looking first.
    fresh_from: usize,
}

impl Target {
    fn new(path: &Path) -> Result<Target, PlanError> {
        let mut components = Vec::new();
        for part in path.components() {
            match part {
                Component::RootDir => {}
                Component::Normal(name) => components.push(c(name)?),
                _ => return Err(PlanError::NotNormal(printable_path(path))),
            }
        }
        if components.is_empty() || !path.is_absolute() {
            return Err(PlanError::NotNormal(printable_path(path)));
        }
        Ok(Target {
            path: path.to_path_buf(),
            components,
            create: true,
            fresh_from: usize::MAX,
        })
    }

    fn parent_len(&self) -> usize {
        self.components.len() - 1
    }

    fn last(&self) -> &CStr {
        self.components.last().expect("a target has a component")
    }

    /// The path up to and including component `depth`, for messages.
    pub fn prefix(&self, depth: usize) -> PathBuf {
        let mut out = PathBuf::from("/");
        for part in self.components.iter().take(depth + 1) {
            out.push(OsStr::from_bytes(part.to_bytes()));
        }
        out
    }
}

/// What the last component of a target must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    WriteFile {
        path: CString,
        data: Vec<u8>,
    },
    NewSessionKeyring,
    MakeMountsSlave,
    /// A detached clone of a host path with `attr` applied, kept in `slot`
    /// until it is attached.
    CloneHostTree {
        path: CString,
        slot: usize,
        attr: u64,
        recursive: bool,
    },
    /// The store's `slices/` dir, cloned once read-only into `clone_slot`
    /// (each slice is cloned from there by its two-component path, with no
    /// mount_setattr of its own), and opened as a plain fd in `path_slot`
    /// for kernels that refuse clones of a detached mount.
    OpenStore {
        path: CString,
        clone_slot: usize,
        path_slot: usize,
    },
    MountRoot,
    MountFs {
        fstype: &'static CStr,
        options: Vec<(CString, CString)>,
        attr: u64,
        target: Target,
    },
    Attach {
        slot: usize,
        kind: Kind,
        target: Target,
    },
    AttachFromStore {
        clone_slot: usize,
        path_slot: usize,
        relative: CString,
        target: Target,
    },
    /// Binds a directory of the new root onto itself, read-only.
    MakeReadOnly {
        target: Target,
    },
    Symlink {
        text: CString,
        link: Target,
    },
    /// Covers the existing dir `target` of a read-only mount with a tmpfs
    /// that shows the same entries (each re-bound from a clone taken
    /// first, symlinks made anew), so that a mount point missing below it
    /// can be made. `entries` needing a clone use slots from `first_slot`.
    Shadow {
        target: Target,
        entries: Vec<ShadowEntry>,
        first_slot: usize,
        options: Vec<(CString, CString)>,
    },
    /// Makes a `Shadow` tmpfs read-only once the mounts below it are made.
    SealShadow {
        target: Target,
    },
    LoopbackUp,
    SetHostname {
        name: CString,
    },
    /// Landlock (ABI 9+): the stage may connect only to Unix sockets it
    /// made itself or that lie below `allowed`.
    RestrictUnixSockets {
        allowed: Vec<Target>,
    },
    CloseSources {
        first: usize,
    },
    /// Root read-only and every mount private, then pivot_root into it and
    /// detach the host's tree.
    EnterRoot,
    Chdir {
        path: CString,
    },
}

impl Op {
    fn target_mut(&mut self) -> Option<&mut Target> {
        match self {
            Op::MountFs { target, .. }
            | Op::Attach { target, .. }
            | Op::AttachFromStore { target, .. }
            | Op::MakeReadOnly { target }
            | Op::Shadow { target, .. }
            | Op::SealShadow { target }
            | Op::Symlink { link: target, .. } => Some(target),
            _ => None,
        }
    }

    pub fn target(&self) -> Option<&Target> {
        match self {
            Op::MountFs { target, .. }
            | Op::Attach { target, .. }
            | Op::AttachFromStore { target, .. }
            | Op::MakeReadOnly { target }
            | Op::Shadow { target, .. }
            | Op::SealShadow { target }
            | Op::Symlink { link: target, .. } => Some(target),
            _ => None,
        }
    }
}

/// One entry of a dir a `Shadow` covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowEntry {
    pub name: CString,
    pub kind: ShadowKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShadowKind {
    Dir,
    /// A file, or anything else a mount can be made on (fifo, socket, node).
    File,
    Symlink(CString),
}

/// What the planner may learn of a host path (a read-only mount's source)
/// before cloning: whether a mount point below it exists, and what a dir
/// holds. `RealHost` reads the filesystem; tests use a fixed one.
pub trait HostView {
    /// `None` when the path does not exist.
    fn kind(&self, path: &Path) -> Option<ShadowKind>;
    fn list(&self, dir: &Path) -> Vec<(OsString, ShadowKind)>;
}

pub struct RealHost;

impl HostView for RealHost {
    fn kind(&self, path: &Path) -> Option<ShadowKind> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(if meta.file_type().is_symlink() {
            let text = std::fs::read_link(path).ok()?;
            ShadowKind::Symlink(CString::new(text.into_os_string().into_vec()).ok()?)
        } else if meta.is_dir() {
            ShadowKind::Dir
        } else {
            ShadowKind::File
        })
    }

    fn list(&self, dir: &Path) -> Vec<(OsString, ShadowKind)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<_> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let kind = match e.file_type().ok()? {
                    t if t.is_dir() => ShadowKind::Dir,
                    t if t.is_symlink() => self.kind(&e.path())?,
                    _ => ShadowKind::File,
                };
                Some((e.file_name(), kind))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    what: What,
}

/// What a step does, in words, rendered only when it fails: most of it is
/// in the op already, and a stage plans dozens of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
enum What {
    Text(&'static str),
    OpenHost,
    OpenStore,
    OpenSlice(String),
    MountFs,
    BindNode,
    BindTerminal,
    Symlink,
    MountBase,
    MountWorkdir,
    /// The slice's label and its tree on the host, which a damaged store
    /// may have lost.
    MountSlice(String, PathBuf),
    Bind(PathBuf),
    Shadow,
    SealShadow,
    Chdir,
}

impl Step {
    /// Completes "cannot …" in the error message.
    pub fn what(&self) -> String {
        let target = || {
            self.op
                .target()
                .map_or(String::new(), |t| printable_path(&t.path))
        };
        let text = |c: &CString| printable(c.as_bytes());
        match (&self.what, &self.op) {
            (What::Text(text), _) => text.to_string(),
            (What::OpenHost, Op::CloneHostTree { path, .. }) => {
                format!("open '{}' on the host", text(path))
            }
            (What::OpenStore, Op::OpenStore { path, .. }) => {
                format!("open the slice store '{}' read-only", text(path))
            }
            (What::OpenSlice(label), _) => format!("open slice '{}'", printable(label.as_bytes())),
            (What::MountFs, Op::MountFs { fstype, .. }) => {
                format!("mount {} on {}", fstype.to_string_lossy(), target())
            }
            (What::BindNode, _) => format!("bind {}", target()),
            (What::BindTerminal, _) => format!("bind the stage's terminal {}", target()),
            (What::Symlink, _) => format!("create symlink '{}'", target()),
            (What::MountBase, _) => format!("mount {} read-only", target()),
            (What::MountWorkdir, _) => {
                format!("mount the working directory '{}' read-only", target())
            }
            (What::MountSlice(label, _), _) => {
                format!(
                    "mount slice '{}' at '{}'",
                    printable(label.as_bytes()),
                    target()
                )
            }
            (What::Bind(source), _) => {
                format!("bind '{}' at '{}'", printable_path(source), target())
            }
            (What::Shadow, _) => format!(
                "cover '{}' with a tmpfs showing the same entries, to make a mount point below it",
                target()
            ),
            (What::SealShadow, _) => format!("make the tmpfs over '{}' read-only", target()),
            (What::Chdir, Op::Chdir { path }) => {
                format!("change directory to '{}'", text(path))
            }
            _ => "set up the stage".to_string(),
        }
    }
}

impl Step {
    /// Where the step's source is on the host, for a failure to open it.
    pub fn source(&self) -> Option<&Path> {
        match &self.what {
            What::MountSlice(_, tree) => Some(tree),
            _ => None,
        }
    }
}

/// The steps and the scratch space the child needs to run them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Fds the steps keep between them (the root, host sources).
    pub slots: usize,
    /// The longest target, in components: the walk keeps one fd per
    /// component of the current parent.
    pub depth: usize,
}

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

#[derive(Debug, Clone)]
pub struct PlanInput {
    pub outer_uid: u32,
    pub outer_gid: u32,
    pub base: Vec<(PathBuf, HostEntry)>,
    pub slices: Vec<PlannedSlice>,
    /// The caller's working directory, shown read-only at its own path;
    /// `None` when it is hidden.
    pub workdir: Option<PathBuf>,
    /// Where the working directory's content comes from, when not from
    /// the directory itself (a `--cache` stage's stored snapshot).
    pub workdir_source: Option<PathBuf>,
    /// Where the payload starts, resolved inside the new root.
    pub start_dir: PathBuf,
    pub isolate_net: bool,
    pub binds: Vec<PlannedBind>,
    /// The kernel's Landlock ABI version (0: none).
    pub landlock_abi: u32,
    /// The number of the stage's own pty in the host's /dev/pts, shown at
    /// the same path inside so that ttyname() works (with `dev`, whose
    /// devpts covers that path, at /dev/console).
    pub terminal: Option<u32>,
    /// A devpts of the stage's own at /dev/pts, with /dev/ptmx.
    pub dev: bool,
    pub tmpfs: Vec<PlannedTmpfs>,
    /// The working directory is shown writable.
    pub rw_workdir: bool,
    pub hostname: Option<CString>,
    /// `--uid`/`--gid`: as root, the stage's namespace maps them too.
    pub identity: Option<(u32, u32)>,
}

#[cfg(test)]
impl PlanInput {
    /// A stage of uid/gid 1000 with nothing else, for tests to fill in.
    pub(crate) fn bare() -> PlanInput {
        PlanInput {
            outer_uid: 1000,
            outer_gid: 1000,
            base: Vec::new(),
            slices: Vec::new(),
            workdir: None,
            workdir_source: None,
            start_dir: PathBuf::from("/"),
            isolate_net: false,
            binds: Vec::new(),
            landlock_abi: 0,
            terminal: None,
            dev: false,
            tmpfs: Vec::new(),
            rw_workdir: false,
            hostname: None,
            identity: None,
        }
    }
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

/// The Landlock ABI that can restrict connecting to Unix sockets by path.
pub const LANDLOCK_ABI_UNIX_SOCKETS: u32 = 9;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("{first} and {second} want the same mount point '{path}': one would hide the other")]
    MountPointTaken {
        path: String,
        first: String,
        second: String,
    },
    #[error("path '{0}' contains a NUL byte")]
    Nul(String),
    #[error("mount point '{0}' must be absolute, without '.' or '..'")]
    NotNormal(String),
    #[error("mount point '{0}' is inside the stage's own {1}")]
    Reserved(String, &'static str),
    #[error(
        "--out '{given}' goes through a symbolic link of the stage, and a slice is never \
         mounted through one: use its real path, --out '{real}'"
    )]
    OutputThroughLink { given: String, real: String },
    #[error("bind destination '{0}' goes through more than 40 symbolic links")]
    SymlinkLoop(String),
}

fn c(path: impl AsRef<OsStr>) -> Result<CString, PlanError> {
    let bytes = path.as_ref().as_bytes();
    CString::new(bytes).map_err(|_| PlanError::Nul(printable(bytes)))
}

/// Directories every stage gets fresh; foreign content may not cover them.
const STAGE_DIRS: &[(&str, &str)] = &[("/proc", "/proc"), ("/dev", "/dev")];

/// Refuses mount points that would cover what the stage itself provides.
/// Only an explicit bind may replace the fresh /tmp.
fn check_foreign_target(path: &Path, may_cover_tmp: bool) -> Result<(), PlanError> {
    for (dir, name) in STAGE_DIRS {
        if path.starts_with(dir) {
            return Err(PlanError::Reserved(printable_path(path), name));
        }
    }
    if path == Path::new("/tmp") && !may_cover_tmp {
        return Err(PlanError::Reserved(printable_path(path), "/tmp"));
    }
    Ok(())
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

/// One foreign mount of the new root, before it becomes steps.
enum Mount<'a> {
    Base { path: &'a Path, slot: usize },
    Workdir { path: &'a Path, slot: usize },
    Slice(&'a PlannedSlice),
    Bind { bind: &'a PlannedBind, slot: usize },
    Tmpfs(&'a PlannedTmpfs),
}

impl Mount<'_> {
    /// Whether an option asked for this mount; the base dirs and the
    /// working directory are implicit, and explicit mounts may cover them.
    fn is_explicit(&self) -> bool {
        !matches!(self, Mount::Base { .. } | Mount::Workdir { .. })
    }

    /// What asked for the mount: for an explicit one, the option as the
    /// user wrote it.
    fn asked_by(&self) -> String {
        match self {
            Mount::Base { path, .. } => format!("the host's '{}'", printable_path(path)),
            Mount::Workdir { .. } => "the working directory".to_string(),
            Mount::Slice(s) => format!("slice '{}'", printable(s.label.as_bytes())),
            Mount::Bind { bind, .. } if bind.is_output => "--out".to_string(),
            Mount::Bind { bind, .. } => format!(
                "{} '{}'",
                if bind.writable { "--bind" } else { "--ro-bind" },
                printable_path(&bind.source)
            ),
            Mount::Tmpfs(_) => "--tmpfs".to_string(),
        }
    }

    fn target(&self) -> &Path {
        match self {
            Mount::Base { path, .. } | Mount::Workdir { path, .. } => path,
            Mount::Slice(s) => &s.mount_point,
            Mount::Bind { bind, .. } => &bind.target,
            Mount::Tmpfs(t) => &t.target,
        }
    }
}

/// The dir a slice tree is cloned from, and the tree's path below it:
/// `<store>/slices` and `<hex>/tree`.
fn source_of(tree: &Path) -> Option<(&Path, &Path)> {
    let dir = tree.parent()?.parent()?;
    Some((dir, tree.strip_prefix(dir).ok()?))
}

struct Planner {
    steps: Vec<Step>,
    slots: usize,
}

impl Planner {
    fn push(&mut self, op: Op, what: What) {
        self.steps.push(Step { op, what });
    }

    fn slot(&mut self) -> usize {
        self.slots += 1;
        self.slots - 1
    }

    fn clone_host(&mut self, path: &Path, attr: u64, recursive: bool) -> Result<usize, PlanError> {
        let slot = self.slot();
        self.push(
            Op::CloneHostTree {
                path: c(path)?,
                slot,
                attr,
                recursive,
            },
            What::OpenHost,
        );
        Ok(slot)
    }

    fn mount_fs(
        &mut self,
        fstype: &'static CStr,
        options: &[(&CStr, &CStr)],
        attr: u64,
        at: &Path,
    ) -> Result<(), PlanError> {
        self.push(
            Op::MountFs {
                fstype,
                options: options
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                attr,
                target: Target::new(at)?,
            },
            What::MountFs,
        );
        Ok(())
    }

    fn symlink(&mut self, text: &Path, link: &Path) -> Result<(), PlanError> {
        self.push(
            Op::Symlink {
                text: c(text)?,
                link: Target::new(link)?,
            },
            What::Symlink,
        );
        Ok(())
    }
}

pub fn plan(input: &PlanInput) -> Result<Plan, PlanError> {
    plan_with(input, &RealHost)
}

/// The nearest proper ancestor of `path` that is a key of `mounts`: the
/// mount that holds `path` (a later mount at the same target covers an
/// earlier one, as an insert replaces).
fn holder<'m, 'p, V>(mounts: &'m HashMap<PathBuf, V>, path: &'p Path) -> Option<(&'p Path, &'m V)> {
    path.ancestors()
        .skip(1)
        .find_map(|a| Some((a, mounts.get(a)?)))
}

/// A mount already planned, as a later mount below it sees it.
struct Placed {
    /// Where its content comes from on the host (`None`: the stage's own).
    source: Option<PathBuf>,
    read_only: bool,
}

/// For a mount at `target` below the read-only mount `cover`: the deepest
/// dir of `cover` on the way that exists, when the next component does
/// not (a mount point must be made there, and a read-only mount cannot
/// make it). `None` when the way exists, or stops at something the walk
/// itself will refuse or report.
fn missing_below(
    cover_target: &Path,
    cover: &Placed,
    target: &Path,
    host: &dyn HostView,
) -> Option<(PathBuf, PathBuf)> {
    let source = cover.source.as_ref()?;
    let relative = target.strip_prefix(cover_target).ok()?;
    let (mut inside, mut on_host) = (cover_target.to_path_buf(), source.clone());
    if host.kind(&on_host) != Some(ShadowKind::Dir) {
        return None;
    }
    for part in relative.components() {
        let next = on_host.join(part);
        match host.kind(&next) {
            Some(ShadowKind::Dir) => {}
            None => return Some((inside, on_host)),
            Some(_) => return None,
        }
        inside.push(part);
        on_host = next;
    }
    None
}

/// Where a `--bind` destination lands inside the stage, following its
/// symlinks there as the payload would see them (bubblewrap binds over a
/// destination that is a symlink). The stage's tree is known before it is
/// built: each path lies in a base dir, the working directory, a slice, a
/// bind (their sources, which the planner can read) or in the stage's own
/// tmpfs (no symlinks but the base dirs' own). Only link texts are read;
/// the result is then walked like any mount point, never through a link,
/// and checked against the stage's own dirs.
fn resolve_destination(
    destination: &Path,
    input: &PlanInput,
    host: &dyn HostView,
) -> Result<PathBuf, PlanError> {
    // Target -> source, in the order the mounts stack at one target.
    let mut covers: HashMap<PathBuf, &Path> = HashMap::new();
    for (path, entry) in &input.base {
        if *entry == HostEntry::Dir {
            covers.insert(path.clone(), path);
        }
    }
    if let Some(workdir) = &input.workdir {
        covers.insert(
            workdir.clone(),
            input.workdir_source.as_ref().unwrap_or(workdir),
        );
    }
    for slice in &input.slices {
        covers.insert(slice.mount_point.clone(), &slice.tree);
    }
    for bind in &input.binds {
        covers.insert(bind.target.clone(), &bind.source);
    }
    let link_at = |path: &Path| -> Option<PathBuf> {
        for (at, entry) in &input.base {
            if let HostEntry::Symlink(text) = entry {
                if at == path {
                    return Some(text.clone());
                }
            }
        }
        // Below a tmpfs of the user's, the stage's own: no links.
        if input.tmpfs.iter().any(|t| path.starts_with(&t.target)) {
            return None;
        }
        let (target, source) = holder(&covers, path)?;
        match host.kind(&source.join(path.strip_prefix(target).ok()?))? {
            ShadowKind::Symlink(text) => Some(PathBuf::from(OsString::from_vec(text.into_bytes()))),
            _ => None,
        }
    };
    let mut todo: std::collections::VecDeque<OsString> = destination
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            _ => None,
        })
        .collect();
    let mut current = PathBuf::from("/");
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            current.pop();
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        let candidate = current.join(&part);
        match link_at(&candidate) {
            Some(text) => {
                hops += 1;
                if hops > 40 {
                    return Err(PlanError::SymlinkLoop(printable_path(destination)));
                }
                if text.is_absolute() {
                    current = PathBuf::from("/");
                }
                for (i, c) in text
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(n) => Some(n.to_os_string()),
                        Component::ParentDir => Some(OsString::from("..")),
                        _ => None,
                    })
                    .enumerate()
                {
                    todo.insert(i, c);
                }
            }
            None => current = candidate,
        }
    }
    Ok(current)
}

/// The stage's own id maps, uid_map and gid_map: the caller's uid and gid
/// as themselves. As root with `--uid`/`--gid`, those ids are mapped too
/// (the payload switches to them). A map of more than one id can only be
/// written from outside the namespace, by the caller: see
/// `caller_writes_id_maps`.
pub fn stage_id_maps(input: &PlanInput) -> (Vec<u8>, Vec<u8>) {
    let map = |own: u32, asked: Option<u32>| {
        let mut text = format!("{own} {own} 1\n");
        if let Some(id) = asked.filter(|id| *id != own) {
            text.push_str(&format!("{id} {id} 1\n"));
        }
        text.into_bytes()
    };
    let (uid, gid) = match input.identity {
        Some((uid, gid)) if caller_writes_id_maps(input) => (Some(uid), Some(gid)),
        _ => (None, None),
    };
    (map(input.outer_uid, uid), map(input.outer_gid, gid))
}

/// Root with `--uid`/`--gid`: the caller writes the stage's id maps (the
/// child cannot map ids other than its own), and leaves setgroups allowed
/// so that the payload can drop root's supplementary groups.
pub fn caller_writes_id_maps(input: &PlanInput) -> bool {
    input.outer_uid == 0 && input.identity.is_some()
}

pub fn plan_with(input: &PlanInput, host: &dyn HostView) -> Result<Plan, PlanError> {
    let mut p = Planner {
        steps: Vec::new(),
        slots: 1, // ROOT
    };
    // The payload keeps the caller's uid and gid: a non-zero uid loses
    // every capability at exec, and pid 1 drops them all before it forks
    // the payload, so nothing in the stage holds CAP_SYS_ADMIN over its mounts.
    if !caller_writes_id_maps(input) {
        let (uid_map, gid_map) = stage_id_maps(input);
        for (path, data, what) in [
            (
                "/proc/self/setgroups",
                b"deny".to_vec(),
                "write /proc/self/setgroups",
            ),
            ("/proc/self/uid_map", uid_map, "write /proc/self/uid_map"),
            ("/proc/self/gid_map", gid_map, "write /proc/self/gid_map"),
        ] {
            p.push(
                Op::WriteFile {
                    path: c(path)?,
                    data,
                },
                What::Text(what),
            );
        }
    }
    p.push(
        Op::NewSessionKeyring,
        What::Text("create the stage's session keyring"),
    );
    p.push(
        Op::MakeMountsSlave,
        What::Text("make the mount namespace private"),
    );

    // Host sources, opened while the host's tree is still the one we see.
    let dev_slots: Vec<usize> = DEV_NODES
        .iter()
        .map(|node| {
            p.clone_host(
                &Path::new("/dev").join(node),
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                false,
            )
        })
        .collect::<Result<_, _>>()?;
    let first_source = dev_slots.first().copied().unwrap_or(p.slots);

    // The stage's pty is shown where ttyname() finds it: at its host path,
    // or with --dev (whose devpts covers /dev/pts) at /dev/console, as
    // container runtimes show a container's terminal.
    let terminal = match input.terminal {
        Some(number) => {
            let host_path = PathBuf::from(format!("/dev/pts/{number}"));
            let slot = p.clone_host(&host_path, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false)?;
            let shown_at = if input.dev {
                PathBuf::from("/dev/console")
            } else {
                host_path
            };
            Some((shown_at, slot))
        }
        None => None,
    };
    // A destination that is (or goes through) a symlink binds over what
    // it points to inside the stage.
    let binds: Vec<PlannedBind> = input
        .binds
        .iter()
        .map(|b| {
            Target::new(&b.target)?;
            let target = resolve_destination(&b.target, input, host)?;
            // An --out dir becomes a slice's mount point, and slices are
            // never mounted through a symlink: the stored slice would be
            // unusable. Its real path inside the stage is named instead.
            if b.is_output && target != b.target {
                return Err(PlanError::OutputThroughLink {
                    given: printable_path(&b.target),
                    real: printable_path(&target),
                });
            }
            Ok(PlannedBind {
                target,
                ..b.clone()
            })
        })
        .collect::<Result<_, PlanError>>()?;
    let mut mounts: Vec<Mount<'_>> = Vec::new();
    for (path, entry) in &input.base {
        if *entry == HostEntry::Dir {
            let slot = p.clone_host(path, READ_ONLY, true)?;
            mounts.push(Mount::Base { path, slot });
        }
    }
    if let Some(workdir) = &input.workdir {
        if let WorkdirView::Shown = workdir_view(workdir, &input.base) {
            check_foreign_target(workdir, false)?;
            let attr = if input.rw_workdir {
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
            } else {
                READ_ONLY
            };
            let source = input.workdir_source.as_ref().unwrap_or(workdir);
            let slot = p.clone_host(source, attr, true)?;
            mounts.push(Mount::Workdir {
                path: workdir,
                slot,
            });
        }
    }
    let mut stores: Vec<(&Path, usize, usize)> = Vec::new();
    for slice in &input.slices {
        Target::new(&slice.mount_point)?;
        check_foreign_target(&slice.mount_point, false)?;
        if let Some((dir, _)) = source_of(&slice.tree) {
            if !stores.iter().any(|(d, _, _)| *d == dir) {
                let (clone_slot, path_slot) = (p.slot(), p.slot());
                p.push(
                    Op::OpenStore {
                        path: c(dir)?,
                        clone_slot,
                        path_slot,
                    },
                    What::OpenStore,
                );
                stores.push((dir, clone_slot, path_slot));
            }
        }
        mounts.push(Mount::Slice(slice));
    }

    for bind in &binds {
        Target::new(&bind.target)?;
        check_foreign_target(&bind.target, true)?;
        let attr = if bind.writable {
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
        } else {
            READ_ONLY
        };
        let slot = p.clone_host(&bind.source, attr, true)?;
        mounts.push(Mount::Bind { bind, slot });
    }

    for tmpfs in &input.tmpfs {
        Target::new(&tmpfs.target)?;
        check_foreign_target(&tmpfs.target, true)?;
        mounts.push(Mount::Tmpfs(tmpfs));
    }
    // Explicit mounts are a set, as their order on the command line does
    // not count: two at one point would leave which one shows to chance.
    // (Described only on a collision: this runs for every slice.)
    let mut taken: HashMap<&Path, &Mount<'_>> = HashMap::new();
    for mount in mounts.iter().filter(|m| m.is_explicit()) {
        if let Some(first) = taken.insert(mount.target(), mount) {
            return Err(PlanError::MountPointTaken {
                path: printable_path(mount.target()),
                first: first.asked_by(),
                second: mount.asked_by(),
            });
        }
    }

    p.push(Op::MountRoot, What::Text("mount the stage's root tmpfs"));
    // The stage's own dirs come first, into a root nothing foreign has
    // touched yet.
    p.mount_fs(
        c"tmpfs",
        &[(c"mode", c"0755")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        Path::new("/dev"),
    )?;
    for (node, slot) in DEV_NODES.iter().zip(dev_slots) {
        let path = Path::new("/dev").join(node);
        p.push(
            Op::Attach {
                slot,
                kind: Kind::File,
                target: Target::new(&path)?,
            },
            What::BindNode,
        );
    }
    if let Some((path, slot)) = terminal {
        p.push(
            Op::Attach {
                slot,
                kind: Kind::File,
                target: Target::new(&path)?,
            },
            What::BindTerminal,
        );
    }
    for (link, text) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        p.symlink(Path::new(text), Path::new(link))?;
    }
    p.mount_fs(
        c"tmpfs",
        &[(c"mode", c"1777")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        Path::new("/dev/shm"),
    )?;
    if input.dev {
        // A devpts of the stage's own (every devpts mount in a user
        // namespace is a new instance): ptys made inside stay inside.
        p.mount_fs(
            c"devpts",
            &[(c"ptmxmode", c"0666"), (c"mode", c"0620")],
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            Path::new("/dev/pts"),
        )?;
        p.symlink(Path::new("pts/ptmx"), Path::new("/dev/ptmx"))?;
    }
    p.mount_fs(
        c"proc",
        &[],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        Path::new("/proc"),
    )?;
    p.push(
        Op::MakeReadOnly {
            target: Target::new(Path::new("/proc/sys"))?,
        },
        What::Text("make /proc/sys read-only"),
    );

    p.mount_fs(
        c"tmpfs",
        &[(c"mode", c"1777")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        Path::new("/tmp"),
    )?;
    for (path, entry) in &input.base {
        if let HostEntry::Symlink(text) = entry {
            p.symlink(text, path)?;
        }
    }

    // Parents before children: a parent's path is a byte prefix of its
    // children's, so byte order suffices. At equal paths the order above
    // (base, then workdir, then slices) decides, since the sort is stable.
    mounts.sort_by(|a, b| {
        a.target()
            .as_os_str()
            .as_bytes()
            .cmp(b.target().as_os_str().as_bytes())
    });
    // Below a writable host dir (a --bind, or the working directory with
    // --rw-cwd) a mount point must exist already: nothing is ever created
    // in a host dir. (Below a --tmpfs, the stage's own, it is.)
    let writable_binds: Vec<&Path> = mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Bind { bind, .. } if bind.writable => Some(bind.target.as_path()),
            Mount::Workdir { path, .. } if input.rw_workdir => Some(*path),
            _ => None,
        })
        .collect();
    let under_writable_bind = |path: &Path| {
        writable_binds
            .iter()
            .any(|b| path != *b && path.starts_with(b))
    };
    // Mounts planned so far, by target: a mount's cover is its nearest
    // ancestor in here (a lookup per ancestor, not a scan: 1000 slices).
    let mut placed: HashMap<PathBuf, Placed> = HashMap::new();
    let mut shadows: Vec<PathBuf> = Vec::new();
    for mount in &mounts {
        let target = mount.target();
        let cover = holder(&placed, target);
        if let Some((dir, on_host)) = cover
            .filter(|(_, c)| c.read_only && !under_writable_bind(target))
            .and_then(|(at, c)| missing_below(at, c, target, host))
        {
            let mut entries = Vec::new();
            let first_slot = p.slots;
            for (name, kind) in host.list(&on_host) {
                if kind != ShadowKind::Dir && kind != ShadowKind::File {
                    entries.push(ShadowEntry {
                        name: c(&name)?,
                        kind,
                    });
                    continue;
                }
                p.slot();
                if kind == ShadowKind::Dir {
                    placed.insert(
                        dir.join(&name),
                        Placed {
                            source: Some(on_host.join(&name)),
                            read_only: true,
                        },
                    );
                }
                entries.push(ShadowEntry {
                    name: c(&name)?,
                    kind,
                });
            }
            let mut shadow_target = Target::new(&dir)?;
            shadow_target.create = false;
            p.push(
                Op::Shadow {
                    target: shadow_target,
                    entries,
                    first_slot,
                    options: vec![(c"mode".to_owned(), c"0755".to_owned())],
                },
                What::Shadow,
            );
            // Entries re-bound in the tmpfs (above) are mounts of their
            // own: later mounts below them are covered by those.
            placed.insert(
                dir.clone(),
                Placed {
                    source: None,
                    read_only: false,
                },
            );
            shadows.push(dir);
        }
        let here = Placed {
            source: match mount {
                Mount::Base { path, .. } => Some(path.to_path_buf()),
                Mount::Workdir { path, .. } => Some(
                    input
                        .workdir_source
                        .as_deref()
                        .unwrap_or(path)
                        .to_path_buf(),
                ),
                Mount::Slice(slice) => Some(slice.tree.clone()),
                Mount::Bind { bind, .. } => Some(bind.source.clone()),
                Mount::Tmpfs(_) => None,
            },
            read_only: match mount {
                Mount::Workdir { .. } => !input.rw_workdir,
                Mount::Bind { bind, .. } => !bind.writable,
                Mount::Tmpfs(_) => false,
                _ => true,
            },
        };
        placed.insert(target.to_path_buf(), here);
        match mount {
            Mount::Base { path, slot } | Mount::Workdir { path, slot } => {
                let mut target = Target::new(path)?;
                target.create = !under_writable_bind(path);
                let what = match mount {
                    Mount::Base { .. } => What::MountBase,
                    _ => What::MountWorkdir,
                };
                p.push(
                    Op::Attach {
                        slot: *slot,
                        kind: Kind::Dir,
                        target,
                    },
                    what,
                )
            }
            Mount::Bind { bind, slot } => {
                let mut target = Target::new(&bind.target)?;
                target.create = !under_writable_bind(&bind.target);
                p.push(
                    Op::Attach {
                        slot: *slot,
                        kind: if bind.is_dir { Kind::Dir } else { Kind::File },
                        target,
                    },
                    What::Bind(bind.source.clone()),
                )
            }
            Mount::Tmpfs(tmpfs) => {
                let mode = CString::new(format!("{:o}", tmpfs.mode)).expect("digits");
                let size = tmpfs
                    .size
                    .map(|s| CString::new(s.to_string()).expect("digits"));
                let mut options = vec![(c"mode", mode.as_c_str())];
                if let Some(size) = &size {
                    options.push((c"size", size.as_c_str()));
                }
                // As root with --uid/--gid the payload is that real user:
                // its tmpfs is its own, as a rootless caller's is.
                let owner =
                    input
                        .identity
                        .filter(|_| caller_writes_id_maps(input))
                        .map(|(uid, gid)| {
                            let id = |n: u32| CString::new(n.to_string()).expect("digits");
                            (id(uid), id(gid))
                        });
                if let Some((uid, gid)) = &owner {
                    options.push((c"uid", uid.as_c_str()));
                    options.push((c"gid", gid.as_c_str()));
                }
                p.mount_fs(
                    c"tmpfs",
                    &options,
                    MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                    &tmpfs.target,
                )?;
                if under_writable_bind(&tmpfs.target) {
                    if let Some(Step {
                        op: Op::MountFs { target, .. },
                        ..
                    }) = p.steps.last_mut()
                    {
                        target.create = false;
                    }
                }
            }
            Mount::Slice(slice) => {
                let what = What::MountSlice(slice.label.clone(), slice.tree.clone());
                let mut target = Target::new(&slice.mount_point)?;
                target.create = !under_writable_bind(&slice.mount_point);
                match source_of(&slice.tree).and_then(|(dir, relative)| {
                    let (_, clone_slot, path_slot) = stores.iter().find(|s| s.0 == dir)?;
                    Some((*clone_slot, *path_slot, relative))
                }) {
                    Some((clone_slot, path_slot, relative)) => p.push(
                        Op::AttachFromStore {
                            clone_slot,
                            path_slot,
                            relative: c(relative)?,
                            target,
                        },
                        what,
                    ),
                    None => {
                        // A tree outside any `<store>/slices/<hex>/tree`
                        // layout: cloned from the host like a base dir.
                        // Its clone must precede the root mount.
                        let slot = p.slots;
                        p.slots += 1;
                        let root_step = p
                            .steps
                            .iter()
                            .position(|s| s.op == Op::MountRoot)
                            .expect("planned above");
                        p.steps.insert(
                            root_step,
                            Step {
                                op: Op::CloneHostTree {
                                    path: c(&slice.tree)?,
                                    slot,
                                    attr: READ_ONLY,
                                    recursive: true,
                                },
                                what: What::OpenSlice(slice.label.clone()),
                            },
                        );
                        p.push(
                            Op::Attach {
                                slot,
                                kind: Kind::Dir,
                                target,
                            },
                            what,
                        );
                    }
                }
            }
        }
    }
    for dir in shadows {
        let mut target = Target::new(&dir)?;
        target.create = false;
        p.push(Op::SealShadow { target }, What::SealShadow);
    }
    if let Some(name) = &input.hostname {
        p.push(
            Op::SetHostname { name: name.clone() },
            What::Text("set the host name"),
        );
    }
    if input.isolate_net {
        p.push(
            Op::LoopbackUp,
            What::Text("bring up the loopback interface"),
        );
    }
    p.push(
        Op::CloseSources {
            first: first_source,
        },
        What::Text("close the host sources"),
    );
    p.push(Op::EnterRoot, What::Text("enter the stage's root"));
    if input.isolate_net && input.landlock_abi >= LANDLOCK_ABI_UNIX_SOCKETS {
        p.push(
            Op::RestrictUnixSockets {
                allowed: binds
                    .iter()
                    .map(|b| {
                        let mut t = Target::new(&b.target)?;
                        t.create = false;
                        Ok(t)
                    })
                    .collect::<Result<_, PlanError>>()?,
            },
            What::Text("restrict Unix sockets to --bind paths (Landlock)"),
        );
    }
    p.push(
        Op::Chdir {
            path: c(&input.start_dir)?,
        },
        What::Chdir,
    );

    mark_fresh_dirs(&mut p.steps);
    let depth = p
        .steps
        .iter()
        .filter_map(|s| s.op.target())
        .map(|t| t.components.len())
        .max()
        .unwrap_or(0);
    Ok(Plan {
        steps: p.steps,
        slots: p.slots,
        depth,
    })
}

/// Finds, for each target, where its dirs start to be new in the stage's
/// own tmpfs: below no mount, and not made by an earlier target.
fn mark_fresh_dirs(steps: &mut [Step]) {
    // Two passes, so that the sets borrow the steps' own components
    // instead of copying every prefix of every target (at 1000 slices the
    // copies were a quarter of planning).
    let mut fresh_from: Vec<Option<usize>> = vec![None; steps.len()];
    let mut seen: HashSet<&[CString]> = HashSet::new();
    // A set, looked up by each shorter prefix: with 1000 slices a list
    // scanned per step made this quadratic (7% of a 1000-slice start).
    let mut mounted: HashSet<&[CString]> = HashSet::new();
    for (step, fresh) in steps.iter().zip(fresh_from.iter_mut()) {
        let is_mount = !matches!(step.op, Op::Symlink { .. } | Op::RestrictUnixSockets { .. });
        let Some(target) = step.op.target() else {
            continue;
        };
        if target.create {
            for i in 0..target.components.len() {
                let prefix = &target.components[..=i];
                if seen.contains(prefix) {
                    continue;
                }
                if !(1..prefix.len()).any(|len| mounted.contains(&prefix[..len])) {
                    *fresh = Some(i);
                }
                break;
            }
        }
        for i in 0..target.components.len() {
            seen.insert(&target.components[..=i]);
        }
        if is_mount {
            mounted.insert(&target.components);
        }
    }
    for (step, fresh) in steps.iter_mut().zip(fresh_from) {
        if let (Some(target), Some(i)) = (step.op.target_mut(), fresh) {
            target.fresh_from = i;
        }
    }
}

/// Why a step failed: its index, the errno, and for a walk the index of
/// the component where it stopped (or -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepFailure {
    pub step: usize,
    pub errno: Errno,
    pub component: i32,
}

/// The open parent dirs of the last target walked: `fds[..len]` are the
/// first `len` components of `path`. The next target reuses those it
/// shares, so siblings cost one lookup each.
struct Walk<'a, 's> {
    fds: &'a mut [RawFd],
    len: usize,
    path: &'s [CString],
}

impl<'s> Walk<'_, 's> {
    fn close_from(&mut self, sys: &dyn Syscall, keep: usize) {
        while self.len > keep {
            self.len -= 1;
            sys.close(self.fds[self.len]);
        }
    }

    /// The fd of the target's parent dir, creating missing dirs.
    fn parent(
        &mut self,
        sys: &dyn Syscall,
        root: RawFd,
        target: &'s Target,
    ) -> Result<RawFd, (Errno, i32)> {
        let want = target.parent_len();
        let shared = self.path[..self.len]
            .iter()
            .zip(&target.components[..want])
            .take_while(|(a, b)| a == b)
            .count();
        self.close_from(sys, shared);
        self.path = &target.components;
        while self.len < want {
            let dir = self.dir(root);
            let fd = open_dir_at(sys, dir, target, self.len).map_err(|e| (e, self.len as i32))?;
            self.fds[self.len] = fd;
            self.len += 1;
        }
        Ok(self.dir(root))
    }

    fn dir(&self, root: RawFd) -> RawFd {
        if self.len == 0 {
            root
        } else {
            self.fds[self.len - 1]
        }
    }

    /// The target itself as an fd: a dir (made when missing) or a file
    /// (created when missing).
    fn open(
        &mut self,
        sys: &dyn Syscall,
        root: RawFd,
        target: &'s Target,
        kind: Kind,
    ) -> Result<RawFd, (Errno, i32)> {
        let parent = self.parent(sys, root, target)?;
        let last = target.parent_len() as i32;
        match kind {
            Kind::Dir => open_dir_at(sys, parent, target, target.parent_len()),
            Kind::File => match sys.open_resolved(parent, target.last(), libc::O_PATH, WALK) {
                Err(libc::ENOENT) if target.create => sys.create_file_at(parent, target.last()),
                other => other,
            },
        }
        .map_err(|e| (e, last))
    }
}

/// Where a mount goes: an fd of the mount point, or, for a dir this setup
/// has just made, its parent and name (a fresh dir cannot be a symlink, so
/// the lookup and close of an fd are saved).
enum At<'s> {
    Fd(RawFd),
    Made(RawFd, &'s CStr),
}

impl<'s> Walk<'_, 's> {
    fn mount_point(
        &mut self,
        sys: &dyn Syscall,
        root: RawFd,
        target: &'s Target,
        kind: Kind,
    ) -> Result<At<'s>, (Errno, i32)> {
        let index = target.parent_len();
        if kind == Kind::Dir && index >= target.fresh_from {
            let parent = self.parent(sys, root, target)?;
            match sys.mkdirat(parent, target.last(), 0o755) {
                Ok(()) => return Ok(At::Made(parent, target.last())),
                Err(libc::EEXIST) => {}
                Err(errno) => return Err((errno, index as i32)),
            }
        }
        self.open(sys, root, target, kind).map(At::Fd)
    }
}

/// Component `index` of `target`, below `dir`: made when missing (and the
/// target allows it), made without looking first when known to be new.
fn open_dir_at(
    sys: &dyn Syscall,
    dir: RawFd,
    target: &Target,
    index: usize,
) -> Result<RawFd, Errno> {
    let name = &target.components[index];
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    if index >= target.fresh_from {
        match sys.mkdirat(dir, name, 0o755) {
            Ok(()) | Err(libc::EEXIST) => return sys.open_resolved(dir, name, flags, WALK),
            Err(e) => return Err(e),
        }
    }
    match sys.open_resolved(dir, name, flags, WALK) {
        Err(libc::ENOENT) if target.create => {
            match sys.mkdirat(dir, name, 0o755) {
                Ok(()) | Err(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
            sys.open_resolved(dir, name, flags, WALK)
        }
        other => other,
    }
}

/// Runs the steps in order. Async-signal-safe: it allocates nothing, so it
/// may run in the child between clone and exec. `slots` and `walk` are
/// scratch space of `plan.slots` and `plan.depth` entries. Every fd it
/// opens is closed when it returns, on success and on failure.
pub fn execute(
    sys: &dyn Syscall,
    steps: &[Step],
    slots: &mut [RawFd],
    walk: &mut [RawFd],
) -> Result<(), StepFailure> {
    slots.fill(-1);
    let mut walk = Walk {
        fds: walk,
        len: 0,
        path: &[],
    };
    let mut result = Ok(());
    for (index, step) in steps.iter().enumerate() {
        if let Err((errno, component)) = run_op(sys, &step.op, slots, &mut walk) {
            result = Err(StepFailure {
                step: index,
                errno,
                component,
            });
            break;
        }
    }
    walk.close_from(sys, 0);
    for slot in slots.iter_mut().filter(|s| **s >= 0) {
        sys.close(*slot);
        *slot = -1;
    }
    result
}

fn no_component(errno: Errno) -> (Errno, i32) {
    (errno, -1)
}

/// In place of a component: opening the step's source failed (a slice
/// tree a damaged store lost).
pub const SOURCE_FAILED: i32 = -2;

/// Attaches the detached mount `source` at `at`, closing the fds it owns.
fn attach(sys: &dyn Syscall, source: RawFd, at: At<'_>) -> Result<(), Errno> {
    let result = match at {
        At::Fd(target) => {
            let result = sys.move_mount(source, target);
            sys.close(target);
            result
        }
        At::Made(dir, name) => sys.move_mount_at(source, dir, name),
    };
    sys.close(source);
    result
}

fn close_at(sys: &dyn Syscall, at: At<'_>) {
    if let At::Fd(fd) = at {
        sys.close(fd);
    }
}

fn run_op<'s>(
    sys: &dyn Syscall,
    op: &'s Op,
    slots: &mut [RawFd],
    walk: &mut Walk<'_, 's>,
) -> Result<(), (Errno, i32)> {
    let root = slots[ROOT];
    let clone_flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    match op {
        Op::WriteFile { path, data } => sys.write_file(path, data).map_err(no_component),
        Op::NewSessionKeyring => sys.join_new_session_keyring().map_err(no_component),
        Op::MakeMountsSlave => sys
            .set_propagation(c"/", libc::MS_REC | libc::MS_SLAVE)
            .map_err(no_component),
        Op::CloneHostTree {
            path,
            slot,
            attr,
            recursive,
        } => {
            let recursive = if *recursive { AT_RECURSIVE } else { 0 };
            let fd = sys
                .open_tree(libc::AT_FDCWD, path, clone_flags | recursive)
                .map_err(no_component)?;
            slots[*slot] = fd;
            sys.mount_setattr(
                fd,
                recursive,
                MountAttr {
                    set: *attr,
                    propagation: 0,
                },
            )
            .map_err(no_component)
        }
        Op::OpenStore {
            path,
            clone_slot,
            path_slot,
        } => {
            let fd = sys
                .open_tree(libc::AT_FDCWD, path, clone_flags | AT_RECURSIVE)
                .map_err(no_component)?;
            slots[*clone_slot] = fd;
            sys.mount_setattr(
                fd,
                AT_RECURSIVE,
                MountAttr {
                    set: READ_ONLY,
                    propagation: 0,
                },
            )
            .map_err(no_component)?;
            slots[*path_slot] = sys.open_dir(path).map_err(no_component)?;
            Ok(())
        }
        Op::MountRoot => {
            sys.mount_tmpfs(ASSEMBLY_POINT, c"mode=0755")
                .map_err(no_component)?;
            slots[ROOT] = sys.open_dir(ASSEMBLY_POINT).map_err(no_component)?;
            Ok(())
        }
        Op::MountFs {
            fstype,
            options,
            attr,
            target,
        } => {
            let at = walk.mount_point(sys, root, target, Kind::Dir)?;
            mount_fs(sys, fstype, options, *attr, at).map_err(no_component)
        }
        Op::Attach { slot, kind, target } => {
            let at = walk.mount_point(sys, root, target, *kind)?;
            let source = std::mem::replace(&mut slots[*slot], -1);
            attach(sys, source, at).map_err(no_component)
        }
        Op::AttachFromStore {
            clone_slot,
            path_slot,
            relative,
            target,
        } => {
            let at = walk.mount_point(sys, root, target, Kind::Dir)?;
            let source = match sys.open_tree(slots[*clone_slot], relative, clone_flags) {
                Err(libc::EINVAL) => clone_read_only(sys, slots[*path_slot], relative, clone_flags),
                other => other,
            };
            match source {
                Ok(source) => attach(sys, source, at).map_err(no_component),
                Err(errno) => {
                    close_at(sys, at);
                    Err((errno, SOURCE_FAILED))
                }
            }
        }
        Op::MakeReadOnly { target } => {
            let at = walk.open(sys, root, target, Kind::Dir)?;
            let empty = libc::AT_EMPTY_PATH as libc::c_uint;
            match clone_read_only(sys, at, c"", clone_flags | empty) {
                Ok(source) => attach(sys, source, At::Fd(at)).map_err(no_component),
                Err(errno) => {
                    sys.close(at);
                    Err(no_component(errno))
                }
            }
        }
        Op::Symlink { text, link } => {
            let parent = walk.parent(sys, root, link)?;
            sys.symlinkat(text, parent, link.last())
                .map_err(|e| (e, link.parent_len() as i32))
        }
        Op::Shadow {
            target,
            entries,
            first_slot,
            options,
        } => shadow(
            sys,
            root,
            target,
            entries,
            *first_slot,
            options,
            slots,
            walk,
        ),
        Op::SealShadow { target } => {
            let fd = walk.open(sys, root, target, Kind::Dir)?;
            let attr = MountAttr {
                set: READ_ONLY,
                propagation: 0,
            };
            let result = sys.mount_setattr(fd, 0, attr);
            sys.close(fd);
            result.map_err(no_component)
        }
        Op::LoopbackUp => sys.loopback_up().map_err(no_component),
        Op::SetHostname { name } => sys.set_hostname(name).map_err(no_component),
        Op::RestrictUnixSockets { allowed } => restrict_unix_sockets(sys, root, allowed, walk),
        Op::CloseSources { first } => {
            walk.close_from(sys, 0);
            for slot in &mut slots[*first..] {
                if *slot >= 0 {
                    sys.close(*slot);
                    *slot = -1;
                }
            }
            Ok(())
        }
        Op::EnterRoot => enter_root(sys, root).map_err(no_component),
        Op::Chdir { path } => {
            let fd = sys
                .open_resolved(
                    root,
                    path,
                    libc::O_PATH | libc::O_DIRECTORY,
                    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
                )
                .map_err(no_component)?;
            let result = sys.fchdir(fd);
            sys.close(fd);
            result.map_err(no_component)
        }
    }
}

const AT_SYMLINK_NOFOLLOW: libc::c_uint = 0x100;

/// `Op::Shadow`: clone each entry of the dir, cover the dir with a
/// tmpfs, and put the entries back into it.
#[allow(clippy::too_many_arguments)]
fn shadow<'s>(
    sys: &dyn Syscall,
    root: RawFd,
    target: &'s Target,
    entries: &[ShadowEntry],
    first_slot: usize,
    options: &[(CString, CString)],
    slots: &mut [RawFd],
    walk: &mut Walk<'_, 's>,
) -> Result<(), (Errno, i32)> {
    let dir = walk.open(sys, root, target, Kind::Dir)?;
    let mut slot = first_slot;
    for entry in entries {
        if matches!(entry.kind, ShadowKind::Symlink(_)) {
            continue;
        }
        let flags = OPEN_TREE_CLONE | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW;
        slots[slot] = match sys.open_tree(dir, &entry.name, flags) {
            Ok(fd) => fd,
            // Gone since it was listed: nothing to show.
            Err(libc::ENOENT) => -1,
            Err(errno) => {
                sys.close(dir);
                return Err(no_component(errno));
            }
        };
        slot += 1;
    }
    mount_fs(
        sys,
        c"tmpfs",
        options,
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        At::Fd(dir),
    )
    .map_err(no_component)?;
    // Fds the walk keeps may lie below the dir now covered.
    walk.close_from(sys, 0);
    let top = walk.open(sys, root, target, Kind::Dir)?;
    let mut slot = first_slot;
    let mut result = Ok(());
    for entry in entries {
        let made = match &entry.kind {
            ShadowKind::Symlink(text) => sys.symlinkat(text, top, &entry.name),
            kind => {
                let source = std::mem::replace(&mut slots[slot], -1);
                slot += 1;
                if source < 0 {
                    continue;
                }
                let at = if *kind == ShadowKind::Dir {
                    sys.mkdirat(top, &entry.name, 0o755)
                        .map(|()| At::Made(top, &entry.name))
                } else {
                    sys.create_file_at(top, &entry.name).map(At::Fd)
                };
                match at {
                    // A made dir's parent fd is `top`, closed below.
                    Ok(at) => attach(sys, source, at),
                    Err(errno) => {
                        sys.close(source);
                        Err(errno)
                    }
                }
            }
        };
        if let Err(errno) = made {
            result = Err(no_component(errno));
            break;
        }
    }
    sys.close(top);
    result
}

const LANDLOCK_ACCESS_FS_REFER: u64 = 1 << 13;
const LANDLOCK_ACCESS_FS_RESOLVE_UNIX: u64 = 1 << 16;

/// Only Unix sockets made inside the stage, or below a `--bind` target,
/// can be connected to. A Landlock domain always denies moving files
/// between dirs unless it handles and grants REFER, so REFER is granted
/// on the whole root.
fn restrict_unix_sockets<'s>(
    sys: &dyn Syscall,
    root: RawFd,
    allowed: &'s [Target],
    walk: &mut Walk<'_, 's>,
) -> Result<(), (Errno, i32)> {
    let ruleset = sys
        .landlock_create_ruleset(LANDLOCK_ACCESS_FS_RESOLVE_UNIX | LANDLOCK_ACCESS_FS_REFER)
        .map_err(no_component)?;
    let mut result = sys
        .landlock_allow(ruleset, root, LANDLOCK_ACCESS_FS_REFER)
        .map_err(no_component);
    for target in allowed {
        if result.is_err() {
            break;
        }
        result = walk.open(sys, root, target, Kind::File).and_then(|fd| {
            let added = sys.landlock_allow(ruleset, fd, LANDLOCK_ACCESS_FS_RESOLVE_UNIX);
            sys.close(fd);
            added.map_err(no_component)
        });
    }
    let result = result.and_then(|()| sys.landlock_restrict_self(ruleset).map_err(no_component));
    sys.close(ruleset);
    result
}

/// A recursive clone of `path` below `dirfd`, made read-only.
fn clone_read_only(
    sys: &dyn Syscall,
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_uint,
) -> Result<RawFd, Errno> {
    let fd = sys.open_tree(dirfd, path, flags | AT_RECURSIVE)?;
    let attr = MountAttr {
        set: READ_ONLY,
        propagation: 0,
    };
    if let Err(errno) = sys.mount_setattr(fd, AT_RECURSIVE, attr) {
        sys.close(fd);
        return Err(errno);
    }
    Ok(fd)
}

fn mount_fs(
    sys: &dyn Syscall,
    fstype: &CStr,
    options: &[(CString, CString)],
    attr: u64,
    at: At<'_>,
) -> Result<(), Errno> {
    let context = match sys.fsopen(fstype) {
        Ok(fd) => fd,
        Err(errno) => {
            close_at(sys, at);
            return Err(errno);
        }
    };
    let mounted = options
        .iter()
        .try_for_each(|(key, value)| sys.fsconfig_set(context, key, value))
        .and_then(|()| sys.fsconfig_create(context))
        .and_then(|()| sys.fsmount(context, attr));
    sys.close(context);
    match mounted {
        Ok(mount) => attach(sys, mount, at),
        Err(errno) => {
            close_at(sys, at);
            Err(errno)
        }
    }
}

/// Makes the assembled root read-only and private, moves into it, and
/// detaches the host's tree, which stays reachable at no path at all.
fn enter_root(sys: &dyn Syscall, root: RawFd) -> Result<(), Errno> {
    sys.mount_setattr(
        root,
        0,
        MountAttr {
            set: MOUNT_ATTR_RDONLY,
            propagation: 0,
        },
    )?;
    // Host mounts made under a bind source while the stage runs must not
    // appear inside: every mount of the new root stops being a slave.
    sys.mount_setattr(
        root,
        AT_RECURSIVE,
        MountAttr {
            set: 0,
            propagation: libc::MS_PRIVATE,
        },
    )?;
    sys.fchdir(root)?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching
    // "." then removes it (the runc way, with no put_old directory).
    sys.pivot_root(c".", c".")?;
    sys.umount_detach(c".")
}

#[cfg(test)]
mod tests {
    use super::super::syscall::recording::Recorder;
    use super::*;

    fn input(slices: &[(&str, &str)]) -> PlanInput {
        PlanInput {
            base: vec![
                (
                    PathBuf::from("/bin"),
                    HostEntry::Symlink(PathBuf::from("usr/bin")),
                ),
                (PathBuf::from("/etc"), HostEntry::Dir),
                (PathBuf::from("/usr"), HostEntry::Dir),
            ],
            slices: slices
                .iter()
                .map(|(label, at)| PlannedSlice {
                    label: label.to_string(),
                    tree: PathBuf::from(format!("/store/slices/{label}/tree")),
                    mount_point: PathBuf::from(at),
                })
                .collect(),
            workdir: Some(PathBuf::from("/home/u/project")),
            start_dir: PathBuf::from("/home/u/project"),
            ..PlanInput::bare()
        }
    }

    /// A host of fixed paths: `(path, kind)`; a dir lists the entries
    /// right below it.
    struct FixedHost(Vec<(&'static str, ShadowKind)>);

    impl HostView for FixedHost {
        fn kind(&self, path: &Path) -> Option<ShadowKind> {
            self.0
                .iter()
                .find(|(p, _)| Path::new(p) == path)
                .map(|(_, k)| k.clone())
        }
        fn list(&self, dir: &Path) -> Vec<(OsString, ShadowKind)> {
            self.0
                .iter()
                .filter(|(p, _)| Path::new(p).parent() == Some(dir))
                .map(|(p, k)| (Path::new(p).file_name().unwrap().to_os_string(), k.clone()))
                .collect()
        }
    }

    #[test]
    fn a_mount_point_missing_in_a_read_only_dir_gets_a_tmpfs_showing_the_same_entries() {
        let host = FixedHost(vec![
            ("/usr", ShadowKind::Dir),
            ("/usr/share", ShadowKind::Dir),
            ("/usr/share/doc", ShadowKind::Dir),
            ("/usr/share/misc", ShadowKind::Symlink(c"doc".to_owned())),
            ("/usr/share/file", ShadowKind::File),
        ]);
        let i = input(&[("x", "/usr/share/missing/x")]);
        let plan = plan_with(&i, &host).unwrap();
        let shadow = plan
            .steps
            .iter()
            .position(|s| matches!(s.op, Op::Shadow { .. }))
            .expect("a shadow step");
        let slice = plan
            .steps
            .iter()
            .position(|s| matches!(s.what, What::MountSlice(..)))
            .unwrap();
        let seal = plan
            .steps
            .iter()
            .position(|s| matches!(s.op, Op::SealShadow { .. }))
            .unwrap();
        let usr = plan
            .steps
            .iter()
            .position(|s| matches!(s.what, What::MountBase) && s.what() == "mount /usr read-only")
            .unwrap();
        assert!(
            usr < shadow && shadow < slice && slice < seal,
            "{:?}",
            plan.steps
        );
        assert_eq!(
            plan.steps[shadow].what(),
            "cover '/usr/share' with a tmpfs showing the same entries, to make a mount point below it"
        );
        let sys = Recorder::default();
        let mut slots = vec![-1; plan.slots];
        let mut walk = vec![-1; plan.depth];
        execute(&sys, &plan.steps[..=shadow], &mut slots, &mut walk).unwrap();
        let calls = sys.calls.into_inner();
        let at = calls
            .iter()
            .position(|c| c.starts_with("open_tree") && c.contains("doc"))
            .expect("the entries are cloned first");
        let tail: Vec<&str> = calls[at..].iter().map(String::as_str).collect();
        let tmpfs = tail
            .iter()
            .position(|c| c.starts_with("fsopen tmpfs"))
            .unwrap();
        assert!(tail[..tmpfs].iter().any(|c| c.contains("file")), "{tail:?}");
        let after: Vec<&str> = tail[tmpfs..].to_vec();
        for expected in ["mkdir doc", "create file", "symlink misc -> doc"] {
            assert!(
                after.iter().any(|c| c.contains(expected)),
                "{expected} in {after:?}"
            );
        }
        // Not when the way exists, nor below a source the host lacks.
        let host = FixedHost(vec![
            ("/usr", ShadowKind::Dir),
            ("/usr/share", ShadowKind::Dir),
        ]);
        let i = input(&[("x", "/usr/share")]);
        assert!(!plan_with(&i, &host)
            .unwrap()
            .steps
            .iter()
            .any(|s| matches!(s.op, Op::Shadow { .. })));
        let i = input(&[("a", "/opt/a"), ("b", "/opt/a/b/c")]);
        assert!(!plan_with(&i, &host)
            .unwrap()
            .steps
            .iter()
            .any(|s| matches!(s.op, Op::Shadow { .. })));
    }

    #[test]
    fn a_bind_destination_follows_symlinks_inside_the_stage_only() {
        let host = FixedHost(vec![
            ("/usr", ShadowKind::Dir),
            ("/usr/bin", ShadowKind::Dir),
            ("/store/slices/s/tree", ShadowKind::Dir),
            (
                "/store/slices/s/tree/up",
                ShadowKind::Symlink(c"../..".to_owned()),
            ),
            (
                "/store/slices/s/tree/far",
                ShadowKind::Symlink(c"../../../../..".to_owned()),
            ),
            (
                "/store/slices/s/tree/etc",
                ShadowKind::Symlink(c"/etc/x".to_owned()),
            ),
        ]);
        let i = input(&[("s", "/opt/s")]);
        let resolve = |d: &str| resolve_destination(Path::new(d), &i, &host);
        // /bin is the stage's own symlink to usr/bin.
        assert_eq!(resolve("/bin/tool").unwrap(), Path::new("/usr/bin/tool"));
        // ".." never climbs above the stage's root.
        assert_eq!(resolve("/opt/s/up/tmp/b").unwrap(), Path::new("/tmp/b"));
        assert_eq!(resolve("/opt/s/far/tmp/b").unwrap(), Path::new("/tmp/b"));
        assert_eq!(resolve("/opt/s/etc").unwrap(), Path::new("/etc/x"));
        assert_eq!(resolve("/opt/s/plain").unwrap(), Path::new("/opt/s/plain"));
    }

    fn run(plan: &Plan, sys: &Recorder) -> Result<(), StepFailure> {
        let mut slots = vec![-1; plan.slots];
        let mut walk = vec![-1; plan.depth];
        execute(sys, &plan.steps, &mut slots, &mut walk)
    }

    fn recorded(input: &PlanInput) -> Vec<String> {
        let plan = plan(input).unwrap();
        let sys = Recorder::default();
        run(&plan, &sys).unwrap();
        sys.calls.into_inner()
    }

    fn position(calls: &[String], line: &str) -> usize {
        calls
            .iter()
            .position(|c| c == line)
            .unwrap_or_else(|| panic!("{line:?} not in {calls:#?}"))
    }

    /// The index of the move_mount that attaches slice `label`.
    fn slice_mounted(calls: &[String], label: &str) -> usize {
        position(calls, &format!("open_tree_at {label}/tree")) + 1
    }

    #[test]
    fn maps_first_then_every_host_source_before_the_root_exists() {
        let calls = recorded(&input(&[("py", "/opt/python")]));
        assert_eq!(calls[0], "write /proc/self/setgroups deny");
        assert_eq!(calls[1], "write /proc/self/uid_map 1000 1000 1");
        assert_eq!(calls[2], "write /proc/self/gid_map 1000 1000 1");
        assert_eq!(calls[3], "new session keyring");
        let root = position(&calls, "mount tmpfs /tmp mode=0755");
        for source in [
            "open_tree /dev/null",
            "open_tree /usr",
            "open_tree /etc",
            "open_tree /home/u/project",
            "open_tree /store/slices",
            "open_dir /store/slices",
        ] {
            assert!(position(&calls, source) < root, "{source} before the root");
        }
        // After the root exists, nothing is opened by a host path again.
        assert!(!calls[root + 2..]
            .iter()
            .any(|c| c.starts_with("open_tree /") || c.starts_with("open_dir")));
        assert_eq!(
            &calls[calls.len() - 7..],
            [
                "setattr 0x1 propagation 0x0",
                "setattr 0x0 propagation 0x40000 recursive",
                "fchdir",
                "pivot_root . .",
                "umount .",
                "open /home/u/project resolve 0x12",
                "fchdir",
            ]
        );
    }

    #[test]
    fn every_walk_refuses_symlinks_and_stays_beneath_its_dir() {
        let calls = recorded(&input(&[("a", "/opt/a"), ("b", "/opt/a/b/c")]));
        let walks: Vec<&String> = calls
            .iter()
            .filter(|c| c.starts_with("open ") && !c.starts_with("open /"))
            .collect();
        assert!(walks.len() > 10);
        for walk in walks {
            assert!(walk.ends_with(&format!("resolve {WALK:#x}")), "{walk}");
        }
    }

    #[test]
    fn slices_are_mounted_parent_before_child_whatever_the_order_given() {
        let calls = recorded(&input(&[("inner", "/opt/a/b"), ("outer", "/opt/a")]));
        let outer = slice_mounted(&calls, "outer");
        let inner = slice_mounted(&calls, "inner");
        assert!(outer < inner);
        // Inside the outer slice nothing is known: the mount point is
        // looked up, never through a symlink, and mounted on by its fd.
        assert_eq!(calls[inner - 2], format!("open b resolve {WALK:#x}"));
        assert_eq!(calls[inner], "move_mount");
        // The child's walk re-opens /opt/a after the mount, so it goes
        // into the slice, not the dir it covers.
        assert!(calls[outer..inner].contains(&format!("open a resolve {WALK:#x}")));
    }

    #[test]
    fn parents_are_walked_once_for_siblings() {
        let calls = recorded(&input(&[("a", "/opt/a"), ("b", "/opt/b"), ("c", "/opt/c")]));
        let opt_walks = calls
            .iter()
            .filter(|c| **c == format!("open opt resolve {WALK:#x}"))
            .count();
        assert_eq!(opt_walks, 1, "{calls:#?}");
    }

    #[test]
    fn slices_come_from_one_read_only_clone_of_the_store() {
        let calls = recorded(&input(&[("py", "/opt/python")]));
        let store = position(&calls, "open_tree /store/slices");
        assert_eq!(calls[store + 1], "setattr 0x7 propagation 0x0 recursive");
        let mv = slice_mounted(&calls, "py");
        // /opt/python is new in the stage's own tmpfs: made, then mounted
        // on by name, with no lookup in between.
        assert_eq!(calls[mv], "move_mount_at python");
        assert_eq!(calls[mv - 2], "mkdir python");
    }

    #[test]
    fn base_dirs_and_the_workdir_are_read_only_nosuid_nodev() {
        let calls = recorded(&input(&[]));
        for source in [
            "open_tree /usr",
            "open_tree /etc",
            "open_tree /home/u/project",
        ] {
            let at = position(&calls, source);
            assert_eq!(calls[at + 1], "setattr 0x7 propagation 0x0 recursive");
        }
    }

    #[test]
    fn merged_usr_symlinks_are_recreated_not_bound() {
        let calls = recorded(&input(&[]));
        assert!(calls.contains(&"symlink bin -> usr/bin".to_string()));
        assert!(!calls.iter().any(|c| c == "open_tree /bin"));
    }

    #[test]
    fn workdir_rules() {
        let base = input(&[]).base;
        for (dir, view) in [
            ("/", "Hidden"),
            ("/proc", "Hidden"),
            ("/proc/self", "Hidden"),
            ("/dev", "Hidden"),
            ("/dev/shm", "Hidden"),
            ("/sys/kernel", "Hidden"),
            ("/tmp", "Hidden"),
            ("/tmp/work", "Shown"),
            ("/usr/src", "InsideBase"),
            ("/home/u", "Shown"),
            ("/procfoo", "Shown"),
        ] {
            let got = format!("{:?}", workdir_view(Path::new(dir), &base));
            assert!(got.starts_with(view), "{dir}: {got}");
        }
    }

    #[test]
    fn workdir_under_tmp_is_bound_after_the_fresh_tmp() {
        let mut i = input(&[]);
        i.workdir = Some(PathBuf::from("/tmp/work"));
        let calls = recorded(&i);
        let tmp = calls
            .iter()
            .rposition(|c| c == "fsopen tmpfs")
            .expect("tmpfs for /tmp");
        let work = position(&calls, &format!("open work resolve {WALK:#x}"));
        assert!(tmp < work);
        assert_eq!(calls[work + 1], "move_mount");
    }

    #[test]
    fn mount_points_over_the_stages_own_dirs_are_refused() {
        for at in ["/proc", "/proc/x", "/dev", "/dev/shm/x", "/tmp"] {
            assert!(
                matches!(plan(&input(&[("a", at)])), Err(PlanError::Reserved(..))),
                "{at}"
            );
        }
        for at in ["/", "/opt/../etc", "relative"] {
            assert!(
                matches!(plan(&input(&[("a", at)])), Err(PlanError::NotNormal(_))),
                "{at}"
            );
        }
    }

    #[test]
    fn two_explicit_mounts_at_one_mount_point_are_refused() {
        let taken = |first: &str, second: &str| PlanError::MountPointTaken {
            path: "/opt/x".into(),
            first: first.into(),
            second: second.into(),
        };
        assert_eq!(
            plan(&input(&[("a", "/opt/x"), ("b", "/opt/x")])).unwrap_err(),
            taken("slice 'a'", "slice 'b'")
        );
        let mut i = input(&[("a", "/opt/x")]);
        i.binds = vec![bind("/host/x", "/opt/x", true)];
        assert_eq!(
            plan(&i).unwrap_err(),
            taken("slice 'a'", "--bind '/host/x'")
        );
        i.binds[0].is_output = true;
        assert_eq!(plan(&i).unwrap_err(), taken("slice 'a'", "--out"));
        let mut i = input(&[]);
        i.binds = vec![bind("/host/x", "/opt/x", false)];
        i.tmpfs = vec![PlannedTmpfs {
            target: PathBuf::from("/opt/x"),
            size: None,
            mode: 0o755,
        }];
        assert_eq!(
            plan(&i).unwrap_err(),
            taken("--ro-bind '/host/x'", "--tmpfs")
        );
        // A base dir is there to be covered.
        let mut i = input(&[]);
        i.binds = vec![bind("/host/etc", "/etc", false)];
        assert!(plan(&i).is_ok());
    }

    #[test]
    fn loopback_comes_up_only_with_an_isolated_network() {
        assert!(!recorded(&input(&[])).contains(&"loopback up".to_string()));
        let mut i = input(&[]);
        i.isolate_net = true;
        assert!(recorded(&i).contains(&"loopback up".to_string()));
    }

    #[test]
    fn a_failure_at_any_call_stops_setup_there_and_names_its_step() {
        let mut i = input(&[("a", "/opt/a"), ("b", "/opt/a/b")]);
        i.isolate_net = true;
        let plan = plan(&i).unwrap();
        let total = recorded(&i).len();
        for call in 0..total {
            let sys = Recorder::failing(call, libc::EPERM);
            let failure = run(&plan, &sys).expect_err("the injected failure ends setup");
            assert_eq!(failure.errno, libc::EPERM);
            assert!(failure.step < plan.steps.len());
            let calls = sys.calls.into_inner();
            // Nothing runs after the failing call.
            assert_eq!(calls.len(), call + 1, "{calls:#?}");
            assert!(calls[call].ends_with("-> FAIL"));
        }
    }

    fn bind(source: &str, target: &str, writable: bool) -> PlannedBind {
        PlannedBind {
            source: PathBuf::from(source),
            target: PathBuf::from(target),
            writable,
            is_dir: true,
            is_output: false,
        }
    }

    #[test]
    fn nothing_is_made_inside_a_writable_bind() {
        let mut i = input(&[("s", "/w/sub/x")]);
        i.binds = vec![bind("/host/rw", "/w", true)];
        let planned = plan(&i).unwrap();
        // /w/sub is missing: inside the writable bind that is an error,
        // not a mkdir on the host.
        let sys = Recorder::failing_on(&format!("open sub resolve {WALK:#x}"), libc::ENOENT);
        let failure = run(&planned, &sys).unwrap_err();
        assert_eq!(failure.errno, libc::ENOENT);
        assert!(!sys.calls.into_inner().iter().any(|c| c == "mkdir sub"));
        // Below a read-only bind a missing dir is made (and the kernel
        // refuses with EROFS); in the stage's own tmpfs it is made.
        let mut i = input(&[("s", "/r/sub/x")]);
        i.binds = vec![bind("/host/ro", "/r", false)];
        let planned = plan(&i).unwrap();
        let sys = Recorder::failing_on(&format!("open sub resolve {WALK:#x}"), libc::ENOENT);
        let _ = run(&planned, &sys);
        assert!(sys.calls.into_inner().iter().any(|c| c == "mkdir sub"));
    }

    #[test]
    fn nothing_is_made_inside_a_writable_working_directory() {
        // --rw-cwd: the working directory is a writable host dir too.
        let mut i = input(&[("s", "/home/u/project/sub/x")]);
        i.rw_workdir = true;
        i.tmpfs = vec![PlannedTmpfs {
            target: PathBuf::from("/home/u/project/t/mnt"),
            size: None,
            mode: 0o755,
        }];
        i.binds = vec![bind("/host/file", "/home/u/project/f", false)];
        i.binds[0].is_dir = false;
        let planned = plan(&i).unwrap();
        for missing in ["sub", "t", "f"] {
            let sys =
                Recorder::failing_on(&format!("open {missing} resolve {WALK:#x}"), libc::ENOENT);
            let failure = run(&planned, &sys).unwrap_err();
            assert_eq!(failure.errno, libc::ENOENT, "{missing}");
            let calls = sys.calls.into_inner();
            let workdir = position(&calls, "move_mount_at project");
            assert!(
                !calls[workdir..]
                    .iter()
                    .any(|c| c.starts_with("mkdir") || c.starts_with("create")),
                "{missing}: {calls:?}"
            );
        }
        // Read-only, the same mounts are planned as before (made in a
        // shadow or refused by the kernel, never on the host).
        i.rw_workdir = false;
        let planned = plan(&i).unwrap();
        let sys = Recorder::failing_on(&format!("open t resolve {WALK:#x}"), libc::ENOENT);
        let _ = run(&planned, &sys);
        assert!(sys.calls.into_inner().iter().any(|c| c == "mkdir t"));
    }

    #[test]
    fn a_slice_tree_the_store_lost_is_named_as_the_source() {
        let planned = plan(&input(&[("py", "/opt/python")])).unwrap();
        let sys = Recorder::failing_on("open_tree_at py/tree", libc::ENOENT);
        let failure = run(&planned, &sys).unwrap_err();
        assert_eq!(
            (failure.errno, failure.component),
            (libc::ENOENT, SOURCE_FAILED)
        );
        let step = &planned.steps[failure.step];
        assert_eq!(step.source(), Some(Path::new("/store/slices/py/tree")));
        assert_eq!(step.what(), "mount slice 'py' at '/opt/python'");
    }

    #[test]
    fn binds_are_cloned_before_the_root_and_may_replace_tmp() {
        let mut i = input(&[]);
        i.binds = vec![
            bind("/host/t", "/tmp", true),
            bind("/dev/log", "/dev/log", false),
        ];
        assert!(matches!(plan(&i), Err(PlanError::Reserved(..))));
        i.binds.pop();
        let calls = recorded(&i);
        let root = position(&calls, "mount tmpfs /tmp mode=0755");
        let source = position(&calls, "open_tree /host/t");
        assert!(source < root);
        assert_eq!(calls[source + 1], "setattr 0x6 propagation 0x0 recursive");
    }

    #[test]
    fn unix_sockets_are_restricted_only_with_no_network_and_landlock_9() {
        let mut i = input(&[]);
        i.binds = vec![bind("/host/log", "/dev-log", false)];
        i.landlock_abi = 9;
        assert!(!recorded(&i).iter().any(|c| c.starts_with("landlock")));
        i.isolate_net = true;
        i.landlock_abi = 8;
        assert!(!recorded(&i).iter().any(|c| c.starts_with("landlock")));
        i.landlock_abi = 9;
        let calls = recorded(&i);
        let landlock: Vec<&String> = calls.iter().filter(|c| c.starts_with("landlock")).collect();
        assert_eq!(
            landlock,
            [
                "landlock ruleset 0x12000",
                "landlock allow 0x2000",
                "landlock allow 0x10000",
                "landlock restrict"
            ]
        );
        assert!(position(&calls, "pivot_root . .") < position(&calls, "landlock restrict"));
    }

    #[test]
    fn every_step_says_what_it_does() {
        let mut i = input(&[("py", "/opt/python")]);
        i.binds = vec![bind("/host/log", "/dev-log", false)];
        i.isolate_net = true;
        i.landlock_abi = 9;
        i.terminal = Some(4);
        i.slices.push(PlannedSlice {
            label: "loose".into(),
            tree: PathBuf::from("/elsewhere"),
            mount_point: PathBuf::from("/opt/loose"),
        });
        for step in plan(&i).unwrap().steps {
            let what = step.what();
            assert!(what != "set up the stage" && !what.is_empty(), "{step:?}");
        }
        let steps = plan(&i).unwrap().steps;
        let words: Vec<String> = steps.iter().map(Step::what).collect();
        for expected in [
            "open '/usr' on the host",
            "open the slice store '/store/slices' read-only",
            "open slice 'loose'",
            "mount tmpfs on /dev",
            "bind /dev/null",
            "bind the stage's terminal /dev/pts/4",
            "create symlink '/dev/fd'",
            "mount /usr read-only",
            "mount the working directory '/home/u/project' read-only",
            "mount slice 'py' at '/opt/python'",
            "bind '/host/log' at '/dev-log'",
            "change directory to '/home/u/project'",
        ] {
            assert!(
                words.iter().any(|w| w == expected),
                "{expected} in {words:#?}"
            );
        }
    }

    #[test]
    fn with_its_own_devpts_the_stage_sees_its_terminal_at_dev_console() {
        let mut i = input(&[]);
        i.terminal = Some(4);
        i.dev = true;
        let words: Vec<String> = plan(&i).unwrap().steps.iter().map(Step::what).collect();
        let position = |wanted: &str| {
            words
                .iter()
                .position(|w| w == wanted)
                .unwrap_or_else(|| panic!("{wanted} in {words:#?}"))
        };
        position("open '/dev/pts/4' on the host");
        // After the devpts mount, which would cover /dev/pts/4.
        assert!(position("bind the stage's terminal /dev/console") > 0);
        assert!(!words.iter().any(|w| w.contains("terminal /dev/pts/")));
    }

    #[test]
    fn a_symlink_on_the_way_is_reported_with_its_component() {
        let i = input(&[("x", "/opt/a/b/c")]);
        let plan = plan(&i).unwrap();
        let mut slots = vec![-1; plan.slots];
        let mut walk = vec![-1; plan.depth];
        let sys = Recorder::failing_on(&format!("open b resolve {WALK:#x}"), libc::ELOOP);
        let failure = execute(&sys, &plan.steps, &mut slots, &mut walk).unwrap_err();
        assert_eq!(failure.errno, libc::ELOOP);
        let target = plan.steps[failure.step].op.target().unwrap();
        assert_eq!(
            target.prefix(failure.component as usize),
            Path::new("/opt/a/b")
        );
    }
}
