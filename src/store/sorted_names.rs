//! A directory's names in bytewise order, in memory bounded whatever the
//! directory holds: what every walk of a tree (`at::walk`) reads each
//! directory into. Names are kept in memory while the walk's open
//! directories hold few of them together; past that, a directory's names
//! are sorted in runs of at most `RUN_BYTES`, each written to a spill file,
//! and handed out by merging the runs, reading each run a chunk at a time.
//!
//! One spill file serves a whole walk, and its runs are stacked as the
//! walk's directories are: a directory's runs are written after its
//! parent's and dropped (the file cut back) when the walk leaves it, so the
//! file holds at most the names of the directories the walk is inside.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Bytes of names (counted as `cost`) that the open directories of one
/// walk may hold in memory together before a directory is spilled.
pub(crate) const MEMORY_BYTES: usize = 4 << 20;
/// Bytes of names in one sorted run.
const RUN_BYTES: usize = 1 << 20;
/// A directory this small stays in memory whatever the others hold.
const SMALL_BYTES: usize = 4 << 10;
/// Bytes of a run read at a time while merging.
const CHUNK: usize = 8 << 10;

/// What a name costs in memory: its bytes and NUL, the `CString`'s
/// pointer and length, and the allocator's overhead.
pub(crate) fn cost(name: &[u8]) -> usize {
    name.len() + 1 + 16 + 16
}

/// The spill file of one walk, made when a directory first needs it: an
/// unnamed file (`O_TMPFILE`) in `dir`, or a named one removed at once
/// where the filesystem has no unnamed files. Either way nothing is left
/// behind, whatever stops the walk.
pub(crate) struct Spill {
    dir: PathBuf,
    file: Option<File>,
    /// Where the next run goes.
    end: u64,
}

impl Spill {
    pub(crate) fn new(dir: &Path) -> Spill {
        Spill {
            dir: dir.to_path_buf(),
            file: None,
            end: 0,
        }
    }

    fn file(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            let unnamed = OpenOptions::new()
                .read(true)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
                .open(&self.dir);
            let file = match unnamed {
                Ok(file) => file,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
                    let path =
                        self.dir
                            .join(format!(".slicebox-names-{}-{:p}", std::process::id(), self));
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)?;
                    std::fs::remove_file(&path)?;
                    file
                }
                Err(e) => return Err(e),
            };
            self.file = Some(file);
        }
        Ok(self.file.as_ref().expect("made above"))
    }

    /// Sorts `names` and appends them as one run (each name and a NUL).
    fn write_run(&mut self, names: &mut Vec<CString>) -> io::Result<Run> {
        names.sort_unstable();
        let mut bytes = Vec::with_capacity(names.iter().map(|n| n.as_bytes().len() + 1).sum());
        for name in names.drain(..) {
            bytes.extend_from_slice(name.as_bytes_with_nul());
        }
        let start = self.end;
        self.file()?.write_all_at(&bytes, start)?;
        self.end += bytes.len() as u64;
        Ok(Run {
            next: start,
            end: self.end,
            chunk: Vec::new(),
            at: 0,
        })
    }

    /// Where the runs of the next directory start.
    pub(crate) fn mark(&self) -> u64 {
        self.end
    }

    /// Drops every run written since `mark`.
    pub(crate) fn release(&mut self, mark: u64) -> io::Result<()> {
        if let (Some(file), true) = (&self.file, mark < self.end) {
            file.set_len(mark)?;
            self.end = mark;
        }
        Ok(())
    }
}

/// One sorted run in the spill file, read a chunk at a time.
pub(crate) struct Run {
    /// The next byte of the file to read into `chunk`, and the run's end.
    next: u64,
    end: u64,
    chunk: Vec<u8>,
    /// The next name's start in `chunk`.
    at: usize,
}

impl Run {
    fn next_name(&mut self, file: &File) -> io::Result<Option<CString>> {
        loop {
            if let Some(nul) = self.chunk[self.at..].iter().position(|b| *b == 0) {
                let name = self.chunk[self.at..self.at + nul].to_vec();
                self.at += nul + 1;
                return Ok(Some(CString::new(name).map_err(|_| bad_spill())?));
            }
            if self.next >= self.end {
                return match self.at == self.chunk.len() {
                    true => Ok(None),
                    false => Err(bad_spill()),
                };
            }
            // Keep the name begun, read the next chunk after it.
            self.chunk.drain(..self.at);
            self.at = 0;
            let want = CHUNK.min((self.end - self.next) as usize);
            let old = self.chunk.len();
            self.chunk.resize(old + want, 0);
            file.read_exact_at(&mut self.chunk[old..], self.next)?;
            self.next += want as u64;
        }
    }
}

fn bad_spill() -> io::Error {
    io::Error::other("the walk's spill file was changed while it was read")
}

/// A directory's names, handed out in order by [`SortedNames::next`].
pub(crate) enum SortedNames {
    Memory(std::vec::IntoIter<CString>),
    /// The runs, and the heap of each run's next name.
    Merge(Vec<Run>, BinaryHeap<Reverse<(CString, usize)>>),
}

impl SortedNames {
    /// Reads `names` (a directory's, in any order, `.` and `..` left out)
    /// keeping at most `room` bytes of them in memory (never less than a
    /// small directory's): the rest goes to `spill`. Returns them with
    /// what they hold in memory.
    pub(crate) fn read(
        names: impl Iterator<Item = io::Result<CString>>,
        room: usize,
        spill: &mut Spill,
    ) -> io::Result<(SortedNames, usize)> {
        let limit = room.clamp(SMALL_BYTES, RUN_BYTES);
        let mut batch = Vec::new();
        let mut held = 0;
        let mut runs = Vec::new();
        for name in names {
            let name = name?;
            held += cost(name.as_bytes());
            batch.push(name);
            if held > limit {
                runs.push(spill.write_run(&mut batch)?);
                held = 0;
            }
        }
        if runs.is_empty() {
            batch.sort_unstable();
            return Ok((SortedNames::Memory(batch.into_iter()), held));
        }
        if !batch.is_empty() {
            runs.push(spill.write_run(&mut batch)?);
        }
        let mut heap = BinaryHeap::with_capacity(runs.len());
        let file = spill.file()?;
        for (index, run) in runs.iter_mut().enumerate() {
            if let Some(name) = run.next_name(file)? {
                heap.push(Reverse((name, index)));
            }
        }
        let held = runs.len() * (CHUNK + 64);
        Ok((SortedNames::Merge(runs, heap), held))
    }

    /// The next name in bytewise order.
    pub(crate) fn next(&mut self, spill: &mut Spill) -> io::Result<Option<CString>> {
        match self {
            SortedNames::Memory(names) => Ok(names.next()),
            SortedNames::Merge(runs, heap) => {
                let Some(Reverse((name, index))) = heap.pop() else {
                    return Ok(None);
                };
                if let Some(next) = runs[index].next_name(spill.file()?)? {
                    heap.push(Reverse((next, index)));
                }
                Ok(Some(name))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(count: usize) -> Vec<CString> {
        // Not in order, of varied lengths, some sharing prefixes.
        (0..count)
            .map(|i| {
                CString::new(format!("{}-{}", (i * 7919) % count, "x".repeat(i % 13))).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_big_directory_is_spilled_in_runs_and_merged_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(tmp.path());
        let all = names(100_000);
        let mut expected = all.clone();
        expected.sort();
        let mark = spill.mark();
        let (mut sorted, held) =
            SortedNames::read(all.into_iter().map(Ok), 64 << 10, &mut spill).unwrap();
        assert!(matches!(sorted, SortedNames::Merge(..)), "it was spilled");
        // 100,000 names of ~45 bytes in runs of 64 KiB: some 70 runs,
        // each holding one chunk.
        assert!(held < 1 << 20, "{held} bytes held");
        assert!(spill.mark() > mark, "the runs went to the spill file");
        let mut got = Vec::new();
        while let Some(name) = sorted.next(&mut spill).unwrap() {
            got.push(name);
        }
        assert_eq!(got, expected);
        spill.release(mark).unwrap();
        assert_eq!(spill.mark(), mark);
        // Nothing is left in the directory (the file had no name).
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_small_directory_stays_in_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(tmp.path());
        let (mut sorted, held) =
            SortedNames::read(names(10).into_iter().map(Ok), 0, &mut spill).unwrap();
        assert!(matches!(sorted, SortedNames::Memory(_)));
        assert!(held > 0 && spill.mark() == 0);
        let mut got = Vec::new();
        while let Some(name) = sorted.next(&mut spill).unwrap() {
            got.push(name);
        }
        let mut expected = names(10);
        expected.sort();
        assert_eq!(got, expected);
    }
}
