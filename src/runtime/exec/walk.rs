//! Walks to a target inside the new root, one component at a time, never
//! through a symlink, keeping the parent dirs of the last target open for
//! the next (siblings cost one lookup each). Async-signal-safe.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;

use crate::runtime::steps::{Kind, Target};
use crate::runtime::sys::{Errno, Syscall};

pub(crate) const RESOLVE_NO_MAGICLINKS: u64 = 0x02;

pub(crate) const RESOLVE_NO_SYMLINKS: u64 = 0x04;

pub(crate) const RESOLVE_BENEATH: u64 = 0x08;

pub(crate) const RESOLVE_IN_ROOT: u64 = 0x10;

/// One component below a directory, never through a symlink.
pub(crate) const WALK: u64 = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH;

/// The open parent dirs of the last target walked: `fds[..len]` are the
/// first `len` components of `path`. The next target reuses those it
/// shares, so siblings cost one lookup each.
pub(crate) struct Walk<'a, 's> {
    fds: &'a mut [RawFd],
    len: usize,
    path: &'s [CString],
}

/// Where a mount goes: an fd of the mount point, or, for a dir this setup
/// has just made, its parent and name (a fresh dir cannot be a symlink, so
/// the lookup and close of an fd are saved).
pub(crate) enum At<'s> {
    Fd(RawFd),
    Made(RawFd, &'s CStr),
}

/// Component `index` of `target`, below `dir`: made when missing (and the
/// target allows it), made without looking first when known to be new.
pub(crate) fn open_dir_at(
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

impl<'a, 's> Walk<'a, 's> {
    /// A walk with `fds` as room for one fd per component.
    pub(crate) fn new(fds: &'a mut [RawFd]) -> Walk<'a, 's> {
        Walk {
            fds,
            len: 0,
            path: &[],
        }
    }

    pub(crate) fn close_from(&mut self, sys: &dyn Syscall, keep: usize) {
        while self.len > keep {
            self.len -= 1;
            sys.close(self.fds[self.len]);
        }
    }

    /// The fd of the target's parent dir, creating missing dirs.
    pub(crate) fn parent(
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

    pub(crate) fn dir(&self, root: RawFd) -> RawFd {
        if self.len == 0 {
            root
        } else {
            self.fds[self.len - 1]
        }
    }

    /// The target itself as an fd: a dir (made when missing) or a file
    /// (created when missing).
    pub(crate) fn open(
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

impl<'s> Walk<'_, 's> {
    pub(crate) fn mount_point(
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
