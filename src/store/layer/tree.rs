//! A layer's tree: what `sandbox --layer` gives OverlayFS as a lower dir,
//! made from the layer's listing once, when the layer is added, and kept
//! at `layer-trees/<hex>` beside the listing.
//!
//! A file whose mode is its object's (0644, or 0755 when executable: in a
//! Debian base, 6,921 files of 6,946) is a hardlink to the object, one
//! inode for a file a layer and a slice share; any other mode (0600,
//! 0640, 2755) gets a copy of its own with that mode. Setuid and setgid
//! bits are dropped (a stage's mounts are nosuid), and every file is the
//! store owner's. Directories get the listing's mode, whiteouts are 0/0
//! character devices and opaque directories carry `user.overlay.opaque`,
//! as OverlayFS reads them with `userxattr`. Other extended attributes
//! are not set.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::listing::{LayerEntry, LayerKind};
use crate::store::objects::{object_mode, ObjectWriter};
use crate::store::{at, fsutil, os, staged, IoContext, Result};

/// Builds `dir` (which must not exist) from `entries`, in listing order
/// (a directory before what it holds). Every path is relative to the
/// tree's fd and never followed through a symlink.
pub(crate) fn materialise<'e>(
    entries: impl Iterator<Item = &'e LayerEntry> + Clone,
    dir: &Path,
    objects: &ObjectWriter<'_>,
) -> Result<()> {
    std::fs::create_dir(dir).at("create directory", dir)?;
    let tree = at::open_dir(dir).at("open", dir)?;
    let tree_fd = tree.as_raw_fd();
    let mut dirs: Vec<(CString, u32)> = Vec::new();
    for entry in entries.clone() {
        let path = at::cstring(&entry.path).at("create", dir)?;
        let shown = dir.join(os(&entry.path));
        make_parents(tree_fd, &entry.path).at("create parents of", &shown)?;
        place(tree_fd, &path, &shown, entry, objects)?;
        if matches!(entry.kind, LayerKind::Dir | LayerKind::OpaqueDir) {
            dirs.push((path, entry.mode));
        }
    }
    // Hardlinks last: a link may come before its target in path order.
    for entry in entries {
        if let LayerKind::Hardlink { target, .. } = &entry.kind {
            let path = at::cstring(&entry.path).at("create", dir)?;
            let target = at::cstring(target).at("create", dir)?;
            let shown = dir.join(os(&entry.path));
            at::link_at(tree_fd, &target, tree_fd, &path).at("create hardlink", &shown)?;
        }
    }
    // Children before parents, so no directory is closed while it fills.
    for (path, mode) in dirs.iter().rev() {
        at::chmod_at(tree_fd, path, mode & 0o1777).at("set mode of", dir)?;
        fsutil::set_fixed_mtime_at(tree_fd, path).at("set mtime of", dir)?;
    }
    fsutil::set_fixed_mtime(&tree).at("set mtime of", dir)
}

/// The parents of `path` a tar left out (0755, as tar and container
/// runtimes make them); one the listing has exists already.
fn make_parents(tree_fd: RawFd, path: &[u8]) -> io::Result<()> {
    let ends = path.iter().enumerate().filter(|(_, &b)| b == b'/');
    for (end, _) in ends {
        let parent = at::cstring(&path[..end])?;
        match at::mkdir_at(tree_fd, &parent, 0o755) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            made => made?,
        }
    }
    Ok(())
}

fn place(
    tree_fd: RawFd,
    path: &CString,
    shown: &Path,
    entry: &LayerEntry,
    objects: &ObjectWriter<'_>,
) -> Result<()> {
    match &entry.kind {
        LayerKind::Dir => at::mkdir_at(tree_fd, path, 0o700).at("create directory", shown),
        LayerKind::OpaqueDir => {
            at::mkdir_at(tree_fd, path, 0o700).at("create directory", shown)?;
            mark_opaque(tree_fd, path).at("mark opaque", shown)
        }
        LayerKind::File { content, size } => {
            let executable = entry.mode & 0o111 != 0;
            let mode = entry.mode & 0o1777;
            if mode != object_mode(executable) {
                let source = objects.source_of(content, executable);
                return copy_with_mode(&source, *size, tree_fd, path, mode)
                    .at("copy a file with its own mode to", shown);
            }
            staged::place_file(tree_fd, path, shown, (content, executable, *size), objects)?;
            // An object stored before objects were 0644 and 0755 gets
            // the mode now (the same inode: its slices show it too).
            let placed = at::stat_at(tree_fd, path).at("read", shown)?;
            if placed.st_mode & 0o7777 != mode {
                at::chmod_at(tree_fd, path, mode).at("set mode of", shown)?;
            }
            Ok(())
        }
        LayerKind::Symlink(target) => {
            let target = at::cstring(target).at("create symlink", shown)?;
            at::symlink_at(&target, tree_fd, path).at("create symlink", shown)?;
            fsutil::set_fixed_mtime_at(tree_fd, path).at("set mtime of", shown)
        }
        LayerKind::Hardlink { .. } => Ok(()),
        LayerKind::Whiteout => whiteout(tree_fd, path).at("create whiteout", shown),
    }
}

/// A file of the tree's own at `path`: `size` bytes of `source` (an
/// object; none for an empty file), with `mode`.
fn copy_with_mode(
    source: &Path,
    size: u64,
    dir: RawFd,
    path: &CString,
    mode: u32,
) -> io::Result<()> {
    let to = std::fs::File::from(at::create_at(dir, path, 0o600)?);
    if size > 0 {
        io::copy(&mut std::fs::File::open(source)?, &mut &to)?;
    }
    to.set_permissions(std::fs::Permissions::from_mode(mode))?;
    fsutil::set_fixed_mtime(&to)
}

/// A 0/0 character device: OverlayFS's whiteout, which an unprivileged
/// user may make since Linux 5.8.
fn whiteout(dir: RawFd, path: &CString) -> io::Result<()> {
    // SAFETY: a valid fd and C string.
    let made = unsafe { libc::mknodat(dir, path.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
    check(made)
}

/// `user.overlay.opaque=y` on the directory `path` below `dir`.
fn mark_opaque(dir: RawFd, path: &CString) -> io::Result<()> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let opened = at::open_beneath(dir, path, flags)?;
    // SAFETY: a valid fd, a C string name and a 1-byte value.
    let set = unsafe {
        libc::fsetxattr(
            opened.as_raw_fd(),
            c"user.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    check(set)
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
