//! Paths resolved below a directory fd, never through a symlink: what the
//! store uses to read directory sources and to build slice trees, so that a
//! tree changed under our feet can never redirect a read or a write, and
//! no path is ever longer than what the kernel takes (relative paths below
//! a fd, not absolute ones).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::dir::Dir;

use super::sorted_names::{self, SortedNames, Spill};
use crate::os::openat2;

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

pub(crate) fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Opens `path` below `dir` with `flags`, through no symlink and never
/// above `dir` (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS).
pub(crate) fn open_beneath(dir: RawFd, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    let fd = openat2(dir, path, flags | libc::O_NOFOLLOW, resolve)
        .map_err(io::Error::from_raw_os_error)?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `parts` (a relative path's components) name an entry below
/// `top`, through directories only: a symlink on the way is not followed
/// (whatever it is, the path does not name an entry of the tree).
pub(crate) fn exists_beneath(top: RawFd, parts: &[&str]) -> bool {
    let Some((last, parents)) = parts.split_last() else {
        return true;
    };
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return false;
    }
    let Ok(last) = cstring(last.as_bytes()) else {
        return false;
    };
    let parent = match parents.is_empty() {
        true => None,
        false => match cstring(parents.join("/").as_bytes())
            .and_then(|p| open_beneath(top, &p, libc::O_PATH | libc::O_DIRECTORY))
        {
            Ok(fd) => Some(fd),
            Err(_) => return false,
        },
    };
    let dir = parent.as_ref().map_or(top, |fd| fd.as_raw_fd());
    stat_at(dir, &last).is_ok()
}

/// Opens a directory given by the user (following a symlink at the top,
/// as the user asked for that path).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = cstring(path.as_os_str().as_bytes())?;
    // SAFETY: a valid C string; the fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn fstat(fd: &impl AsRawFd) -> io::Result<libc::stat> {
    // SAFETY: stat is plain data written by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and out-pointer.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// lstat of `name` in `dir`.
pub(crate) fn stat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: stat is plain data written by fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd, C string and out-pointer.
    check(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

pub(crate) fn read_link_at(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: `buf` is valid for its length.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize == buf.len() {
        // A target the kernel would not resolve anyway (PATH_MAX).
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub(crate) fn mkdir_at(dir: RawFd, path: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: a valid fd and C string.
    check(unsafe { libc::mkdirat(dir, path.as_ptr(), mode) })
}

pub(crate) fn symlink_at(target: &CStr, dir: RawFd, path: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, path.as_ptr()) })
}

/// A hardlink at `path` below `dir` to the file at absolute `source`.
pub(crate) fn link_to(source: &Path, dir: RawFd, path: &CStr) -> io::Result<()> {
    let source = cstring(source.as_os_str().as_bytes())?;
    // SAFETY: valid C strings; flags 0 do not follow a symlink at `source`.
    check(unsafe { libc::linkat(libc::AT_FDCWD, source.as_ptr(), dir, path.as_ptr(), 0) })
}

/// A hardlink at `path` below `dir` to `from_name` in `from_dir`, which
/// is not followed if it is a symlink.
pub(crate) fn link_at(
    from_dir: RawFd,
    from_name: &CStr,
    dir: RawFd,
    path: &CStr,
) -> io::Result<()> {
    // SAFETY: valid fds and C strings; flags 0 do not follow a symlink.
    check(unsafe { libc::linkat(from_dir, from_name.as_ptr(), dir, path.as_ptr(), 0) })
}

/// A new file at `path` below `dir`, refusing to replace anything.
pub(crate) fn create_at(dir: RawFd, path: &CStr, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: valid fd and C string; the fd is owned below.
    let fd = unsafe {
        libc::openat(
            dir,
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn chmod_at(dir: RawFd, path: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid fd and C string.
    check(unsafe { libc::fchmodat(dir, path.as_ptr(), mode, 0) })
}

pub(crate) fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

pub(crate) fn is_file(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

pub(crate) fn is_symlink(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// One entry met by [`walk`]: where it is, the directory that holds it
/// (open while the callback runs) and its lstat.
pub(crate) struct Visit<'a> {
    /// Below the top of the walk, '/'-separated.
    pub path: &'a [u8],
    pub dir: RawFd,
    pub name: &'a CStr,
    pub stat: &'a libc::stat,
}

/// A directory being walked: its names, read once and handed out in
/// order, the one handed out last (the walk is inside it when it is a
/// directory), and what it holds of the walk's memory and spill file.
struct Frame {
    path: Vec<u8>,
    stat: libc::stat,
    names: SortedNames,
    current: CString,
    held: usize,
    spill_mark: u64,
}

fn same_inode(a: &libc::stat, b: &libc::stat) -> bool {
    (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
}

/// The names of a directory, in bytewise order (getdents order differs
/// between filesystems; a sorted walk makes the entry a limit stops at the
/// same everywhere), holding at most `room` bytes of them in memory.
fn read_names(dir: &mut Dir, room: usize, spill: &mut Spill) -> io::Result<(SortedNames, usize)> {
    let names = dir.iter().filter_map(|entry| match entry {
        Err(e) => Some(Err(io::Error::from(e))),
        Ok(entry) => {
            let name = entry.file_name();
            (name.to_bytes() != b"." && name.to_bytes() != b"..").then(|| Ok(name.to_owned()))
        }
    });
    SortedNames::read(names, room, spill)
}

/// Opens `name` in `dir` as a directory, which must be the one `expected`
/// describes: a directory swapped for another (or for a symlink) between
/// the lstat and the open is an error, never followed.
fn open_expected(dir: RawFd, name: &CStr, expected: &libc::stat) -> io::Result<Dir> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK;
    let fd = if name == c".." {
        // RESOLVE_BENEATH refuses "..": the inode check below is what
        // keeps the walk on the tree it came down.
        // SAFETY: a valid fd and C string; the fd is owned below.
        let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(fd) }
    } else {
        open_beneath(dir, name, flags)?
    };
    if !same_inode(&fstat(&fd)?, expected) {
        return Err(io::Error::other("it changed while it was being read"));
    }
    Dir::from(fd).map_err(io::Error::from)
}

/// Every entry below `top`, depth first: `visit` sees each entry before
/// the walk enters it (so it may refuse it, or make it writable), `leave`
/// sees each directory once everything in it has been visited (so it may
/// remove it). Only one directory is open at a time, entered by name and
/// left by "..", each checked to be the inode first seen: no depth of tree
/// runs out of stack or descriptors, no path is longer than one name, and
/// a tree changed meanwhile is an error, never a detour. Each entry is
/// lstat'ed when it is visited. What the walk holds is its path and each
/// open directory's names, in memory bounded whatever they hold
/// (`sorted_names`): big directories spill to an unnamed file in the
/// system's temporary directory.
///
/// `failed` turns the walk's own errors into the caller's, with the path
/// (below `top`) they happened at.
pub(crate) fn walk<E>(
    top: OwnedFd,
    visit: impl FnMut(&Visit) -> Result<(), E>,
    leave: impl FnMut(&Visit) -> Result<(), E>,
    failed: impl Fn(&[u8], io::Error) -> E,
) -> Result<(), E> {
    walk_spilling(top, &std::env::temp_dir(), visit, leave, failed)
}

/// [`walk`], spilling big directories' names to `spill_dir`.
pub(crate) fn walk_spilling<E>(
    top: OwnedFd,
    spill_dir: &Path,
    mut visit: impl FnMut(&Visit) -> Result<(), E>,
    mut leave: impl FnMut(&Visit) -> Result<(), E>,
    failed: impl Fn(&[u8], io::Error) -> E,
) -> Result<(), E> {
    let mut spill = Spill::new(spill_dir);
    let top_stat = fstat(&top).map_err(|e| failed(b"", e))?;
    let mut current = Dir::from(top).map_err(|e| failed(b"", e.into()))?;
    let (names, held) = read_names(&mut current, sorted_names::MEMORY_BYTES, &mut spill)
        .map_err(|e| failed(b"", e))?;
    let mut in_memory = held;
    let mut frames = vec![Frame {
        path: Vec::new(),
        stat: top_stat,
        names,
        current: CString::default(),
        held,
        spill_mark: 0,
    }];
    while let Some(frame) = frames.last_mut() {
        let next = frame
            .names
            .next(&mut spill)
            .map_err(|e| failed(&frame.path, e))?;
        let Some(name) = next else {
            let done = frames.pop().expect("the loop holds a frame");
            in_memory -= done.held;
            spill
                .release(done.spill_mark)
                .map_err(|e| failed(&done.path, e))?;
            let Some(parent) = frames.last() else {
                break;
            };
            current = open_expected(current.as_raw_fd(), c"..", &parent.stat)
                .map_err(|e| failed(&parent.path, e))?;
            leave(&Visit {
                path: &done.path,
                dir: current.as_raw_fd(),
                name: &parent.current,
                stat: &done.stat,
            })?;
            continue;
        };
        let mut path = frame.path.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name.as_bytes());
        let stat = stat_at(current.as_raw_fd(), &name).map_err(|e| failed(&path, e))?;
        visit(&Visit {
            path: &path,
            dir: current.as_raw_fd(),
            name: &name,
            stat: &stat,
        })?;
        frame.current = name;
        if is_dir(&stat) {
            current = open_expected(current.as_raw_fd(), &frame.current, &stat)
                .map_err(|e| failed(&path, e))?;
            let spill_mark = spill.mark();
            let room = sorted_names::MEMORY_BYTES.saturating_sub(in_memory);
            let (names, held) =
                read_names(&mut current, room, &mut spill).map_err(|e| failed(&path, e))?;
            in_memory += held;
            frames.push(Frame {
                path,
                stat,
                names,
                current: CString::default(),
                held,
                spill_mark,
            });
        }
    }
    Ok(())
}

/// Removes `path` and everything below it, making read-only directories
/// writable first (stored trees are read-only); a missing `path` is
/// already removed.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(meta) if !meta.is_dir() => return std::fs::remove_file(path),
        Ok(_) => {}
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    let unlink = |visit: &Visit, flags: libc::c_int| {
        // SAFETY: a valid fd and C string.
        check(unsafe { libc::unlinkat(visit.dir, visit.name.as_ptr(), flags) })
    };
    walk(
        open_dir(path)?,
        |visit| {
            if is_dir(visit.stat) {
                chmod_at(visit.dir, visit.name, 0o755)
            } else {
                unlink(visit, 0)
            }
        },
        |visit| unlink(visit, libc::AT_REMOVEDIR),
        |_, e| e,
    )?;
    std::fs::remove_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;

    fn open(path: &Path) -> OwnedFd {
        open_dir(path).unwrap()
    }

    /// `levels` read-only directories, one inside the other, made below
    /// fds (600 make a path far longer than PATH_MAX); their inodes.
    fn deep(top: &Path, levels: usize) -> HashSet<(u64, u64)> {
        let mut dir = open(top);
        let mut inodes = HashSet::new();
        let name = c"ten-bytes-";
        for _ in 0..levels {
            mkdir_at(dir.as_raw_fd(), name, 0o555).unwrap();
            dir = open_beneath(dir.as_raw_fd(), name, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
            let st = fstat(&dir).unwrap();
            inodes.insert((st.st_dev, st.st_ino));
        }
        drop(create_at(dir.as_raw_fd(), c"f", 0o444).unwrap());
        inodes
    }

    /// Descriptors of this process open on one of `inodes` (other tests
    /// run in threads alongside; paths this deep cannot be read back).
    fn open_on(inodes: &HashSet<(u64, u64)>) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::metadata(e.ok()?.path()).ok())
            .filter(|m| inodes.contains(&(m.dev(), m.ino())))
            .count()
    }

    #[test]
    fn the_walk_is_sorted_visits_parents_first_and_leaves_them_last() {
        let tmp = tempfile::tempdir().unwrap();
        for dir in ["b/y", "a"] {
            std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        }
        std::fs::write(tmp.path().join("b/x"), "").unwrap();
        std::os::unix::fs::symlink("a", tmp.path().join("c")).unwrap();
        let seen = std::cell::RefCell::new(Vec::new());
        let note = |what: &str, v: &Visit| {
            let path = String::from_utf8_lossy(v.path);
            seen.borrow_mut().push(format!("{what} {path}"));
            Ok::<_, io::Error>(())
        };
        walk(
            open(tmp.path()),
            |v| note("visit", v),
            |v| note("leave", v),
            |_, e| e,
        )
        .unwrap();
        assert_eq!(
            seen.into_inner(),
            [
                "visit a",
                "leave a",
                "visit b",
                "visit b/x",
                "visit b/y",
                "leave b/y",
                "leave b",
                "visit c"
            ]
        );
    }

    #[test]
    fn deep_read_only_trees_are_walked_with_one_fd_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("top");
        std::fs::create_dir(&top).unwrap();
        let inodes = deep(&top, 600);
        let mut most = 0;
        let mut files = 0;
        walk(
            open(&top),
            |v| {
                most = most.max(open_on(&inodes));
                files += usize::from(is_file(v.stat));
                Ok::<_, io::Error>(())
            },
            |_| Ok(()),
            |_, e| e,
        )
        .unwrap();
        assert_eq!(files, 1);
        // The directory being read, whichever level it is at.
        assert_eq!(most, 1, "{most} descriptors open in the tree at once");
        remove_tree(&top).unwrap();
        assert!(!top.exists());
    }

    #[test]
    fn a_directory_swapped_during_the_walk_is_an_error_not_a_detour() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("top");
        std::fs::create_dir_all(top.join("a")).unwrap();
        std::fs::create_dir_all(tmp.path().join("elsewhere/secret")).unwrap();
        let mut entered = Vec::new();
        let result = walk(
            open(&top),
            |v| {
                if v.path == b"a" {
                    // Between the walk's lstat and its open.
                    std::fs::remove_dir(top.join("a")).unwrap();
                    std::os::unix::fs::symlink(tmp.path().join("elsewhere"), top.join("a"))
                        .unwrap();
                }
                entered.push(v.path.to_vec());
                Ok(())
            },
            |_| Ok(()),
            |path, e| io::Error::other(format!("{}: {e}", String::from_utf8_lossy(path))),
        );
        let err = result.unwrap_err().to_string();
        assert!(err.starts_with("a: "), "{err}");
        assert_eq!(entered, [b"a".to_vec()]);
    }
}
