//! Signal sets and signals to a pidfd, for both sides of the clone.

use std::os::fd::RawFd;

use libc::c_int;

/// What pid 1 reads from its signalfd: SIGCHLD, then the forwarded ones.
pub(crate) const WATCHED_SIGNALS: &[c_int] = &[
    libc::SIGCHLD,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Signals pid 1 passes on to the payload, and the executable to pid 1.
pub const FORWARDED_SIGNALS: &[c_int] = WATCHED_SIGNALS.split_at(1).1;

pub fn send_signal(pidfd: RawFd, signal: c_int) {
    // SAFETY: pidfd_send_signal with a NULL siginfo is async-signal-safe;
    // a pidfd names one process even after its pid is reused.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

pub(crate) fn sigset(signals: &[c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset with valid signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

pub(crate) fn full_sigset() -> libc::sigset_t {
    // SAFETY: sigfillset initialises the set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        set
    }
}

pub(crate) fn set_signal_mask(how: c_int, set: &libc::sigset_t) -> libc::sigset_t {
    // SAFETY: both sets are valid for the call.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(how, set, &mut old);
        old
    }
}
