//! Progress of a long store operation, counted here and shown by whoever
//! asked: the caller passes a [`ProgressSink`], which a background thread
//! calls at most five times a second and once more at the end. The store
//! itself never writes to a terminal.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Files and bytes so far; `done` on the last call.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub done: bool,
}

/// Where progress goes: a callback from the caller (the CLI draws a line
/// on a terminal with it).
#[derive(Clone)]
pub struct ProgressSink(pub Arc<dyn Fn(Tally) + Send + Sync>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

#[derive(Default)]
struct Counters {
    files: AtomicU64,
    bytes: AtomicU64,
    done: AtomicBool,
}

pub(crate) struct Progress {
    counters: Arc<Counters>,
    reporter: Option<(ProgressSink, Instant, JoinHandle<()>)>,
}

impl Progress {
    /// Counts, and reports to `sink` if there is one.
    pub(crate) fn start(sink: Option<ProgressSink>) -> Progress {
        let counters = Arc::new(Counters::default());
        let reporter = sink.map(|sink| {
            let shared = Arc::clone(&counters);
            let started = Instant::now();
            let report = sink.clone();
            let handle = crate::os::with_signals_blocked(|| {
                std::thread::spawn(move || {
                    while !shared.done.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(200));
                        (report.0)(tally(&shared, started, false));
                    }
                })
            });
            (sink, started, handle)
        });
        Progress { counters, reporter }
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
        if let Some((sink, started, handle)) = self.reporter.take() {
            let _ = handle.join();
            (sink.0)(tally(&self.counters, started, true));
        }
    }
}

fn tally(counters: &Counters, started: Instant, done: bool) -> Tally {
    Tally {
        files: counters.files.load(Ordering::Relaxed),
        bytes: counters.bytes.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        done,
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}
