//! The caller's side of the clone: start the stage, relay its terminal and
//! the host's signals while it runs, reap it, and read what it reported.
//!
//! Process tree of one stage:
//! ```text
//! caller (bash builtin or executable)   waits on a pidfd, never unshares itself
//! └─ pid 1 in new user+mount+pid+ipc+uts[+net] namespaces and a process
//!    group of its own: closes the caller's fds, mounts, drops every
//!    capability, then reaps and forwards signals
//!    └─ payload, in a session of its own: stdio, then exec
//! ```

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use libc::c_int;

use super::child::stack::PayloadStack;
use super::child::{argument_area, Child, ExitOnUnwind};
use super::clock::{now_ns, ChildTimes, StageClock};
use super::error::{clone_hint, SpawnError};
use super::prepared::{pointers, script_argv, Prepared};
use super::report::{read_reports, Outcome};
use super::sys::fd::at_least;
use super::sys::signals::{full_sigset, send_signal, set_signal_mask, sigset, FORWARDED_SIGNALS};
use super::sys::{errno, Linux, Syscall};
use super::terminal::Terminal;

fn spawn_error(what: &'static str) -> SpawnError {
    let source = std::io::Error::last_os_error();
    let hint = if what == CREATE_NAMESPACES {
        clone_hint(&source, &|path| std::fs::read_to_string(path).ok())
    } else {
        String::new()
    };
    SpawnError { what, source, hint }
}

const CREATE_NAMESPACES: &str = "create namespaces";

/// What the caller's host tells the wait loop about signals it received
/// itself (bash's own handlers), to be passed on to the stage.
pub trait HostSignals {
    /// The next signal to forward, if one arrived since the last call.
    fn pending(&mut self) -> Option<c_int>;
    /// Called once the stage is over. `typed` is the signal the stage died
    /// of when the user typed its key (^C, ^\\) at the stage's relayed
    /// terminal: in raw mode that key reached only the stage, where
    /// without the relay the host would have received the signal too.
    fn finish(&mut self, _typed: Option<c_int>) {}
}

/// The pidfd of the running stage's pid 1, for the executable's signal
/// forwarding; -1 when none runs.
static STAGE_PIDFD: AtomicI32 = AtomicI32::new(-1);

/// The executable's handlers: a signal sent to the executable goes to the
/// stage while one runs; otherwise it does what it would by default, so
/// one sent before the stage exists (say, while the store lock is being
/// waited for) still ends the command.
pub fn forward_signals_to_stage() {
    for &signal in FORWARDED_SIGNALS {
        // SAFETY: a zeroed sigaction is valid; the handler is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward_handler as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

extern "C" fn forward_handler(signal: c_int) {
    let pidfd = STAGE_PIDFD.load(Ordering::SeqCst);
    if pidfd >= 0 {
        send_signal(pidfd, signal);
        return;
    }
    // SAFETY: signal() and raise() are async-signal-safe; the raised signal
    // is blocked until this handler returns, then takes its default action.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// Starts the stage and waits for it. `terminal` relays a terminal the
/// stage got in place of the caller's; `host` reports signals the caller's
/// host received itself.
pub fn spawn_and_wait(
    prepared: &Prepared,
    terminal: Option<&mut Terminal>,
    host: Option<&mut (dyn HostSignals + 'static)>,
) -> Result<(Outcome, Option<ChildTimes>), SpawnError> {
    spawn_and_wait_with(&Linux, prepared, terminal, host)
}

/// `spawn_and_wait`, with the child's setup calls going through `sys`
/// (tests inject failures and panics there).
pub(crate) fn spawn_and_wait_with(
    sys: &dyn Syscall,
    prepared: &Prepared,
    mut terminal: Option<&mut Terminal>,
    mut host: Option<&mut (dyn HostSignals + 'static)>,
) -> Result<(Outcome, Option<ChildTimes>), SpawnError> {
    let clock = if prepared.timed {
        StageClock::map()
    } else {
        None
    };
    let (parent_end, child_end) = report_socket(prepared)?;
    let mut times = ChildTimes {
        cloned: now_ns(),
        ..ChildTimes::default()
    };
    let (pid, pidfd) = clone_stage(sys, prepared, child_end, clock.as_ref())?;
    let stage = RunningStage::register(pidfd);
    if let Some(maps) = &prepared.caller_maps {
        if let Err(err) = write_id_maps(pid, maps, parent_end.as_raw_fd()) {
            send_signal(stage.pidfd(), libc::SIGKILL);
            let _ = wait_for(stage.pidfd(), None, None, None);
            return Err(err);
        }
    }
    if let Some(t) = terminal.as_deref_mut() {
        t.start();
    }
    let deadline = prepared.timeout.map(|t| std::time::Instant::now() + t);
    let waited = wait_for(
        stage.pidfd(),
        deadline,
        terminal.as_deref_mut(),
        host.as_deref_mut(),
    );
    times.reaped = now_ns();
    let typed = terminal.map(|t| t.finish()).unwrap_or_default();
    drop(stage);
    let outcome = match waited {
        // Killed at the deadline: whatever pid 1 reported on its way out.
        Ok(Outcome::TimedOut) => Ok(Outcome::TimedOut),
        Ok(status) => Ok(read_reports(parent_end.as_raw_fd()).unwrap_or(status)),
        Err(err) => Err(err),
    };
    // A ^C typed at the relayed terminal reached only the stage. It is
    // passed to the host itself (bash then acts as after any interrupted
    // command), never to a process group: a stage that kills itself must
    // not make us signal anyone, and the executable dies of the stage's
    // signal anyway.
    let typed_signal = match outcome {
        Ok(Outcome::Signaled(signal)) if typed.sent(signal) => Some(signal),
        _ => None,
    };
    if let Some(h) = host {
        h.finish(typed_signal);
    }
    let times = clock.map(|c| ChildTimes {
        marks: c.read(),
        ..times
    });
    Ok((outcome?, times))
}

/// The socket pid 1 and the payload report over: (the caller's end, the
/// child's). The child's end lies above every number the payload's
/// descriptors move to: a `--fd N=M` must never land on it, as it stays
/// open until exec.
fn report_socket(prepared: &Prepared) -> Result<(OwnedFd, RawFd), SpawnError> {
    let mut pair = [0 as c_int; 2];
    let flags = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: `pair` has room for two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, flags, 0, pair.as_mut_ptr()) } < 0 {
        return Err(spawn_error("create the report socket"));
    }
    // SAFETY: both were just opened, and each is owned once from here on.
    let parent_end = unsafe { OwnedFd::from_raw_fd(pair[0]) };
    let lowest = prepared
        .fds
        .iter()
        .map(|(_, to)| to + 1)
        .max()
        .unwrap_or(3)
        .max(3);
    let child_end = at_least(pair[1], lowest).map_err(|source| SpawnError {
        what: "create the report socket",
        source,
        hint: String::new(),
    })?;
    Ok((parent_end, child_end))
}

/// Clones pid 1, which runs `Child::run` and never returns; the caller's
/// copy of `child_end` is closed. Returns the pid and its pidfd.
fn clone_stage(
    sys: &dyn Syscall,
    prepared: &Prepared,
    child_end: RawFd,
    clock: Option<&StageClock>,
) -> Result<(libc::pid_t, OwnedFd), SpawnError> {
    let argv = pointers(&prepared.argv);
    let script_argv = script_argv(&argv);
    let envp = pointers(&prepared.env);
    let mut keep: Vec<u32> = prepared
        .stdio
        .iter()
        .chain(prepared.fds.iter().map(|(from, _)| from))
        .chain(std::iter::once(&child_end))
        .filter(|fd| **fd >= 0)
        .map(|fd| *fd as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut slots = vec![-1; prepared.plan.slots];
    let mut walk = vec![-1; prepared.plan.depth];
    let payload_stack = PayloadStack::map().map_err(|source| SpawnError {
        what: "map the command's stack",
        source,
        hint: String::new(),
    })?;
    let child = Child {
        sys,
        p: prepared,
        argv: &argv,
        script_argv: &script_argv,
        envp: &envp,
        report_fd: child_end,
        keep: &keep,
        argument_area: argument_area(),
        clock,
        payload_stack: payload_stack.top(),
    };
    // No handler of the caller (bash's) may run in the child before it has
    // reset them all: every signal stays blocked across the clone.
    let old_mask = set_signal_mask(libc::SIG_SETMASK, &full_sigset());
    let mut pidfd: c_int = -1;
    // The exit signal is 0, not SIGCHLD: bash's SIGCHLD handler reaps any
    // child with waitpid(-1), which would steal our status. waitpid(-1)
    // without __WALL never sees a child that exits with no signal.
    // SAFETY: a fork-like clone (no new stack); CLONE_PIDFD stores the
    // pidfd at the parent_tid pointer. The child only runs async-signal-safe
    // code and never returns from `child.run`.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            prepared.clone_flags | libc::CLONE_PIDFD as libc::c_ulong,
            0usize,
            &mut pidfd as *mut c_int,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // The child is a copy of the caller: a panic must never unwind
        // out of it into the caller's frames (the builtin would return in
        // the child, and bash would run the rest of the script twice).
        let _guard = ExitOnUnwind;
        child.run(&mut slots, &mut walk);
    }
    let err = (pid < 0).then(|| spawn_error(CREATE_NAMESPACES));
    set_signal_mask(libc::SIG_SETMASK, &old_mask);
    // SAFETY: the child holds its own copy of this end now (or none).
    unsafe { libc::close(child_end) };
    match err {
        Some(err) => Err(err),
        // SAFETY: clone returned this pidfd, owned here from now on.
        None => Ok((pid as libc::pid_t, unsafe { OwnedFd::from_raw_fd(pidfd) })),
    }
}

/// The running stage's pidfd, known to the executable's signal handlers
/// while it lives.
struct RunningStage(RawFd);

impl RunningStage {
    fn register(pidfd: OwnedFd) -> RunningStage {
        let fd = pidfd.into_raw_fd();
        STAGE_PIDFD.store(fd, Ordering::SeqCst);
        RunningStage(fd)
    }

    fn pidfd(&self) -> RawFd {
        self.0
    }
}

impl Drop for RunningStage {
    /// No forwarded signal may reach a closed (or reused) pidfd number.
    fn drop(&mut self) {
        let forwarded = sigset(FORWARDED_SIGNALS);
        let before = set_signal_mask(libc::SIG_BLOCK, &forwarded);
        STAGE_PIDFD.store(-1, Ordering::SeqCst);
        // SAFETY: the pidfd is ours (from `register`), closed once here.
        unsafe { libc::close(self.0) };
        set_signal_mask(libc::SIG_SETMASK, &before);
    }
}

/// Writes the stage's id maps from outside (a map of more than its own
/// id needs CAP_SETUID over the parent namespace, which only the caller
/// has), then tells pid 1, which waits for them, over the report socket.
fn write_id_maps(
    pid: libc::pid_t,
    (uid_map, gid_map): &(Vec<u8>, Vec<u8>),
    report: RawFd,
) -> Result<(), SpawnError> {
    for (name, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
        let path = format!("/proc/{pid}/{name}");
        if let Err(source) = std::fs::write(&path, map) {
            return Err(SpawnError {
                what: if name == "uid_map" {
                    "write the stage's uid_map"
                } else {
                    "write the stage's gid_map"
                },
                source,
                hint: String::new(),
            });
        }
    }
    // SAFETY: sends one byte from a stack buffer.
    if unsafe { libc::send(report, [1u8].as_ptr().cast(), 1, libc::MSG_NOSIGNAL) } != 1 {
        return Err(spawn_error("tell the stage its id maps are written"));
    }
    Ok(())
}

/// Polls until pid 1 exits, relaying the terminal and the host's signals
/// meanwhile, then reaps it. At the deadline the whole stage is killed:
/// SIGKILL to pid 1 ends every process of its pid namespace.
fn wait_for(
    pidfd: RawFd,
    deadline: Option<std::time::Instant>,
    mut terminal: Option<&mut Terminal>,
    mut host: Option<&mut (dyn HostSignals + 'static)>,
) -> Result<Outcome, SpawnError> {
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(5);
    let mut timed_out = false;
    loop {
        fds.clear();
        fds.push(libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        });
        if let Some(t) = terminal.as_deref_mut() {
            t.poll_fds(&mut fds);
        }
        let wait_ms = match deadline {
            _ if timed_out => -1,
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                // Rounded up: poll must not wake just before the deadline.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as c_int
            }
        };
        // SAFETY: `fds` is a valid array of pollfd for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
        if n == 0 && wait_ms >= 0 {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                send_signal(pidfd, libc::SIGKILL);
                timed_out = true;
            }
            continue;
        }
        if n < 0 {
            if errno() != libc::EINTR {
                return Err(spawn_error("wait for the sandbox"));
            }
            if let Some(h) = host.as_deref_mut() {
                while let Some(signal) = h.pending() {
                    send_signal(pidfd, signal);
                }
            }
            continue;
        }
        if fds[0].revents != 0 {
            break;
        }
        if let Some(t) = terminal.as_deref_mut() {
            t.service(&fds[1..]);
        }
    }
    loop {
        // SAFETY: siginfo_t is plain data; waitid writes it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: P_PIDFD with the pidfd from clone; `info` is valid.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd as libc::id_t,
                &mut info,
                libc::WEXITED | libc::__WALL,
            )
        };
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(spawn_error("wait for the sandbox"));
        }
        // SAFETY: waitid filled a SIGCHLD-style siginfo.
        let status = unsafe { info.si_status() };
        if timed_out {
            return Ok(Outcome::TimedOut);
        }
        return Ok(match info.si_code {
            libc::CLD_EXITED => Outcome::Exited(status),
            _ => Outcome::Signaled(status),
        });
    }
}
