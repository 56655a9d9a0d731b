//! Runs a fallible job per item on all cores (2 here): hashing, not
//! metadata, is what threads speed up, so only per-file work goes here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::Result;

/// Calls `job` for every item, in parallel, and returns the results in
/// item order. The first error stops the remaining work.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    job: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8)
        .min(items.len().max(1));
    std::thread::scope(|scope| -> Result<()> {
        // Workers start with every signal blocked (os::with_signals_blocked).
        let handles: Vec<_> = crate::os::with_signals_blocked(|| {
            (0..workers)
                .map(|_| {
                    scope.spawn(|| -> Result<()> {
                        while !failed.load(Ordering::Relaxed) {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(item) = items.get(index) else {
                                return Ok(());
                            };
                            match job(item) {
                                Ok(r) => {
                                    *results[index].lock().expect("no panics while held") = Some(r)
                                }
                                Err(e) => {
                                    failed.store(true, Ordering::Relaxed);
                                    return Err(e);
                                }
                            }
                        }
                        Ok(())
                    })
                })
                .collect()
        });
        let mut first_error = None;
        for handle in handles {
            if let Err(e) = handle.join().expect("store jobs do not panic") {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    })?;
    Ok(results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("no panics while held")
                .expect("every job ran")
        })
        .collect())
}
