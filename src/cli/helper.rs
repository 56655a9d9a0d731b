//! Work on untrusted content in a helper process.
//!
//! The rule: work on a stranger's content (a tree or archive to ingest, a
//! stage's `--out` dir, `--cache` inputs) and work whose memory grows with
//! the store runs in a helper process, so the caller's size after a
//! command returns is what it was before. Inside bash that matters: an
//! ingest of 300,000 files grew bash to 346 MB, and 262 MB stayed after the
//! builtin returned. [`Helper::run`] runs a closure in a forked copy of the
//! caller and brings back its result, a serialisable value; what the work
//! prints goes straight to the caller's descriptors, as it would in-process.
//!
//! - The helper is made by glibc's `fork()`, not by the raw `clone` the
//!   runtime uses for a stage's pid 1: the helper runs ordinary code (it
//!   allocates, starts threads, may raise a signal), and that needs what
//!   `fork()` does for the child (malloc's and stdio's locks taken across
//!   the fork, the cached thread id renewed). Its exit signal is therefore
//!   SIGCHLD, so the calling thread keeps SIGCHLD blocked from the fork
//!   until the helper is reaped through its pidfd: bash's SIGCHLD handler,
//!   which reaps with `waitpid(-1)`, cannot take the helper's status first,
//!   and runs once it is unblocked, finding nothing of ours.
//! - Every signal is blocked across the fork. The helper then sets every
//!   disposition to the default, but keeps ignored what the user made the
//!   caller ignore (`trap '' INT`), and unblocks every signal: no handler
//!   of bash's ever runs in it, and a ^C typed at the terminal ends it as it
//!   ends any command (the helper stays in the caller's process group).
//!   Signals the host received itself while waiting (bash's own ^C flag)
//!   are passed on to the helper, as to a stage.
//! - The work runs under `catch_unwind`: no panic unwinds out of the
//!   helper into the caller's frames (the builtin's, bash's). The helper
//!   ends with `_exit`, so neither bash's atexit handlers nor any
//!   destructor of the copied caller runs in it.
//! - The helper dies with the thread that made it (`PR_SET_PDEATHSIG`).
//! - A helper killed by signal N ends the work with 128+N; one past its
//!   deadline is killed (SIGKILL) and reported as timed out. The store is
//!   crash-safe, so a killed helper leaves the store's old state or its new
//!   one, and garbage in `tmp/` that `slice-gc` removes.
//!
//! Closures run in a copy of the caller: what they change in memory is
//! lost with the helper (only the returned value comes back), while what
//! they change on disk is changed for real. They should borrow, not own,
//! whatever has a `Drop` with an effect on disk (`OutputDir`, `Pin`): the
//! helper never drops what it was handed, but a closure that consumes such
//! a value drops it in the helper.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::{Exit, Failure, HostSignalSource};
use crate::os::errno;
use crate::runtime::sys::signals::send_signal;
use crate::runtime::HostSignals;
use crate::text::strerror;

/// Why a helper brought back no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperError {
    /// It was killed by this signal (a ^C is SIGINT).
    Signaled(i32),
    /// Its deadline passed, and it was killed.
    TimedOut,
    /// The work panicked; the panic's text.
    Panicked(String),
    /// It could not be started or waited for, or it ended without a
    /// result: a message such as `cannot start a helper process: …`.
    Failed(String),
}

/// The status of a command that timed out, as timeout(1) has it.
const TIMED_OUT: i32 = 124;
/// The status of a command that panicked (the builtins' own).
const INTERNAL_ERROR: i32 = 101;

impl HelperError {
    /// What a command ends with when its work ended so: a signal death is
    /// 128+N with nothing printed (as for any command killed by ^C); the
    /// rest are failures with a message.
    pub fn outcome(self) -> Result<Exit, Failure> {
        let failure = |message: String, code: i32| Failure {
            message,
            exit: Exit::code(code),
        };
        match self {
            HelperError::Signaled(signal) => Ok(Exit {
                code: 128 + signal,
                signal: Some(signal),
            }),
            HelperError::TimedOut => Err(failure("timed out".into(), TIMED_OUT)),
            HelperError::Panicked(text) => {
                Err(failure(format!("internal error: {text}"), INTERNAL_ERROR))
            }
            HelperError::Failed(message) => Err(failure(message, Exit::FAILURE.code)),
        }
    }
}

/// How to run work in a helper process.
#[derive(Clone, Copy)]
pub struct Helper<'a> {
    /// Signals the helper keeps ignored (the caller's `trap '' SIG`s);
    /// every other disposition is the default in it.
    pub ignored_signals: &'a [i32],
    /// Where signals the host handled itself while waiting can be learnt,
    /// to pass them on to the helper (bash's, in the builtin).
    pub host_signals: Option<HostSignalSource>,
    /// When set, the helper is killed at this instant and the work ends
    /// with [`HelperError::TimedOut`].
    pub deadline: Option<Instant>,
}

/// What the helper writes back: the work's value, or its panic.
#[derive(Serialize, Deserialize)]
enum Reply<T> {
    Done(T),
    Panicked(String),
}

/// The text of a panic's payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn failed(what: &str, errno: i32) -> HelperError {
    HelperError::Failed(format!("cannot {what}: {}", strerror(errno)))
}

/// Changes this thread's signal mask; returns the mask it had.
fn signal_mask(how: SigmaskHow, set: &SigSet) -> SigSet {
    let mut old = SigSet::empty();
    // Cannot fail: `how` is valid and both sets are.
    let _ = pthread_sigmask(how, Some(set), Some(&mut old));
    old
}

fn only(signal: Signal) -> SigSet {
    let mut set = SigSet::empty();
    set.add(signal);
    set
}

/// A started helper: its pidfd and the read end of its result pipe.
struct Started {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    results: OwnedFd,
}

/// How the helper ended: `waitid`'s code and status, and what it wrote.
struct Ended {
    code: libc::c_int,
    status: libc::c_int,
    written: Vec<u8>,
    timed_out: bool,
}

impl Helper<'_> {
    /// Runs `work` in a helper process and returns its value. See the
    /// module's doc for what the helper is and is not.
    pub fn run<T, F>(&self, work: F) -> Result<T, HelperError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        // SIGCHLD stays blocked in this thread until the helper is reaped.
        let before = signal_mask(SigmaskHow::SIG_BLOCK, &only(Signal::SIGCHLD));
        let started = self.start(work);
        let ended = started.and_then(|started| {
            let mut host = self.host_signals.and_then(|make| make());
            let ended = self.wait(&started, host.as_deref_mut());
            if let Some(h) = host.as_deref_mut() {
                h.finish(None);
            }
            ended
        });
        signal_mask(SigmaskHow::SIG_SETMASK, &before);
        let ended = ended?;
        if ended.timed_out {
            return Err(HelperError::TimedOut);
        }
        if ended.code != libc::CLD_EXITED {
            return Err(HelperError::Signaled(ended.status));
        }
        match serde_json::from_slice::<Reply<T>>(&ended.written) {
            Ok(Reply::Done(value)) if ended.status == 0 => Ok(value),
            Ok(Reply::Panicked(text)) => Err(HelperError::Panicked(text)),
            _ => Err(HelperError::Failed(format!(
                "the helper process ended with status {} and no result",
                ended.status
            ))),
        }
    }

    /// Forks the helper, which runs `work` and never returns here.
    fn start<T: Serialize>(&self, work: impl FnOnce() -> T) -> Result<Started, HelperError> {
        let mut pipe = [-1; 2];
        // SAFETY: pipe2 writes two descriptors into `pipe`.
        if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(failed("create a pipe for a helper process", errno()));
        }
        // SAFETY: pipe2 returned two new descriptors that nothing else owns.
        let (results, reply) =
            unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // No handler of the caller's may run in the helper before it has
        // reset them all: every signal stays blocked across the fork.
        let before = signal_mask(SigmaskHow::SIG_SETMASK, &SigSet::all());
        // SAFETY: fork; the child runs `helper_main`, which only returns
        // by `_exit`, so it never unwinds or returns into the caller.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop(results);
            helper_main(reply.as_raw_fd(), parent, self.ignored_signals, work);
        }
        let forked = errno();
        signal_mask(SigmaskHow::SIG_SETMASK, &before);
        drop(reply);
        if pid < 0 {
            return Err(failed("start a helper process", forked));
        }
        // SAFETY: pidfd_open on the child just forked; SIGCHLD is blocked,
        // so nothing of ours has reaped it and its pid is still its own.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
        if pidfd < 0 {
            let err = errno();
            // ESRCH: it is gone and was reaped already (a host that
            // ignores SIGCHLD), so its pid may be another's now.
            if err != libc::ESRCH {
                // SAFETY: kill and waitpid on our own child, not reaped yet.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
            return Err(failed("watch a helper process (pidfd_open)", err));
        }
        // SAFETY: pidfd_open returned a new descriptor that nothing else owns.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        // SAFETY: F_SETFL on a descriptor this function owns. Reads that
        // never block let the result be drained once the helper is gone.
        unsafe { libc::fcntl(results.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        Ok(Started {
            pid,
            pidfd,
            results,
        })
    }

    /// Reads the helper's result while it runs (so a large one never fills
    /// the pipe), passes on the host's signals, kills it at the deadline,
    /// and reaps it.
    fn wait(
        &self,
        started: &Started,
        mut host: Option<&mut (dyn HostSignals + 'static)>,
    ) -> Result<Ended, HelperError> {
        let pidfd = started.pidfd.as_raw_fd();
        let mut written = Vec::new();
        let mut pipe_open = true;
        let mut timed_out = false;
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: pidfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: if pipe_open {
                        started.results.as_raw_fd()
                    } else {
                        -1
                    },
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let wait_ms = match self.deadline {
                Some(deadline) if !timed_out => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    // Rounded up: poll must not wake just before the deadline.
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
                }
                _ => -1,
            };
            // SAFETY: `fds` is an array of two pollfd; a negative fd is skipped.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, wait_ms) };
            if n < 0 {
                let err = errno();
                if err != libc::EINTR {
                    send_signal(pidfd, libc::SIGKILL);
                    let _ = reap(pidfd);
                    return Err(failed("wait for a helper process", err));
                }
                while let Some(signal) = host.as_deref_mut().and_then(|h| h.pending()) {
                    send_signal(pidfd, signal);
                }
                continue;
            }
            if n == 0 {
                if self.deadline.is_some_and(|d| Instant::now() >= d) {
                    send_signal(pidfd, libc::SIGKILL);
                    timed_out = true;
                }
                continue;
            }
            if fds[1].revents != 0 {
                pipe_open = read_available(started.results.as_raw_fd(), &mut written);
            }
            if fds[0].revents != 0 {
                break;
            }
        }
        if pipe_open {
            read_available(started.results.as_raw_fd(), &mut written);
        }
        let (code, status) = match reap(pidfd) {
            Ok(ended) => ended,
            // Reaped by someone else: a host that ignores SIGCHLD (the
            // kernel reaps then), or one whose other thread reaps any
            // child. A whole reply still tells how the work ended.
            Err(libc::ECHILD) if !written.is_empty() && !timed_out => (libc::CLD_EXITED, 0),
            Err(err) => {
                return Err(failed(
                    &format!("wait for helper process {}", started.pid),
                    err,
                ))
            }
        };
        Ok(Ended {
            code,
            status,
            written,
            timed_out,
        })
    }
}

/// Appends what can be read now; false once the pipe is closed.
fn read_available(fd: RawFd, into: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    loop {
        // SAFETY: reads into a buffer of `chunk.len()` bytes.
        let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
        match n {
            0 => return false,
            n if n > 0 => into.extend_from_slice(&chunk[..n as usize]),
            _ if errno() == libc::EINTR => {}
            // EAGAIN: nothing more for now. Any other error ends the
            // result, which then fails to parse.
            _ => return errno() == libc::EAGAIN,
        }
    }
}

/// Waits for the helper to end, retrying on EINTR: waitid's code and status.
fn reap(pidfd: RawFd) -> Result<(libc::c_int, libc::c_int), i32> {
    loop {
        // SAFETY: siginfo_t is plain data; waitid writes it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: P_PIDFD with a pidfd of our child; `info` is valid.
        let r =
            unsafe { libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED) };
        if r == 0 {
            // SAFETY: waitid filled a SIGCHLD-style siginfo.
            return Ok((info.si_code, unsafe { info.si_status() }));
        }
        let err = errno();
        if err != libc::EINTR {
            return Err(err);
        }
    }
}

/// The helper: signals as a command of the caller's would have them, the
/// work, its reply, `_exit`. Nothing unwinds out of here.
fn helper_main<T: Serialize>(
    reply: RawFd,
    parent: libc::pid_t,
    ignored_signals: &[i32],
    work: impl FnOnce() -> T,
) -> ! {
    let bytes = catch_unwind(AssertUnwindSafe(|| {
        reset_signals(ignored_signals);
        // SAFETY: prctl and getppid have no memory effects.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
        }
        let reply = match catch_unwind(AssertUnwindSafe(work)) {
            Ok(value) => Reply::Done(value),
            Err(payload) => Reply::Panicked(panic_text(&*payload)),
        };
        serde_json::to_vec(&reply).expect("a reply is plain data")
    }));
    let status = match bytes {
        Ok(bytes) if super::write_fd(reply, &bytes) => 0,
        _ => INTERNAL_ERROR,
    };
    // SAFETY: _exit ends the helper without running atexit handlers or
    // destructors of the caller's copied state.
    unsafe { libc::_exit(status) }
}

/// Every disposition back to the default but the ignored ones, and every
/// signal unblocked. Real-time signals that are ignored stay ignored: the
/// caller's ignored set names only the classic ones, and bash ignores no
/// real-time signal of its own accord.
fn reset_signals(ignored_signals: &[i32]) {
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        let keep_ignored = ignored_signals.contains(&signal)
            || (signal >= libc::SIGRTMIN() && crate::os::is_ignored(signal));
        let disposition = if keep_ignored {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: setting a disposition; glibc's own signals refuse it.
        unsafe { libc::signal(signal, disposition) };
    }
    signal_mask(SigmaskHow::SIG_SETMASK, &SigSet::empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PLAIN: Helper<'static> = Helper {
        ignored_signals: &[],
        host_signals: None,
        deadline: None,
    };

    #[test]
    fn the_work_s_value_comes_back_however_large() {
        assert_eq!(PLAIN.run(|| vec![1u32, 2, 3]), Ok(vec![1, 2, 3]));
        // Larger than a pipe's buffer: read while the helper writes.
        let big = PLAIN.run(|| "x".repeat(3 << 20)).unwrap();
        assert_eq!(big.len(), 3 << 20);
    }

    #[test]
    fn what_the_work_changes_in_memory_stays_in_the_helper() {
        let mut seen = vec![1];
        PLAIN.run(|| seen.push(2)).unwrap();
        assert_eq!(seen, [1]);
    }

    #[test]
    fn a_panic_comes_back_as_text_and_never_unwinds_here() {
        let ended = PLAIN.run(|| -> u8 { panic!("boom in the helper") });
        assert_eq!(
            ended,
            Err(HelperError::Panicked("boom in the helper".into()))
        );
    }

    #[test]
    fn a_signal_death_is_128_plus_n() {
        let ended = PLAIN.run(|| {
            // SAFETY: raising a signal on the helper itself.
            unsafe { libc::raise(libc::SIGTERM) };
            0u8
        });
        assert_eq!(ended, Err(HelperError::Signaled(libc::SIGTERM)));
        assert_eq!(
            HelperError::Signaled(libc::SIGINT).outcome().unwrap(),
            Exit {
                code: 130,
                signal: Some(libc::SIGINT)
            }
        );
    }

    #[test]
    fn the_deadline_kills_the_helper() {
        let started = Instant::now();
        let helper = Helper {
            deadline: Some(started + Duration::from_millis(200)),
            ..PLAIN
        };
        let ended = helper.run(|| std::thread::sleep(Duration::from_secs(20)));
        assert_eq!(ended, Err(HelperError::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(HelperError::TimedOut.outcome().unwrap_err().exit.code, 124);
    }

    #[test]
    fn the_helper_ignores_only_the_signals_the_user_ignored() {
        let helper = Helper {
            ignored_signals: &[libc::SIGUSR1],
            ..PLAIN
        };
        let (usr1, usr2) = helper
            .run(|| {
                (
                    crate::os::is_ignored(libc::SIGUSR1),
                    crate::os::is_ignored(libc::SIGUSR2),
                )
            })
            .unwrap();
        assert!(usr1 && !usr2);
    }
}
