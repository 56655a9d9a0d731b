//! Durable file-system steps the store is built from: a write that a crash
//! leaves old or new, directory and filesystem syncs, small reads, flock
//! retried across signals, and unique names for temporary files.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use super::{IoContext, Result};

/// Replaces `dir/name` with `bytes` so that a crash leaves the old file or
/// the new one: a temp file (`.name.<unique>.tmp`, removed on error; gc
/// sweeps any a crash leaves) fsynced, renamed over, and the dir fsynced.
pub(crate) fn write_durably(dir: &Path, name: &str, bytes: &[u8], op: &'static str) -> Result<()> {
    use std::io::Write;
    let temp = dir.join(format!(".{name}.{}.tmp", unique_suffix()));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .at(op, &temp)?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .at(op, &temp)?;
        let path = dir.join(name);
        fs::rename(&temp, &path).at(op, &path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    sync_dir(dir)
}

/// Reads a small file (a ref, a manifest) with open, read and close only:
/// `fs::read_to_string` also stats the file to size its buffer, which a
/// stage that resolves 1000 slices pays 2000 times.
pub(crate) fn read_small(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut file = fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    // Plain reads: `read_to_end` would stat and seek to size its buffer.
    // The store's small files are regular files, replaced whole by rename,
    // so a short read is the end of the file: no second read to see 0.
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) if n < chunk.len() => {
                bytes.extend_from_slice(&chunk[..n]);
                break;
            }
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    File::open(path).and_then(|d| d.sync_all()).at("sync", path)
}

pub(crate) fn sync_filesystem(path: &Path) -> Result<()> {
    let dir = File::open(path).at("open", path)?;
    nix::unistd::syncfs(dir.as_raw_fd())
        .map_err(io::Error::from)
        .at("sync", path)
}

/// flock(2), retried when a signal interrupts the wait.
pub(crate) fn flock(file: &File, operation: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor this File owns.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// A name part for files under `tmp/`, `pins/` and `refs/` that no other
/// process makes: pids repeat across pid namespaces sharing one store, so
/// the pid and a per-process counter are joined by random bytes.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut random = [0u8; 8];
    // SAFETY: getrandom writes at most 8 bytes into the buffer.
    let got = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
    if got != random.len() as isize {
        // Without randomness, the clock still separates namespaces.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        random = nanos.to_le_bytes();
    }
    format!(
        "{}-{}-{:016x}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        u64::from_le_bytes(random)
    )
}

/// The mtime (and atime) every stored file, directory and symlink shows,
/// as Nix's store has it: 1970-01-01T00:00:01Z. Mtimes are not part of a
/// digest, so a stage sees the same times whatever tree was hashed.
pub(crate) const FIXED_MTIME: libc::time_t = 1;

fn fixed_times() -> [libc::timespec; 2] {
    let fixed = libc::timespec {
        tv_sec: FIXED_MTIME,
        tv_nsec: 0,
    };
    [fixed, fixed]
}

/// Gives an open file the fixed mtime.
pub(crate) fn set_fixed_mtime(file: &impl AsRawFd) -> io::Result<()> {
    let times = fixed_times();
    // SAFETY: a valid fd and a two-element timespec array.
    if unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives `path` below `dir` the fixed mtime, never following a symlink.
pub(crate) fn set_fixed_mtime_at(dir: RawFd, path: &std::ffi::CStr) -> io::Result<()> {
    let times = fixed_times();
    // SAFETY: a valid fd, C string and two-element timespec array.
    let done = unsafe {
        libc::utimensat(
            dir,
            path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
