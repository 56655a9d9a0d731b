//! Descriptors the caller makes for a stage.

use std::os::fd::RawFd;

/// Moves a descriptor the caller made for the stage above 0, 1 and 2, so
/// it can never be mistaken for stdio when the caller runs with one of
/// them closed.
pub(crate) fn above_stdio(fd: RawFd) -> std::io::Result<RawFd> {
    at_least(fd, 3)
}

/// Moves a descriptor of ours to `min` or above (close-on-exec), closing
/// the old number.
pub(crate) fn at_least(fd: RawFd, min: RawFd) -> std::io::Result<RawFd> {
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
