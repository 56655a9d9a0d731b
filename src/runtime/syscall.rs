//! The one seam every state-changing kernel call of stage setup goes
//! through: a thin Linux implementation, and a recording double so the
//! order of mounts is unit-tested without privileges.
//!
//! The Linux implementation runs in the cloned child before exec, so it
//! must stay async-signal-safe: no allocation, no locks, raw syscalls only.

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::{c_int, c_uint, c_ulong};

pub type Errno = i32;
pub type SysResult<T = ()> = Result<T, Errno>;

pub trait Syscall {
    fn mount(
        &self,
        source: &CStr,
        target: &CStr,
        fstype: &CStr,
        flags: c_ulong,
        data: &CStr,
    ) -> SysResult;
    /// mount(NULL, target, NULL, flags, NULL): propagation changes.
    fn set_propagation(&self, target: &CStr, flags: c_ulong) -> SysResult;
    /// `dirfd` is `AT_FDCWD` or a mount from an earlier open_tree.
    fn open_tree(&self, dirfd: RawFd, path: &CStr, flags: c_uint) -> SysResult<RawFd>;
    fn mount_setattr(&self, fd: RawFd, path: &CStr, flags: c_uint, attr_set: u64) -> SysResult;
    fn move_mount(&self, fd: RawFd, target: &CStr) -> SysResult;
    fn close(&self, fd: RawFd);
    fn mkdir(&self, path: &CStr, mode: libc::mode_t) -> SysResult;
    fn create_file(&self, path: &CStr) -> SysResult;
    fn symlink(&self, target: &CStr, link: &CStr) -> SysResult;
    fn chdir(&self, path: &CStr) -> SysResult;
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult;
    fn umount_detach(&self, target: &CStr) -> SysResult;
    fn rmdir(&self, path: &CStr) -> SysResult;
    fn write_file(&self, path: &CStr, data: &[u8]) -> SysResult;
    fn loopback_up(&self) -> SysResult;
}

pub struct Linux;

fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(ret: c_int) -> SysResult {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

fn check_long(ret: libc::c_long) -> SysResult<libc::c_long> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// `struct mount_attr` from linux/mount.h.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

impl Syscall for Linux {
    fn mount(
        &self,
        source: &CStr,
        target: &CStr,
        fstype: &CStr,
        flags: c_ulong,
        data: &CStr,
    ) -> SysResult {
        // SAFETY: all pointers are valid NUL-terminated strings for the call.
        check(unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                flags,
                data.as_ptr().cast(),
            )
        })
    }

    fn set_propagation(&self, target: &CStr, flags: c_ulong) -> SysResult {
        // SAFETY: NULL source, fstype and data are allowed for propagation changes.
        check(unsafe {
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            )
        })
    }

    fn open_tree(&self, dirfd: RawFd, path: &CStr, flags: c_uint) -> SysResult<RawFd> {
        // SAFETY: open_tree takes a dirfd, a valid C string and flags.
        let fd =
            check_long(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) })?;
        Ok(fd as RawFd)
    }

    fn mount_setattr(&self, fd: RawFd, path: &CStr, flags: c_uint, attr_set: u64) -> SysResult {
        let attr = MountAttr {
            attr_set,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        // SAFETY: `attr` lives across the call and its size is passed along.
        check_long(unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd,
                path.as_ptr(),
                flags,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        })
        .map(drop)
    }

    fn move_mount(&self, fd: RawFd, target: &CStr) -> SysResult {
        // SAFETY: the empty string is a valid C string; MOVE_MOUNT_F_EMPTY_PATH makes `fd` the source.
        check_long(unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                fd,
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH,
            )
        })
        .map(drop)
    }

    fn close(&self, fd: RawFd) {
        // SAFETY: the fd was returned by open_tree and is owned here.
        unsafe { libc::close(fd) };
    }

    fn mkdir(&self, path: &CStr, mode: libc::mode_t) -> SysResult {
        // SAFETY: valid C string.
        check(unsafe { libc::mkdir(path.as_ptr(), mode) })
    }

    fn create_file(&self, path: &CStr) -> SysResult {
        // SAFETY: valid C string; the fd is closed right away.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o644,
            )
        };
        if fd < 0 {
            return Err(errno());
        }
        // SAFETY: fd was just opened.
        unsafe { libc::close(fd) };
        Ok(())
    }

    fn symlink(&self, target: &CStr, link: &CStr) -> SysResult {
        // SAFETY: valid C strings.
        check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) })
    }

    fn chdir(&self, path: &CStr) -> SysResult {
        // SAFETY: valid C string.
        check(unsafe { libc::chdir(path.as_ptr()) })
    }

    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult {
        // SAFETY: valid C strings.
        check_long(unsafe {
            libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr())
        })
        .map(drop)
    }

    fn umount_detach(&self, target: &CStr) -> SysResult {
        // SAFETY: valid C string.
        check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) })
    }

    fn rmdir(&self, path: &CStr) -> SysResult {
        // SAFETY: valid C string.
        check(unsafe { libc::rmdir(path.as_ptr()) })
    }

    fn write_file(&self, path: &CStr, data: &[u8]) -> SysResult {
        // SAFETY: valid C string; the fd is closed on every path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(errno());
        }
        // SAFETY: `data` is a valid buffer of the given length.
        let written = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        let result = if written < 0 {
            Err(errno())
        } else if written as usize != data.len() {
            Err(libc::EIO)
        } else {
            Ok(())
        };
        // SAFETY: fd was opened above.
        unsafe { libc::close(fd) };
        result
    }

    fn loopback_up(&self) -> SysResult {
        // SAFETY: a plain socket used only for the interface ioctl, closed below.
        let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if sock < 0 {
            return Err(errno());
        }
        // SAFETY: ifreq is plain data; zeroed is a valid value.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `request`, which outlives the calls.
        let result = unsafe {
            if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut request) < 0 {
                Err(errno())
            } else {
                request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                check(libc::ioctl(sock, libc::SIOCSIFFLAGS, &request))
            }
        };
        // SAFETY: sock was opened above.
        unsafe { libc::close(sock) };
        result
    }
}

#[cfg(test)]
pub mod recording {
    //! A Syscall double that records each call as one line of text.

    use std::cell::RefCell;

    use super::*;

    #[derive(Default)]
    pub struct Recorder {
        pub calls: RefCell<Vec<String>>,
        next_fd: RefCell<RawFd>,
    }

    impl Recorder {
        fn log(&self, line: String) -> SysResult {
            self.calls.borrow_mut().push(line);
            Ok(())
        }
    }

    fn s(c: &CStr) -> String {
        c.to_string_lossy().into_owned()
    }

    impl Syscall for Recorder {
        fn mount(
            &self,
            source: &CStr,
            target: &CStr,
            fstype: &CStr,
            _flags: c_ulong,
            data: &CStr,
        ) -> SysResult {
            self.log(format!(
                "mount {} {} {} {}",
                s(fstype),
                s(source),
                s(target),
                s(data)
            ))
        }
        fn set_propagation(&self, target: &CStr, _flags: c_ulong) -> SysResult {
            self.log(format!("propagation {}", s(target)))
        }
        fn open_tree(&self, dirfd: RawFd, path: &CStr, _flags: c_uint) -> SysResult<RawFd> {
            let mut fd = self.next_fd.borrow_mut();
            *fd += 1;
            if dirfd == libc::AT_FDCWD {
                self.log(format!("open_tree {}", s(path)))?;
            } else {
                self.log(format!("open_tree_at {}", s(path)))?;
            }
            Ok(*fd + 100)
        }
        fn mount_setattr(
            &self,
            _fd: RawFd,
            path: &CStr,
            _flags: c_uint,
            attr_set: u64,
        ) -> SysResult {
            self.log(format!("setattr {} {:#x}", s(path), attr_set))
        }
        fn move_mount(&self, _fd: RawFd, target: &CStr) -> SysResult {
            self.log(format!("move_mount {}", s(target)))
        }
        fn close(&self, _fd: RawFd) {}
        fn mkdir(&self, path: &CStr, _mode: libc::mode_t) -> SysResult {
            self.log(format!("mkdir {}", s(path)))
        }
        fn create_file(&self, path: &CStr) -> SysResult {
            self.log(format!("create {}", s(path)))
        }
        fn symlink(&self, target: &CStr, link: &CStr) -> SysResult {
            self.log(format!("symlink {} -> {}", s(link), s(target)))
        }
        fn chdir(&self, path: &CStr) -> SysResult {
            self.log(format!("chdir {}", s(path)))
        }
        fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult {
            self.log(format!("pivot_root {} {}", s(new_root), s(put_old)))
        }
        fn umount_detach(&self, target: &CStr) -> SysResult {
            self.log(format!("umount {}", s(target)))
        }
        fn rmdir(&self, path: &CStr) -> SysResult {
            self.log(format!("rmdir {}", s(path)))
        }
        fn write_file(&self, path: &CStr, data: &[u8]) -> SysResult {
            self.log(format!(
                "write {} {}",
                s(path),
                String::from_utf8_lossy(data).trim_end()
            ))
        }
        fn loopback_up(&self) -> SysResult {
            self.log("loopback up".into())
        }
    }
}
