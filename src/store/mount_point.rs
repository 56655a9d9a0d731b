//! Where a slice is mounted: the one check of a mount point, for
//! `--at`, `--slice REF:MOUNTPOINT` and an archive's `SLICEBOX.at`.

use super::{printable, Error, Result};

/// Mount points are absolute, normalised, UTF-8 paths outside the dirs the
/// runtime provides itself.
pub fn validate_mount_point(path: &str) -> Result<String> {
    let bad = |reason| Error::InvalidMountPoint {
        path: printable(path.as_bytes()),
        reason,
    };
    if !path.starts_with('/') {
        return Err(bad("it must be absolute"));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(bad("a slice cannot replace the root"));
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(bad("it must not contain '.' or '..'"));
    }
    if path.chars().any(char::is_control) {
        return Err(bad("it must not contain control characters"));
    }
    if ["proc", "dev", "tmp"].contains(&parts[0]) {
        return Err(bad("/proc, /dev and /tmp are provided by the sandbox"));
    }
    Ok(format!("/{}", parts.join("/")))
}
