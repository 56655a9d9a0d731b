//! pid 1: let go of the caller's descriptors and session, run the plan,
//! give up every privilege, then reap and forward signals.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_char, c_int};

use super::Child;
use crate::runtime::exec::execute;
use crate::runtime::prepared::{Identity, Prepared};
use crate::runtime::report::{init, report, ChildFailure, InitStep, REPORT_SIGNAL};
use crate::runtime::sys::signals::{send_signal, sigset, WATCHED_SIGNALS};
use crate::runtime::sys::{errno, Errno, Syscall};

/// The caller's argument area `[arg_start, arg_end)`, which pid 1, a
/// clone of the caller, blanks so /proc/1/cmdline inside the stage does not
/// show the caller's command line.
pub(crate) fn argument_area() -> Option<(usize, usize)> {
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

/// Closes every descriptor except the sorted `keep` ones, with `flags`
/// (0, or CLOSE_RANGE_CLOEXEC to close them at exec).
pub(crate) fn close_all_but(
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

/// Empties the bounding and ambient sets and keeps only `keep` (a mask)
/// of the effective and permitted ones. Async-signal-safe.
pub(crate) fn drop_capabilities(sys: &dyn Syscall, keep: u64) -> Result<(), ChildFailure> {
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

impl Child<'_> {
    /// pid 1 is a copy of the caller: its argument area still holds the
    /// caller's command line, which /proc/1/cmdline would show inside. It
    /// is overwritten with our name, a NUL, and zeros. A non-NUL last byte
    /// makes the kernel read it as a rewritten title (as setproctitle
    /// does), up to the first NUL: `slicebox-init` and nothing else.
    pub(crate) fn blank_argument_area(&self) {
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
    pub(crate) fn reap(&self, payload: libc::pid_t, payload_pidfd: RawFd) -> ! {
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
    pub(crate) fn exit_like(&self, status: c_int) -> ! {
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            report(self.report_fd, [REPORT_SIGNAL, signal, 0, 0]);
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(128 + signal) };
        }
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(libc::WEXITSTATUS(status)) }
    }
}
