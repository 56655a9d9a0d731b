//! The child's side of the clone: pid 1 (`init`) sets the stage up and
//! reaps, the payload (`payload`) takes its descriptors and identity and
//! execs. Everything here runs between clone and exec and is
//! async-signal-safe: it reads what `Prepared` holds and allocates nothing.

mod init;
mod payload;
pub(crate) mod stack;

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
    /// The top of the payload's stack (`stack::PayloadStack`).
    pub(crate) payload_stack: *mut libc::c_void,
}

/// Where the payload starts, on its own stack in pid 1's memory.
extern "C" fn payload_entry(child: *mut libc::c_void) -> c_int {
    // A panic must not unwind past this frame, into glibc's clone.
    let _guard = ExitOnUnwind;
    // SAFETY: `run` passes its `&Child`, alive while pid 1 is suspended.
    let child = unsafe { &*(child as *const Child<'_>) };
    child.exec_payload()
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
        // vfork-style (see `stack`): the payload shares this memory and
        // runs on its own stack until it execs; this process waits. glibc's
        // clone() is a thin wrapper: no atfork handlers, no locks.
        let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
        // SAFETY: the stack was mapped for this by the caller and is not
        // used by anyone else; `self` outlives the payload's use of it
        // (this process is suspended until the payload execs or exits),
        // and `payload_entry` never returns.
        let payload = unsafe {
            libc::clone(
                payload_entry,
                self.payload_stack,
                flags,
                self as *const Child<'_> as *mut libc::c_void,
                &mut payload_pidfd as *mut c_int,
            )
        };
        if payload < 0 {
            self.fail(ChildFailure::Init(InitStep::StartCommand, errno()));
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
