//! `Op::MountOverlayRoot`: the stage's root as an OverlayFS of its layers,
//! over an upper and a work dir on a tmpfs of the stage's own. Built with
//! the new mount API, one `lowerdir+` per layer, so no option string
//! limits the depth (the kernel's own limit is 500 layers).
//! Async-signal-safe: it allocates nothing.

use std::ffi::CStr;
use std::fmt::Write as _;
use std::os::fd::RawFd;

use super::mounts::new_fs;
use super::walk::{RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS};
use super::ASSEMBLY_POINT;
use crate::runtime::steps::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID};
use crate::runtime::sys::{Errno, Syscall};

/// Mounts the overlay of the layer trees open in `slots[lowers]` (topmost
/// first) over the upper and work dirs in `slots[upper]` (or on a fresh
/// tmpfs) at the assembly point and returns its dir fd.
pub(super) fn mount_overlay_root(
    sys: &dyn Syscall,
    lowers: &[usize],
    upper: Option<(usize, usize)>,
    slots: &[RawFd],
) -> Result<RawFd, Errno> {
    let root = match upper {
        Some((upper, work)) => overlay(sys, lowers, slots, slots[upper], slots[work]),
        None => overlay_on_tmpfs(sys, lowers, slots),
    }?;
    let attached = sys.move_mount_at(root, libc::AT_FDCWD, ASSEMBLY_POINT);
    sys.close(root);
    attached?;
    sys.open_dir(ASSEMBLY_POINT)
}

/// The overlay with its upper and work dirs on a tmpfs of its own: the
/// stage's changes live and die with it.
fn overlay_on_tmpfs(sys: &dyn Syscall, lowers: &[usize], slots: &[RawFd]) -> Result<RawFd, Errno> {
    let scratch = new_tmpfs(sys)?;
    // Held open until the overlay is made: closing a detached mount's
    // last fsmount fd unmounts it, and OverlayFS refuses an upper dir
    // that is not mounted ("failed to clone upperpath", EINVAL).
    let root = upper_and_work(sys, scratch).and_then(|(upper, work)| {
        let root = overlay(sys, lowers, slots, upper, work);
        sys.close(upper);
        sys.close(work);
        root
    });
    sys.close(scratch);
    root
}

/// A detached tmpfs for the upper and work dirs: the stage's changes live
/// and die with it.
fn new_tmpfs(sys: &dyn Syscall) -> Result<RawFd, Errno> {
    let options = [(c"mode", c"0755")];
    new_fs(sys, c"tmpfs", options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
}

fn upper_and_work(sys: &dyn Syscall, scratch: RawFd) -> Result<(RawFd, RawFd), Errno> {
    let open = |name: &CStr| {
        sys.mkdirat(scratch, name, 0o755)?;
        let resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        sys.open_resolved(scratch, name, OPEN_DIR, resolve)
    };
    let upper = open(c"upper")?;
    match open(c"work") {
        Ok(work) => Ok((upper, work)),
        Err(errno) => {
            sys.close(upper);
            Err(errno)
        }
    }
}

const OPEN_DIR: libc::c_int = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;

fn overlay(
    sys: &dyn Syscall,
    lowers: &[usize],
    slots: &[RawFd],
    upper: RawFd,
    work: RawFd,
) -> Result<RawFd, Errno> {
    let layers = OverlayLayers {
        lowers: lowers.iter().map(|&lower| slots[lower]),
        upper: Some((upper, work)),
        source: None,
    };
    new_overlay(sys, layers, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
}

/// What an OverlayFS is made of, each by an open dir.
pub(crate) struct OverlayLayers<I> {
    /// Topmost first.
    pub lowers: I,
    /// The upper and work dirs; none for a read-only overlay (which
    /// needs two lowers at least).
    pub upper: Option<(RawFd, RawFd)>,
    /// What the mount table shows as the mount's source.
    pub source: Option<&'static CStr>,
}

/// A detached OverlayFS of `layers`, mounted with `attr`: its fd.
pub(crate) fn new_overlay(
    sys: &dyn Syscall,
    layers: OverlayLayers<impl Iterator<Item = RawFd>>,
    attr: u64,
) -> Result<RawFd, Errno> {
    let context = sys.fsopen(c"overlay")?;
    let mut lowers = layers.lowers;
    let mounted = lowers
        .try_for_each(|lower| set_layer(sys, context, c"lowerdir+", lower))
        .and_then(|()| match layers.upper {
            Some((upper, work)) => set_layer(sys, context, c"upperdir", upper)
                .and_then(|()| set_layer(sys, context, c"workdir", work)),
            None => Ok(()),
        })
        .and_then(|()| match layers.source {
            Some(source) => sys.fsconfig_set(context, c"source", source),
            None => Ok(()),
        })
        // user.overlay.* xattrs: what an unprivileged user may set, and
        // what the store records opaque dirs with.
        .and_then(|()| sys.fsconfig_set_flag(context, c"userxattr"))
        .and_then(|()| sys.fsconfig_create(context))
        .and_then(|()| sys.fsmount(context, attr));
    sys.close(context);
    mounted
}

/// One layer by its fd (Linux 6.13), or before that by its
/// /proc/self/fd path (`lowerdir+` came in 6.8).
fn set_layer(sys: &dyn Syscall, context: RawFd, key: &CStr, dir: RawFd) -> Result<(), Errno> {
    match sys.fsconfig_set_fd(context, key, dir) {
        Err(libc::EINVAL) => {
            let mut buf = [0u8; 32];
            sys.fsconfig_set(context, key, proc_fd_path(dir, &mut buf))
        }
        other => other,
    }
}

/// "/proc/self/fd/N" in `buf`, without allocating: `core::fmt` writes
/// integers into the stack buffer.
fn proc_fd_path(fd: RawFd, buf: &mut [u8; 32]) -> &CStr {
    let mut text = NulTerminated { buf, len: 0 };
    // 14 bytes of prefix, at most 11 of an i32, and the NUL fit in 32.
    let _ = write!(text, "/proc/self/fd/{fd}\0");
    let len = text.len;
    CStr::from_bytes_with_nul(&buf[..len]).unwrap_or(c"/proc/self/fd/")
}

struct NulTerminated<'a> {
    buf: &'a mut [u8; 32],
    len: usize,
}

impl std::fmt::Write for NulTerminated<'_> {
    fn write_str(&mut self, part: &str) -> std::fmt::Result {
        let end = self.len + part.len();
        let room = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(part.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fd_paths_name_the_descriptor() {
        let mut buf = [0u8; 32];
        assert_eq!(proc_fd_path(0, &mut buf), c"/proc/self/fd/0");
        assert_eq!(
            proc_fd_path(1234567890, &mut buf),
            c"/proc/self/fd/1234567890"
        );
    }
}
