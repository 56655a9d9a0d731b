//! The one seam every state-changing kernel call of a stage's setup goes
//! through: a thin Linux implementation, and a recording double that can
//! also be told to fail its Nth call, so the order of setup and the fact
//! that every failing step ends the stage are unit-tested without
//! privileges.
//!
//! The Linux implementation runs in the cloned child before exec, so it
//! must stay async-signal-safe: no allocation, no locks, raw syscalls only.

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::{c_int, c_uint, c_ulong};

pub type Errno = i32;
pub type SysResult<T = ()> = Result<T, Errno>;

/// `struct mount_attr` from linux/mount.h, as far as we set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub set: u64,
    /// `MS_PRIVATE`, `MS_SLAVE`, … or 0 to leave propagation alone.
    pub propagation: u64,
}

pub trait Syscall {
    fn write_file(&self, path: &CStr, data: &[u8]) -> SysResult;
    /// mount(NULL, target, NULL, flags, NULL): propagation changes.
    fn set_propagation(&self, target: &CStr, flags: c_ulong) -> SysResult;
    /// A tmpfs at a path of the host's view (only the stage's root).
    fn mount_tmpfs(&self, target: &CStr, options: &CStr) -> SysResult;
    /// `open(path, O_PATH|O_DIRECTORY|O_CLOEXEC)`.
    fn open_dir(&self, path: &CStr) -> SysResult<RawFd>;
    /// `dirfd` is `AT_FDCWD` or an fd; an empty `path` needs AT_EMPTY_PATH.
    fn open_tree(&self, dirfd: RawFd, path: &CStr, flags: c_uint) -> SysResult<RawFd>;
    fn mount_setattr(&self, fd: RawFd, flags: c_uint, attr: MountAttr) -> SysResult;
    /// Attaches the detached mount `from` on the object `to` refers to.
    fn move_mount(&self, from: RawFd, to: RawFd) -> SysResult;
    /// Attaches `from` on `name` below the dir `dir`, not following a
    /// symlink there.
    fn move_mount_at(&self, from: RawFd, dir: RawFd, name: &CStr) -> SysResult;
    fn fsopen(&self, fstype: &CStr) -> SysResult<RawFd>;
    fn fsconfig_set(&self, fd: RawFd, key: &CStr, value: &CStr) -> SysResult;
    fn fsconfig_create(&self, fd: RawFd) -> SysResult;
    fn fsmount(&self, fd: RawFd, attr: u64) -> SysResult<RawFd>;
    /// openat2(dirfd, path, flags, resolve).
    fn open_resolved(
        &self,
        dirfd: RawFd,
        path: &CStr,
        flags: c_int,
        resolve: u64,
    ) -> SysResult<RawFd>;
    fn mkdirat(&self, dirfd: RawFd, name: &CStr, mode: libc::mode_t) -> SysResult;
    /// A new empty file (O_CREAT|O_EXCL|O_NOFOLLOW), returned open.
    fn create_file_at(&self, dirfd: RawFd, name: &CStr) -> SysResult<RawFd>;
    fn symlinkat(&self, text: &CStr, dirfd: RawFd, name: &CStr) -> SysResult;
    fn close(&self, fd: RawFd);
    fn fchdir(&self, fd: RawFd) -> SysResult;
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult;
    fn umount_detach(&self, target: &CStr) -> SysResult;
    fn loopback_up(&self) -> SysResult;
    fn set_hostname(&self, name: &CStr) -> SysResult;
    /// unshare(CLONE_NEWUSER).
    fn new_user_namespace(&self) -> SysResult;
    /// No supplementary groups, then the real, effective and saved gid
    /// and uid: raw syscalls, for this thread only (glibc's wrappers
    /// signal every thread of the caller, which a cloned child lacks).
    fn switch_ids(&self, uid: u32, gid: u32) -> SysResult;
    fn set_rlimit(&self, resource: c_int, soft: u64, hard: u64) -> SysResult;
    fn join_new_session_keyring(&self) -> SysResult;
    fn close_range(&self, first: u32, last: u32, flags: c_uint) -> SysResult;
    fn setsid(&self) -> SysResult;
    /// setpgid(0, 0).
    fn set_own_process_group(&self) -> SysResult;
    fn drop_bounding_capability(&self, capability: c_int) -> SysResult;
    fn clear_ambient_capabilities(&self) -> SysResult;
    fn set_no_new_privs(&self) -> SysResult;
    /// capset: `keep` (a mask of capability numbers) effective and
    /// permitted, nothing inheritable. 0 drops every capability.
    fn keep_capabilities(&self, keep: u64) -> SysResult;
    fn set_dumpable(&self, dumpable: bool) -> SysResult;
    /// fcntl(F_DUPFD_CLOEXEC, min).
    fn dup_at_least(&self, fd: RawFd, min: RawFd) -> SysResult<RawFd>;
    fn dup2(&self, from: RawFd, to: RawFd) -> SysResult;
    /// Clears FD_CLOEXEC.
    fn set_inheritable(&self, fd: RawFd) -> SysResult;
    fn set_controlling_terminal(&self, fd: RawFd) -> SysResult;
    /// A Landlock ruleset handling `handled_fs` (no network, no scopes).
    fn landlock_create_ruleset(&self, handled_fs: u64) -> SysResult<RawFd>;
    /// Grants `access` below (or on) the object `fd` refers to.
    fn landlock_allow(&self, ruleset: RawFd, fd: RawFd, access: u64) -> SysResult;
    fn landlock_restrict_self(&self, ruleset: RawFd) -> SysResult;
    /// seccomp(SECCOMP_SET_MODE_FILTER): needs no_new_privs.
    fn set_seccomp_filter(&self, program: &[libc::sock_filter]) -> SysResult;
}

/// The kernel's Landlock ABI version, 0 without Landlock.
pub fn landlock_abi() -> u32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: a NULL attr with size 0 and the VERSION flag only queries.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    version.max(0) as u32
}

pub struct Linux;

pub fn errno() -> Errno {
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

/// openat2 with O_CLOEXEC added, retried on EAGAIN (a racing rename, as
/// the kernel asks) and EINTR: the one way anything here opens a path
/// under resolve rules, the stage's setup and the store's walks alike.
pub fn openat2(dirfd: RawFd, path: &CStr, flags: c_int, resolve: u64) -> SysResult<RawFd> {
    // SAFETY: open_how is plain data; zeroed is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: `how` lives across the call and its size is passed along.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match check_fd(fd) {
            Err(libc::EAGAIN) | Err(libc::EINTR) => continue,
            other => return other,
        }
    }
}

fn check_fd(ret: libc::c_long) -> SysResult<RawFd> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as RawFd)
    }
}

/// Constants of linux/mount.h and linux/keyctl.h that the libc crate lacks.
const FSOPEN_CLOEXEC: c_uint = 1;
const FSMOUNT_CLOEXEC: c_uint = 1;
const FSCONFIG_SET_STRING: c_uint = 1;
const FSCONFIG_CMD_CREATE: c_uint = 6;
const MOVE_MOUNT_T_EMPTY_PATH: c_uint = 0x40;
const KEYCTL_JOIN_SESSION_KEYRING: c_int = 1;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct LandlockRulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct LandlockPathBeneath {
    allowed_access: u64,
    parent_fd: i32,
}

const LANDLOCK_RULE_PATH_BENEATH: c_int = 1;

#[repr(C)]
struct KernelMountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

impl Syscall for Linux {
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

    fn mount_tmpfs(&self, target: &CStr, options: &CStr) -> SysResult {
        // SAFETY: all pointers are valid NUL-terminated strings for the call.
        check(unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.as_ptr().cast(),
            )
        })
    }

    fn open_dir(&self, path: &CStr) -> SysResult<RawFd> {
        // SAFETY: valid C string.
        check_fd(unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        } as libc::c_long)
    }

    fn open_tree(&self, dirfd: RawFd, path: &CStr, flags: c_uint) -> SysResult<RawFd> {
        // SAFETY: open_tree takes a dirfd, a valid C string and flags.
        check_fd(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) })
    }

    fn mount_setattr(&self, fd: RawFd, flags: c_uint, attr: MountAttr) -> SysResult {
        let attr = KernelMountAttr {
            attr_set: attr.set,
            attr_clr: 0,
            propagation: attr.propagation,
            userns_fd: 0,
        };
        // SAFETY: `attr` lives across the call and its size is passed along;
        // the empty path goes with AT_EMPTY_PATH in `flags`.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd,
                c"".as_ptr(),
                flags | libc::AT_EMPTY_PATH as c_uint,
                &attr as *const KernelMountAttr,
                std::mem::size_of::<KernelMountAttr>(),
            )
        })
        .map(drop)
    }

    fn move_mount(&self, from: RawFd, to: RawFd) -> SysResult {
        // SAFETY: empty paths with the *_EMPTY_PATH flags make both fds the objects.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                from,
                c"".as_ptr(),
                to,
                c"".as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
            )
        })
        .map(drop)
    }

    fn move_mount_at(&self, from: RawFd, dir: RawFd, name: &CStr) -> SysResult {
        // SAFETY: valid C strings; without MOVE_MOUNT_T_SYMLINKS a symlink
        // at `name` is not followed.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                from,
                c"".as_ptr(),
                dir,
                name.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH,
            )
        })
        .map(drop)
    }

    fn fsopen(&self, fstype: &CStr) -> SysResult<RawFd> {
        // SAFETY: valid C string and flags.
        check_fd(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })
    }

    fn fsconfig_set(&self, fd: RawFd, key: &CStr, value: &CStr) -> SysResult {
        // SAFETY: valid C strings for key and value.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fd,
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        })
        .map(drop)
    }

    fn fsconfig_create(&self, fd: RawFd) -> SysResult {
        // SAFETY: the create command takes no key or value.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fd,
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        })
        .map(drop)
    }

    fn fsmount(&self, fd: RawFd, attr: u64) -> SysResult<RawFd> {
        // SAFETY: plain integers.
        check_fd(unsafe { libc::syscall(libc::SYS_fsmount, fd, FSMOUNT_CLOEXEC, attr) })
    }

    fn open_resolved(
        &self,
        dirfd: RawFd,
        path: &CStr,
        flags: c_int,
        resolve: u64,
    ) -> SysResult<RawFd> {
        openat2(dirfd, path, flags, resolve)
    }

    fn mkdirat(&self, dirfd: RawFd, name: &CStr, mode: libc::mode_t) -> SysResult {
        // SAFETY: valid C string.
        check(unsafe { libc::mkdirat(dirfd, name.as_ptr(), mode) })
    }

    fn create_file_at(&self, dirfd: RawFd, name: &CStr) -> SysResult<RawFd> {
        // SAFETY: valid C string.
        check_fd(unsafe {
            libc::openat(
                dirfd,
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_RDONLY | libc::O_CLOEXEC,
                0o644,
            )
        } as libc::c_long)
    }

    fn symlinkat(&self, text: &CStr, dirfd: RawFd, name: &CStr) -> SysResult {
        // SAFETY: valid C strings.
        check(unsafe { libc::symlinkat(text.as_ptr(), dirfd, name.as_ptr()) })
    }

    fn close(&self, fd: RawFd) {
        // SAFETY: closing an fd this setup opened and owns.
        unsafe { libc::close(fd) };
    }

    fn fchdir(&self, fd: RawFd) -> SysResult {
        // SAFETY: plain integer.
        check(unsafe { libc::fchdir(fd) })
    }

    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult {
        // SAFETY: valid C strings.
        check_fd(unsafe {
            libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr())
        })
        .map(drop)
    }

    fn umount_detach(&self, target: &CStr) -> SysResult {
        // SAFETY: valid C string.
        check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) })
    }

    fn set_hostname(&self, name: &CStr) -> SysResult {
        // SAFETY: a valid C string and its length.
        check(unsafe { libc::sethostname(name.as_ptr(), name.to_bytes().len()) })
    }

    fn new_user_namespace(&self) -> SysResult {
        // SAFETY: unshare takes only flags.
        check(unsafe { libc::unshare(libc::CLONE_NEWUSER) })
    }

    fn switch_ids(&self, uid: u32, gid: u32) -> SysResult {
        // SAFETY: raw setgroups/setresgid/setresuid with plain integers
        // and no group list.
        unsafe {
            check(
                libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>())
                    as c_int,
            )?;
            check(libc::syscall(libc::SYS_setresgid, gid, gid, gid) as c_int)?;
            check(libc::syscall(libc::SYS_setresuid, uid, uid, uid) as c_int)
        }
    }

    fn set_rlimit(&self, resource: c_int, soft: u64, hard: u64) -> SysResult {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `limit` is a valid rlimit for the call.
        check(unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &limit) })
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

    fn join_new_session_keyring(&self) -> SysResult {
        // SAFETY: a NULL name asks for a new anonymous session keyring.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_JOIN_SESSION_KEYRING,
                std::ptr::null::<libc::c_char>(),
            )
        })
        .map(drop)
    }

    fn close_range(&self, first: u32, last: u32, flags: c_uint) -> SysResult {
        // SAFETY: plain integers.
        check_fd(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) }).map(drop)
    }

    fn setsid(&self) -> SysResult {
        // SAFETY: no arguments.
        check(unsafe { libc::setsid() })
    }

    fn set_own_process_group(&self) -> SysResult {
        // SAFETY: plain integers.
        check(unsafe { libc::setpgid(0, 0) })
    }

    fn drop_bounding_capability(&self, capability: c_int) -> SysResult {
        // SAFETY: prctl with plain integers.
        check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) })
    }

    fn clear_ambient_capabilities(&self) -> SysResult {
        // SAFETY: prctl with plain integers.
        check(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            )
        })
    }

    fn set_no_new_privs(&self) -> SysResult {
        // SAFETY: prctl with plain integers.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
    }

    fn keep_capabilities(&self, keep: u64) -> SysResult {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: c_int,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let header = Header {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let half = |bits: u64| Data {
            effective: bits as u32,
            permitted: bits as u32,
            inheritable: 0,
        };
        let data = [half(keep), half(keep >> 32)];
        // SAFETY: capset v3 takes a header and two data structs, both valid here.
        check_fd(unsafe {
            libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr())
        })
        .map(drop)
    }

    fn set_dumpable(&self, dumpable: bool) -> SysResult {
        // SAFETY: prctl with plain integers.
        check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, dumpable as c_ulong, 0, 0, 0) })
    }

    fn dup_at_least(&self, fd: RawFd, min: RawFd) -> SysResult<RawFd> {
        // SAFETY: fcntl with plain integers.
        check_fd(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) } as libc::c_long)
    }

    fn dup2(&self, from: RawFd, to: RawFd) -> SysResult {
        // SAFETY: plain integers.
        check(unsafe { libc::dup2(from, to) })
    }

    fn set_inheritable(&self, fd: RawFd) -> SysResult {
        // SAFETY: fcntl with plain integers.
        check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })
    }

    fn set_controlling_terminal(&self, fd: RawFd) -> SysResult {
        // SAFETY: TIOCSCTTY takes an int argument (0: do not steal).
        check(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) })
    }

    fn landlock_create_ruleset(&self, handled_fs: u64) -> SysResult<RawFd> {
        let attr = LandlockRulesetAttr {
            handled_access_fs: handled_fs,
            handled_access_net: 0,
            scoped: 0,
        };
        // SAFETY: `attr` lives across the call and its size is passed along.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const LandlockRulesetAttr,
                std::mem::size_of::<LandlockRulesetAttr>(),
                0u32,
            )
        })
    }

    fn landlock_allow(&self, ruleset: RawFd, fd: RawFd, access: u64) -> SysResult {
        let rule = LandlockPathBeneath {
            allowed_access: access,
            parent_fd: fd,
        };
        // SAFETY: `rule` lives across the call.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                LANDLOCK_RULE_PATH_BENEATH,
                &rule as *const LandlockPathBeneath,
                0u32,
            )
        })
        .map(drop)
    }

    fn landlock_restrict_self(&self, ruleset: RawFd) -> SysResult {
        // SAFETY: plain integers.
        check_fd(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) })
            .map(drop)
    }

    fn set_seccomp_filter(&self, program: &[libc::sock_filter]) -> SysResult {
        let fprog = libc::sock_fprog {
            // A longer program is refused before the clone (MAX_INSTRUCTIONS).
            len: program.len().min(u16::MAX as usize) as u16,
            filter: program.as_ptr().cast_mut(),
        };
        // SAFETY: `fprog` points at `program`, which outlives the call; the
        // kernel copies the instructions and never writes through the pointer.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0u32,
                &fprog as *const libc::sock_fprog,
            )
        })
        .map(drop)
    }
}

#[cfg(test)]
pub mod recording {
    //! A Syscall double that records each call as one line of text, and
    //! fails the call numbered `fail_at` (counting from 0) when told to.

    use std::cell::{Cell, RefCell};

    use super::*;

    #[derive(Default)]
    pub struct Recorder {
        pub calls: RefCell<Vec<String>>,
        next_fd: Cell<RawFd>,
        /// Fail the call with this index.
        pub fail_at: Option<(usize, Errno)>,
        /// Fail every call recorded as exactly this line.
        pub fail_on: Option<(String, Errno)>,
    }

    impl Recorder {
        pub fn failing(call: usize, errno: Errno) -> Recorder {
            Recorder {
                fail_at: Some((call, errno)),
                ..Recorder::default()
            }
        }

        pub fn failing_on(line: &str, errno: Errno) -> Recorder {
            Recorder {
                fail_on: Some((line.to_string(), errno)),
                ..Recorder::default()
            }
        }

        fn log(&self, line: String) -> SysResult {
            let mut calls = self.calls.borrow_mut();
            let by_index = self.fail_at.filter(|(at, _)| *at == calls.len());
            let by_line = self.fail_on.as_ref().filter(|(l, _)| *l == line);
            match by_index.map(|(_, e)| e).or(by_line.map(|(_, e)| *e)) {
                Some(errno) => {
                    calls.push(format!("{line} -> FAIL"));
                    Err(errno)
                }
                None => {
                    calls.push(line);
                    Ok(())
                }
            }
        }

        fn fd(&self, line: String) -> SysResult<RawFd> {
            self.log(line)?;
            self.next_fd.set(self.next_fd.get() + 1);
            Ok(100 + self.next_fd.get())
        }
    }

    /// A double that does nothing, records nothing and allocates
    /// nothing: for checking that the code between clone and exec never
    /// allocates, and for injecting a panic at call `panic_at` there.
    #[derive(Default)]
    pub struct Quiet {
        pub calls: Cell<usize>,
        pub panic_at: Option<usize>,
    }

    impl Quiet {
        fn call(&self) -> SysResult {
            let n = self.calls.get();
            self.calls.set(n + 1);
            if self.panic_at == Some(n) {
                panic!("a panic injected at call {n}");
            }
            Ok(())
        }

        fn fd(&self) -> SysResult<RawFd> {
            self.call()?;
            Ok(100 + self.calls.get() as RawFd)
        }
    }

    impl Syscall for Quiet {
        fn write_file(&self, _: &CStr, _: &[u8]) -> SysResult {
            self.call()
        }
        fn set_propagation(&self, _: &CStr, _: c_ulong) -> SysResult {
            self.call()
        }
        fn mount_tmpfs(&self, _: &CStr, _: &CStr) -> SysResult {
            self.call()
        }
        fn open_dir(&self, _: &CStr) -> SysResult<RawFd> {
            self.fd()
        }
        fn open_tree(&self, _: RawFd, _: &CStr, _: c_uint) -> SysResult<RawFd> {
            self.fd()
        }
        fn mount_setattr(&self, _: RawFd, _: c_uint, _: MountAttr) -> SysResult {
            self.call()
        }
        fn move_mount(&self, _: RawFd, _: RawFd) -> SysResult {
            self.call()
        }
        fn move_mount_at(&self, _: RawFd, _: RawFd, _: &CStr) -> SysResult {
            self.call()
        }
        fn fsopen(&self, _: &CStr) -> SysResult<RawFd> {
            self.fd()
        }
        fn fsconfig_set(&self, _: RawFd, _: &CStr, _: &CStr) -> SysResult {
            self.call()
        }
        fn fsconfig_create(&self, _: RawFd) -> SysResult {
            self.call()
        }
        fn fsmount(&self, _: RawFd, _: u64) -> SysResult<RawFd> {
            self.fd()
        }
        fn open_resolved(&self, _: RawFd, _: &CStr, _: c_int, _: u64) -> SysResult<RawFd> {
            self.fd()
        }
        fn mkdirat(&self, _: RawFd, _: &CStr, _: libc::mode_t) -> SysResult {
            self.call()
        }
        fn create_file_at(&self, _: RawFd, _: &CStr) -> SysResult<RawFd> {
            self.fd()
        }
        fn symlinkat(&self, _: &CStr, _: RawFd, _: &CStr) -> SysResult {
            self.call()
        }
        fn close(&self, _: RawFd) {
            let _ = self.call();
        }
        fn fchdir(&self, _: RawFd) -> SysResult {
            self.call()
        }
        fn pivot_root(&self, _: &CStr, _: &CStr) -> SysResult {
            self.call()
        }
        fn umount_detach(&self, _: &CStr) -> SysResult {
            self.call()
        }
        fn loopback_up(&self) -> SysResult {
            self.call()
        }
        fn set_hostname(&self, _: &CStr) -> SysResult {
            self.call()
        }
        fn new_user_namespace(&self) -> SysResult {
            self.call()
        }
        fn switch_ids(&self, _: u32, _: u32) -> SysResult {
            self.call()
        }
        fn set_seccomp_filter(&self, _: &[libc::sock_filter]) -> SysResult {
            self.call()
        }
        fn set_rlimit(&self, _: c_int, _: u64, _: u64) -> SysResult {
            self.call()
        }
        fn join_new_session_keyring(&self) -> SysResult {
            self.call()
        }
        fn close_range(&self, _: u32, _: u32, _: c_uint) -> SysResult {
            self.call()
        }
        fn setsid(&self) -> SysResult {
            self.call()
        }
        fn set_own_process_group(&self) -> SysResult {
            self.call()
        }
        // Like a kernel whose last capability is 40.
        fn drop_bounding_capability(&self, capability: c_int) -> SysResult {
            self.call()?;
            if capability > 40 {
                Err(libc::EINVAL)
            } else {
                Ok(())
            }
        }
        fn clear_ambient_capabilities(&self) -> SysResult {
            self.call()
        }
        fn set_no_new_privs(&self) -> SysResult {
            self.call()
        }
        fn keep_capabilities(&self, _: u64) -> SysResult {
            self.call()
        }
        fn set_dumpable(&self, _: bool) -> SysResult {
            self.call()
        }
        fn dup_at_least(&self, _: RawFd, _: RawFd) -> SysResult<RawFd> {
            self.fd()
        }
        fn dup2(&self, _: RawFd, _: RawFd) -> SysResult {
            self.call()
        }
        fn set_inheritable(&self, _: RawFd) -> SysResult {
            self.call()
        }
        fn set_controlling_terminal(&self, _: RawFd) -> SysResult {
            self.call()
        }
        fn landlock_create_ruleset(&self, _: u64) -> SysResult<RawFd> {
            self.fd()
        }
        fn landlock_allow(&self, _: RawFd, _: RawFd, _: u64) -> SysResult {
            self.call()
        }
        fn landlock_restrict_self(&self, _: RawFd) -> SysResult {
            self.call()
        }
    }

    fn s(c: &CStr) -> String {
        c.to_string_lossy().into_owned()
    }

    impl Syscall for Recorder {
        fn write_file(&self, path: &CStr, data: &[u8]) -> SysResult {
            self.log(format!(
                "write {} {}",
                s(path),
                String::from_utf8_lossy(data).trim_end()
            ))
        }
        fn set_propagation(&self, target: &CStr, flags: c_ulong) -> SysResult {
            self.log(format!("propagation {} {flags:#x}", s(target)))
        }
        fn mount_tmpfs(&self, target: &CStr, options: &CStr) -> SysResult {
            self.log(format!("mount tmpfs {} {}", s(target), s(options)))
        }
        fn open_dir(&self, path: &CStr) -> SysResult<RawFd> {
            self.fd(format!("open_dir {}", s(path)))
        }
        fn open_tree(&self, dirfd: RawFd, path: &CStr, _flags: c_uint) -> SysResult<RawFd> {
            if dirfd == libc::AT_FDCWD {
                self.fd(format!("open_tree {}", s(path)))
            } else {
                self.fd(format!("open_tree_at {}", s(path)))
            }
        }
        fn mount_setattr(&self, _fd: RawFd, flags: c_uint, attr: MountAttr) -> SysResult {
            let recursive = if flags & 0x8000 != 0 {
                " recursive"
            } else {
                ""
            };
            self.log(format!(
                "setattr {:#x} propagation {:#x}{recursive}",
                attr.set, attr.propagation
            ))
        }
        fn move_mount(&self, _from: RawFd, _to: RawFd) -> SysResult {
            self.log("move_mount".into())
        }
        fn move_mount_at(&self, _from: RawFd, _dir: RawFd, name: &CStr) -> SysResult {
            self.log(format!("move_mount_at {}", s(name)))
        }
        fn fsopen(&self, fstype: &CStr) -> SysResult<RawFd> {
            self.fd(format!("fsopen {}", s(fstype)))
        }
        fn fsconfig_set(&self, _fd: RawFd, key: &CStr, value: &CStr) -> SysResult {
            self.log(format!("fsconfig {}={}", s(key), s(value)))
        }
        fn fsconfig_create(&self, _fd: RawFd) -> SysResult {
            self.log("fsconfig create".into())
        }
        fn fsmount(&self, _fd: RawFd, attr: u64) -> SysResult<RawFd> {
            self.fd(format!("fsmount {attr:#x}"))
        }
        fn open_resolved(
            &self,
            _dirfd: RawFd,
            path: &CStr,
            _flags: c_int,
            resolve: u64,
        ) -> SysResult<RawFd> {
            self.fd(format!("open {} resolve {resolve:#x}", s(path)))
        }
        fn mkdirat(&self, _dirfd: RawFd, name: &CStr, _mode: libc::mode_t) -> SysResult {
            self.log(format!("mkdir {}", s(name)))
        }
        fn create_file_at(&self, _dirfd: RawFd, name: &CStr) -> SysResult<RawFd> {
            self.fd(format!("create {}", s(name)))
        }
        fn symlinkat(&self, text: &CStr, _dirfd: RawFd, name: &CStr) -> SysResult {
            self.log(format!("symlink {} -> {}", s(name), s(text)))
        }
        fn close(&self, _fd: RawFd) {}
        fn fchdir(&self, _fd: RawFd) -> SysResult {
            self.log("fchdir".into())
        }
        fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult {
            self.log(format!("pivot_root {} {}", s(new_root), s(put_old)))
        }
        fn umount_detach(&self, target: &CStr) -> SysResult {
            self.log(format!("umount {}", s(target)))
        }
        fn loopback_up(&self) -> SysResult {
            self.log("loopback up".into())
        }
        fn set_hostname(&self, name: &CStr) -> SysResult {
            self.log(format!("hostname {}", s(name)))
        }
        fn new_user_namespace(&self) -> SysResult {
            self.log("unshare user".into())
        }
        fn switch_ids(&self, uid: u32, gid: u32) -> SysResult {
            self.log(format!("switch ids {uid} {gid}"))
        }
        fn set_rlimit(&self, resource: c_int, soft: u64, hard: u64) -> SysResult {
            self.log(format!("rlimit {resource} {soft} {hard}"))
        }
        fn join_new_session_keyring(&self) -> SysResult {
            self.log("new session keyring".into())
        }
        fn close_range(&self, first: u32, last: u32, flags: c_uint) -> SysResult {
            self.log(format!("close_range {first} {last} {flags:#x}"))
        }
        fn setsid(&self) -> SysResult {
            self.log("setsid".into())
        }
        fn set_own_process_group(&self) -> SysResult {
            self.log("setpgid 0 0".into())
        }
        fn drop_bounding_capability(&self, capability: c_int) -> SysResult {
            self.log(format!("capbset_drop {capability}"))
        }
        fn clear_ambient_capabilities(&self) -> SysResult {
            self.log("ambient clear".into())
        }
        fn set_no_new_privs(&self) -> SysResult {
            self.log("no_new_privs".into())
        }
        fn keep_capabilities(&self, keep: u64) -> SysResult {
            self.log(format!("capset {keep:#x}"))
        }
        fn set_dumpable(&self, dumpable: bool) -> SysResult {
            self.log(format!("dumpable {}", dumpable as u8))
        }
        fn dup_at_least(&self, fd: RawFd, min: RawFd) -> SysResult<RawFd> {
            self.fd(format!("dup {fd} >= {min}"))
        }
        fn dup2(&self, from: RawFd, to: RawFd) -> SysResult {
            self.log(format!("dup2 {from} {to}"))
        }
        fn set_inheritable(&self, fd: RawFd) -> SysResult {
            self.log(format!("inheritable {fd}"))
        }
        fn set_controlling_terminal(&self, fd: RawFd) -> SysResult {
            self.log(format!("ctty {fd}"))
        }
        fn landlock_create_ruleset(&self, handled_fs: u64) -> SysResult<RawFd> {
            self.fd(format!("landlock ruleset {handled_fs:#x}"))
        }
        fn landlock_allow(&self, _ruleset: RawFd, _fd: RawFd, access: u64) -> SysResult {
            self.log(format!("landlock allow {access:#x}"))
        }
        fn landlock_restrict_self(&self, _ruleset: RawFd) -> SysResult {
            self.log("landlock restrict".into())
        }
        fn set_seccomp_filter(&self, program: &[libc::sock_filter]) -> SysResult {
            self.log(format!("seccomp {} instructions", program.len()))
        }
    }
}
