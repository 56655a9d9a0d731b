//! What the cloned child tells the caller: fixed-size records over a
//! `SOCK_SEQPACKET` socket, sent async-signal-safely, and the `Outcome`
//! the caller makes of them.

use std::os::fd::RawFd;

pub use super::error::init_steps::InitStep;
#[cfg(test)]
pub(crate) use super::error::init_steps::INIT_STEPS;
use super::sys::Errno;

/// What the caller learns about the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
    /// A planned setup step failed.
    SetupFailed(StepFailure),
    /// A fixed step of pid 1 or of the payload failed.
    InitFailed {
        step: InitStep,
        errno: i32,
    },
    /// The command could not be executed (`not_found` picks 127 over 126).
    ExecFailed {
        errno: i32,
        not_found: bool,
    },
    /// `--timeout` passed and the stage was killed.
    TimedOut,
}

pub(crate) const REPORT_STEP: i32 = 1;

pub(crate) const REPORT_INIT: i32 = 2;

pub(crate) const REPORT_EXEC: i32 = 3;

pub(crate) const REPORT_SIGNAL: i32 = 4;

pub(crate) type Record = [i32; 4];

pub(crate) fn report(fd: RawFd, record: Record) {
    // SAFETY: sends 16 bytes from a stack array as one packet; MSG_NOSIGNAL
    // because a caller that is gone must not kill us with SIGPIPE.
    unsafe {
        libc::send(
            fd,
            record.as_ptr().cast(),
            std::mem::size_of_val(&record),
            libc::MSG_NOSIGNAL,
        )
    };
}

/// The first record explains the failure; later ones are consequences.
pub(crate) fn read_reports(fd: RawFd) -> Option<Outcome> {
    let mut record: Record = [0; 4];
    // SAFETY: receives at most 16 bytes into `record`; non-blocking, as
    // every writer is gone once pid 1 has been reaped.
    let n = unsafe {
        libc::recv(
            fd,
            record.as_mut_ptr().cast(),
            std::mem::size_of_val(&record),
            libc::MSG_DONTWAIT,
        )
    };
    if n != std::mem::size_of_val(&record) as isize {
        return None;
    }
    Some(match record {
        [REPORT_STEP, step, errno, component] => Outcome::SetupFailed(StepFailure {
            step: step as usize,
            errno,
            component,
        }),
        [REPORT_INIT, step, errno, _] => Outcome::InitFailed {
            step: InitStep::from_code(step).unwrap_or(InitStep::StartCommand),
            errno,
        },
        [REPORT_EXEC, errno, not_found, _] => Outcome::ExecFailed {
            errno,
            not_found: not_found != 0,
        },
        [REPORT_SIGNAL, signal, _, _] => Outcome::Signaled(signal),
        [_, _, errno, _] => Outcome::InitFailed {
            step: InitStep::StartCommand,
            errno,
        },
    })
}

/// Why the child stopped before exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildFailure {
    Step(StepFailure),
    Init(InitStep, Errno),
}

impl ChildFailure {
    pub(crate) fn record(self) -> Record {
        match self {
            ChildFailure::Step(f) => [REPORT_STEP, f.step as i32, f.errno, f.component],
            ChildFailure::Init(step, errno) => [REPORT_INIT, step.code(), errno, 0],
        }
    }
}

pub(crate) fn init(step: InitStep) -> impl Fn(Errno) -> ChildFailure {
    move |errno| ChildFailure::Init(step, errno)
}

/// Why a step failed: its index, the errno, and for a walk the index of
/// the component where it stopped (or -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepFailure {
    pub step: usize,
    pub errno: Errno,
    pub component: i32,
}

/// In place of a component: opening the step's source failed (a slice
/// tree a damaged store lost).
pub const SOURCE_FAILED: i32 = -2;
