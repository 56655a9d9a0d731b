//! The plan's vocabulary: a stage's setup as an ordered list of steps,
//! each an operation on a target inside the new root (or on a host source
//! opened before the root exists). `plan` makes them, `exec` runs them in
//! the cloned child, `error` puts a failed one into words.

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::error::plan_error::PlanError;
use crate::text::{printable, printable_path};

/// A path as a C string, or the error that names it.
pub fn c(path: impl AsRef<OsStr>) -> Result<CString, PlanError> {
    let bytes = path.as_ref().as_bytes();
    CString::new(bytes).map_err(|_| PlanError::Nul(printable(bytes)))
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;

pub const MOUNT_ATTR_NOSUID: u64 = 0x2;

pub const MOUNT_ATTR_NODEV: u64 = 0x4;

pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

pub const READ_ONLY: u64 = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

/// A path inside the new root, split for a walk that never follows a
/// symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub(crate) components: Vec<CString>,
    /// Whether missing dirs on the way may be made. Not inside a writable
    /// bind of a host dir: setup never creates anything on the host.
    pub(crate) create: bool,
    /// Components from this index on are known not to exist yet (new dirs
    /// of the stage's own tmpfs): the walk makes them without looking first.
    pub(crate) fresh_from: usize,
}

impl Target {
    pub(crate) fn new(path: &Path) -> Result<Target, PlanError> {
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

    pub(crate) fn parent_len(&self) -> usize {
        self.components.len() - 1
    }

    pub(crate) fn last(&self) -> &CStr {
        self.components.last().expect("a target has a component")
    }

    /// A target whose missing dirs must not be made: inside a host dir,
    /// or one that setup made already.
    pub(crate) fn existing(path: &Path) -> Result<Target, PlanError> {
        let mut target = Target::new(path)?;
        target.create = false;
        Ok(target)
    }

    /// How many components the target has.
    pub(crate) fn depth(&self) -> usize {
        self.components.len()
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
    /// The stage's root, a tmpfs.
    MountRoot,
    /// A host dir opened (O_PATH) into `slot`: a layer of the root.
    OpenHostDir {
        path: CString,
        slot: usize,
    },
    /// The stage's root, an OverlayFS of the layers open in `lowers`
    /// (topmost first) over an ephemeral upper.
    MountOverlayRoot {
        lowers: Vec<usize>,
        /// The upper and work dirs open in these slots, or a fresh tmpfs.
        upper: Option<(usize, usize)>,
    },
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
    /// Root read-only (unless it is a writable overlay) and every mount
    /// private, then pivot_root into it and detach the host's tree.
    EnterRoot {
        read_only: bool,
    },
    Chdir {
        path: CString,
    },
}

/// The target of the ops that have one, by reference of either kind.
macro_rules! op_target {
    ($op:expr) => {
        match $op {
            Op::MountFs { target, .. }
            | Op::Attach { target, .. }
            | Op::AttachFromStore { target, .. }
            | Op::MakeReadOnly { target }
            | Op::Shadow { target, .. }
            | Op::SealShadow { target }
            | Op::Symlink { link: target, .. } => Some(target),
            _ => None,
        }
    };
}

impl Op {
    pub(crate) fn target_mut(&mut self) -> Option<&mut Target> {
        op_target!(self)
    }

    pub fn target(&self) -> Option<&Target> {
        op_target!(self)
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    pub(crate) what: What,
}

/// What a step does, in words, rendered only when it fails: most of it is
/// in the op already, and a stage plans dozens of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum What {
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
    /// The same for a layer of the root.
    OpenLayer(String, PathBuf),
    /// The overlay's upper (or work) dir on the host.
    OpenUpper(PathBuf),
    Bind(PathBuf),
    Shadow,
    SealShadow,
    Chdir,
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

impl Step {
    /// Where the step's source is on the host, for a failure to open it.
    pub fn source(&self) -> Option<&Path> {
        match &self.what {
            What::MountSlice(_, tree) | What::OpenLayer(_, tree) | What::OpenUpper(tree) => {
                Some(tree)
            }
            _ => None,
        }
    }
}
