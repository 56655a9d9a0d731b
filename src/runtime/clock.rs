//! When each part of a stage's start happened (`SLICEBOX_TIMES`), on both
//! sides of the clone.

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
    pub(crate) fn map() -> Option<StageClock> {
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

    pub(crate) fn mark(&self, index: usize) {
        // SAFETY: index < CHILD_MARKS, within the page; a plain store.
        unsafe { std::ptr::write_volatile(self.page.add(index), now_ns()) };
    }

    pub(crate) fn read(&self) -> [u64; CHILD_MARKS] {
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
