//! clone, the child's setup, the minimal pid 1, exec, and waiting.
//!
//! Process tree of one stage:
//! ```text
//! caller (bash builtin or executable)   waits for pid 1, never unshares itself
//! └─ pid 1 in new user+mount+pid+ipc+uts[+net] namespaces: mounts, then reaps
//!    └─ payload: drops capabilities, closes fds, execs the command
//! ```
//! Everything the child needs is prepared before cloning: between clone
//! and exec only async-signal-safe code runs (no allocation, no locks).
//! Failures travel back over a CLOEXEC pipe as fixed-size records.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use libc::{c_char, c_int};

use super::plan::{execute, Step};
use super::syscall::Linux;

/// What the caller learns about the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
    /// Setup step `step` failed with `errno`.
    SetupFailed {
        step: usize,
        errno: i32,
    },
    /// The command could not be executed (`not_found` picks 127 over 126).
    ExecFailed {
        errno: i32,
        not_found: bool,
    },
    /// pid 1 could not fork or wait for the payload.
    InitFailed {
        what: &'static str,
        errno: i32,
    },
}

pub struct Prepared {
    pub clone_flags: libc::c_ulong,
    pub steps: Vec<Step>,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// Paths execve tries in order (the PATH search, done inside the new root).
    pub exec_candidates: Vec<CString>,
    /// Caller descriptors that become the payload's 0, 1 and 2.
    pub stdio: [RawFd; 3],
    /// Descriptors passed through at their own number (sorted, all > 2).
    pub keep_fds: Vec<RawFd>,
    /// Signals left ignored in the payload; every other one is reset.
    pub ignored_signals: Vec<c_int>,
    pub last_capability: c_int,
}

const REPORT_SETUP: i32 = 1;
const REPORT_EXEC: i32 = 2;
const REPORT_SIGNAL: i32 = 3;
const REPORT_FORK: i32 = 4;
const REPORT_WAIT: i32 = 5;

/// Signals pid 1 passes on to the payload when another process sends them.
pub const FORWARDED_SIGNALS: &[c_int] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn report(fd: RawFd, record: [i32; 3]) {
    // SAFETY: writes 12 bytes from a stack array; a short write cannot
    // happen for a pipe write below PIPE_BUF.
    unsafe { libc::write(fd, record.as_ptr().cast(), std::mem::size_of_val(&record)) };
}

/// Null-terminated pointer arrays for execve, built before cloning.
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Which part of starting and waiting for a stage failed.
#[derive(Debug)]
pub struct SpawnError {
    pub what: &'static str,
    pub source: std::io::Error,
    /// What to check when the kernel refused the namespaces.
    pub hint: &'static str,
}

fn spawn_error(what: &'static str) -> SpawnError {
    let source = std::io::Error::last_os_error();
    let hint = if what == CREATE_NAMESPACES {
        clone_hint(&source)
    } else {
        ""
    };
    SpawnError { what, source, hint }
}

const CREATE_NAMESPACES: &str = "create namespaces";

fn clone_hint(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::ENOSPC) | Some(libc::EUSERS) => {
            " (are unprivileged user namespaces enabled? check kernel.unprivileged_userns_clone, \
             user.max_user_namespaces and, on Ubuntu, kernel.apparmor_restrict_unprivileged_userns)"
        }
        _ => "",
    }
}

/// Clones the stage's pid 1 and waits for it. Returns how it ended.
pub fn spawn_and_wait(prepared: &Prepared) -> Result<(Outcome, i32), SpawnError> {
    let argv = pointers(&prepared.argv);
    let envp = pointers(&prepared.env);
    let mut pipe = [0 as c_int; 2];
    // SAFETY: `pipe` has room for two descriptors.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(spawn_error("create the report pipe"));
    }
    let [report_read, report_write] = pipe;
    // The exit signal is 0, not SIGCHLD: bash's SIGCHLD handler reaps any
    // child with waitpid(-1), which would steal our status. waitpid(-1)
    // without __WALL never sees a child that exits with no signal.
    // SAFETY: a fork-like clone (no new stack); the child only runs
    // async-signal-safe code and never returns from `stage_init`.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            prepared.clone_flags,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        let err = spawn_error(CREATE_NAMESPACES);
        // SAFETY: both ends were opened above.
        unsafe {
            libc::close(report_read);
            libc::close(report_write);
        }
        return Err(err);
    }
    if pid == 0 {
        stage_init(prepared, &argv, &envp, report_write);
    }
    let pid = pid as libc::pid_t;
    // SAFETY: the write end belongs to the child now.
    unsafe { libc::close(report_write) };
    STAGE_PID.store(pid, Ordering::SeqCst);
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            break;
        }
        if r < 0 && errno() != libc::EINTR {
            let err = spawn_error("wait for the sandbox");
            // SAFETY: opened above.
            unsafe { libc::close(report_read) };
            return Err(err);
        }
    }
    STAGE_PID.store(0, Ordering::SeqCst);
    let mut record = [0i32; 3];
    let mut outcome = None;
    loop {
        // SAFETY: reads at most 12 bytes into `record`.
        let n = unsafe {
            libc::read(
                report_read,
                record.as_mut_ptr().cast(),
                std::mem::size_of_val(&record),
            )
        };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n != std::mem::size_of_val(&record) as isize {
            break;
        }
        // The first record explains the failure; later ones are consequences.
        outcome.get_or_insert(match record {
            [REPORT_SETUP, step, errno] => Outcome::SetupFailed {
                step: step as usize,
                errno,
            },
            [REPORT_EXEC, errno, not_found] => Outcome::ExecFailed {
                errno,
                not_found: not_found != 0,
            },
            [REPORT_SIGNAL, signal, _] => Outcome::Signaled(signal),
            [_, _, errno] => Outcome::SetupFailed {
                step: usize::MAX,
                errno,
            },
        });
    }
    // SAFETY: opened above.
    unsafe { libc::close(report_read) };
    let outcome = outcome.unwrap_or(if libc::WIFSIGNALED(status) {
        Outcome::Signaled(libc::WTERMSIG(status))
    } else {
        Outcome::Exited(libc::WEXITSTATUS(status))
    });
    Ok((outcome, pid))
}

/// The pid of the running stage's pid 1, for the executable's signal
/// forwarding; 0 when none runs.
pub static STAGE_PID: AtomicI32 = AtomicI32::new(0);
static PAYLOAD_PID: AtomicI32 = AtomicI32::new(0);

/// Installs handlers that pass signals sent by other processes on to
/// `target`. Kernel-generated ones (a terminal's ^C) are not passed on:
/// they already reach the whole foreground process group.
pub fn forward_signals(target: &'static AtomicI32) {
    FORWARD_TARGET.store(target as *const AtomicI32 as usize, Ordering::SeqCst);
    for &signal in FORWARDED_SIGNALS {
        // SAFETY: a zeroed sigaction is valid; the handler is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward_handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

static FORWARD_TARGET: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn forward_handler(signal: c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    if code > 0 {
        return; // from the kernel, e.g. the terminal
    }
    let target = FORWARD_TARGET.load(Ordering::SeqCst) as *const AtomicI32;
    if target.is_null() {
        return;
    }
    // SAFETY: FORWARD_TARGET only ever holds the address of a static.
    let pid = unsafe { &*target }.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, signal) };
    }
}

/// The child: set up the namespaces' view, then act as pid 1.
fn stage_init(p: &Prepared, argv: &[*const c_char], envp: &[*const c_char], report_fd: RawFd) -> ! {
    // SAFETY (whole function): only async-signal-safe libc calls on data
    // prepared before the clone; every path ends in _exit.
    unsafe {
        for signal in 1..libc::SIGRTMIN() {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if let Err((step, err)) = execute(&Linux, &p.steps) {
            report(report_fd, [REPORT_SETUP, step as i32, err]);
            libc::_exit(125);
        }
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        let payload = libc::fork();
        if payload < 0 {
            report(report_fd, [REPORT_FORK, 0, errno()]);
            libc::_exit(125);
        }
        if payload == 0 {
            exec_payload(p, argv, envp, report_fd);
        }
        PAYLOAD_PID.store(payload, Ordering::SeqCst);
        forward_signals(&PAYLOAD_PID);
        // pid 1 holds nothing open but the report pipe, so the pipeline
        // sees EOF exactly when the payload closes its ends.
        libc::syscall(libc::SYS_close_range, 0u32, (report_fd - 1) as u32, 0u32);
        libc::syscall(
            libc::SYS_close_range,
            (report_fd + 1) as u32,
            u32::MAX,
            0u32,
        );
        let mut status = 0;
        loop {
            let r = libc::waitpid(-1, &mut status, 0);
            if r == payload {
                break;
            }
            if r < 0 && errno() != libc::EINTR {
                report(report_fd, [REPORT_WAIT, 0, errno()]);
                libc::_exit(125);
            }
        }
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            report(report_fd, [REPORT_SIGNAL, signal, 0]);
            libc::_exit(128 + signal);
        }
        libc::_exit(libc::WEXITSTATUS(status));
    }
}

fn exec_payload(
    p: &Prepared,
    argv: &[*const c_char],
    envp: &[*const c_char],
    report_fd: RawFd,
) -> ! {
    // SAFETY (whole function): async-signal-safe calls on prepared data;
    // every path ends in execve or _exit.
    unsafe {
        for signal in 1..libc::SIGRTMIN() {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            let disposition = if p.ignored_signals.contains(&signal) {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            libc::signal(signal, disposition);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        // Move the caller's descriptors onto 0, 1, 2 via high copies, so
        // that overlapping sources and targets cannot clobber each other.
        let mut copies = [-1; 3];
        for (i, &fd) in p.stdio.iter().enumerate() {
            if fd != i as RawFd {
                copies[i] = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100);
            }
        }
        for (i, &copy) in copies.iter().enumerate() {
            if copy >= 0 {
                libc::dup2(copy, i as RawFd);
            }
        }
        // Only stdio and --fd survive the exec: everything else is marked
        // close-on-exec (the report pipe must stay open until exec).
        let mut from: u32 = 3;
        for &fd in &p.keep_fds {
            if fd as u32 > from {
                libc::syscall(
                    libc::SYS_close_range,
                    from,
                    fd as u32 - 1,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
            }
            libc::fcntl(fd, libc::F_SETFD, 0);
            from = fd as u32 + 1;
        }
        libc::syscall(
            libc::SYS_close_range,
            from,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );

        drop_capabilities(p.last_capability);

        let mut saw_permission_denied = false;
        let mut last_error = libc::ENOENT;
        for candidate in &p.exec_candidates {
            libc::execve(candidate.as_ptr(), argv.as_ptr(), envp.as_ptr());
            last_error = errno();
            match last_error {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => saw_permission_denied = true,
                _ => break,
            }
        }
        if saw_permission_denied && matches!(last_error, libc::ENOENT | libc::ENOTDIR) {
            last_error = libc::EACCES;
        }
        let not_found = matches!(last_error, libc::ENOENT | libc::ENOTDIR);
        report(report_fd, [REPORT_EXEC, last_error, not_found as i32]);
        libc::_exit(if not_found { 127 } else { 126 });
    }
}

/// Empties the bounding, ambient, effective, permitted and inheritable
/// sets. A uid-0 payload therefore holds no capability over the mount
/// namespace and cannot remount a slice writable.
unsafe fn drop_capabilities(last_capability: c_int) {
    for cap in 0..=last_capability {
        // SAFETY: prctl with plain integers.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    // SAFETY: prctl with plain integers.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
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
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset v3 takes a header and two data structs, both valid here.
    unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_clone_explains_what_to_check() {
        let hint = clone_hint(&std::io::Error::from_raw_os_error(libc::EPERM));
        assert!(hint.contains("kernel.unprivileged_userns_clone"), "{hint}");
        assert!(hint.contains("user.max_user_namespaces"), "{hint}");
        assert_eq!(
            clone_hint(&std::io::Error::from_raw_os_error(libc::ENOMEM)),
            ""
        );
    }
}
