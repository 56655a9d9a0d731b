//! The one seam every state-changing kernel call of a stage's setup goes
//! through: a thin Linux implementation (`linux`), and doubles for tests
//! (`recording`): one that records each call and can fail or panic at any
//! of them, so the order of setup and the fact that every failing step
//! ends the stage are unit-tested without privileges. Beside it, the
//! descriptor and signal-set helpers both sides of the clone use.

pub mod fd;
mod linux;
#[cfg(test)]
pub mod recording;
pub mod signals;

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::{c_int, c_uint, c_ulong};

pub use crate::os::{errno, openat2, Errno, SysResult};
pub use linux::Linux;

/// `struct mount_attr` from linux/mount.h, as far as we set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub set: u64,
    /// `MS_PRIVATE`, `MS_SLAVE`, … or 0 to leave propagation alone.
    pub propagation: u64,
}

impl MountAttr {
    /// Sets `attr`, propagation unchanged.
    pub fn set(attr: u64) -> MountAttr {
        MountAttr {
            set: attr,
            propagation: 0,
        }
    }
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
    /// FSCONFIG_SET_FD: `key` names the object `value` refers to (an
    /// OverlayFS layer, Linux 6.13 and later).
    fn fsconfig_set_fd(&self, fd: RawFd, key: &CStr, value: RawFd) -> SysResult;
    /// FSCONFIG_SET_FLAG: a flag option such as `userxattr`.
    fn fsconfig_set_flag(&self, fd: RawFd, key: &CStr) -> SysResult;
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

/// Capability numbers of linux/capability.h that `--uid`/`--gid` keep.
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETFCAP: u32 = 31;
