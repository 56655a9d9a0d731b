//! The real `Syscall`: one raw system call per method.
//!
//! It runs in the cloned child before exec, so it
//! must stay async-signal-safe: no allocation, no locks, raw syscalls only.

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::{c_int, c_uint, c_ulong};

use super::{MountAttr, Syscall};
use crate::os::{check, check_fd, errno, openat2, SysResult};

pub struct Linux;

/// Constants of linux/mount.h and linux/keyctl.h that the libc crate lacks.
const FSOPEN_CLOEXEC: c_uint = 1;
const FSMOUNT_CLOEXEC: c_uint = 1;
const FSCONFIG_SET_FLAG: c_uint = 0;
const FSCONFIG_SET_STRING: c_uint = 1;
const FSCONFIG_SET_FD: c_uint = 5;
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

    fn fsconfig_set_fd(&self, fd: RawFd, key: &CStr, value: RawFd) -> SysResult {
        // SAFETY: a valid C string key; the value is the descriptor itself.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fd,
                FSCONFIG_SET_FD,
                key.as_ptr(),
                std::ptr::null::<libc::c_void>(),
                value,
            )
        })
        .map(drop)
    }

    fn fsconfig_set_flag(&self, fd: RawFd, key: &CStr) -> SysResult {
        // SAFETY: a valid C string key; a flag takes no value.
        check_fd(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fd,
                FSCONFIG_SET_FLAG,
                key.as_ptr(),
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
