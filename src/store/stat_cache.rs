//! The stat cache, as git's index has one: for each directory source the
//! store has read, what each file's lstat was and what content it held,
//! so re-adding an unchanged tree (a `--cache` stage's working directory,
//! a `slice-add` run again) reads no file's content.
//!
//! `stat-cache/<hex>`, one file per source directory (`<hex>` is the
//! sha256 of the directory's device and inode), one line per file, in the
//! order the walk meets files (so a walk reads it alongside, in constant
//! memory): `v1 DEV INO SIZE MTIME_S MTIME_NS CTIME_S CTIME_NS MODE
//! RECORDED_S RECORDED_NS HEX LEN:PATH`.
//!
//! An entry is trusted only when every field of the file's lstat matches
//! (the ctime changes whenever content or mode does, and no user can set
//! it) and its mtime and ctime are strictly older than the entry's
//! recording time less two seconds ([`RACY_MARGIN_NS`]) (git's "racily clean" rule: a file
//! written in the same clock tick as it was hashed may change again
//! without a visible change of time). A malformed line is a miss. The
//! file is replaced durably at the end of a full walk; at most
//! [`MAX_SOURCES`] sources are kept (the least recently written go), and
//! each holds at most [`MAX_ENTRIES`] lines.

use std::cmp::Ordering;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::fsutil;
use super::{IoContext, Result, Store};
use crate::digest::Digest;

/// How much older than its recording a file's times must be to be trusted:
/// the kernel stamps files from a clock that may lag the one read here.
const RACY_MARGIN_NS: i128 = 2_000_000_000;
/// Sources whose stat cache is kept.
const MAX_SOURCES: usize = 64;
/// Lines one source's stat cache may hold.
const MAX_ENTRIES: u64 = 1 << 20;

/// What of a file's lstat must match for its entry to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatKey {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    mode: u32,
}

impl StatKey {
    pub(crate) fn of(st: &libc::stat) -> StatKey {
        StatKey {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
            mode: st.st_mode,
        }
    }
}

fn nanos((secs, nanos): (i64, i64)) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nanos)
}

/// One line read back.
struct Entry {
    path: Vec<u8>,
    key: StatKey,
    recorded: (i64, i64),
    content: Digest,
}

impl Entry {
    fn parse(line: &[u8]) -> Option<Entry> {
        let mut fields = line.splitn(13, |b| *b == b' ');
        (fields.next()? == b"v1").then_some(())?;
        let mut number =
            || -> Option<i64> { std::str::from_utf8(fields.next()?).ok()?.parse().ok() };
        let (dev, ino, size) = (number()?, number()?, number()?);
        let mtime = (number()?, number()?);
        let ctime = (number()?, number()?);
        let mode = number()?;
        let recorded = (number()?, number()?);
        let content = Digest::from_hex(std::str::from_utf8(fields.next()?).ok()?)?;
        let counted = fields.next()?;
        let colon = counted.iter().position(|b| *b == b':')?;
        let len: usize = std::str::from_utf8(&counted[..colon]).ok()?.parse().ok()?;
        let path = counted.get(colon + 1..)?;
        (path.len() == len).then_some(())?;
        Some(Entry {
            path: path.to_vec(),
            key: StatKey {
                dev: u64::try_from(dev).ok()?,
                ino: u64::try_from(ino).ok()?,
                size,
                mtime,
                ctime,
                mode: u32::try_from(mode).ok()?,
            },
            recorded,
            content,
        })
    }

    /// Trusted only when the file's times are well before the recording.
    fn trusted_for(&self, key: &StatKey) -> bool {
        let before = nanos(self.recorded) - RACY_MARGIN_NS;
        self.key == *key && nanos(key.mtime) < before && nanos(key.ctime) < before
    }
}

/// The order a walk meets paths in: component by component, bytewise.
pub(crate) fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|c| *c == b'/').cmp(b.split(|c| *c == b'/'))
}

/// One source's stat cache during one walk: the old entries, read
/// alongside the walk, and (for a full walk) the new ones being written.
pub(crate) struct StatCache {
    dir: PathBuf,
    name: String,
    old: Option<BufReader<File>>,
    next_old: Option<Entry>,
    new: Option<(PathBuf, BufWriter<File>)>,
    written: u64,
    started: (i64, i64),
}

impl StatCache {
    /// The cache of the source directory `root` (its fstat). `write`: this
    /// walk records what it reads, replacing the old entries at
    /// [`StatCache::finish`].
    pub(crate) fn open(store: &Store, root: &libc::stat, write: bool) -> Result<StatCache> {
        let dir = store.root().join("stat-cache");
        let name = Digest::of(format!("{} {}", root.st_dev, root.st_ino).as_bytes()).hex();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut cache = StatCache {
            old: File::open(dir.join(&name))
                .ok()
                .map(|f| BufReader::with_capacity(64 * 1024, f)),
            next_old: None,
            new: None,
            written: 0,
            started: (now.as_secs() as i64, i64::from(now.subsec_nanos())),
            dir,
            name,
        };
        if write {
            fs::create_dir_all(&cache.dir).at("create store directory", &cache.dir)?;
            let temp = cache
                .dir
                .join(format!(".{}.{}.tmp", cache.name, fsutil::unique_suffix()));
            let file = File::create(&temp).at("write stat cache", &temp)?;
            cache.new = Some((temp, BufWriter::with_capacity(64 * 1024, file)));
        }
        cache.next_old = cache.read_old();
        Ok(cache)
    }

    /// Whether there are old entries at all.
    pub(crate) fn has_entries(&self) -> bool {
        self.next_old.is_some()
    }

    fn read_old(&mut self) -> Option<Entry> {
        let reader = self.old.as_mut()?;
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            if line.pop() != Some(b'\n') {
                return None;
            }
            // A malformed line is skipped: a miss, never a wrong answer.
            if let Some(entry) = Entry::parse(&line) {
                return Some(entry);
            }
        }
    }

    /// The content the file at `path` (met in walk order) held when it
    /// was recorded, if its lstat `st` shows it has not changed since.
    pub(crate) fn lookup(&mut self, path: &[u8], st: &libc::stat) -> Option<Digest> {
        loop {
            let entry = self.next_old.as_ref()?;
            match walk_order(&entry.path, path) {
                Ordering::Less => self.next_old = self.read_old(),
                Ordering::Greater => return None,
                Ordering::Equal => {
                    let found = entry.trusted_for(&StatKey::of(st)).then_some(entry.content);
                    self.next_old = self.read_old();
                    return found;
                }
            }
        }
    }

    /// Records what the file at `path` held, unless its times are too
    /// recent to be trusted later.
    pub(crate) fn record(&mut self, path: &[u8], st: &libc::stat, content: &Digest) -> Result<()> {
        let key = StatKey::of(st);
        let entry = Entry {
            path: Vec::new(),
            key,
            recorded: self.started,
            content: *content,
        };
        if !entry.trusted_for(&key) || self.written >= MAX_ENTRIES {
            return Ok(());
        }
        let Some((temp, out)) = self.new.as_mut() else {
            return Ok(());
        };
        let mut line = format!(
            "v1 {} {} {} {} {} {} {} {} {} {} {} {}:",
            key.dev,
            key.ino,
            key.size,
            key.mtime.0,
            key.mtime.1,
            key.ctime.0,
            key.ctime.1,
            key.mode,
            self.started.0,
            self.started.1,
            content.hex(),
            path.len()
        )
        .into_bytes();
        line.extend_from_slice(path);
        line.push(b'\n');
        out.write_all(&line).at("write stat cache", temp)?;
        self.written += 1;
        Ok(())
    }

    /// Replaces the source's old entries with the new ones (a crash leaves
    /// one or the other), then drops the least recently written sources
    /// beyond [`MAX_SOURCES`].
    pub(crate) fn finish(mut self) -> Result<()> {
        let Some((temp, out)) = self.new.take() else {
            return Ok(());
        };
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .at("write stat cache", &temp)?;
        file.sync_all().at("write stat cache", &temp)?;
        let path = self.dir.join(&self.name);
        fs::rename(&temp, &path).at("write stat cache", &path)?;
        fsutil::sync_dir(&self.dir)?;
        self.evict()
    }

    fn evict(&self) -> Result<()> {
        let mut sources: Vec<(SystemTime, PathBuf)> = fs::read_dir(&self.dir)
            .at("read directory", &self.dir)?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let modified = entry.metadata().ok()?.modified().ok()?;
                Some((modified, entry.path()))
            })
            .collect();
        if sources.len() <= MAX_SOURCES {
            return Ok(());
        }
        sources.sort();
        for (_, path) in &sources[..sources.len() - MAX_SOURCES] {
            let _ = fs::remove_file(path);
        }
        Ok(())
    }
}

impl Drop for StatCache {
    fn drop(&mut self) {
        if let Some((temp, _)) = self.new.take() {
            let _ = fs::remove_file(temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(path: &std::path::Path) -> libc::stat {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        super::super::at::stat_at(libc::AT_FDCWD, &name).unwrap()
    }

    #[test]
    fn walk_order_is_component_by_component() {
        // '-' sorts before '/', but the directory "a" is met before "a-b".
        assert_eq!(walk_order(b"a/b", b"a-b"), Ordering::Less);
        assert_eq!(walk_order(b"a", b"a/b"), Ordering::Less);
        assert_eq!(walk_order(b"b", b"a/z"), Ordering::Greater);
    }

    #[test]
    fn an_entry_is_trusted_only_for_an_unchanged_and_old_enough_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "x").unwrap();
        let st = stat(&file);
        let mut entry = Entry {
            path: b"f".to_vec(),
            key: StatKey::of(&st),
            recorded: (st.st_mtime + 10, 0),
            content: Digest::of(b"x"),
        };
        assert!(entry.trusted_for(&StatKey::of(&st)));
        // Racily clean: recorded within the margin of the file's times.
        entry.recorded = (st.st_mtime + 1, st.st_mtime_nsec);
        assert!(!entry.trusted_for(&StatKey::of(&st)));
        entry.recorded = (st.st_mtime + 10, 0);
        // Any change of the lstat (here the content, so size and ctime).
        fs::write(&file, "xy").unwrap();
        assert!(!entry.trusted_for(&StatKey::of(&stat(&file))));
    }

    #[test]
    fn malformed_lines_are_misses() {
        let good = format!("v1 1 2 3 4 5 6 7 8 9 10 {} 1:f", Digest::of(b"x").hex());
        assert!(Entry::parse(good.as_bytes()).is_some());
        for bad in [
            "v2 1 2 3 4 5 6 7 8 9 10 00 1:f",
            "v1 1 2 3 4 5 6 7 8 9 10 zz 1:f",
            &good.replace("1:f", "2:f"),
            &good.replace(" 1 2 ", " -1 2 "),
        ] {
            assert!(Entry::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }
}
