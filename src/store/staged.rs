//! The staging of a slice: a private dir under the store's `tmp/`, and
//! the files of its tree (hardlinks to objects, copies where a link will
//! not do), put there by every way a tree is built: a directory source's
//! walk, an archive's entries, a damaged slice rebuilt from its listing.

use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use super::at;
use super::fsutil;
use super::objects::{object_mode, ObjectWriter};
use super::tree::{for_each_path, Node};
use super::{os, printable_path, Error, IoContext, Result, Store};
use crate::digest::Digest;

/// A private staging dir under `tmp/`, removed on drop: whatever happens
/// before the final renames leaves no trace outside `tmp/`.
pub(crate) struct Stage {
    pub(crate) path: PathBuf,
}

impl Stage {
    pub(crate) fn create(store: &Store) -> Result<Stage> {
        let path = store
            .tmp_dir()
            .join(format!("stage-{}", fsutil::unique_suffix()));
        fs::create_dir(&path).at("create staging directory", &path)?;
        Ok(Stage { path })
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = at::remove_tree(&self.path);
    }
}

/// Builds the staged tree below `dir`: hardlinks to objects, with copies for
/// empty files and for objects at the filesystem's link limit (bounded:
/// every link counted against the source's byte limit). Every path is
/// relative to the tree's fd and never followed through a symlink, and the
/// walk is iterative. Directories are made read-only once filled.
pub(crate) fn materialise(root: &Node, dir: &Path, objects: &ObjectWriter<'_>) -> Result<()> {
    fs::create_dir(dir).at("create directory", dir)?;
    let tree = at::open_dir(dir).at("open", dir)?;
    let tree_fd = tree.as_raw_fd();
    let Node::Dir(_) = root else {
        return Err(Error::BadSource {
            source_name: printable_path(dir),
            reason: "the source is not a directory tree".into(),
        });
    };
    let mut dirs: Vec<CString> = Vec::new();
    for_each_path(root, |relative, node| {
        let path = at::cstring(relative).at("create", dir)?;
        let shown = dir.join(os(relative));
        match node {
            Node::Dir(_) => {
                at::mkdir_at(tree_fd, &path, 0o755).at("create directory", &shown)?;
                dirs.push(path);
            }
            Node::Symlink { target } => {
                let target = at::cstring(target).at("create symlink", &shown)?;
                at::symlink_at(&target, tree_fd, &path).at("create symlink", &shown)?;
                fsutil::set_fixed_mtime_at(tree_fd, &path).at("set mtime of", &shown)?;
            }
            Node::File {
                content,
                executable,
                size,
            } => place_file(
                tree_fd,
                &path,
                &shown,
                (content, *executable, *size),
                objects,
            )?,
        }
        Ok(())
    })?;
    // Children before parents, so no directory is read-only while it fills.
    for path in dirs.iter().rev() {
        at::chmod_at(tree_fd, path, 0o755).at("set mode of", dir)?;
        fsutil::set_fixed_mtime_at(tree_fd, path).at("set mtime of", dir)?;
    }
    fsutil::set_fixed_mtime(&tree).at("set mtime of", dir)
}

/// Puts one file of a staged tree at `path`: a hardlink to its object,
/// or a copy for an empty file and for an object at the filesystem's link
/// limit (bounded: every link counted against the source's byte limit).
/// Every file shows the fixed mtime; an object stored before objects had
/// it gets it here (it is the same inode).
pub(crate) fn place_file(
    tree_fd: RawFd,
    path: &CString,
    shown: &Path,
    (content, executable, size): (&Digest, bool, u64),
    objects: &ObjectWriter<'_>,
) -> Result<()> {
    let source = objects.source_of(content, executable);
    place_copy_of(
        LinkFrom::Object(&source),
        tree_fd,
        path,
        shown,
        (executable, size),
    )
}

/// Puts a second path of an earlier file of the tree (a tar hardlink),
/// `name` in the directory `dir`, at `path`: the same inode, or a copy
/// where [`place_file`] makes one.
pub(crate) fn place_link(
    (dir, name): (RawFd, &CStr),
    tree_fd: RawFd,
    path: &CString,
    shown: &Path,
    (executable, size): (bool, u64),
) -> Result<()> {
    place_copy_of(
        LinkFrom::Tree(dir, name),
        tree_fd,
        path,
        shown,
        (executable, size),
    )
}

/// Where a file of a staged tree links to.
enum LinkFrom<'a> {
    Object(&'a Path),
    Tree(RawFd, &'a CStr),
}

impl LinkFrom<'_> {
    fn link(&self, tree_fd: RawFd, path: &CStr) -> io::Result<()> {
        match self {
            LinkFrom::Object(source) => at::link_to(source, tree_fd, path),
            LinkFrom::Tree(dir, name) => at::link_at(*dir, name, tree_fd, path),
        }
    }

    fn open(&self, shown: &Path) -> Result<File> {
        match self {
            LinkFrom::Object(source) => File::open(source).at("open object", source),
            LinkFrom::Tree(dir, name) => at::open_beneath(*dir, name, libc::O_RDONLY)
                .map(File::from)
                .at("open", shown),
        }
    }
}

fn place_copy_of(
    from: LinkFrom,
    tree_fd: RawFd,
    path: &CString,
    shown: &Path,
    (executable, size): (bool, u64),
) -> Result<()> {
    if size == 0 {
        let file = at::create_at(tree_fd, path, object_mode(executable) as libc::mode_t)
            .at("create file", shown)?;
        return fsutil::set_fixed_mtime(&file).at("set mtime of", shown);
    }
    match from.link(tree_fd, path) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EMLINK) => {
            let mut source = from.open(shown)?;
            let to = at::create_at(tree_fd, path, object_mode(executable) as libc::mode_t)
                .at("create file", shown)?;
            let mut to = File::from(to);
            io::copy(&mut source, &mut to).at("copy object to", shown)?;
            fsutil::set_fixed_mtime(&to).at("set mtime of", shown)?;
        }
        Err(e) => return Err(e).at("link object into", shown),
    }
    fsutil::set_fixed_mtime_at(tree_fd, path).at("set mtime of", shown)
}
