//! Text that more than one command prints: sizes, counts, a slice named
//! for the user, and why the store refused a directory.

use std::path::Path;

use crate::digest::Digest;
use crate::store::{Error, Store};
use crate::text::printable_path;

/// 1536 → "1.5 KiB"; below 1 KiB, "N B".
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "1 slice", "2 slices": `one` and `many` are the noun's two forms.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "slice NAME, NAME2 (sha256:0123456789ab): " or "slice sha256:…: ".
pub(crate) fn slice_label(store: &Store, slice: &Digest) -> String {
    let short: String = slice.to_string().chars().take(19).collect();
    match store.names_of(slice).unwrap_or_default() {
        names if names.is_empty() => format!("slice {short}: "),
        names => format!("slice {} ({short}): ", names.join(", ")),
    }
}

/// Why the store refused a directory, naming the entry by `shown`, the
/// path the user knows it as (for an `--out` dir, the path inside the
/// stage, not the store's own).
pub(crate) fn ingest_cause(shown: &Path, error: Error) -> String {
    match error {
        Error::Rejected { entry, reason, .. } => {
            format!("'{}/{entry}' {reason}", printable_path(shown))
        }
        Error::BadSource { reason, .. } => reason,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sizes_read_as_english() {
        assert_eq!(count(1, "slice", "slices"), "1 slice");
        assert_eq!(count(0, "slice", "slices"), "0 slices");
        assert_eq!(count(2, "cache entry", "cache entries"), "2 cache entries");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
