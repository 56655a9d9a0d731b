//! `layer-mount`'s mounts: the composed view of stored layers at a dir of
//! the caller's own mount namespace, for the script's next commands. Unlike
//! the rest of the runtime this runs in the calling process, not in a
//! cloned child, so it may allocate.
//!
//! - As root, the kernel's OverlayFS, made as a stage's root is
//!   (`exec::overlay`: the new mount API, one `lowerdir+` per layer).
//! - A user without mount power over the caller's namespace cannot mount
//!   a kernel OverlayFS there (only in a namespace of their own, which the
//!   script's next commands are not in), so fuse-overlayfs through
//!   fusermount3 does it, the fallback podman uses.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::exec::overlay::{new_overlay, OverlayLayers};
use super::steps::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use super::sys::{Errno, Linux, Syscall};

/// What a view is made of.
pub struct View<'a> {
    /// The layer trees, bottom first.
    pub lowers: &'a [PathBuf],
    /// The upper dir and OverlayFS's work dir, for a writable view.
    pub upper: Option<(&'a Path, &'a Path)>,
    /// An empty dir, put below a single layer of a read-only view: an
    /// OverlayFS without an upper dir needs two lower dirs.
    pub empty_lower: &'a Path,
}

impl View<'_> {
    /// The lower dirs, topmost first, as OverlayFS and fuse-overlayfs take them.
    fn lowers_topmost_first(&self) -> Vec<&Path> {
        let mut lowers: Vec<&Path> = self.lowers.iter().rev().map(PathBuf::as_path).collect();
        if lowers.len() == 1 && self.upper.is_none() {
            lowers.push(self.empty_lower);
        }
        lowers
    }
}

/// Which step of a kernel mount failed, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFailure {
    pub step: &'static str,
    pub errno: Errno,
}

/// Mounts `view` at `target` with the kernel's OverlayFS: read-only
/// without an upper dir, and never honouring setuid bits or device nodes.
pub fn mount_kernel(view: &View, target: &Path) -> Result<(), KernelFailure> {
    let sys = Linux;
    let open = |step: &'static str, path: &Path| {
        open_dir(path).map_err(|errno| KernelFailure { step, errno })
    };
    let target = open("open the mount point", target)?;
    let lowers = view
        .lowers_topmost_first()
        .into_iter()
        .map(|lower| open("open a layer's tree", lower))
        .collect::<Result<Vec<OwnedFd>, _>>()?;
    let upper = match view.upper {
        Some((upper, work)) => Some((
            open("open the upper dir", upper)?,
            open("open the work dir", work)?,
        )),
        None => None,
    };
    let attr = MOUNT_ATTR_NOSUID
        | MOUNT_ATTR_NODEV
        | if upper.is_none() {
            MOUNT_ATTR_RDONLY
        } else {
            0
        };
    let layers = OverlayLayers {
        lowers: lowers.iter().map(AsRawFd::as_raw_fd),
        upper: upper.as_ref().map(|(u, w)| (u.as_raw_fd(), w.as_raw_fd())),
        source: Some(c"slicebox"),
    };
    let made = new_overlay(&sys, layers, attr).map_err(|errno| KernelFailure {
        step: "make the OverlayFS",
        errno,
    })?;
    // SAFETY: new_overlay returned a new fd that nothing else owns.
    let made = unsafe { OwnedFd::from_raw_fd(made) };
    sys.move_mount(made.as_raw_fd(), target.as_raw_fd())
        .map_err(|errno| KernelFailure {
            step: "attach it at the mount point",
            errno,
        })
}

/// Unmounts the kernel view at `target`. A view in use stays (EBUSY), as
/// umount(8) leaves it: a lazy detach would hide that a process still
/// writes there.
pub fn unmount_kernel(target: &Path) -> Result<(), Errno> {
    let path = c_path(target)?;
    // SAFETY: a valid C string.
    crate::os::check(unsafe { libc::umount2(path.as_ptr(), libc::UMOUNT_NOFOLLOW) })
}

/// The two programs of the FUSE fallback, found in `search_path`.
pub struct FuseTools {
    pub fuse_overlayfs: PathBuf,
    pub fusermount: PathBuf,
}

impl FuseTools {
    /// Both programs, or the name of the first one missing.
    pub fn find(search_path: &str) -> Result<FuseTools, &'static str> {
        let find = |name: &'static str| crate::os::find_program(search_path, name).ok_or(name);
        Ok(FuseTools {
            fuse_overlayfs: find("fuse-overlayfs")?,
            fusermount: find("fusermount3")?,
        })
    }

    /// Mounts `view` at `target` with fuse-overlayfs, which then serves it
    /// from a process of its own until [`FuseTools::unmount`]. The error
    /// is fuse-overlayfs's own words.
    pub fn mount(&self, view: &View, target: &Path) -> Result<(), String> {
        let mut options = OsString::from("lowerdir=");
        for (index, lower) in view.lowers_topmost_first().into_iter().enumerate() {
            if index > 0 {
                options.push(":");
            }
            options.push(option_path(lower)?);
        }
        if let Some((upper, work)) = view.upper {
            options.push(",upperdir=");
            options.push(option_path(upper)?);
            options.push(",workdir=");
            options.push(option_path(work)?);
        }
        let mut args = vec![OsString::from("-o"), options];
        args.push(target.as_os_str().to_owned());
        run_tool(&self.fuse_overlayfs, &args)
    }

    pub fn unmount(&self, target: &Path) -> Result<(), String> {
        run_tool(
            &self.fusermount,
            &["-u".into(), target.as_os_str().to_owned()],
        )
    }
}

/// A path in fuse-overlayfs's option string, where ':' and ',' separate.
fn option_path(path: &Path) -> Result<&std::ffi::OsStr, String> {
    match path
        .as_os_str()
        .as_bytes()
        .iter()
        .find(|b| b":,\\".contains(b))
    {
        Some(&b) => Err(format!(
            "fuse-overlayfs cannot take the path '{}': it holds '{}'",
            crate::text::printable_path(path),
            b as char
        )),
        None => Ok(path.as_os_str()),
    }
}

/// Runs `program` to its end and gives its stderr when it fails. Safe in
/// the shell that loaded us: SIGCHLD stays blocked until the child is
/// reaped, so bash's handler cannot reap it first, and the child gets none
/// of the caller's descriptors but stdio (a daemon holding a pipe of the
/// script would keep its reader waiting forever).
fn run_tool(program: &Path, args: &[OsString]) -> Result<(), String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: close_range is async-signal-safe and touches no memory; it
    // marks fds 3 and up close-on-exec (std's own error pipe is already).
    unsafe {
        command.pre_exec(|| {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    let name = program.file_name().map_or_else(
        || crate::text::printable_path(program),
        |n| crate::text::printable(n.as_bytes()),
    );
    let output = with_sigchld_blocked(|| command.output()).map_err(|e| {
        let shown = crate::text::printable_path(program);
        format!("cannot run {shown}: {}", crate::text::io_cause(&e))
    })?;
    if output.status.success() {
        return Ok(());
    }
    // One line per line it said, so the message stays one line.
    let said = String::from_utf8_lossy(&output.stderr);
    let said: Vec<String> = said
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| crate::text::printable(l.trim().as_bytes()))
        .collect();
    let said = said.join("; ");
    Err(match (output.status.code(), said.is_empty()) {
        (Some(code), true) => format!("{name} failed with status {code}"),
        (None, true) => format!("{name} was killed ({})", output.status),
        (_, false) => format!("{name}: {said}"),
    })
}

fn with_sigchld_blocked<R>(work: impl FnOnce() -> R) -> R {
    // SAFETY: sigemptyset/sigaddset initialise `only`; pthread_sigmask
    // saves the old mask in `old`, restored below.
    let old = unsafe {
        let mut only: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut only);
        libc::sigaddset(&mut only, libc::SIGCHLD);
        libc::pthread_sigmask(libc::SIG_BLOCK, &only, &mut old);
        old
    };
    let result = work();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    result
}

fn c_path(path: &Path) -> Result<CString, Errno> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)
}

fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    let fd: RawFd = Linux.open_dir(&c_path(path)?)?;
    // SAFETY: open_dir returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_view_of_one_layer_gets_the_empty_lower_below_it() {
        let one = [PathBuf::from("/s/a")];
        let view = View {
            lowers: &one,
            upper: None,
            empty_lower: Path::new("/s/empty"),
        };
        assert_eq!(
            view.lowers_topmost_first(),
            [Path::new("/s/a"), Path::new("/s/empty")]
        );
        let two = [PathBuf::from("/s/a"), PathBuf::from("/s/b")];
        let view = View {
            lowers: &two,
            ..view
        };
        assert_eq!(
            view.lowers_topmost_first(),
            [Path::new("/s/b"), Path::new("/s/a")]
        );
    }

    #[test]
    fn option_separators_in_a_path_are_refused() {
        assert!(option_path(Path::new("/store/layer-trees/ab")).is_ok());
        let refused = option_path(Path::new("/my:store")).unwrap_err();
        assert!(refused.contains("holds ':'"), "{refused}");
        assert!(option_path(Path::new("/a,b")).is_err());
    }

    #[test]
    fn a_tool_s_failure_comes_back_in_its_own_words() {
        let said = run_tool(
            Path::new("/bin/sh"),
            &["-c".into(), "echo no such layer >&2; exit 3".into()],
        )
        .unwrap_err();
        assert_eq!(said, "sh: no such layer");
        let two = run_tool(
            Path::new("/bin/sh"),
            &["-c".into(), "printf 'one\\n\\ntwo\\n' >&2; exit 1".into()],
        )
        .unwrap_err();
        assert_eq!(two, "sh: one; two");
        assert!(run_tool(Path::new("/bin/true"), &[]).is_ok());
        let missing = run_tool(Path::new("/nonexistent/tool"), &[]).unwrap_err();
        assert!(
            missing.starts_with("cannot run /nonexistent/tool: "),
            "{missing}"
        );
    }

    #[test]
    fn a_tool_gets_none_of_the_caller_s_descriptors() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = file.as_raw_fd();
        // SAFETY: F_SETFD on a descriptor `file` owns: inheritable, as a
        // shell's `exec 3>FILE` leaves it.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        // SAFETY: F_GETFD only queries.
        assert_eq!(unsafe { libc::fcntl(fd, libc::F_GETFD) }, 0);
        let probe = format!("if [ -e /proc/self/fd/{fd} ]; then echo inherited >&2; exit 1; fi");
        assert_eq!(
            run_tool(Path::new("/bin/sh"), &["-c".into(), probe.into()]),
            Ok(())
        );
        // The probe sees an fd it was given.
        let given = "[ -e /proc/self/fd/2 ] || { echo no stderr >&2; exit 1; }";
        assert_eq!(
            run_tool(Path::new("/bin/sh"), &["-c".into(), given.into()]),
            Ok(())
        );
    }
}
