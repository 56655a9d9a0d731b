//! What one source may hold. Every limit is checked before the bytes it
//! guards are read or stored, and every count is of what the reader
//! actually delivers (pax sizes included), so a few bytes of compressed
//! input cannot claim a disk's worth of files.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The limits of one `slice-add`. The defaults pass real toolchains and
/// Debian images with a wide margin; `--limit KEY=VALUE` or
/// `SLICEBOX_LIMITS` raises (or lowers) them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of every file, counted once per path: a hardlink counts again.
    pub bytes: u64,
    /// Bytes of one file.
    pub file: u64,
    /// Entries: files, directories, symlinks and hardlinks.
    pub entries: u64,
    /// Path components below the slice root.
    pub depth: u64,
    /// Bytes of one path component.
    pub name: u64,
    /// Bytes of a whole path below the slice root.
    pub path: u64,
    /// How many times its compressed size a gzip or zstd stream may
    /// expand to, past the first `RATIO_SLACK` bytes.
    pub ratio: u64,
}

/// Expansion every compressed source may use before `ratio` applies: small
/// archives of zeros or of empty files compress far better than real
/// trees, and are no danger.
pub const RATIO_SLACK: u64 = 64 << 20;

/// The longest file name, and the longest path without its NUL, that
/// Linux takes: limits above them could never be met.
const NAME_MAX: u64 = 255;
const PATH_MAX: u64 = 4095;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            bytes: 64 << 30,
            file: 64 << 30,
            entries: 4 << 20,
            depth: 512,
            name: NAME_MAX,
            path: PATH_MAX,
            // Real trees compress 2 to 20 times (a Debian image about 3, a
            // tree of text about 10, gzip can do no better than about
            // 1032), while zstd repeats a run of zeros at 32768 times.
            ratio: 1000,
        }
    }
}

/// The keys `--limit` takes (docs: `slice-add --help`).
pub const LIMIT_KEYS: [&str; 7] = ["bytes", "file", "entries", "depth", "name", "path", "ratio"];

impl Limits {
    /// `123`, or with a suffix K, M, G or T (powers of 1024).
    pub fn parse_size(value: &str) -> Option<u64> {
        let (digits, shift) = match value.as_bytes().last()? {
            b'K' | b'k' => (&value[..value.len() - 1], 10),
            b'M' | b'm' => (&value[..value.len() - 1], 20),
            b'G' | b'g' => (&value[..value.len() - 1], 30),
            b'T' | b't' => (&value[..value.len() - 1], 40),
            _ => (value, 0),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
    }

    /// Applies one `KEY=VALUE`.
    pub fn set(&mut self, spec: &str) -> Result<(), String> {
        let (key, value) = spec
            .split_once('=')
            .ok_or_else(|| format!("--limit needs KEY=VALUE, not '{spec}'"))?;
        let slot = match key {
            "bytes" => &mut self.bytes,
            "file" => &mut self.file,
            "entries" => &mut self.entries,
            "depth" => &mut self.depth,
            "name" => &mut self.name,
            "path" => &mut self.path,
            "ratio" => &mut self.ratio,
            _ => {
                return Err(format!(
                    "unknown limit '{key}'; the limits are {}",
                    LIMIT_KEYS.join(", ")
                ));
            }
        };
        let value = Limits::parse_size(value).ok_or_else(|| {
            format!("--limit {key}= needs a number (with K, M, G or T), not '{value}'")
        })?;
        // A name or path longer than the kernel takes could pass the
        // budget only to fail half-way through building the tree.
        let most = match key {
            "name" => Some((NAME_MAX, "name")),
            "path" => Some((PATH_MAX, "path")),
            _ => None,
        };
        if let Some((most, what)) = most {
            if value > most {
                return Err(format!(
                    "--limit {key}={value} is more than {most}, the longest {what} Linux takes"
                ));
            }
        }
        if key == "ratio" && value == 0 {
            return Err("--limit ratio=0 would refuse every compressed source".into());
        }
        *slot = value;
        Ok(())
    }

    /// The defaults, then `SLICEBOX_LIMITS` (comma-separated), then each
    /// `--limit`, later ones winning.
    pub fn from_settings<'a>(
        env: Option<&str>,
        options: impl IntoIterator<Item = &'a str>,
    ) -> Result<Limits, String> {
        let mut limits = Limits::default();
        for spec in env.into_iter().flat_map(|e| e.split(',')) {
            if !spec.trim().is_empty() {
                limits
                    .set(spec.trim())
                    .map_err(|e| format!("SLICEBOX_LIMITS: {e}"))?;
            }
        }
        for spec in options {
            limits.set(spec)?;
        }
        Ok(limits)
    }
}

/// What a source has used of its limits so far.
pub(crate) struct Budget {
    limits: Limits,
    entries: u64,
    bytes: u64,
}

impl Budget {
    pub(crate) fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            entries: 0,
            bytes: 0,
        }
    }

    /// Counts one entry at `parts` (a normalised path).
    pub(crate) fn entry(&mut self, parts: &[&[u8]]) -> Result<(), String> {
        let l = &self.limits;
        self.entries += 1;
        if self.entries > l.entries {
            return Err(format!(
                "is entry number {}, more than the limit of {} entries (--limit entries=N raises it)",
                self.entries, l.entries
            ));
        }
        if parts.len() as u64 > l.depth {
            return Err(format!(
                "is {} levels deep, more than the limit of {} (--limit depth=N raises it)",
                parts.len(),
                l.depth
            ));
        }
        if let Some(long) = parts.iter().find(|p| p.len() as u64 > l.name) {
            return Err(format!(
                "has a name of {} bytes, more than the limit of {} (--limit name=N raises it)",
                long.len(),
                l.name
            ));
        }
        let path = parts.iter().map(|p| p.len() as u64 + 1).sum::<u64>() - 1;
        if path > l.path {
            return Err(format!(
                "has a path of {path} bytes, more than the limit of {} (--limit path=N raises it)",
                l.path
            ));
        }
        Ok(())
    }

    /// Checks a symlink's target: the kernel takes no NUL and no more
    /// than a path's bytes.
    pub(crate) fn symlink(&self, target: &[u8]) -> Result<(), String> {
        if target.contains(&0) {
            return Err("has a NUL byte in its link target, which no path can hold".into());
        }
        if target.len() as u64 > self.limits.path {
            return Err(format!(
                "is a symlink to a target of {} bytes, more than the limit of {} for a path",
                target.len(),
                self.limits.path
            ));
        }
        Ok(())
    }

    /// Counts a file's bytes, before any of them is read.
    pub(crate) fn file(&mut self, size: u64) -> Result<(), String> {
        let l = &self.limits;
        if size > l.file {
            return Err(format!(
                "holds {size} bytes, more than the limit of {} bytes for one file (--limit file=N raises it)",
                l.file
            ));
        }
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > l.bytes {
            return Err(format!(
                "brings the files to {} bytes, more than the limit of {} bytes (--limit bytes=N raises it)",
                self.bytes, l.bytes
            ));
        }
        Ok(())
    }
}

/// Counts the compressed bytes read through it.
pub(crate) struct Counted<R> {
    pub(crate) inner: R,
    pub(crate) count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf)?;
        self.count.set(self.count.get() + got as u64);
        Ok(got)
    }
}

/// Stops a decompressed stream that grows past `ratio` times the
/// compressed bytes read so far, so that a few megabytes of zstd cannot
/// make slicebox decompress, hash and store tens of gigabytes. The count
/// of compressed bytes includes what the buffer has read ahead, which only
/// errs towards letting a stream through.
pub(crate) struct ExpansionGuard<R> {
    inner: R,
    compressed: Rc<Cell<u64>>,
    expanded: u64,
    ratio: u64,
    exceeded: Rc<Cell<Option<(u64, u64)>>>,
}

impl<R> ExpansionGuard<R> {
    pub(crate) fn new(inner: R, compressed: Rc<Cell<u64>>, ratio: u64) -> ExpansionGuard<R> {
        ExpansionGuard {
            inner,
            compressed,
            expanded: 0,
            ratio,
            exceeded: Rc::new(Cell::new(None)),
        }
    }

    /// Set to (expanded, compressed) bytes once the stream was stopped.
    pub(crate) fn verdict(&self) -> Rc<Cell<Option<(u64, u64)>>> {
        self.exceeded.clone()
    }
}

impl<R: Read> Read for ExpansionGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf)?;
        self.expanded += got as u64;
        let compressed = self.compressed.get();
        if self.expanded > RATIO_SLACK && self.expanded / self.ratio.max(1) > compressed {
            self.exceeded.set(Some((self.expanded, compressed)));
            return Err(io::Error::other("it expands too far"));
        }
        Ok(got)
    }
}

/// The reason given for a stream the guard stopped.
pub(crate) fn expansion_reason(format: &str, expanded: u64, compressed: u64, ratio: u64) -> String {
    format!(
        "its {format} stream expands to more than {ratio} times its size ({expanded} bytes from {compressed}), the limit for compressed sources (--limit ratio=N raises it)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_suffixes_and_later_settings_win() {
        let limits =
            Limits::from_settings(Some("bytes=1T, entries=10"), ["entries=2K", "file=3M"]).unwrap();
        assert_eq!(limits.bytes, 1 << 40);
        assert_eq!(limits.entries, 2048);
        assert_eq!(limits.file, 3 << 20);
        assert_eq!(limits.depth, Limits::default().depth);
        for bad in [
            "bytes",
            "bytes=",
            "bytes=1X",
            "bytes=-1",
            "colour=1",
            "bytes=99999999999T",
            "name=256",
            "path=4096",
            "ratio=0",
        ] {
            assert!(Limits::from_settings(None, [bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_budget_counts_entries_depth_names_paths_and_bytes() {
        let mut b = Budget::new(Limits {
            bytes: 10,
            file: 6,
            entries: 3,
            depth: 2,
            name: 3,
            path: 6,
            ratio: 1000,
        });
        assert!(b.entry(&[b"a", b"bb"]).is_ok());
        assert!(b
            .entry(&[b"a", b"b", b"c"])
            .unwrap_err()
            .contains("levels deep"));
        assert!(b.entry(&[b"long"]).unwrap_err().contains("name of 4 bytes"));
        assert!(b.entry(&[b"x"]).unwrap_err().contains("entry number 4"));
        let mut b = Budget::new(Limits {
            path: 6,
            ..Limits::default()
        });
        assert!(b.entry(&[b"abc", b"de"]).is_ok());
        assert!(b
            .entry(&[b"abc", b"def"])
            .unwrap_err()
            .contains("path of 7"));
        let mut b = Budget::new(Limits {
            bytes: 10,
            file: 6,
            ..Limits::default()
        });
        assert!(b.file(7).unwrap_err().contains("one file"));
        assert!(b.file(6).is_ok());
        assert!(b.file(5).unwrap_err().contains("11 bytes"));
        assert!(b.symlink(b"t/t").is_ok());
        assert!(b.symlink(b"t\0t").unwrap_err().contains("NUL"));
        assert!(b.symlink(&[b't'; 4096]).unwrap_err().contains("4096 bytes"));
    }

    #[test]
    fn the_guard_stops_a_stream_past_its_ratio_and_not_before() {
        let compressed = Rc::new(Cell::new(0));
        let zeros = io::repeat(0).take(RATIO_SLACK + (1 << 20));
        let mut guard = ExpansionGuard::new(zeros, compressed.clone(), 10);
        // 100 KiB in: the slack plus 1 MiB is more than ten times that.
        compressed.set(100 << 10);
        let verdict = guard.verdict();
        let err = io::copy(&mut guard, &mut io::sink()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        let (expanded, seen) = verdict.get().expect("stopped");
        assert!(expanded > RATIO_SLACK && seen == 100 << 10);

        let compressed = Rc::new(Cell::new(RATIO_SLACK));
        let zeros = io::repeat(0).take(RATIO_SLACK + (1 << 20));
        let mut guard = ExpansionGuard::new(zeros, compressed, 10);
        assert_eq!(
            io::copy(&mut guard, &mut io::sink()).unwrap(),
            RATIO_SLACK + (1 << 20)
        );
    }
}
