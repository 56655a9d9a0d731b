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
    fn fsconfig_set_fd(&self, _: RawFd, _: &CStr, _: RawFd) -> SysResult {
        self.call()
    }
    fn fsconfig_set_flag(&self, _: RawFd, _: &CStr) -> SysResult {
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
    fn fsconfig_set_fd(&self, _fd: RawFd, key: &CStr, value: RawFd) -> SysResult {
        self.log(format!("fsconfig {}=fd {value}", s(key)))
    }
    fn fsconfig_set_flag(&self, _fd: RawFd, key: &CStr) -> SysResult {
        self.log(format!("fsconfig {}", s(key)))
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
