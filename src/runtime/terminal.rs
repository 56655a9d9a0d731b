//! A terminal of the stage's own. When the caller's stdin, stdout or
//! stderr is a terminal, the stage gets a new pty in its place and the
//! caller relays between the two, as `script`, `ssh -t` and `docker run -t`
//! do. The payload therefore never holds a descriptor of the caller's
//! terminal: it cannot push input into it (TIOCSTI) or change its modes.
//!
//! While the stage runs and the caller is in the terminal's foreground,
//! the caller's terminal is in raw mode: keys, ^C included, go to the
//! stage's pty, whose own line discipline turns them into signals for the
//! stage. Its size follows the caller's (SIGWINCH). Its modes are restored
//! when the stage ends.

use std::io;
use std::os::fd::RawFd;

use super::sys::fd::above_stdio;
use super::sys::signals::sigset;
use crate::os::write_all;

/// Signals the relay reads from a signalfd while it runs.
const RELAY_SIGNALS: &[libc::c_int] = &[libc::SIGWINCH, libc::SIGCONT];

pub struct Terminal {
    master: RawFd,
    /// The stage's end, given to it as stdio; the caller closes its copy
    /// once the stage holds it.
    slave: RawFd,
    /// The caller's terminal the keys come from (its stdin), if any.
    input: Option<RawFd>,
    /// Where the stage's terminal output goes, and whether we opened it.
    output: RawFd,
    output_owned: bool,
    /// The caller's modes, saved when we first take the keyboard.
    saved: Option<libc::termios>,
    raw: bool,
    signals: RawFd,
    old_mask: Option<libc::sigset_t>,
    resized: bool,
    /// Keys read but not yet accepted by the pty.
    pending: Vec<u8>,
    input_open: bool,
    output_open: bool,
    /// Signals the user typed for the stage: the caller's INTR or QUIT
    /// key read from its keyboard while its terminal turns them into
    /// signals (ISIG).
    typed: TypedKeys,
}

/// Which signal keys the user typed while the stage had the keyboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypedKeys {
    pub interrupt: bool,
    pub quit: bool,
}

impl TypedKeys {
    /// Whether the user typed the key that sends `signal`.
    pub fn sent(self, signal: libc::c_int) -> bool {
        (signal == libc::SIGINT && self.interrupt) || (signal == libc::SIGQUIT && self.quit)
    }

    /// Notes the caller's signal keys among `keys`, as its terminal would
    /// have seen them with `modes` (the caller's own, saved).
    fn note(&mut self, keys: &[u8], modes: &libc::termios) {
        if modes.c_lflag & libc::ISIG == 0 {
            return;
        }
        // A control character of 0 (_POSIX_VDISABLE) is switched off.
        let key = |index: usize| Some(modes.c_cc[index]).filter(|c| *c != 0);
        let (intr, quit) = (key(libc::VINTR), key(libc::VQUIT));
        for byte in keys {
            self.interrupt |= Some(*byte) == intr;
            self.quit |= Some(*byte) == quit;
        }
    }
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn window_size(fd: RawFd) -> Option<libc::winsize> {
    // SAFETY: winsize is plain data, written by the ioctl.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0).then_some(size)
}

/// Whether reading from or setting the modes of `fd` is ours to do now:
/// we are in its foreground process group, or it is not our controlling
/// terminal at all.
fn in_foreground(fd: RawFd) -> bool {
    // SAFETY: plain queries.
    unsafe {
        let group = libc::tcgetpgrp(fd);
        group < 0 || group == libc::getpgrp()
    }
}

impl Terminal {
    /// Gives the stage a pty of its own if any of `stdio` is a terminal,
    /// replacing those entries with the pty's stage end. Returns the relay
    /// and which entry becomes the payload's controlling terminal.
    pub fn attach(stdio: &mut [RawFd; 3]) -> io::Result<Option<(Terminal, usize)>> {
        let ttys: Vec<usize> = (0..3)
            .filter(|&i| crate::os::is_terminal(stdio[i]))
            .collect();
        let Some(&first) = ttys.first() else {
            return Ok(None);
        };
        let input = crate::os::is_terminal(stdio[0]).then_some(stdio[0]);
        let mut terminal = Terminal {
            master: -1,
            slave: -1,
            input,
            output: -1,
            output_owned: false,
            saved: None,
            raw: false,
            signals: -1,
            old_mask: None,
            resized: false,
            pending: Vec::new(),
            input_open: input.is_some(),
            output_open: true,
            typed: TypedKeys::default(),
        };
        if crate::os::is_terminal(stdio[1]) {
            terminal.output = stdio[1];
        } else if crate::os::is_terminal(stdio[2]) {
            terminal.output = stdio[2];
        } else {
            // Only stdin is a terminal: the stage's echo goes back to it.
            let path = format!("/proc/self/fd/{}\0", stdio[0]);
            // SAFETY: a NUL-terminated path; reopens our own stdin for writing.
            let fd = unsafe {
                libc::open(
                    path.as_ptr().cast(),
                    libc::O_WRONLY | libc::O_NOCTTY | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(last_error());
            }
            terminal.output = above_stdio(fd)?;
            terminal.output_owned = true;
        }
        // SAFETY: opening the pty multiplexer; the fd is owned by `terminal`.
        let master = unsafe {
            libc::open(
                c"/dev/ptmx".as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if master < 0 {
            return Err(last_error());
        }
        terminal.master = above_stdio(master)?;
        let unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK reads an int; TIOCGPTPEER opens the peer
        // without a path lookup.
        let slave = unsafe {
            if libc::ioctl(terminal.master, libc::TIOCSPTLCK, &unlock) < 0 {
                return Err(last_error());
            }
            libc::ioctl(
                terminal.master,
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if slave < 0 {
            return Err(last_error());
        }
        terminal.slave = above_stdio(slave)?;
        // The stage's terminal starts with the caller's modes when it takes
        // the keyboard; an output-only one keeps the kernel's defaults, so
        // that a pipeline neighbour's raw mode is never copied.
        if let Some(input) = input {
            // SAFETY: termios is plain data written by tcgetattr.
            let mut modes: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: both descriptors are terminals.
            unsafe {
                if libc::tcgetattr(input, &mut modes) == 0 {
                    libc::tcsetattr(terminal.slave, libc::TCSANOW, &modes);
                }
            }
        }
        terminal.copy_window_size();
        for &i in &ttys {
            stdio[i] = terminal.slave;
        }
        Ok(Some((terminal, first)))
    }

    /// The pty's number: it is `/dev/pts/<number>` on the host.
    pub fn number(&self) -> u32 {
        let mut number: libc::c_uint = 0;
        // SAFETY: TIOCGPTN writes an unsigned int.
        unsafe { libc::ioctl(self.master, libc::TIOCGPTN, &mut number) };
        number
    }

    fn copy_window_size(&self) {
        let outer = window_size(self.output).or_else(|| self.input.and_then(window_size));
        if let Some(size) = outer {
            // SAFETY: TIOCSWINSZ reads a winsize; the kernel signals the
            // stage's foreground group when it changes.
            unsafe { libc::ioctl(self.master, libc::TIOCSWINSZ, &size) };
        }
    }

    /// Called once the stage holds the pty: drops our copy of its end,
    /// starts watching resizes, and takes the keyboard if it is ours.
    pub fn start(&mut self) {
        // SAFETY: our copy of the stage's end; the stage has its own.
        unsafe { libc::close(self.slave) };
        self.slave = -1;
        let watched = sigset(RELAY_SIGNALS);
        // SAFETY: valid sets; the old mask is restored in `finish`.
        unsafe {
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &watched, &mut old);
            self.old_mask = Some(old);
            self.signals = libc::signalfd(-1, &watched, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        }
        self.take_keyboard();
    }

    fn take_keyboard(&mut self) {
        let Some(input) = self.input else { return };
        if !in_foreground(input) {
            // In the background: a read or a mode change would stop us
            // (SIGTTIN/SIGTTOU). The shell's `fg` sends SIGCONT.
            self.raw = false;
            return;
        }
        if self.saved.is_none() {
            // SAFETY: termios is plain data written by tcgetattr.
            let mut modes: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: input is a terminal.
            if unsafe { libc::tcgetattr(input, &mut modes) } != 0 {
                return;
            }
            self.saved = Some(modes);
        }
        let mut raw = self.saved.expect("saved above");
        // SAFETY: cfmakeraw edits the struct; tcsetattr applies it.
        unsafe {
            libc::cfmakeraw(&mut raw);
            self.raw = libc::tcsetattr(input, libc::TCSANOW, &raw) == 0;
        }
    }

    /// The descriptors the wait loop polls for us.
    pub fn poll_fds(&self, fds: &mut Vec<libc::pollfd>) {
        let mut add = |fd: RawFd, events: libc::c_short| {
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            })
        };
        add(self.signals, libc::POLLIN);
        let mut master_events = 0;
        if self.output_open {
            master_events |= libc::POLLIN;
        }
        if !self.pending.is_empty() {
            master_events |= libc::POLLOUT;
        }
        add(
            if master_events != 0 { self.master } else { -1 },
            master_events,
        );
        let keys = self.raw && self.input_open && self.pending.len() < 4096;
        add(
            match (keys, self.input) {
                (true, Some(fd)) => fd,
                _ => -1,
            },
            libc::POLLIN,
        );
    }

    /// Handles what `poll_fds` polled: `ready` is that part of the array.
    pub fn service(&mut self, ready: &[libc::pollfd]) {
        let [signals, master, keys] = ready else {
            return;
        };
        if signals.revents & libc::POLLIN != 0 {
            self.read_signals();
        }
        if master.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            self.copy_output();
        }
        if master.revents & libc::POLLOUT != 0 || keys.revents != 0 {
            if keys.revents != 0 {
                self.read_keys();
            }
            self.flush_keys();
        }
    }

    fn read_signals(&mut self) {
        loop {
            // SAFETY: signalfd_siginfo is plain data.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            // SAFETY: reads one record.
            let n = unsafe {
                libc::read(
                    self.signals,
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            };
            if n != std::mem::size_of::<libc::signalfd_siginfo>() as isize {
                return;
            }
            match info.ssi_signo as libc::c_int {
                libc::SIGWINCH => {
                    self.resized = true;
                    self.copy_window_size();
                }
                // Continued after a stop, or moved to the foreground.
                _ => self.take_keyboard(),
            }
        }
    }

    fn copy_output(&mut self) {
        let mut buf = [0u8; 16384];
        loop {
            // SAFETY: reads into a stack buffer.
            let n = unsafe { libc::read(self.master, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                write_all(self.output, &buf[..n as usize]);
                continue;
            }
            if n < 0 && last_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if n == 0 || last_error().raw_os_error() != Some(libc::EAGAIN) {
                // EIO: every holder of the stage's end has closed it.
                self.output_open = false;
            }
            return;
        }
    }

    fn read_keys(&mut self) {
        let Some(input) = self.input else { return };
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a stack buffer; poll said it is readable.
        let n = unsafe { libc::read(input, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            let keys = &buf[..n as usize];
            if let Some(modes) = &self.saved {
                self.typed.note(keys, modes);
            }
            self.pending.extend_from_slice(keys);
        } else if n == 0 || last_error().raw_os_error() != Some(libc::EINTR) {
            self.input_open = false;
        }
    }

    fn flush_keys(&mut self) {
        while !self.pending.is_empty() {
            // SAFETY: writes from a valid buffer to the non-blocking master.
            let n = unsafe {
                libc::write(
                    self.master,
                    self.pending.as_ptr().cast(),
                    self.pending.len(),
                )
            };
            if n <= 0 {
                if n < 0 && last_error().raw_os_error() == Some(libc::EAGAIN) {
                    return;
                }
                // The stage's side is gone: drop what nobody will read.
                self.pending.clear();
                return;
            }
            self.pending.drain(..n as usize);
        }
    }

    /// Once the stage is over: copies its last output, restores the
    /// caller's modes and signal mask. Returns the signal keys the user
    /// typed for the stage, which in raw mode reached only the stage.
    pub fn finish(&mut self) -> TypedKeys {
        if self.output_open {
            self.copy_output();
        }
        if let (Some(input), Some(saved)) = (self.input, self.saved) {
            if self.raw {
                // SAFETY: restores the modes saved from this terminal.
                unsafe { libc::tcsetattr(input, libc::TCSANOW, &saved) };
                self.raw = false;
            }
        }
        // SAFETY: closing our own descriptors and restoring the saved mask.
        unsafe {
            libc::close(self.signals);
            libc::close(self.master);
            if self.output_owned {
                libc::close(self.output);
                self.output_owned = false;
            }
            if let Some(old) = self.old_mask.take() {
                libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            }
            // The host (bash) keeps track of the window size itself.
            if self.resized {
                libc::raise(libc::SIGWINCH);
            }
        }
        self.signals = -1;
        self.master = -1;
        self.typed
    }
}

impl Drop for Terminal {
    /// A stage that never started (setup failed before `start`) leaves
    /// nothing open behind.
    fn drop(&mut self) {
        for fd in [self.master, self.slave, self.signals] {
            if fd >= 0 {
                // SAFETY: descriptors owned by this struct.
                unsafe { libc::close(fd) };
            }
        }
        if self.output_owned {
            // SAFETY: we opened it.
            unsafe { libc::close(self.output) };
        }
    }
}
