//! The payload before exec: its own session, stdio and `--fd`s at their
//! numbers, limits, its identity, the seccomp filter, then execve.

use std::os::fd::RawFd;

use super::init::{close_all_but, drop_capabilities};
use super::Child;
use crate::runtime::prepared::{Identity, Prepared, MAX_FDS, SCRIPT_SHELL};
use crate::runtime::report::{init, report, report_missing, ChildFailure, InitStep, REPORT_EXEC};
use crate::runtime::stage::CallerSignals;
use crate::runtime::sys::signals::WATCHED_SIGNALS;
use crate::runtime::sys::{errno, Syscall};

/// Whether a file the kernel could not execute is a binary (say, for
/// another architecture) rather than a script without `#!`: a NUL byte in
/// its first line, as bash decides. Async-signal-safe: a stack buffer.
pub(crate) fn looks_binary(path: &std::ffi::CStr) -> bool {
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        return false;
    }
    let mut head = [0u8; 80];
    // SAFETY: reads into a stack buffer of that size.
    let n = unsafe { libc::read(fd, head.as_mut_ptr().cast(), head.len()) };
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    let head = &head[..n.max(0) as usize];
    head.iter().take_while(|b| **b != b'\n').any(|b| *b == 0)
}

fn exists(path: &std::ffi::CStr) -> bool {
    // SAFETY: a NUL-terminated path; access(2) is async-signal-safe.
    unsafe { libc::access(path.as_ptr(), libc::F_OK) == 0 }
}

/// Reads the interpreter or loader that `path` names and tells the caller,
/// with whether that file is there. Async-signal-safe: stack buffers only.
fn report_what_is_missing(report_fd: RawFd, index: usize, path: &std::ffi::CStr) {
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        return;
    }
    let mut named = [0u8; crate::interp::MOST_INTERPRETER_BYTES + 1];
    let mut out = [0u8; crate::interp::MOST_INTERPRETER_BYTES];
    let found = crate::interp::interpreter(fd, &mut out);
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    let Some((kind, len)) = found else {
        return;
    };
    named[..len].copy_from_slice(&out[..len]);
    let there = std::ffi::CStr::from_bytes_until_nul(&named).is_ok_and(exists);
    report_missing(report_fd, index, kind, there, &out[..len]);
}

/// The payload before exec: its own session (and controlling terminal),
/// stdio and `--fd`s at their numbers, limits, the `--uid` namespace,
/// every other descriptor closed at exec, and last the seccomp filter.
/// `copies` is scratch room for one descriptor per move (3 + `fds`).
/// Async-signal-safe.
pub fn prepare_payload(
    sys: &dyn Syscall,
    p: &Prepared,
    copies: &mut [RawFd],
) -> Result<(), ChildFailure> {
    sys.setsid().map_err(init(InitStep::PayloadSession))?;
    let moves = || {
        p.stdio
            .iter()
            .enumerate()
            .map(|(slot, fd)| (*fd, slot as RawFd))
            .chain(p.fds.iter().copied())
    };
    // Copies first, above every target, so that no move clobbers the
    // source of another; the copies are close-on-exec.
    let above = moves().map(|(_, to)| to).max().unwrap_or(2) + 1;
    for ((from, to), copy) in moves().zip(copies.iter_mut()) {
        *copy = -1;
        if from >= 0 && from != to {
            let step = if to < 3 {
                InitStep::CopyStdio
            } else {
                InitStep::KeepFd
            };
            *copy = sys.dup_at_least(from, above).map_err(init(step))?;
        }
    }
    for ((from, to), copy) in moves().zip(copies.iter()) {
        let (moved, kept) = if to < 3 {
            (InitStep::MoveStdio, InitStep::KeepStdio)
        } else {
            (InitStep::KeepFd, InitStep::KeepFd)
        };
        if *copy >= 0 {
            sys.dup2(*copy, to).map_err(init(moved))?;
        } else if from < 0 {
            sys.close(to);
        } else {
            sys.set_inheritable(to).map_err(init(kept))?;
        }
    }
    if let Some(slot) = p.terminal_slot {
        sys.set_controlling_terminal(slot as RawFd)
            .map_err(init(InitStep::ControllingTerminal))?;
    }
    for limit in &p.rlimits {
        sys.set_rlimit(limit.resource, limit.soft, limit.hard)
            .map_err(init(InitStep::SetRlimit))?;
    }
    if let Some(identity) = &p.identity {
        take_identity(sys, identity)?;
    }
    // The report socket must stay open until exec: close-on-exec, not closed.
    let mut targets = [0u32; 3 + MAX_FDS];
    let mut count = 0;
    for (_, to) in moves() {
        if count < targets.len() {
            targets[count] = to as u32;
            count += 1;
        }
    }
    let kept = &mut targets[..count];
    kept.sort_unstable();
    close_all_but(sys, kept.iter().copied(), libc::CLOSE_RANGE_CLOEXEC)
        .map_err(init(InitStep::CloseOthers))?;
    // Last: every call above is slicebox's own (the --uid namespace among
    // them); after it only execve, and on its failure a report and _exit.
    // pid 1 set no_new_privs, which the payload inherited.
    sys.set_seccomp_filter(p.seccomp.instructions())
        .map_err(init(InitStep::Seccomp))
}

/// The payload becomes who `--uid`/`--gid` asked for: as root, by
/// switching ids in the stage's namespace; then, for a caller without
/// root or for uid 0, by entering a nested user namespace.
pub(crate) fn take_identity(sys: &dyn Syscall, identity: &Identity) -> Result<(), ChildFailure> {
    if let Some((uid, gid)) = identity.switch_to {
        // No supplementary group of root's is kept.
        sys.switch_ids(uid, gid)
            .map_err(init(InitStep::SwitchIds))?;
    }
    let Some(maps) = &identity.nested else {
        return Ok(());
    };
    // pid 1 left the process non-dumpable, which makes its /proc files
    // root's; its own maps are written by itself. exec decides
    // dumpability afresh.
    sys.set_dumpable(true)
        .map_err(init(InitStep::PayloadDumpable))?;
    // Nested in the stage's namespace, which owns every mount: uid 0 here
    // holds no capability over them, and exec leaves it none at all,
    // since the bounding set is empty.
    sys.new_user_namespace()
        .map_err(init(InitStep::EnterIdentity))?;
    sys.write_file(c"/proc/self/setgroups", b"deny")
        .and_then(|()| sys.write_file(c"/proc/self/uid_map", &maps.uid_map))
        .and_then(|()| sys.write_file(c"/proc/self/gid_map", &maps.gid_map))
        .map_err(init(InitStep::MapIdentity))?;
    // A new user namespace starts with every capability, bounding set
    // included: uid 0 would keep them all across exec.
    drop_capabilities(sys, 0)
}

impl Child<'_> {
    pub(crate) fn exec_payload(&self) -> ! {
        let p = self.p;
        for signal in signals_to_set(p.caller_signals) {
            let disposition = if p.ignored_signals.contains(&signal) {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            // SAFETY: setting a disposition is async-signal-safe.
            unsafe { libc::signal(signal, disposition) };
        }
        // SAFETY: an empty set unblocks every signal.
        unsafe {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        }
        let mut copies = [-1; 3 + MAX_FDS];
        if let Err(failure) = prepare_payload(self.sys, p, &mut copies) {
            self.fail(failure);
        }
        self.mark(3);
        let mut saw_permission_denied = false;
        let mut last_error = libc::ENOENT;
        // The candidate that is there though exec says ENOENT: what it
        // names to run it with is missing.
        let mut there = None;
        for (index, candidate) in p.exec_candidates.iter().enumerate() {
            // SAFETY: argv and envp are NULL-terminated arrays of C strings
            // that live in this (copied) address space.
            unsafe { libc::execve(candidate.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
            last_error = errno();
            if last_error == libc::ENOEXEC && !looks_binary(candidate) {
                // A file the kernel cannot run, such as a script without
                // a `#!` line: the shell runs it, as execvp would.
                self.script_argv[1].set(candidate.as_ptr());
                // SAFETY: as above; a Cell<*const c_char> array has the
                // layout of a *const c_char one, NULL-terminated.
                unsafe {
                    libc::execve(
                        SCRIPT_SHELL.as_ptr(),
                        self.script_argv.as_ptr().cast(),
                        self.envp.as_ptr(),
                    )
                };
                last_error = errno();
            }
            match last_error {
                // A file that is there is the command, as a shell's PATH
                // search has it: never run a later one (the host's pip3
                // for a slice's pip3 whose interpreter is missing).
                libc::ENOENT if exists(candidate) => {
                    there = Some(index);
                    break;
                }
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => saw_permission_denied = true,
                _ => break,
            }
        }
        if saw_permission_denied && matches!(last_error, libc::ENOENT | libc::ENOTDIR) {
            last_error = libc::EACCES;
        }
        let not_found = matches!(last_error, libc::ENOENT | libc::ENOTDIR);
        match there.filter(|_| not_found) {
            Some(index) => {
                report(self.report_fd, [REPORT_EXEC, last_error, 1, 1]);
                report_what_is_missing(self.report_fd, index, &p.exec_candidates[index]);
            }
            None => report(
                self.report_fd,
                [REPORT_EXEC, last_error, not_found as i32, 0],
            ),
        }
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(if not_found { 127 } else { 126 }) }
    }
}

/// The signals whose disposition the payload sets before exec: each one a
/// system call. SIGKILL and SIGSTOP cannot be set.
fn signals_to_set(caller: CallerSignals) -> impl Iterator<Item = libc::c_int> {
    let every = (1..libc::SIGRTMIN()).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP);
    let (every, few) = match caller {
        CallerSignals::Changed => (Some(every), None),
        // pid 1 reset the signals it watches, and Rust's runtime ignores
        // SIGPIPE; exec resets the handlers.
        CallerSignals::Inherited => (
            None,
            Some(std::iter::once(libc::SIGPIPE).chain(WATCHED_SIGNALS.iter().copied())),
        ),
    };
    every.into_iter().flatten().chain(few.into_iter().flatten())
}
