//! What the cloned child tells the caller: fixed-size records over a
//! `SOCK_SEQPACKET` socket, sent async-signal-safely, and the `Outcome`
//! the caller makes of them.

use std::os::fd::RawFd;

pub use super::error::init_steps::InitStep;
#[cfg(test)]
pub(crate) use super::error::init_steps::INIT_STEPS;
use super::sys::Errno;
use crate::interp::{Kind, MOST_INTERPRETER_BYTES};

/// What the caller learns about the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// One per stage and Copy: its size does not matter, a Box would end Copy.
#[allow(clippy::large_enum_variant)]
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
    /// The command could not be executed (`not_found` picks 127 over 126);
    /// `missing`: the file is there, and what it names is what is not.
    ExecFailed {
        errno: i32,
        not_found: bool,
        missing: Option<Missing>,
    },
    /// `--timeout` passed and the stage was killed.
    TimedOut,
}

pub(crate) const REPORT_STEP: i32 = 1;

pub(crate) const REPORT_INIT: i32 = 2;

pub(crate) const REPORT_EXEC: i32 = 3;

pub(crate) const REPORT_SIGNAL: i32 = 4;

pub(crate) type Record = [i32; 4];

/// A file found in the stage that the kernel could not run for want of
/// the interpreter (`#!`) or loader (PT_INTERP) it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing {
    /// Which of the exec candidates (the file found).
    pub candidate: usize,
    pub kind: Kind,
    /// Whether the named file is there (and so itself cannot run).
    pub exists: bool,
    len: usize,
    path: [u8; MOST_INTERPRETER_BYTES],
}

impl Missing {
    pub fn path(&self) -> &[u8] {
        &self.path[..self.len]
    }
}

/// The bytes of a `Missing` packet before its path: candidate (2 bytes,
/// little-endian), kind (1: script, 2: ELF), exists (0 or 1).
const MISSING_HEAD: usize = 4;

/// Sends what an exec failure found missing, after a `REPORT_EXEC` record
/// whose last field is 1. Async-signal-safe: a stack packet.
pub(crate) fn report_missing(fd: RawFd, candidate: usize, kind: Kind, exists: bool, path: &[u8]) {
    let mut packet = [0u8; MISSING_HEAD + MOST_INTERPRETER_BYTES];
    let len = path.len().min(MOST_INTERPRETER_BYTES);
    packet[..2].copy_from_slice(&(candidate.min(u16::MAX as usize) as u16).to_le_bytes());
    packet[2] = match kind {
        Kind::Script => 1,
        Kind::Elf => 2,
    };
    packet[3] = exists as u8;
    packet[MISSING_HEAD..MISSING_HEAD + len].copy_from_slice(&path[..len]);
    // SAFETY: sends bytes of a stack array as one packet; as in `report`.
    unsafe {
        libc::send(
            fd,
            packet.as_ptr().cast(),
            MISSING_HEAD + len,
            libc::MSG_NOSIGNAL,
        )
    };
}

fn read_missing(fd: RawFd) -> Option<Missing> {
    let mut packet = [0u8; MISSING_HEAD + MOST_INTERPRETER_BYTES];
    // SAFETY: receives at most the packet's size into it; non-blocking.
    let n = unsafe {
        libc::recv(
            fd,
            packet.as_mut_ptr().cast(),
            packet.len(),
            libc::MSG_DONTWAIT,
        )
    };
    let n = usize::try_from(n).ok().filter(|n| *n >= MISSING_HEAD)?;
    let mut path = [0u8; MOST_INTERPRETER_BYTES];
    path[..n - MISSING_HEAD].copy_from_slice(&packet[MISSING_HEAD..n]);
    Some(Missing {
        candidate: u16::from_le_bytes([packet[0], packet[1]]) as usize,
        kind: if packet[2] == 2 {
            Kind::Elf
        } else {
            Kind::Script
        },
        exists: packet[3] != 0,
        len: n - MISSING_HEAD,
        path,
    })
}

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
        [REPORT_EXEC, errno, not_found, more] => Outcome::ExecFailed {
            errno,
            not_found: not_found != 0,
            missing: if more == 1 { read_missing(fd) } else { None },
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
