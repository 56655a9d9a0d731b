//! A running stage's stdio, signals and exit status across a session
//! (docs/protocol.md, "Run").
//!
//! - stdout and stderr travel as frames of their own, so they stay apart.
//!   Nobody buffers them: a slow reader on the client's side stops the
//!   client reading the connection, the transport's window fills, and the
//!   server's pump stops reading the stage's pipe, so the stage blocks as
//!   it would writing to a local pipe.
//! - stdin is flow-controlled by credit: the client sends at most
//!   [`WINDOW`] bytes the stage has not yet consumed, so the server's
//!   queue stays bounded while its reader keeps reading signals. A client
//!   that sends more is cut off.
//! - The client's local stdout gone (`| head -1`) is `StdoutClosed`: the
//!   server closes the stage's stdout pipe, and the stage's next write
//!   raises SIGPIPE in it, as it would locally.
//! - A signal the client receives is sent to the stage's process group; a
//!   lost connection kills it (SIGKILL), and the stage's tree with it.
//!
//! Every thread started here has every signal blocked.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};

use super::conn::{parse_json, unexpected, Conn, Exit, Sender};
use super::frame::Kind;
use super::Error;
use crate::runtime::sys::signals::{set_signal_mask, sigset, FORWARDED_SIGNALS};

/// Bytes of stdin in flight: sent, and not yet consumed by the stage.
pub const WINDOW: u64 = 1 << 20;
/// The most a pump reads from a pipe at once.
const CHUNK: usize = 256 << 10;
/// The stage's pipes hold this much (the kernel's default is 64 KiB): a
/// copy per 256 KiB, not per 64, on a 2-core machine where ssh's cipher
/// and the copies share the cores.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// Enlarges a pipe, where the kernel allows (fs.pipe-max-size): a pipe
/// that stays small is slower, not wrong.
fn enlarge(pipe: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ on a descriptor we own; no memory involved.
    unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
}
/// Whether a client may send `signal`: one a user or a shell sends to a
/// stage (what the executable forwards to a local one), or SIGKILL.
fn relayed(signal: i32) -> bool {
    signal == libc::SIGKILL || FORWARDED_SIGNALS.contains(&signal)
}

fn spawn_quiet<F: FnOnce() -> T + Send + 'static, T: Send + 'static>(work: F) -> JoinHandle<T> {
    crate::os::with_signals_blocked(|| thread::spawn(work))
}

/// How a stage ended: its status, or the signal that killed it.
fn status_of(status: std::process::ExitStatus) -> (i32, Option<i32>) {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(signal)) => (128 + signal, Some(signal)),
        (None, None) => (255, None),
    }
}

/// Runs `command` (a `sandbox` of this executable) with its stdio relayed
/// over `conn`, until the client has seen its exit. `finish` makes the
/// `Exit` message from its status.
pub fn serve_stage(
    conn: &mut Conn,
    mut command: Command,
    finish: impl FnOnce(i32, Option<i32>) -> Exit + Send + 'static,
) -> Result<(), Error> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().map_err(|e| Error::Local {
        op: "start the stage",
        path: "/proc/self/exe".into(),
        source: e,
    })?;
    let group = child.id() as i32;
    child.stdin.iter().for_each(enlarge);
    child.stdout.iter().for_each(enlarge);
    child.stderr.iter().for_each(enlarge);
    let sender = conn.sender();
    let stdout_closed = Arc::new(AtomicBool::new(false));
    let stdout = child.stdout.take().map(|pipe| {
        pump(
            pipe,
            Kind::Stdout,
            sender.clone(),
            Some(stdout_closed.clone()),
        )
    });
    let stderr = child
        .stderr
        .take()
        .map(|pipe| pump(pipe, Kind::Stderr, sender.clone(), None));
    let outstanding = Arc::new(AtomicU64::new(0));
    let (queue, queued) = mpsc::channel::<Option<Vec<u8>>>();
    let stdin = child.stdin.take();
    let feeder = {
        let (sender, outstanding) = (sender.clone(), outstanding.clone());
        spawn_quiet(move || feed_stdin(stdin, queued, &sender, &outstanding))
    };
    let reaped = Arc::new(AtomicBool::new(false));
    let waiter = {
        let reaped = reaped.clone();
        spawn_quiet(move || {
            let status = child.wait();
            reaped.store(true, Ordering::SeqCst);
            for pump in [stdout, stderr].into_iter().flatten() {
                let _ = pump.join();
            }
            let (code, signal) = status.map(status_of).unwrap_or((255, None));
            let _ = sender.send_json(Kind::Exit, &finish(code, signal));
        })
    };
    let kill = |signal: i32| {
        if !reaped.load(Ordering::SeqCst) {
            // SAFETY: kill(2) with a process group we made; no memory involved.
            unsafe { libc::kill(-group, signal) };
        }
    };
    let ended = relay_client_frames(conn, &queue, &outstanding, &stdout_closed, &kill);
    if ended.is_err() {
        kill(libc::SIGKILL);
    }
    drop(queue);
    let _ = waiter.join();
    let _ = feeder.join();
    ended
}

/// The server's reader while a stage runs: stdin into the queue, signals
/// to the stage, until the client's `End` after the exit.
fn relay_client_frames(
    conn: &mut Conn,
    queue: &mpsc::Sender<Option<Vec<u8>>>,
    outstanding: &AtomicU64,
    stdout_closed: &AtomicBool,
    kill: &dyn Fn(i32),
) -> Result<(), Error> {
    loop {
        let frame = conn.recv()?;
        match frame.kind {
            Kind::Stdin => {
                let now = outstanding.fetch_add(frame.payload.len() as u64, Ordering::SeqCst);
                if now + frame.payload.len() as u64 > WINDOW {
                    return Err(Error::Protocol(format!(
                        "stdin beyond the window of {WINDOW} bytes the stage has not consumed"
                    )));
                }
                let _ = queue.send(Some(frame.payload));
            }
            Kind::StdinEnd => {
                let _ = queue.send(None);
            }
            Kind::Signal => {
                let signal = frame.payload.first().map(|&s| s as i32);
                match signal.filter(|&s| relayed(s)) {
                    Some(signal) => kill(signal),
                    None => {
                        return Err(Error::Protocol(format!(
                            "a signal frame with {:?}",
                            frame.payload
                        )))
                    }
                }
            }
            Kind::StdoutClosed => stdout_closed.store(true, Ordering::SeqCst),
            Kind::End => return Ok(()),
            other => return Err(unexpected(other, Kind::Stdin)),
        }
    }
}

/// Copies a stage's pipe into frames of `kind` until it ends, the
/// connection fails, or (stdout) the client says nobody reads it.
fn pump(
    mut pipe: impl Read + Send + 'static,
    kind: Kind,
    sender: Sender,
    closed: Option<Arc<AtomicBool>>,
) -> JoinHandle<()> {
    spawn_quiet(move || {
        let is_closed = || closed.as_ref().is_some_and(|c| c.load(Ordering::SeqCst));
        let mut buffer = vec![0u8; CHUNK];
        loop {
            if is_closed() {
                return;
            }
            match pipe.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) if !is_closed() => {
                    if sender.send(kind, &buffer[..n]).is_err() {
                        return;
                    }
                }
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    })
}

/// Writes queued stdin into the stage and gives the client credit for
/// each chunk; a stage that closed its stdin gets nothing more, and the
/// client still gets credit, so it never waits for it.
fn feed_stdin(
    mut stdin: Option<std::process::ChildStdin>,
    queued: mpsc::Receiver<Option<Vec<u8>>>,
    sender: &Sender,
    outstanding: &AtomicU64,
) {
    while let Ok(Some(bytes)) = queued.recv() {
        if let Some(pipe) = stdin.as_mut() {
            if pipe.write_all(&bytes).is_err() {
                stdin = None;
            }
        }
        outstanding.fetch_sub(bytes.len() as u64, Ordering::SeqCst);
        let _ = sender.send(Kind::Credit, &(bytes.len() as u32).to_be_bytes());
    }
}

/// The client's side while the stage runs: local stdin out, the stage's
/// stdout and stderr in, signals on. Returns the stage's exit.
pub fn relay_stage(conn: &mut Conn, stdio: [RawFd; 3]) -> Result<Exit, Error> {
    let credit = Arc::new((Mutex::new(WINDOW), Condvar::new()));
    // Closed once the exit has come: no stdin frame may follow the `End`.
    let gate = Arc::new(Mutex::new(false));
    {
        let (sender, credit, gate) = (conn.sender(), credit.clone(), gate.clone());
        spawn_quiet(move || send_stdin(stdio[0], &sender, &credit, &gate));
    }
    let signals = forward_signals(conn.sender(), gate.clone());
    let mut stdout_open = true;
    let exit = loop {
        let frame = conn.recv()?;
        match frame.kind {
            Kind::Stdout if stdout_open => {
                if !crate::os::write_all(stdio[1], &frame.payload) {
                    stdout_open = false;
                    conn.send(Kind::StdoutClosed, b"")?;
                }
            }
            Kind::Stdout => {}
            Kind::Stderr => {
                let _ = crate::os::write_all(stdio[2], &frame.payload);
            }
            Kind::Credit => {
                let bytes: [u8; 4] = frame.payload[..]
                    .try_into()
                    .map_err(|_| Error::Protocol("a credit frame of the wrong size".into()))?;
                let (left, more) = &*credit;
                *left.lock().unwrap_or_else(|p| p.into_inner()) += u32::from_be_bytes(bytes) as u64;
                more.notify_all();
            }
            Kind::Exit => break parse_json::<Exit>(Kind::Exit, &frame.payload)?,
            other => return Err(unexpected(other, Kind::Stdout)),
        }
    };
    let mut closed = gate.lock().unwrap_or_else(|p| p.into_inner());
    *closed = true;
    conn.send(Kind::End, b"")?;
    drop(closed);
    drop(signals);
    Ok(exit)
}

/// Reads local stdin into `Stdin` frames as credit allows, then `StdinEnd`.
fn send_stdin(fd: RawFd, sender: &Sender, credit: &(Mutex<u64>, Condvar), gate: &Mutex<bool>) {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let (left, more) = credit;
        let mut available = left.lock().unwrap_or_else(|p| p.into_inner());
        while *available == 0 {
            available = more.wait(available).unwrap_or_else(|p| p.into_inner());
        }
        let room = (*available as usize).min(CHUNK);
        drop(available);
        let read = match fd {
            fd if fd < 0 => Ok(0),
            fd => crate::os::read_retrying(fd, &mut buffer[..room]),
        };
        let closed = gate.lock().unwrap_or_else(|p| p.into_inner());
        if *closed {
            return;
        }
        match read {
            Ok(0) | Err(_) => {
                let _ = sender.send(Kind::StdinEnd, b"");
                return;
            }
            Ok(n) => {
                *left.lock().unwrap_or_else(|p| p.into_inner()) -= n as u64;
                if sender.send(Kind::Stdin, &buffer[..n]).is_err() {
                    return;
                }
            }
        }
        drop(closed);
    }
}

/// While alive, the signals a user sends a command (^C, `kill`) go to
/// the remote stage instead of ending this process.
pub struct ForwardedSignals {
    old_mask: libc::sigset_t,
}

fn forward_signals(sender: Sender, gate: Arc<Mutex<bool>>) -> ForwardedSignals {
    let old_mask = set_signal_mask(libc::SIG_BLOCK, &sigset(FORWARDED_SIGNALS));
    spawn_quiet(move || loop {
        let set = sigset(FORWARDED_SIGNALS);
        let mut signal = 0;
        // SAFETY: sigwait writes the signal number into `signal`.
        if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
            return;
        }
        let closed = gate.lock().unwrap_or_else(|p| p.into_inner());
        if *closed || sender.send(Kind::Signal, &[signal as u8]).is_err() {
            return;
        }
    });
    ForwardedSignals { old_mask }
}

impl Drop for ForwardedSignals {
    fn drop(&mut self) {
        set_signal_mask(libc::SIG_SETMASK, &self.old_mask);
    }
}
