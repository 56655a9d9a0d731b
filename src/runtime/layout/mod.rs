//! The stage's tree before it is built: which mounts it has, that no two
//! explicit ones share a mount point, parents before children, which
//! targets lie in a writable host dir (where nothing may be made), where a
//! bind destination really lands (`resolve`), and where a mount point
//! missing in a read-only dir needs a shadow tmpfs (`shadow`).

pub mod resolve;
pub mod shadow;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::PlanError;
use std::ffi::CString;

use super::stage::{PlannedBind, PlannedSlice, PlannedTmpfs};
use crate::text::{printable, printable_path};

/// Directories every stage gets fresh; foreign content may not cover them.
const STAGE_DIRS: &[(&str, &str)] = &[("/proc", "/proc"), ("/dev", "/dev")];

/// Refuses mount points that would cover what the stage itself provides.
/// Only an explicit bind may replace the fresh /tmp.
pub fn check_foreign_target(path: &Path, may_cover_tmp: bool) -> Result<(), PlanError> {
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

/// One foreign mount of the new root, before it becomes steps: where its
/// content comes from, as the slot of a host source opened earlier.
pub enum Mount<'a> {
    Base {
        path: &'a Path,
        slot: usize,
    },
    Workdir {
        path: &'a Path,
        /// Its content: the directory itself, or a `--cache` snapshot.
        source: &'a Path,
        slot: usize,
    },
    Slice {
        slice: &'a PlannedSlice,
        from: SliceSource,
    },
    Bind {
        bind: &'a PlannedBind,
        slot: usize,
    },
    Tmpfs(&'a PlannedTmpfs),
}

/// Where a slice is cloned from.
pub enum SliceSource {
    /// Below the store's `slices/` dir, opened once as a read-only clone
    /// (`clone_slot`) and a plain fd (`path_slot`).
    Store {
        clone_slot: usize,
        path_slot: usize,
        relative: CString,
    },
    /// A tree outside any store layout, cloned from the host.
    Host { slot: usize },
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
            Mount::Slice { slice, .. } => format!("slice '{}'", printable(slice.label.as_bytes())),
            Mount::Bind { bind, .. } if bind.is_output => "--out".to_string(),
            Mount::Bind { bind, .. } => format!(
                "{} '{}'",
                if bind.writable { "--bind" } else { "--ro-bind" },
                printable_path(&bind.source)
            ),
            Mount::Tmpfs(_) => "--tmpfs".to_string(),
        }
    }

    pub fn target(&self) -> &Path {
        match self {
            Mount::Base { path, .. } | Mount::Workdir { path, .. } => path,
            Mount::Slice { slice, .. } => &slice.mount_point,
            Mount::Bind { bind, .. } => &bind.target,
            Mount::Tmpfs(t) => &t.target,
        }
    }

    /// How a later mount below this one sees it.
    pub fn placed(&self, rw_workdir: bool) -> Placed {
        Placed {
            source: match self {
                Mount::Base { path, .. } => Some(path.to_path_buf()),
                Mount::Workdir { source, .. } => Some(source.to_path_buf()),
                Mount::Slice { slice, .. } => Some(slice.tree.clone()),
                Mount::Bind { bind, .. } => Some(bind.source.clone()),
                Mount::Tmpfs(_) => None,
            },
            read_only: match self {
                Mount::Workdir { .. } => !rw_workdir,
                Mount::Bind { bind, .. } => !bind.writable,
                Mount::Tmpfs(_) => false,
                _ => true,
            },
        }
    }
}

/// Explicit mounts are a set, as their order on the command line does not
/// count: two at one mount point would leave which one shows to chance.
/// (Described only on a collision: this runs for every slice.)
pub fn refuse_shared_mount_points(mounts: &[Mount<'_>]) -> Result<(), PlanError> {
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
    Ok(())
}

/// Parents before children: a parent's path is a byte prefix of its
/// children's, so byte order suffices. At equal paths the order of
/// `mounts` (base, then workdir, then slices) decides: the sort is stable.
pub fn parents_first(mounts: &mut [Mount<'_>]) {
    use std::os::unix::ffi::OsStrExt;
    mounts.sort_by(|a, b| {
        a.target()
            .as_os_str()
            .as_bytes()
            .cmp(b.target().as_os_str().as_bytes())
    });
}

/// The host dirs shown writable (each writable `--bind`, and the working
/// directory with `--rw-cwd`): below them a mount point must exist
/// already, as nothing is ever created in a host dir. (Below a `--tmpfs`,
/// the stage's own, it is.)
pub struct WritableDirs<'a>(Vec<&'a Path>);

impl<'a> WritableDirs<'a> {
    pub fn of(mounts: &[Mount<'a>], rw_workdir: bool) -> WritableDirs<'a> {
        WritableDirs(
            mounts
                .iter()
                .filter_map(|m| match m {
                    Mount::Bind { bind, .. } if bind.writable => Some(bind.target.as_path()),
                    Mount::Workdir { path, .. } if rw_workdir => Some(*path),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Whether `path` lies strictly below one of them.
    pub fn holds(&self, path: &Path) -> bool {
        self.0
            .iter()
            .any(|dir| path != *dir && path.starts_with(dir))
    }
}

/// The dir a slice tree is cloned from, and the tree's path below it:
/// `<store>/slices` and `<hex>/tree`.
pub fn store_of(tree: &Path) -> Option<(&Path, &Path)> {
    let dir = tree.parent()?.parent()?;
    Some((dir, tree.strip_prefix(dir).ok()?))
}

/// The nearest proper ancestor of `path` that is a key of `mounts`: the
/// mount that holds `path` (a later mount at the same target covers an
/// earlier one, as an insert replaces).
pub fn holder<'m, 'p, V>(
    mounts: &'m HashMap<PathBuf, V>,
    path: &'p Path,
) -> Option<(&'p Path, &'m V)> {
    path.ancestors()
        .skip(1)
        .find_map(|a| Some((a, mounts.get(a)?)))
}

/// A mount already planned, as a later mount below it sees it.
pub struct Placed {
    /// Where its content comes from on the host (`None`: the stage's own).
    pub source: Option<PathBuf>,
    pub read_only: bool,
}
