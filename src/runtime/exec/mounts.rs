//! The mounting steps: attaching detached clones, new filesystems, the
//! shadow tmpfs, Landlock, and entering the root. Async-signal-safe.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;

use super::walk::{At, Walk};
use super::{no_component, AT_RECURSIVE, OPEN_TREE_CLONE};
use crate::runtime::steps::{
    Kind, Op, ShadowKind, Target, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};
use crate::runtime::sys::{Errno, MountAttr, Syscall};

const AT_SYMLINK_NOFOLLOW: libc::c_uint = 0x100;

/// `Op::Shadow`: clone each entry of the dir, cover the dir with a
/// tmpfs, and put the entries back into it.
pub(super) fn shadow<'s>(
    sys: &dyn Syscall,
    root: RawFd,
    op: &'s Op,
    slots: &mut [RawFd],
    walk: &mut Walk<'_, 's>,
) -> Result<(), (Errno, i32)> {
    let Op::Shadow {
        target,
        entries,
        first_slot,
        options,
    } = op
    else {
        unreachable!("called for Op::Shadow only")
    };
    let first_slot = *first_slot;
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
pub(super) fn restrict_unix_sockets<'s>(
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

/// `open_tree(OPEN_TREE_CLONE)` flags: a detached clone, close-on-exec.
pub(crate) const CLONE: libc::c_uint = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;

/// A detached clone of `path` below `dirfd` (`flags`: AT_RECURSIVE,
/// AT_EMPTY_PATH, ...) with `attr` set on it, recursively when the clone
/// is; nothing is left open on failure. The one way setup clones a tree.
pub(super) fn clone_tree(
    sys: &dyn Syscall,
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_uint,
    attr: u64,
) -> Result<RawFd, Errno> {
    let fd = sys.open_tree(dirfd, path, CLONE | flags)?;
    if let Err(errno) = sys.mount_setattr(fd, flags & AT_RECURSIVE, MountAttr::set(attr)) {
        sys.close(fd);
        return Err(errno);
    }
    Ok(fd)
}

pub(super) fn mount_fs(
    sys: &dyn Syscall,
    fstype: &CStr,
    options: &[(CString, CString)],
    attr: u64,
    at: At<'_>,
) -> Result<(), Errno> {
    let options = options
        .iter()
        .map(|(key, value)| (key.as_c_str(), value.as_c_str()));
    match new_fs(sys, fstype, options, attr) {
        Ok(mount) => attach(sys, mount, at),
        Err(errno) => {
            close_at(sys, at);
            Err(errno)
        }
    }
}

/// A new, detached mount of `fstype` with `options`: the fd of its root.
pub(super) fn new_fs<'a>(
    sys: &dyn Syscall,
    fstype: &CStr,
    options: impl IntoIterator<Item = (&'a CStr, &'a CStr)>,
    attr: u64,
) -> Result<RawFd, Errno> {
    let context = sys.fsopen(fstype)?;
    let mounted = options
        .into_iter()
        .try_for_each(|(key, value)| sys.fsconfig_set(context, key, value))
        .and_then(|()| sys.fsconfig_create(context))
        .and_then(|()| sys.fsmount(context, attr));
    sys.close(context);
    mounted
}

/// Makes the assembled root read-only (a tmpfs one) and private, moves into it, and
/// detaches the host's tree, which stays reachable at no path at all.
pub(super) fn enter_root(sys: &dyn Syscall, root: RawFd, read_only: bool) -> Result<(), Errno> {
    if read_only {
        sys.mount_setattr(
            root,
            0,
            MountAttr {
                set: MOUNT_ATTR_RDONLY,
                propagation: 0,
            },
        )?;
    }
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

/// Attaches the detached mount `source` at `at`, closing the fds it owns.
pub(crate) fn attach(sys: &dyn Syscall, source: RawFd, at: At<'_>) -> Result<(), Errno> {
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

pub(crate) fn close_at(sys: &dyn Syscall, at: At<'_>) {
    if let At::Fd(fd) = at {
        sys.close(fd);
    }
}
