//! The child's side of the clone: pid 1 (`init`) sets the stage up and
//! reaps, the payload (`payload`) takes its descriptors and identity and
//! execs. Everything here runs between clone and exec and is
//! async-signal-safe: it reads what `Prepared` holds and allocates nothing.

mod init;
mod payload;

use std::os::fd::RawFd;

use libc::{c_char, c_int};

use super::clock::StageClock;
use super::prepared::Prepared;
use super::report::{report, ChildFailure, InitStep};
use super::sys::signals::{send_signal, WATCHED_SIGNALS};
use super::sys::{errno, Syscall};
pub(crate) use init::argument_area;
use init::prepare_init;
#[cfg(test)]
use payload::prepare_payload;

/// Ends the process with 125 when dropped, which in the cloned child only
/// happens while a panic unwinds: the child body never returns.
pub(crate) struct ExitOnUnwind;

impl Drop for ExitOnUnwind {
    fn drop(&mut self) {
        // SAFETY: _exit is async-signal-safe and runs no destructor.
        unsafe { libc::_exit(125) }
    }
}

/// Everything the cloned child reads, prepared by the parent.
pub(crate) struct Child<'a> {
    /// The seam every setup call goes through (`Linux` but in tests).
    pub(crate) sys: &'a dyn Syscall,
    pub(crate) p: &'a Prepared,
    pub(crate) argv: &'a [*const c_char],
    /// `/bin/sh`, a slot for the script, then `argv[1..]`: for a script
    /// without a `#!` line (ENOEXEC), which runs with /bin/sh as execvp
    /// and shells run it. Cells, so the child can fill the slot without
    /// allocating (a Cell has its content's layout).
    pub(crate) script_argv: &'a [std::cell::Cell<*const c_char>],
    pub(crate) envp: &'a [*const c_char],
    pub(crate) report_fd: RawFd,
    pub(crate) keep: &'a [u32],
    pub(crate) argument_area: Option<(usize, usize)>,
    pub(crate) clock: Option<&'a StageClock>,
}

impl Child<'_> {
    /// pid 1: set up the stage, start the payload, reap until it ends.
    pub(crate) fn mark(&self, index: usize) {
        if let Some(clock) = self.clock {
            clock.mark(index);
        }
    }
    pub(crate) fn run(&self, slots: &mut [RawFd], walk: &mut [RawFd]) -> ! {
        self.mark(0);
        // Every signal is still blocked (the caller blocked them across
        // the clone), and pid 1 keeps them so: no handler of the caller's
        // can run here. The ones it reads from a signalfd must not be
        // ignored (an ignored signal is discarded); the payload resets the
        // rest itself.
        for &signal in WATCHED_SIGNALS {
            // SAFETY: resetting a disposition is async-signal-safe.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
        if self.p.caller_maps.is_some() {
            self.wait_for_id_maps();
        }
        if let Err(failure) = prepare_init(self.sys, self.p, self.keep, slots, walk) {
            self.fail(failure);
        }
        self.mark(1);
        self.blank_argument_area();
        let mut payload_pidfd: c_int = -1;
        // A raw clone, not glibc's fork: no atfork handlers, no malloc or
        // stdio locks that another thread of the caller may have held.
        // SAFETY: a fork-like clone; the child only execs or _exits.
        let payload = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::SIGCHLD | libc::CLONE_PIDFD) as libc::c_ulong,
                0usize,
                &mut payload_pidfd as *mut c_int,
                0usize,
                0usize,
            )
        };
        if payload < 0 {
            self.fail(ChildFailure::Init(InitStep::StartCommand, errno()));
        }
        if payload == 0 {
            self.exec_payload();
        }
        self.mark(2);
        if let Err(errno) = self.sys.keep_capabilities(0) {
            send_signal(payload_pidfd, libc::SIGKILL);
            self.fail(ChildFailure::Init(InitStep::ClearCapabilities, errno));
        }
        self.reap(payload as libc::pid_t, payload_pidfd)
    }
    /// Blocks until the caller wrote the stage's id maps (one byte on the
    /// report socket); a caller gone meanwhile ends the stage.
    pub(crate) fn wait_for_id_maps(&self) {
        let mut byte = 0u8;
        loop {
            // SAFETY: receives at most one byte into a stack variable.
            let n = unsafe { libc::recv(self.report_fd, (&mut byte as *mut u8).cast(), 1, 0) };
            if n == 1 {
                return;
            }
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(125) }
        }
    }
    pub(crate) fn fail(&self, failure: ChildFailure) -> ! {
        report(self.report_fd, failure.record());
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(125) }
    }
}

#[cfg(test)]
mod tests;
