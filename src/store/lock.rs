//! Store lock and pins. Adds hold the lock shared for their whole run, gc
//! holds it exclusive, so gc never sees a half-made slice or deletes an
//! object an add is about to link. A running stage pins its slices: a file
//! under `pins/` listing their digests (none, for a stage without slices,
//! which pins only to be listed by `slicebox ps`), flock'ed shared for as
//! long as the stage runs. gc keeps pinned slices and removes pins nobody
//! holds.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::fsutil;
use super::{Error, IoContext, Result, Store};
use crate::digest::Digest;

/// A held flock; released when dropped (the file is closed).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// The writable dir of a stage's `--out`, in the store's `tmp/` so that
/// its content can be stored from the same filesystem. gc leaves it alone
/// while `<dir>.lock` is flock'ed; dropping it removes both.
#[derive(Debug)]
pub struct OutputDir {
    pub path: PathBuf,
    lock_path: PathBuf,
    _file: File,
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        let _ = super::at::remove_tree(&self.path);
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// The prefix of output dirs (and their locks) in `tmp/`.
pub(crate) const OUTPUT_PREFIX: &str = "out-";

/// Whether the `tmp/` entry `name` belongs to an output dir whose stage
/// still runs.
pub(crate) fn output_in_use(tmp: &Path, name: &str) -> bool {
    let Some(id) = name.strip_prefix(OUTPUT_PREFIX) else {
        return false;
    };
    let id = id.strip_suffix(".lock").unwrap_or(id);
    let Ok(file) = File::open(tmp.join(format!("{OUTPUT_PREFIX}{id}.lock"))) else {
        return false;
    };
    // SAFETY: flock on a descriptor this File owns.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}

/// A pin of the slices one running stage uses; removed when dropped.
#[derive(Debug)]
pub struct Pin {
    path: PathBuf,
    _file: File,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Store {
    fn lock(&self, operation: libc::c_int) -> Result<StoreLock> {
        let path = self.root.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at("open store lock", &path)?;
        fsutil::flock(&file, operation).at("lock store", &path)?;
        Ok(StoreLock { _file: file })
    }

    /// Shared: adds and stage start-up; many at once.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        self.lock(libc::LOCK_SH)
    }

    /// Exclusive: gc.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        self.lock(libc::LOCK_EX)
    }

    fn pins_dir(&self) -> PathBuf {
        self.root.join("pins")
    }

    /// Pins `slices` until the returned Pin is dropped. Call it under the
    /// shared lock, after resolving the refs, so gc cannot slip between.
    pub fn pin(&self, slices: &[Digest]) -> Result<Pin> {
        self.pin_with(slices, None)
    }

    /// [`Store::pin`] for a stage's `--slice`s (none when it has none),
    /// with what `slicebox ps` shows of it.
    pub fn pin_stage(&self, slices: &[Digest], note: &StageNote) -> Result<Pin> {
        self.pin_with(slices, Some(note))
    }

    fn pin_with(&self, slices: &[Digest], note: Option<&StageNote>) -> Result<Pin> {
        let dir = self.pins_dir();
        let path = dir.join(fsutil::unique_suffix());
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .at("create pin", &path)?;
        fsutil::flock(&file, libc::LOCK_SH).at("lock pin", &path)?;
        let mut text: String = slices.iter().map(|d| format!("{d}\n")).collect();
        if let Some(note) = note {
            text.push('\n');
            text.push_str(&serde_json::to_string(note).expect("a note always serialises"));
            text.push('\n');
        }
        file.write_all(text.as_bytes()).at("write pin", &path)?;
        Ok(Pin { path, _file: file })
    }

    /// A fresh output dir for a stage's `--out`, owned by the caller's
    /// uid, held until dropped.
    pub fn output_dir(&self) -> Result<OutputDir> {
        // Made under the shared lock: gc, which holds it exclusive, never
        // sees the lock file before it is flock'ed.
        let _lock = self.lock_shared()?;
        let id = fsutil::unique_suffix();
        let tmp = self.tmp_dir();
        let lock_path = tmp.join(format!("{OUTPUT_PREFIX}{id}.lock"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock_path)
            .at("create output lock", &lock_path)?;
        fsutil::flock(&file, libc::LOCK_SH).at("lock output", &lock_path)?;
        let path = tmp.join(format!("{OUTPUT_PREFIX}{id}"));
        let made = fs::create_dir(&path).at("create output directory", &path);
        if let Err(e) = made {
            let _ = fs::remove_file(&lock_path);
            return Err(e);
        }
        Ok(OutputDir {
            path,
            lock_path,
            _file: file,
        })
    }

    /// Slices and layers pinned by running stages and by layer-mounts.
    /// With `remove_stale` (gc, under the exclusive lock), pins whose
    /// holder is gone and records of views no longer mounted are removed;
    /// without it (store-stats) they are only left out.
    pub(crate) fn live_pins(&self, remove_stale: bool) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for pin in self.held_pins(remove_stale)? {
            out.extend(pin?.0);
        }
        out.extend(self.mounted_layers(remove_stale)?);
        Ok(out)
    }

    /// The stages running now ([`Store::pin_stage`]), oldest first. The
    /// flock on a pin is the liveness check: the kernel drops it when its
    /// holder exits or is killed, so a pin left behind by a crash is not
    /// listed (and gc removes it), and a reused pid cannot revive it.
    pub fn running_stages(&self) -> Result<Vec<(Vec<Digest>, StageNote)>> {
        // A pin being written is read half-done: it is left out.
        let mut stages: Vec<_> = self
            .held_pins(false)?
            .into_iter()
            .filter_map(|pin| match pin {
                Ok((slices, Some(note))) => Some((slices, note)),
                _ => None,
            })
            .collect();
        stages.sort_by_key(|(_, note)| (note.started, note.holder));
        Ok(stages)
    }

    /// Every pin someone holds: its slices and note, or why it cannot be read.
    #[allow(clippy::type_complexity)]
    fn held_pins(
        &self,
        remove_stale: bool,
    ) -> Result<Vec<Result<(Vec<Digest>, Option<StageNote>)>>> {
        let dir = self.pins_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).at("read directory", &dir)? {
            let path = entry.at("read directory", &dir)?.path();
            let Ok(file) = File::open(&path) else {
                continue;
            };
            // SAFETY: flock on a descriptor this File owns.
            let held = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0;
            if !held {
                if remove_stale {
                    fs::remove_file(&path).at("remove stale pin", &path)?;
                }
                continue;
            }
            out.push(read_pin(&path));
        }
        Ok(out)
    }
}

/// What `slicebox ps` shows of a running stage; the last line of its pin
/// (docs/formats.md, "Locking, pins and gc").
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StageNote {
    /// The process that holds the pin and waits for the stage: `sandbox`,
    /// or the shell running the builtin.
    pub holder: u32,
    /// Seconds since the epoch when the stage was set up.
    pub started: u64,
    /// The `--slice` references as given.
    pub slices: Vec<String>,
    /// The payload's argv (not UTF-8 bytes replaced).
    pub command: Vec<String>,
}

/// A pin's digests (none for a stage without slices), then, after a
/// blank line, its note (if any). A note that does not parse is left out:
/// it only feeds `ps`.
fn read_pin(path: &Path) -> Result<(Vec<Digest>, Option<StageNote>)> {
    let text = fs::read_to_string(path).at("read pin", path)?;
    let (digests, note) = match text.strip_prefix('\n') {
        Some(note) => ("", note),
        None => text.split_once("\n\n").unwrap_or((&text, "")),
    };
    let note = serde_json::from_str(note.trim()).ok();
    let digests = digests
        .lines()
        .map(|line| {
            line.parse().map_err(|_| Error::Corrupt {
                path: path.to_path_buf(),
                reason: format!("'{line}' is not a digest"),
            })
        })
        .collect::<Result<_>>()?;
    Ok((digests, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_without_slices_is_listed_while_it_holds_its_pin() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let note = StageNote {
            holder: std::process::id(),
            started: 7,
            slices: Vec::new(),
            command: vec!["sleep".into(), "30".into()],
        };
        let pin = store.pin_stage(&[], &note).unwrap();
        assert_eq!(store.running_stages().unwrap(), [(Vec::new(), note)]);
        // gc reads the same pin: nothing to keep, and no error.
        assert!(store.live_pins(true).unwrap().is_empty());
        assert_eq!(fs::read_dir(store.pins_dir()).unwrap().count(), 1);
        drop(pin);
        assert!(store.running_stages().unwrap().is_empty());
        assert_eq!(fs::read_dir(store.pins_dir()).unwrap().count(), 0);
    }
}
