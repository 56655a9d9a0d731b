//! A one-line progress report on a terminal: files and bytes so far,
//! redrawn at most five times a second by a background thread.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Counters {
    files: AtomicU64,
    bytes: AtomicU64,
    done: AtomicBool,
}

pub(crate) struct Progress {
    counters: Arc<Counters>,
    drawer: Option<(RawFd, JoinHandle<()>)>,
}

fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

impl Progress {
    /// Draws on `fd` only when it is a terminal; otherwise only counts.
    pub(crate) fn start(fd: Option<RawFd>, label: String) -> Progress {
        let counters = Arc::new(Counters::default());
        let drawer = fd.filter(|fd| is_terminal(*fd)).map(|fd| {
            let shared = Arc::clone(&counters);
            let handle = std::thread::spawn(move || {
                let started = Instant::now();
                while !shared.done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let files = shared.files.load(Ordering::Relaxed);
                    let mib = shared.bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64;
                    let rate = mib / started.elapsed().as_secs_f64().max(0.001);
                    let line =
                        format!("\r\x1b[K{label}: {files} files, {mib:.1} MiB ({rate:.0} MiB/s)");
                    crate::cli::write_fd(fd, line.as_bytes());
                }
            });
            (fd, handle)
        });
        Progress { counters, drawer }
    }

    pub(crate) fn advance(&self, bytes: u64) {
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.counters.done.store(true, Ordering::Relaxed);
        if let Some((fd, handle)) = self.drawer.take() {
            let _ = handle.join();
            crate::cli::write_fd(fd, b"\r\x1b[K");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}
