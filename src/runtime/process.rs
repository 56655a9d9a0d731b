//! clone, the child's setup, the minimal pid 1, exec, and waiting.
//!
//! Process tree of one stage:
//! ```text
//! caller (bash builtin or executable)   waits on a pidfd, never unshares itself
//! └─ pid 1 in new user+mount+pid+ipc+uts[+net] namespaces and its own
//!    session: closes the caller's fds, mounts, drops every capability,
//!    then reaps and forwards signals
//!    └─ payload, in a session of its own: stdio, then exec
//! ```
//! Everything the child needs is prepared before cloning: between clone
//! and exec only async-signal-safe code runs (no allocation, no locks).
//! Failures travel back over a socket as fixed-size records; the same
//! socket tells pid 1 when the caller is gone, so the stage dies with it.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use libc::{c_char, c_int};

use super::plan::{execute, Plan, StepFailure};
use super::syscall::{errno, Errno, Linux, Syscall};
use super::terminal::Terminal;

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

/// The fixed steps of pid 1 and the payload, outside the mount plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitStep {
    CloseInherited,
    NewProcessGroup,
    DropBoundingSet,
    ClearAmbient,
    NoNewPrivs,
    ClearCapabilities,
    NotDumpable,
    StartCommand,
    CloseOwn,
    WatchSignals,
    Wait,
    PayloadSession,
    CopyStdio,
    MoveStdio,
    KeepStdio,
    ControllingTerminal,
    KeepFd,
    CloseOthers,
    SetRlimit,
    PayloadDumpable,
    EnterIdentity,
    MapIdentity,
    SwitchIds,
    Seccomp,
}

const INIT_STEPS: &[InitStep] = &[
    InitStep::CloseInherited,
    InitStep::NewProcessGroup,
    InitStep::DropBoundingSet,
    InitStep::ClearAmbient,
    InitStep::NoNewPrivs,
    InitStep::ClearCapabilities,
    InitStep::NotDumpable,
    InitStep::StartCommand,
    InitStep::CloseOwn,
    InitStep::WatchSignals,
    InitStep::Wait,
    InitStep::PayloadSession,
    InitStep::CopyStdio,
    InitStep::MoveStdio,
    InitStep::KeepStdio,
    InitStep::ControllingTerminal,
    InitStep::KeepFd,
    InitStep::CloseOthers,
    InitStep::SetRlimit,
    InitStep::PayloadDumpable,
    InitStep::EnterIdentity,
    InitStep::MapIdentity,
    InitStep::SwitchIds,
    InitStep::Seccomp,
];

impl InitStep {
    /// Completes "cannot …" in the error message.
    pub fn what(self) -> &'static str {
        match self {
            InitStep::CloseInherited => "close the caller's descriptors in the stage",
            InitStep::NewProcessGroup => "give the stage's pid 1 a process group of its own",
            InitStep::DropBoundingSet => "empty the capability bounding set",
            InitStep::ClearAmbient => "clear the ambient capabilities",
            InitStep::NoNewPrivs => "set no_new_privs",
            InitStep::ClearCapabilities => "drop every capability",
            InitStep::NotDumpable => "make the stage's pid 1 non-dumpable",
            InitStep::StartCommand => "start the command",
            InitStep::CloseOwn => "close pid 1's descriptors",
            InitStep::WatchSignals => "watch signals in pid 1",
            InitStep::Wait => "wait for the command",
            InitStep::PayloadSession => "give the command a session of its own",
            InitStep::CopyStdio => "copy a descriptor for stdin, stdout or stderr",
            InitStep::MoveStdio => "move a descriptor onto stdin, stdout or stderr",
            InitStep::KeepStdio => "keep stdin, stdout or stderr open across exec",
            InitStep::ControllingTerminal => "make the stage's terminal its controlling terminal",
            InitStep::KeepFd => "pass a --fd descriptor",
            InitStep::CloseOthers => "close every other descriptor at exec",
            InitStep::SetRlimit => "set a --rlimit",
            InitStep::PayloadDumpable => "make the command's process dumpable for --uid/--gid",
            InitStep::EnterIdentity => "create the user namespace of --uid/--gid",
            InitStep::MapIdentity => "map the user and group of --uid/--gid",
            InitStep::SwitchIds => "take the user and group of --uid/--gid",
            InitStep::Seccomp => "install the seccomp filter",
        }
    }

    fn code(self) -> i32 {
        INIT_STEPS
            .iter()
            .position(|s| *s == self)
            .expect("every step is listed") as i32
    }
}

pub struct Prepared {
    pub clone_flags: libc::c_ulong,
    pub plan: Plan,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// Paths execve tries in order (the PATH search, done inside the new root).
    pub exec_candidates: Vec<CString>,
    /// Caller descriptors that become the payload's 0, 1 and 2; -1 leaves
    /// that one closed.
    pub stdio: [RawFd; 3],
    /// Which of 0, 1, 2 is the stage's own terminal, to make it the
    /// payload's controlling terminal.
    pub terminal_slot: Option<usize>,
    /// Caller descriptors passed through, each as (its number, the
    /// payload's number); targets are above 2 and distinct.
    pub fds: Vec<(RawFd, RawFd)>,
    /// Signals left ignored in the payload; every other one is reset.
    pub ignored_signals: Vec<c_int>,
    pub rlimits: Vec<super::Rlimit>,
    /// The payload's uid_map and gid_map in a user namespace nested in the
    /// stage's, entered after setup (`--uid`, `--gid`).
    pub identity: Option<Identity>,
    /// The stage's uid_map and gid_map, when the caller writes them (as
    /// root, with `--uid`/`--gid`); pid 1 waits for them before setup.
    pub caller_maps: Option<(Vec<u8>, Vec<u8>)>,
    pub timeout: Option<std::time::Duration>,
    /// The payload's system call filter, installed last before exec.
    pub seccomp: super::seccomp::Program,
    /// Record when each part of the start happened (`SLICEBOX_TIMES`).
    pub timed: bool,
}

/// Who the payload is inside (`--uid`, `--gid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// As root: ids the payload takes in the stage's own user namespace,
    /// which maps each to the same id outside. A real uid other than 0
    /// has no power at all, and root can map it, so it runs as exactly
    /// that user (it cannot read what only root may read).
    pub switch_to: Option<(u32, u32)>,
    /// The maps of a user namespace nested in the stage's, entered after
    /// setup: how a caller without root runs as another id, and how uid 0
    /// looks like root without power over the stage's mounts.
    pub nested: Option<NestedMaps>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedMaps {
    pub uid_map: Vec<u8>,
    pub gid_map: Vec<u8>,
    /// The uid map's outside uid is 0 (sandbox runs as root).
    pub maps_root: bool,
}

impl Identity {
    /// The capabilities pid 1 leaves the payload to take its identity:
    /// CAP_SETUID and CAP_SETGID to switch ids, CAP_SETFCAP for a nested
    /// map of uid 0 (the kernel's verify_root_map). The payload loses them
    /// all when it switches to a uid other than 0, or enters the nested
    /// namespace, whose bounding set it empties.
    fn capabilities(&self) -> u64 {
        let switch = if self.switch_to.is_some() {
            1 << CAP_SETUID | 1 << CAP_SETGID
        } else {
            0
        };
        let map_root = if self.nested.as_ref().is_some_and(|n| n.maps_root) {
            1 << CAP_SETFCAP
        } else {
            0
        };
        switch | map_root
    }
}

/// Where the child writes when it reached each of `CHILD_MARKS`, for
/// `SLICEBOX_TIMES`: a shared anonymous page mapped before the clone, so
/// that pid 1 and the payload write to memory the caller reads afterwards.
/// Writing a clock reading is async-signal-safe (the vDSO).
pub struct StageClock {
    page: *mut u64,
}

/// The child's marks, in order: pid 1 runs, setup done, payload cloned,
/// payload about to exec, payload exited (seen by pid 1).
pub const CHILD_MARKS: usize = 5;

/// A CLOCK_MONOTONIC reading in ns.
pub fn now_ns() -> u64 {
    // SAFETY: clock_gettime writes one timespec.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: as above; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

impl StageClock {
    fn map() -> Option<StageClock> {
        // SAFETY: a fresh shared anonymous page; unmapped in Drop.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        (page != libc::MAP_FAILED).then(|| StageClock { page: page.cast() })
    }

    fn mark(&self, index: usize) {
        // SAFETY: index < CHILD_MARKS, within the page; a plain store.
        unsafe { std::ptr::write_volatile(self.page.add(index), now_ns()) };
    }

    fn read(&self) -> [u64; CHILD_MARKS] {
        // SAFETY: the page holds CHILD_MARKS u64s; the child is gone.
        std::array::from_fn(|i| unsafe { std::ptr::read_volatile(self.page.add(i)) })
    }
}

impl Drop for StageClock {
    fn drop(&mut self) {
        // SAFETY: mapped in `map` with this length.
        unsafe { libc::munmap(self.page.cast(), 4096) };
    }
}

/// When the caller cloned and reaped pid 1, and the child's marks (0: not
/// reached), all CLOCK_MONOTONIC ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildTimes {
    pub cloned: u64,
    pub marks: [u64; CHILD_MARKS],
    pub reaped: u64,
}

const REPORT_STEP: i32 = 1;
const REPORT_INIT: i32 = 2;
const REPORT_EXEC: i32 = 3;
const REPORT_SIGNAL: i32 = 4;

type Record = [i32; 4];

/// What pid 1 reads from its signalfd: SIGCHLD, then the forwarded ones.
const WATCHED_SIGNALS: &[c_int] = &[
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

fn report(fd: RawFd, record: Record) {
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

/// The shell a script without a `#!` line runs with.
const SCRIPT_SHELL: &std::ffi::CStr = c"/bin/sh";

/// Whether a file the kernel could not execute is a binary (say, for
/// another architecture) rather than a script without `#!`: a NUL byte in
/// its first line, as bash decides. Async-signal-safe: a stack buffer.
fn looks_binary(path: &std::ffi::CStr) -> bool {
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

/// `argv` for running a script with `SCRIPT_SHELL`: slot 1 is the script.
fn script_argv(argv: &[*const c_char]) -> Vec<std::cell::Cell<*const c_char>> {
    [SCRIPT_SHELL.as_ptr(), std::ptr::null()]
        .into_iter()
        .chain(argv.iter().skip(1).copied())
        .map(std::cell::Cell::new)
        .collect()
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
    pub hint: String,
}

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

/// Why the kernel refused a user namespace, read from the settings that
/// decide it (`read` returns a /proc/sys file's text), and what to do.
fn clone_hint(err: &std::io::Error, read: &dyn Fn(&str) -> Option<String>) -> String {
    let setting = |path: &str| read(path).map(|text| text.trim().to_string());
    match err.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EUSERS) => match setting("/proc/sys/user/max_user_namespaces") {
            Some(limit) if limit == "0" => "; user.max_user_namespaces is 0, so no user namespace can be made: as root, \
                 run sysctl -w user.max_user_namespaces=15000"
                .into(),
            Some(limit) => format!(
                "; the limit of user namespaces is reached (user.max_user_namespaces = {limit} here, \
                 or a lower limit of an enclosing namespace): end some, or raise it as root"
            ),
            None => "; the limit of user namespaces is reached (user.max_user_namespaces)".into(),
        },
        Some(libc::EPERM) => {
            if setting("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
                "; kernel.unprivileged_userns_clone is 0, so only root may make user namespaces: as root, \
                 run sysctl -w kernel.unprivileged_userns_clone=1"
                    .into()
            } else if setting("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
                "; AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1): \
                 as root, give slicebox an AppArmor profile with 'userns,' or set the sysctl to 0"
                    .into()
            } else {
                "; user namespaces are refused here, by a seccomp filter or the container this runs in \
                 (Docker's default profile refuses them): run slicebox on the host, or in a container \
                 that allows unshare(CLONE_NEWUSER)"
                    .into()
            }
        }
        _ => String::new(),
    }
}

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

fn send_signal(pidfd: RawFd, signal: c_int) {
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

fn full_sigset() -> libc::sigset_t {
    // SAFETY: sigfillset initialises the set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        set
    }
}

fn set_signal_mask(how: c_int, set: &libc::sigset_t) -> libc::sigset_t {
    // SAFETY: both sets are valid for the call.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(how, set, &mut old);
        old
    }
}

/// Moves a descriptor the caller made for the stage above 0, 1 and 2, so
/// it can never be mistaken for stdio when the caller runs with one of
/// them closed.
pub(crate) fn above_stdio(fd: RawFd) -> std::io::Result<RawFd> {
    at_least(fd, 3)
}

/// Moves a descriptor of ours to `min` or above (close-on-exec), closing
/// the old number.
fn at_least(fd: RawFd, min: RawFd) -> std::io::Result<RawFd> {
    if fd >= min {
        return Ok(fd);
    }
    // SAFETY: fcntl and close on a descriptor this module owns.
    unsafe {
        let moved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min);
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if moved < 0 {
            return Err(err);
        }
        Ok(moved)
    }
}

/// The caller's argument area `[arg_start, arg_end)`, which pid 1, a
/// clone of the caller, blanks so /proc/1/cmdline inside the stage does not
/// show the caller's command line.
fn argument_area() -> Option<(usize, usize)> {
    let start = ARGS_START.load(Ordering::Relaxed);
    let end = ARGS_END.load(Ordering::Relaxed);
    (start != 0 && start < end).then_some((start, end))
}

static ARGS_START: AtomicUsize = AtomicUsize::new(0);
static ARGS_END: AtomicUsize = AtomicUsize::new(0);

/// glibc calls `.init_array` entries of the executable and of every shared
/// object, dlopen'ed ones included, with the process's argc and argv:
/// the argument strings are found here without reading /proc.
#[used]
#[link_section = ".init_array"]
static FIND_ARGUMENT_AREA: extern "C" fn(c_int, *const *const c_char) = find_argument_area;

extern "C" fn find_argument_area(argc: c_int, argv: *const *const c_char) {
    if argc <= 0 || argv.is_null() {
        return;
    }
    // SAFETY: glibc passes the process's argv: argc valid C strings.
    unsafe {
        let first = *argv;
        if first.is_null() {
            return;
        }
        let mut end = first as usize;
        for i in 0..argc as usize {
            let arg = *argv.add(i);
            // Only the kernel's own layout, strings back to back, is the
            // argument area; anything a host rearranged is left alone.
            if arg.is_null() || arg as usize != end {
                return;
            }
            end += std::ffi::CStr::from_ptr(arg).to_bytes_with_nul().len();
        }
        ARGS_START.store(first as usize, Ordering::Relaxed);
        ARGS_END.store(end, Ordering::Relaxed);
    }
}

/// The name pid 1 shows in `ps` inside the stage.
const INIT_NAME: &[u8] = b"slicebox-init";

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
fn spawn_and_wait_with(
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
    let mut times = ChildTimes::default();
    let argv = pointers(&prepared.argv);
    let script_argv = script_argv(&argv);
    let envp = pointers(&prepared.env);
    let mut pair = [0 as c_int; 2];
    // SAFETY: `pair` has room for two descriptors.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    } < 0
    {
        return Err(spawn_error("create the report socket"));
    }
    let close_pair = |a: RawFd, b: RawFd| {
        // SAFETY: both ends were opened above and are owned here.
        unsafe {
            libc::close(a);
            libc::close(b);
        }
    };
    let parent_end = pair[0];
    // Above every number the payload's descriptors move to: a `--fd N=M`
    // must never land on the report socket, which stays open until exec.
    let lowest = prepared
        .fds
        .iter()
        .map(|(_, to)| to + 1)
        .max()
        .unwrap_or(3)
        .max(3);
    let child_end = match at_least(pair[1], lowest) {
        Ok(fd) => fd,
        Err(_) => {
            let err = spawn_error("create the report socket");
            close_pair(parent_end, -1);
            return Err(err);
        }
    };
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
    let child = Child {
        sys,
        p: prepared,
        argv: &argv,
        script_argv: &script_argv,
        envp: &envp,
        report_fd: child_end,
        keep: &keep,
        argument_area: argument_area(),
        clock: clock.as_ref(),
    };

    // No handler of the caller (bash's) may run in the child before it has
    // reset them all: every signal stays blocked across the clone.
    let old_mask = set_signal_mask(libc::SIG_SETMASK, &full_sigset());
    let mut pidfd: c_int = -1;
    // The exit signal is 0, not SIGCHLD: bash's SIGCHLD handler reaps any
    // child with waitpid(-1), which would steal our status. waitpid(-1)
    // without __WALL never sees a child that exits with no signal.
    times.cloned = now_ns();
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
    if pid < 0 {
        let err = spawn_error(CREATE_NAMESPACES);
        set_signal_mask(libc::SIG_SETMASK, &old_mask);
        close_pair(parent_end, child_end);
        return Err(err);
    }
    STAGE_PIDFD.store(pidfd, Ordering::SeqCst);
    set_signal_mask(libc::SIG_SETMASK, &old_mask);
    // SAFETY: the child holds its own copy of this end now.
    unsafe { libc::close(child_end) };
    if let Some(maps) = &prepared.caller_maps {
        if let Err(err) = write_id_maps(pid as libc::pid_t, maps, parent_end) {
            send_signal(pidfd, libc::SIGKILL);
            let _ = wait_for(pidfd, None, None, None);
            STAGE_PIDFD.store(-1, Ordering::SeqCst);
            // SAFETY: ours, from clone.
            unsafe { libc::close(pidfd) };
            close_pair(parent_end, -1);
            return Err(err);
        }
    }

    if let Some(t) = terminal.as_deref_mut() {
        t.start();
    }
    let deadline = prepared.timeout.map(|t| std::time::Instant::now() + t);
    let waited = wait_for(
        pidfd,
        deadline,
        terminal.as_deref_mut(),
        host.as_deref_mut(),
    );
    times.reaped = now_ns();
    let typed = terminal.map(|t| t.finish()).unwrap_or_default();
    // No forwarded signal may reach a closed (or reused) pidfd number.
    let forwarded = sigset(FORWARDED_SIGNALS);
    let before = set_signal_mask(libc::SIG_BLOCK, &forwarded);
    STAGE_PIDFD.store(-1, Ordering::SeqCst);
    // SAFETY: the pidfd was returned by clone and is owned here.
    unsafe { libc::close(pidfd) };
    set_signal_mask(libc::SIG_SETMASK, &before);

    let outcome = match waited {
        // Killed at the deadline: whatever pid 1 reported on its way out.
        Ok(Outcome::TimedOut) => Ok(Outcome::TimedOut),
        Ok(status) => Ok(read_reports(parent_end).unwrap_or(status)),
        Err(err) => Err(err),
    };
    close_pair(parent_end, -1);
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
    let outcome = outcome?;
    let times = clock.map(|c| ChildTimes {
        marks: c.read(),
        ..times
    });
    Ok((outcome, times))
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

/// The first record explains the failure; later ones are consequences.
fn read_reports(fd: RawFd) -> Option<Outcome> {
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
            step: INIT_STEPS
                .get(step as usize)
                .copied()
                .unwrap_or(InitStep::StartCommand),
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
    fn record(self) -> Record {
        match self {
            ChildFailure::Step(f) => [REPORT_STEP, f.step as i32, f.errno, f.component],
            ChildFailure::Init(step, errno) => [REPORT_INIT, step.code(), errno, 0],
        }
    }
}

fn init(step: InitStep) -> impl Fn(Errno) -> ChildFailure {
    move |errno| ChildFailure::Init(step, errno)
}

/// Closes every descriptor except the sorted `keep` ones, with `flags`
/// (0, or CLOSE_RANGE_CLOEXEC to close them at exec).
fn close_all_but(
    sys: &dyn Syscall,
    keep: impl IntoIterator<Item = u32>,
    flags: libc::c_uint,
) -> Result<(), Errno> {
    let mut from = 0u32;
    for fd in keep {
        if fd > from {
            sys.close_range(from, fd - 1, flags)?;
        }
        from = fd + 1;
    }
    sys.close_range(from, u32::MAX, flags)
}

const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
const CAP_SETFCAP: u32 = 31;

/// Empties the bounding and ambient sets and keeps only `keep` (a mask)
/// of the effective and permitted ones. Async-signal-safe.
fn drop_capabilities(sys: &dyn Syscall, keep: u64) -> Result<(), ChildFailure> {
    // Every capability the kernel knows, up to the first it does not
    // (EINVAL): no need to read /proc/sys/kernel/cap_last_cap first.
    for capability in 0..64 {
        match sys.drop_bounding_capability(capability) {
            Ok(()) => {}
            Err(libc::EINVAL) if capability > 0 => break,
            Err(errno) => return Err(ChildFailure::Init(InitStep::DropBoundingSet, errno)),
        }
    }
    sys.clear_ambient_capabilities()
        .map_err(init(InitStep::ClearAmbient))?;
    sys.keep_capabilities(keep)
        .map_err(init(InitStep::ClearCapabilities))
}

/// pid 1 before it starts the command: first let go of everything of the
/// caller's (descriptors, session), then assemble the stage, then give up
/// every privilege. Async-signal-safe.
pub fn prepare_init(
    sys: &dyn Syscall,
    p: &Prepared,
    keep: &[u32],
    slots: &mut [RawFd],
    walk: &mut [RawFd],
) -> Result<(), ChildFailure> {
    // Before any path from the user is used: a descriptor of the caller's
    // (a directory, /dev/fd/N) must not be reachable during setup.
    close_all_but(sys, keep.iter().copied(), 0).map_err(init(InitStep::CloseInherited))?;
    // A terminal's signals for the caller's process group must not reach
    // pid 1 (the caller forwards what the stage should get). A process
    // group is enough: the payload, which runs foreign code, gets a session
    // of its own. setsid here would cost a second scheduler autogroup
    // (~25 µs to make and to tear down on this VM) for nothing.
    sys.set_own_process_group()
        .map_err(init(InitStep::NewProcessGroup))?;
    // Before the plan: its Landlock step needs it, and nothing in the
    // stage ever gains privileges by exec.
    sys.set_no_new_privs().map_err(init(InitStep::NoNewPrivs))?;
    execute(sys, &p.plan.steps, slots, walk).map_err(ChildFailure::Step)?;
    // What the payload needs to take its --uid/--gid (see Identity);
    // pid 1 drops it once the payload is started.
    let keep = p.identity.as_ref().map_or(0, Identity::capabilities);
    drop_capabilities(sys, keep)?;
    // With no capabilities left, non-dumpable is what keeps the payload
    // from ptracing pid 1 or reading its memory and descriptors.
    sys.set_dumpable(false)
        .map_err(init(InitStep::NotDumpable))?;
    Ok(())
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
fn take_identity(sys: &dyn Syscall, identity: &Identity) -> Result<(), ChildFailure> {
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

/// The most `--fd`s a stage takes (the payload sorts them without allocating).
pub const MAX_FDS: usize = 64;

/// Ends the process with 125 when dropped, which in the cloned child only
/// happens while a panic unwinds: the child body never returns.
struct ExitOnUnwind;

impl Drop for ExitOnUnwind {
    fn drop(&mut self) {
        // SAFETY: _exit is async-signal-safe and runs no destructor.
        unsafe { libc::_exit(125) }
    }
}

/// Everything the cloned child reads, prepared by the parent.
struct Child<'a> {
    /// The seam every setup call goes through (`Linux` but in tests).
    sys: &'a dyn Syscall,
    p: &'a Prepared,
    argv: &'a [*const c_char],
    /// `/bin/sh`, a slot for the script, then `argv[1..]`: for a script
    /// without a `#!` line (ENOEXEC), which runs with /bin/sh as execvp
    /// and shells run it. Cells, so the child can fill the slot without
    /// allocating (a Cell has its content's layout).
    script_argv: &'a [std::cell::Cell<*const c_char>],
    envp: &'a [*const c_char],
    report_fd: RawFd,
    keep: &'a [u32],
    argument_area: Option<(usize, usize)>,
    clock: Option<&'a StageClock>,
}

impl Child<'_> {
    /// pid 1: set up the stage, start the payload, reap until it ends.
    fn mark(&self, index: usize) {
        if let Some(clock) = self.clock {
            clock.mark(index);
        }
    }

    fn run(&self, slots: &mut [RawFd], walk: &mut [RawFd]) -> ! {
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
    fn wait_for_id_maps(&self) {
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

    fn fail(&self, failure: ChildFailure) -> ! {
        report(self.report_fd, failure.record());
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(125) }
    }

    /// pid 1 is a copy of the caller: its argument area still holds the
    /// caller's command line, which /proc/1/cmdline would show inside. It
    /// is overwritten with our name, a NUL, and zeros. A non-NUL last byte
    /// makes the kernel read it as a rewritten title (as setproctitle
    /// does), up to the first NUL: `slicebox-init` and nothing else.
    fn blank_argument_area(&self) {
        if let Some((start, end)) = self.argument_area {
            let len = end - start;
            let titled = len > INIT_NAME.len() + 1;
            // SAFETY: the kernel reports [arg_start, arg_end) as this
            // process's argument strings: writable memory (the stack, or
            // where setproctitle-style code moved them) that only this
            // copy-on-write clone of the caller will see changed.
            unsafe {
                let area = std::slice::from_raw_parts_mut(start as *mut u8, len);
                for (i, byte) in area.iter_mut().enumerate() {
                    let value = if titled && i + 1 == len {
                        b' '
                    } else if i + 1 < len {
                        INIT_NAME.get(i).copied().unwrap_or(0)
                    } else {
                        0
                    };
                    std::ptr::write_volatile(byte, value);
                }
            }
        }
        let mut name = [0u8; 16];
        name[..INIT_NAME.len()].copy_from_slice(INIT_NAME);
        // SAFETY: PR_SET_NAME reads a NUL-terminated buffer of up to 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
    }

    fn reap(&self, payload: libc::pid_t, payload_pidfd: RawFd) -> ! {
        let kill_and_fail = |step: InitStep, errno: Errno| -> ! {
            send_signal(payload_pidfd, libc::SIGKILL);
            self.fail(ChildFailure::Init(step, errno))
        };
        // pid 1 holds nothing open but the report socket and the payload's
        // pidfd, so the pipeline sees EOF exactly when the payload closes
        // its ends.
        let mut keep = [self.report_fd as u32, payload_pidfd as u32];
        keep.sort_unstable();
        if let Err(errno) = close_all_but(self.sys, keep, 0) {
            kill_and_fail(InitStep::CloseOwn, errno);
        }
        let mask = sigset(WATCHED_SIGNALS);
        // SAFETY: a new signalfd for signals that stay blocked in pid 1.
        let signals = unsafe { libc::signalfd(-1, &mask, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if signals < 0 {
            kill_and_fail(InitStep::WatchSignals, errno());
        }
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.report_fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: signals,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array for the call.
            if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                kill_and_fail(InitStep::Wait, errno());
            }
            if fds[0].revents != 0 {
                // The caller never writes: this is its end closing. The
                // stage dies with its caller; the kernel kills every other
                // process of the pid namespace when pid 1 exits.
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(125) };
            }
            loop {
                // SAFETY: signalfd_siginfo is plain data.
                let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
                // SAFETY: reads one record into `info`.
                let n = unsafe {
                    libc::read(
                        signals,
                        (&mut info as *mut libc::signalfd_siginfo).cast(),
                        std::mem::size_of::<libc::signalfd_siginfo>(),
                    )
                };
                if n != std::mem::size_of::<libc::signalfd_siginfo>() as isize {
                    break;
                }
                let signal = info.ssi_signo as c_int;
                if signal != libc::SIGCHLD {
                    send_signal(payload_pidfd, signal);
                    continue;
                }
                // Reap every child that exited, orphans included.
                loop {
                    let mut status = 0;
                    // SAFETY: `status` is a valid out-pointer.
                    let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                    if r == payload {
                        self.mark(4);
                        self.exit_like(status);
                    }
                    if r <= 0 {
                        break;
                    }
                }
            }
        }
    }

    fn exit_like(&self, status: c_int) -> ! {
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            report(self.report_fd, [REPORT_SIGNAL, signal, 0, 0]);
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(128 + signal) };
        }
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(libc::WEXITSTATUS(status)) }
    }

    fn exec_payload(&self) -> ! {
        let p = self.p;
        for signal in 1..libc::SIGRTMIN() {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
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
        for candidate in &p.exec_candidates {
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
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => saw_permission_denied = true,
                _ => break,
            }
        }
        if saw_permission_denied && matches!(last_error, libc::ENOENT | libc::ENOTDIR) {
            last_error = libc::EACCES;
        }
        let not_found = matches!(last_error, libc::ENOENT | libc::ENOTDIR);
        report(
            self.report_fd,
            [REPORT_EXEC, last_error, not_found as i32, 0],
        );
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(if not_found { 127 } else { 126 }) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{plan, HostEntry, PlanInput};
    use super::super::syscall::recording::Recorder;
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_refused_clone_explains_what_to_check() {
        let error = |errno| std::io::Error::from_raw_os_error(errno);
        let settings = |pairs: &'static [(&'static str, &'static str)]| {
            move |path: &str| {
                pairs
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, v)| format!("{v}\n"))
            }
        };
        let debian = settings(&[("/proc/sys/kernel/unprivileged_userns_clone", "0")]);
        assert!(clone_hint(&error(libc::EPERM), &debian)
            .contains("sysctl -w kernel.unprivileged_userns_clone=1"));
        let ubuntu = settings(&[
            ("/proc/sys/kernel/unprivileged_userns_clone", "1"),
            (
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
                "1",
            ),
        ]);
        assert!(clone_hint(&error(libc::EPERM), &ubuntu).contains("AppArmor"));
        let container = settings(&[]);
        assert!(clone_hint(&error(libc::EPERM), &container).contains("seccomp"));
        let none_allowed = settings(&[("/proc/sys/user/max_user_namespaces", "0")]);
        assert!(clone_hint(&error(libc::ENOSPC), &none_allowed)
            .contains("user.max_user_namespaces is 0"));
        let full = settings(&[("/proc/sys/user/max_user_namespaces", "100")]);
        assert!(clone_hint(&error(libc::ENOSPC), &full).contains("= 100 here"));
        assert_eq!(clone_hint(&error(libc::ENOMEM), &container), "");
    }

    fn prepared() -> Prepared {
        let plan = plan(&PlanInput {
            base: vec![(PathBuf::from("/usr"), HostEntry::Dir)],
            ..PlanInput::bare()
        })
        .unwrap();
        Prepared {
            clone_flags: 0,
            plan,
            argv: vec![c"true".to_owned()],
            env: Vec::new(),
            exec_candidates: vec![c"/bin/true".to_owned()],
            stdio: [7, 1, 9],
            terminal_slot: Some(0),
            // 3 moves to 9, stdio 2's source: the copies come first.
            fds: vec![(5, 5), (12, 12), (3, 9)],
            ignored_signals: Vec::new(),
            rlimits: vec![super::super::Rlimit {
                resource: libc::RLIMIT_NOFILE as i32,
                soft: 64,
                hard: 128,
            }],
            identity: None,
            caller_maps: None,
            timeout: None,
            // One instruction: return ALLOW.
            seccomp: super::super::seccomp::Program::from_bytes(&[0x06, 0, 0, 0, 0, 0, 0xff, 0x7f])
                .unwrap(),
            timed: false,
        }
    }

    fn init_calls(sys: &Recorder) -> Result<(), ChildFailure> {
        let p = prepared();
        let mut slots = vec![-1; p.plan.slots];
        let mut walk = vec![-1; p.plan.depth];
        prepare_init(sys, &p, &[1, 3, 5, 7, 9, 12, 20], &mut slots, &mut walk)
    }

    #[test]
    fn pid_1_closes_the_callers_fds_first_and_drops_every_privilege_last() {
        // A kernel whose last capability is 40 refuses to drop 41.
        let sys = Recorder::failing_on("capbset_drop 41", libc::EINVAL);
        init_calls(&sys).unwrap();
        let calls = sys.calls.into_inner();
        assert_eq!(
            &calls[..8],
            [
                "close_range 0 0 0x0",
                "close_range 2 2 0x0",
                "close_range 4 4 0x0",
                "close_range 6 6 0x0",
                "close_range 8 8 0x0",
                "close_range 10 11 0x0",
                "close_range 13 19 0x0",
                "close_range 21 4294967295 0x0",
            ]
        );
        assert_eq!(calls[8], "setpgid 0 0");
        assert_eq!(calls[9], "no_new_privs");
        let bounding = calls
            .iter()
            .filter(|c| c.starts_with("capbset_drop"))
            .count();
        assert_eq!(bounding, 42, "caps 0 to 40 dropped, 41 refused");
        assert_eq!(
            &calls[calls.len() - 3..],
            ["ambient clear", "capset 0x0", "dumpable 0"]
        );
    }

    #[test]
    fn payload_moves_stdio_and_fds_without_clobbering_and_marks_the_rest_cloexec() {
        let sys = Recorder::default();
        prepare_payload(&sys, &prepared(), &mut [-1; 6]).unwrap();
        let calls = sys.calls.into_inner();
        assert_eq!(
            calls,
            [
                "setsid",
                "dup 7 >= 13",
                "dup 9 >= 13",
                "dup 3 >= 13",
                "dup2 101 0",
                "inheritable 1",
                "dup2 102 2",
                "inheritable 5",
                "inheritable 12",
                "dup2 103 9",
                "ctty 0",
                &format!("rlimit {} 64 128", libc::RLIMIT_NOFILE),
                "close_range 3 4 0x4",
                "close_range 6 8 0x4",
                "close_range 10 11 0x4",
                "close_range 13 4294967295 0x4",
                "seccomp 1 instructions",
            ]
        );
    }

    /// `prepared()` with `--uid 0`, rootless.
    fn as_uid_0() -> Prepared {
        Prepared {
            identity: Some(super::super::identity_for(1000, 1000, (0, 0))),
            ..prepared()
        }
    }

    #[test]
    fn the_seccomp_filter_is_the_last_call_after_the_uid_namespace() {
        let sys = Recorder::default();
        prepare_payload(&sys, &as_uid_0(), &mut [-1; 6]).unwrap();
        let calls = sys.calls.into_inner();
        let at = |line: &str| calls.iter().position(|c| c == line).expect(line);
        assert_eq!(calls.last().unwrap(), "seccomp 1 instructions");
        assert!(at("setsid") < at("seccomp 1 instructions"));
        assert!(at("write /proc/self/gid_map 0 1000 1") < at("seccomp 1 instructions"));
        assert!(at("capset 0x0") < at("seccomp 1 instructions"));
        // pid 1 never installs it: its own setup needs mount, keyctl, unshare.
        let sys = Recorder::default();
        init_calls(&sys).unwrap();
        assert!(!sys
            .calls
            .into_inner()
            .iter()
            .any(|c| c.starts_with("seccomp")));
    }

    #[test]
    fn a_refused_seccomp_filter_ends_the_payload_naming_the_step() {
        let sys = Recorder::failing_on("seccomp 1 instructions", libc::EINVAL);
        let failure = prepare_payload(&sys, &prepared(), &mut [-1; 6]).unwrap_err();
        assert_eq!(failure, ChildFailure::Init(InitStep::Seccomp, libc::EINVAL));
        assert_eq!(InitStep::Seccomp.what(), "install the seccomp filter");
        let [kind, step, errno, _] = failure.record();
        assert_eq!((kind, errno), (REPORT_INIT, libc::EINVAL));
        assert_eq!(INIT_STEPS[step as usize], InitStep::Seccomp);
    }

    #[test]
    fn a_uid_inside_is_a_nested_user_namespace_with_no_capability_left() {
        let sys = Recorder::default();
        let mut p = prepared();
        p.identity = Some(Identity {
            switch_to: None,
            nested: Some(NestedMaps {
                uid_map: b"0 1000 1\n".to_vec(),
                gid_map: b"0 1000 1\n".to_vec(),
                maps_root: false,
            }),
        });
        prepare_payload(&sys, &p, &mut [-1; 6]).unwrap();
        prepare_payload(&sys, &as_uid_0(), &mut [-1; 6]).unwrap();
        let calls = sys.calls.into_inner();
        let at = calls
            .iter()
            .position(|c| c == "dumpable 1")
            .expect("dumpable");
        assert_eq!(
            &calls[at..at + 5],
            [
                "dumpable 1",
                "unshare user",
                "write /proc/self/setgroups deny",
                "write /proc/self/uid_map 0 1000 1",
                "write /proc/self/gid_map 0 1000 1",
            ]
        );
        let bounding = calls
            .iter()
            .filter(|c| c.starts_with("capbset_drop"))
            .count();
        assert!(
            bounding >= 41,
            "the new namespace's bounding set is emptied"
        );
        let last_before_close = calls.iter().rposition(|c| c.starts_with("capset")).unwrap();
        assert_eq!(calls[last_before_close], "capset 0x0");
    }

    #[test]
    fn as_root_a_uid_inside_is_that_real_uid_with_no_group_of_roots() {
        let sys = Recorder::default();
        let mut p = prepared();
        p.identity = Some(super::super::identity_for(0, 0, (1000, 100)));
        let keep = p.identity.as_ref().unwrap().capabilities();
        assert_eq!(
            keep,
            1 << CAP_SETUID | 1 << CAP_SETGID,
            "only what the switch needs"
        );
        prepare_payload(&sys, &p, &mut [-1; 6]).unwrap();
        let calls = sys.calls.into_inner();
        assert!(
            calls.contains(&"switch ids 1000 100".to_string()),
            "{calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c == "unshare user"),
            "no nested namespace: {calls:?}"
        );
        // uid 0 as root: the real root's uid, in a nested namespace.
        let root = super::super::identity_for(0, 0, (0, 100));
        assert_eq!(root.switch_to, Some((0, 100)));
        let nested = root.nested.expect("nested");
        assert_eq!(nested.uid_map, b"0 0 1\n");
        assert_eq!(nested.gid_map, b"100 100 1\n");
        // Without root: nested maps onto the caller's own ids, no switch.
        let user = super::super::identity_for(1001, 1002, (0, 0));
        assert_eq!(user.switch_to, None);
        assert_eq!(user.nested.unwrap().uid_map, b"0 1001 1\n");
    }

    #[test]
    fn every_failing_call_of_pid_1_and_the_payload_ends_the_stage_there() {
        for (name, total) in [
            ("init", {
                let sys = Recorder::default();
                init_calls(&sys).unwrap();
                sys.calls.into_inner().len()
            }),
            ("payload", {
                let sys = Recorder::default();
                prepare_payload(&sys, &prepared(), &mut [-1; 6]).unwrap();
                sys.calls.into_inner().len()
            }),
        ] {
            for call in 0..total {
                let sys = Recorder::failing(call, libc::EMFILE);
                let result = if name == "init" {
                    init_calls(&sys)
                } else {
                    prepare_payload(&sys, &prepared(), &mut [-1; 6])
                };
                let failure = result.expect_err("fails closed");
                let errno = match failure {
                    ChildFailure::Step(s) => s.errno,
                    ChildFailure::Init(step, errno) => {
                        assert!(!step.what().is_empty());
                        errno
                    }
                };
                assert_eq!(errno, libc::EMFILE);
                assert_eq!(sys.calls.into_inner().len(), call + 1, "{name} call {call}");
            }
        }
    }

    /// Counts the allocations of the current thread, to show that the
    /// code between clone and exec makes none.
    struct CountingAllocator;

    std::thread_local! {
        static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn count_allocation() {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }

    // SAFETY: every call is passed on to the system allocator unchanged.
    unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            count_allocation();
            // SAFETY: the caller's layout, as GlobalAlloc requires.
            unsafe { std::alloc::System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            // SAFETY: `ptr` came from System.alloc with this layout.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
            count_allocation();
            // SAFETY: as for dealloc.
            unsafe { std::alloc::System.realloc(ptr, layout, size) }
        }
    }

    #[global_allocator]
    static COUNTING: CountingAllocator = CountingAllocator;

    /// A stage using most of what setup can do: slices (one below a
    /// read-only base dir, which needs a shadow tmpfs), binds, a tmpfs,
    /// --dev, a terminal, a host name, no network with Landlock, --uid,
    /// limits and --fds.
    fn full_featured() -> Prepared {
        let input = PlanInput {
            base: vec![
                (PathBuf::from("/usr"), HostEntry::Dir),
                (
                    PathBuf::from("/bin"),
                    HostEntry::Symlink(PathBuf::from("usr/bin")),
                ),
            ],
            slices: vec![
                super::super::PlannedSlice {
                    label: "a".into(),
                    tree: PathBuf::from("/store/slices/a/tree"),
                    mount_point: PathBuf::from("/opt/a"),
                },
                super::super::PlannedSlice {
                    label: "b".into(),
                    tree: PathBuf::from("/store/slices/b/tree"),
                    mount_point: PathBuf::from("/usr/share/no-such-dir-here/b"),
                },
            ],
            binds: vec![super::super::PlannedBind {
                source: PathBuf::from("/etc"),
                target: PathBuf::from("/srv/etc"),
                writable: true,
                is_dir: true,
                is_output: false,
            }],
            tmpfs: vec![super::super::PlannedTmpfs {
                target: PathBuf::from("/scratch"),
                size: Some(1 << 20),
                mode: 0o700,
            }],
            dev: true,
            terminal: Some(3),
            isolate_net: true,
            landlock_abi: 9,
            hostname: Some(c"stage".to_owned()),
            ..PlanInput::bare()
        };
        let mut p = prepared();
        p.plan = plan(&input).unwrap();
        p.identity = Some(Identity {
            switch_to: None,
            nested: Some(NestedMaps {
                uid_map: b"0 1000 1\n".to_vec(),
                gid_map: b"0 1000 1\n".to_vec(),
                maps_root: false,
            }),
        });
        p
    }

    #[test]
    fn nothing_allocates_between_clone_and_exec() {
        let p = full_featured();
        assert!(
            p.plan
                .steps
                .iter()
                .any(|s| matches!(s.op, super::super::plan::Op::Shadow { .. })),
            "the plan covers a shadow tmpfs"
        );
        let sys = super::super::syscall::recording::Quiet::default();
        let mut slots = vec![-1; p.plan.slots];
        let mut walk = vec![-1; p.plan.depth];
        let mut copies = [-1; 3 + MAX_FDS];
        let keep = [1u32, 3, 5, 7, 9, 12, 20];
        let probe = ALLOCATIONS.with(|n| n.get());
        std::hint::black_box(Box::new(probe));
        assert_eq!(
            ALLOCATIONS.with(|n| n.get()),
            probe + 1,
            "the counter counts"
        );
        let before = ALLOCATIONS.with(|n| n.get());
        prepare_init(&sys, &p, &keep, &mut slots, &mut walk).unwrap();
        prepare_payload(&sys, &p, &mut copies).unwrap();
        let allocations = ALLOCATIONS.with(|n| n.get()) - before;
        assert!(
            sys.calls.get() > 100,
            "setup ran: {} calls",
            sys.calls.get()
        );
        assert_eq!(allocations, 0, "allocations during setup");
    }

    #[test]
    fn a_panic_in_the_child_ends_it_with_125_and_never_returns_into_the_caller() {
        let p = prepared();
        let calls_of_pid_1 = {
            let sys = super::super::syscall::recording::Quiet::default();
            let mut slots = vec![-1; p.plan.slots];
            let mut walk = vec![-1; p.plan.depth];
            prepare_init(&sys, &p, &[1, 3], &mut slots, &mut walk).unwrap();
            sys.calls.get()
        };
        let caller = std::process::id();
        // In pid 1's setup, and (past its calls and the ones it makes
        // before forking) in the payload's.
        for panic_at in [0, calls_of_pid_1 - 1, calls_of_pid_1 + 3] {
            let sys = super::super::syscall::recording::Quiet {
                panic_at: Some(panic_at),
                ..Default::default()
            };
            let (outcome, _) = spawn_and_wait_with(&sys, &p, None, None).unwrap();
            assert_eq!(std::process::id(), caller, "only the caller returns");
            assert_eq!(outcome, Outcome::Exited(125), "panic at call {panic_at}");
        }
    }

    #[test]
    fn init_step_codes_round_trip() {
        for step in INIT_STEPS {
            assert_eq!(INIT_STEPS[step.code() as usize], *step);
        }
    }

    #[test]
    fn the_argument_area_is_found() {
        let (start, end) = argument_area().expect("readable /proc/self/stat");
        assert!(end > start);
    }
}
