//! Runs a plan's steps in the cloned child, between clone and exec.
//!
//! **Async-signal-safe, all of it**: the caller may have other threads,
//! whose locks (malloc's among them) may be held forever in the child's
//! copy of memory. Nothing here allocates, locks or panics; every fd it
//! opens is closed when `execute` returns, on success and on failure, and
//! every kernel call goes through the `Syscall` seam. A failure is an
//! index, an errno and, for a walk, the component it stopped at.

mod mounts;
pub(crate) mod overlay;
mod walk;

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::report::{StepFailure, SOURCE_FAILED};
use super::steps::{Kind, Op, Step, READ_ONLY};
use super::sys::{Errno, MountAttr, Syscall};
use mounts::{
    attach, clone_tree, close_at, enter_root, mount_fs, restrict_unix_sockets, shadow, CLONE,
};
#[cfg(test)]
pub(crate) use walk::WALK;
use walk::{At, Walk};
use walk::{RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};

pub(crate) const OPEN_TREE_CLONE: libc::c_uint = 1;

pub(crate) const AT_RECURSIVE: libc::c_uint = 0x8000;

/// Where the stage's root tmpfs is mounted, in the child's private copy of
/// the host's mount tree, while it is assembled. Every host source is
/// opened before this mount covers it.
pub(crate) const ASSEMBLY_POINT: &CStr = c"/tmp";

/// The slot of the new root's fd.
pub(crate) const ROOT: usize = 0;

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
    let mut walk = Walk::new(walk);
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

pub(crate) fn no_component(errno: Errno) -> (Errno, i32) {
    (errno, -1)
}

pub(crate) fn run_op<'s>(
    sys: &dyn Syscall,
    op: &'s Op,
    slots: &mut [RawFd],
    walk: &mut Walk<'_, 's>,
) -> Result<(), (Errno, i32)> {
    match op {
        Op::WriteFile { .. }
        | Op::NewSessionKeyring
        | Op::MakeMountsSlave
        | Op::CloneHostTree { .. }
        | Op::OpenStore { .. }
        | Op::MountRoot
        | Op::OpenHostDir { .. }
        | Op::MountOverlayRoot { .. } => host_op(sys, op, slots).map_err(no_component),
        Op::LoopbackUp => sys.loopback_up().map_err(no_component),
        Op::SetHostname { name } => sys.set_hostname(name).map_err(no_component),
        Op::CloseSources { first } => {
            walk.close_from(sys, 0);
            for slot in slots[*first..].iter_mut().filter(|s| **s >= 0) {
                sys.close(std::mem::replace(slot, -1));
            }
            Ok(())
        }
        Op::EnterRoot { read_only } => {
            enter_root(sys, slots[ROOT], *read_only).map_err(no_component)
        }
        Op::Chdir { path } => chdir(sys, slots[ROOT], path).map_err(no_component),
        _ => root_op(sys, op, slots, walk),
    }
}

/// The steps before the root exists: they see the host's tree.
fn host_op(sys: &dyn Syscall, op: &Op, slots: &mut [RawFd]) -> Result<(), Errno> {
    match op {
        Op::WriteFile { path, data } => sys.write_file(path, data),
        Op::NewSessionKeyring => sys.join_new_session_keyring(),
        Op::MakeMountsSlave => sys.set_propagation(c"/", libc::MS_REC | libc::MS_SLAVE),
        Op::CloneHostTree {
            path,
            slot,
            attr,
            recursive,
        } => {
            let recursive = if *recursive { AT_RECURSIVE } else { 0 };
            slots[*slot] = clone_tree(sys, libc::AT_FDCWD, path, recursive, *attr)?;
            Ok(())
        }
        Op::OpenStore {
            path,
            clone_slot,
            path_slot,
        } => {
            slots[*clone_slot] = clone_tree(sys, libc::AT_FDCWD, path, AT_RECURSIVE, READ_ONLY)?;
            slots[*path_slot] = sys.open_dir(path)?;
            Ok(())
        }
        Op::MountRoot => {
            sys.mount_tmpfs(ASSEMBLY_POINT, c"mode=0755")?;
            slots[ROOT] = sys.open_dir(ASSEMBLY_POINT)?;
            Ok(())
        }
        Op::OpenHostDir { path, slot } => {
            slots[*slot] = sys.open_dir(path)?;
            Ok(())
        }
        Op::MountOverlayRoot { lowers, upper } => {
            slots[ROOT] = overlay::mount_overlay_root(sys, lowers, *upper, slots)?;
            Ok(())
        }
        _ => unreachable!("run_op passes only the host's steps"),
    }
}

/// The steps that work inside the new root, each reaching its target by
/// a walk from the root's fd.
fn root_op<'s>(
    sys: &dyn Syscall,
    op: &'s Op,
    slots: &mut [RawFd],
    walk: &mut Walk<'_, 's>,
) -> Result<(), (Errno, i32)> {
    let root = slots[ROOT];
    match op {
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
            let source = match sys.open_tree(slots[*clone_slot], relative, CLONE) {
                // A kernel that refuses clones of a detached mount.
                Err(libc::EINVAL) => {
                    clone_tree(sys, slots[*path_slot], relative, AT_RECURSIVE, READ_ONLY)
                }
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
            match clone_tree(sys, at, c"", empty | AT_RECURSIVE, READ_ONLY) {
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
        Op::Shadow { .. } => shadow(sys, root, op, slots, walk),
        Op::SealShadow { target } => {
            let fd = walk.open(sys, root, target, Kind::Dir)?;
            let result = sys.mount_setattr(fd, 0, MountAttr::set(READ_ONLY));
            sys.close(fd);
            result.map_err(no_component)
        }
        Op::RestrictUnixSockets { allowed } => restrict_unix_sockets(sys, root, allowed, walk),
        _ => unreachable!("run_op handles the other steps"),
    }
}

/// Changes into `path`, resolved inside the root, not following links to
/// a process's descriptors, cwd or root.
fn chdir(sys: &dyn Syscall, root: RawFd, path: &CStr) -> Result<(), Errno> {
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    let fd = sys.open_resolved(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)?;
    let result = sys.fchdir(fd);
    sys.close(fd);
    result
}
