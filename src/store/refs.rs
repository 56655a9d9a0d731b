//! Name refs: `refs/<name>` holds the digest the name points at. A ref is
//! replaced by writing a temp file and renaming it over the old one.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::fsutil::{self, sync_dir};
use super::ref_index;
use super::{Error, IoContext, Result, Store};
use crate::digest::{self, Digest};

/// Names start with a letter or digit and use only `A-Za-z0-9._+-`, so a
/// name is always a safe file name and never looks like `sha256:…`.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| Error::InvalidName {
        name: super::printable(name.as_bytes()),
        reason,
    };
    if name.is_empty() || name.len() > 128 {
        return Err(bad("it must be 1 to 128 characters long"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(bad("it must start with a letter or digit"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
    {
        return Err(bad("it may contain only letters, digits and . _ + -"));
    }
    Ok(())
}

/// Points `name` at `target`, keeping the previous targets as history
/// (`NAME@1` is the one before, and so on) until gc prunes it.
pub(crate) fn set(store: &Store, name: &str, target: &Digest) -> Result<()> {
    let _guard = lock_refs(store)?;
    let mut history = read(store, name)?;
    if history.first() == Some(target) {
        return Ok(());
    }
    history.insert(0, *target);
    let held = ref_index::invalidate(store)?;
    write(store, name, &history)?;
    ref_index::write(store, held)
}

/// Serialises read-modify-write updates of refs between processes.
fn lock_refs(store: &Store) -> Result<File> {
    lock_dir(&store.refs_dir())
}

/// Locks the refs of one directory (`refs/`, `layer-refs/`).
pub(crate) fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(".lock");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .at("open ref lock", &path)?;
    fsutil::flock(&file, libc::LOCK_EX).at("lock refs", &path)?;
    Ok(file)
}

fn write(store: &Store, name: &str, history: &[Digest]) -> Result<()> {
    write_in(&store.refs_dir(), name, history)
}

/// Writes the history of `name` in `dir`, newest first, durably.
pub(crate) fn write_in(dir: &Path, name: &str, history: &[Digest]) -> Result<()> {
    let text: String = history.iter().map(|d| format!("{d}\n")).collect();
    fsutil::write_durably(dir, name, text.as_bytes(), "write ref")
}

/// Removes a name and its history.
pub(crate) fn remove(store: &Store, name: &str) -> Result<bool> {
    let _guard = lock_refs(store)?;
    let path = store.refs_dir().join(name);
    if !path.exists() {
        return Ok(false);
    }
    let held = ref_index::invalidate(store)?;
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(&store.refs_dir())?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).at("remove ref", &path),
    }
    ref_index::write(store, held)?;
    Ok(true)
}

/// Drops every ref's history, keeping only where each name points now,
/// and the temp files of ref writes killed before their rename (a write
/// holds the refs lock from creating its temp file to renaming it).
pub(crate) fn prune_history(store: &Store) -> Result<()> {
    let _guard = lock_refs(store)?;
    let dir = store.refs_dir();
    for entry in fs::read_dir(&dir).at("read directory", &dir)? {
        let entry = entry.at("read directory", &dir)?;
        let name = entry.file_name();
        let name = name.as_bytes();
        if name.starts_with(b".") && name.ends_with(b".tmp") {
            let path = entry.path();
            fs::remove_file(&path).at("remove leftover", &path)?;
        }
    }
    for name in names(store)? {
        let history = read(store, &name)?;
        if history.len() > 1 {
            write(store, &name, &history[..1])?;
        }
    }
    // No name changed where it points; the index is written anew all the
    // same, which also makes one that a crash removed.
    ref_index::rebuild(store)
}

/// The history of `name`, newest first; empty when there is no such ref.
fn read(store: &Store, name: &str) -> Result<Vec<Digest>> {
    read_in(&store.refs_dir(), name)
}

/// The history of `name` in `dir`, newest first; empty when there is none.
pub(crate) fn read_in(dir: &Path, name: &str) -> Result<Vec<Digest>> {
    let path = dir.join(name);
    match fsutil::read_small(&path) {
        Ok(text) => text
            .lines()
            .map(|line| {
                line.parse()
                    .map_err(|e: digest::ParseDigestError| Error::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).at("read ref", &path),
    }
}

/// Every name, sorted.
pub(crate) fn names(store: &Store) -> Result<Vec<String>> {
    names_in(&store.refs_dir())
}

/// Every name of `dir`, sorted.
pub(crate) fn names_in(dir: &Path) -> Result<Vec<String>> {
    let dir = dir.to_path_buf();
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).at("read directory", &dir)? {
        let entry = entry.at("read directory", &dir)?;
        if let Some(name) = entry.file_name().to_str() {
            // Skips temp files of an update in progress and the lock.
            if validate_name(name).is_ok() {
                out.push(name.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every (name, history), sorted by name.
pub(crate) fn all(store: &Store) -> Result<Vec<(String, Vec<Digest>)>> {
    let mut out = Vec::new();
    for name in names(store)? {
        let history = read(store, &name)?;
        if !history.is_empty() {
            out.push((name, history));
        }
    }
    Ok(out)
}

/// Every (name, current digest), sorted by name.
pub(crate) fn list(store: &Store) -> Result<Vec<(String, Digest)>> {
    Ok(all(store)?.into_iter().map(|(n, h)| (n, h[0])).collect())
}

impl Store {
    /// Resolves a name, a full `sha256:` digest, or a unique digest prefix
    /// (at least 4 hex digits, with or without `sha256:`).
    pub fn resolve(&self, reference: &str) -> Result<Digest> {
        if validate_name(reference).is_ok() {
            if let Some(found) = read(self, reference)?.first() {
                return Ok(*found);
            }
        }
        if let Some(found) = self.resolve_history(reference) {
            return found;
        }
        let hex = reference.strip_prefix(digest::PREFIX).unwrap_or(reference);
        if hex.len() < 4 || !digest::is_hex(hex) {
            return Err(self.not_found(reference));
        }
        let mut matches = self
            .slice_digests()?
            .into_iter()
            .filter(|d| d.hex().starts_with(hex))
            .collect::<Vec<_>>();
        match matches.len() {
            0 => Err(self.not_found(reference)),
            1 => Ok(matches.remove(0)),
            _ => Err(Error::Ambiguous {
                reference: reference.to_string(),
                store: self.root.clone(),
                candidates: matches.iter().map(Digest::to_string).collect(),
            }),
        }
    }

    /// The error for a reference nothing matches, with the closest stored
    /// name as a suggestion (none when the names cannot be read).
    fn not_found(&self, reference: &str) -> Error {
        let names = list(self).unwrap_or_default();
        let typed = reference
            .split_once('@')
            .map_or(reference, |(name, _)| name);
        Error::NotFound {
            reference: super::printable(reference.as_bytes()),
            store: self.root.clone(),
            hint: crate::suggest::hint(typed, names.iter().map(|(n, _)| n.as_str())),
        }
    }

    /// `NAME@N`: where NAME pointed N changes ago; None for any other form.
    fn resolve_history(&self, reference: &str) -> Option<Result<Digest>> {
        let (name, back) = reference.rsplit_once('@')?;
        let back = back.parse::<usize>().ok()?;
        validate_name(name).ok()?;
        Some(read(self, name).and_then(|history| {
            history
                .get(back)
                .copied()
                .ok_or_else(|| self.not_found(reference))
        }))
    }

    /// For commands that delete or repoint: a name, `NAME@N` or a full
    /// `sha256:` digest of a stored slice, never a prefix.
    pub fn resolve_exact(&self, reference: &str, command: &str) -> Result<Digest> {
        let needs_exact = || Error::NeedsExactRef {
            reference: super::printable(reference.as_bytes()),
            command: command.to_string(),
        };
        if validate_name(reference).is_ok() {
            if let Some(found) = read(self, reference)?.first() {
                return Ok(*found);
            }
            // Say why a digest prefix is not taken, rather than "no such
            // slice", when it is one.
            let hex = reference.strip_prefix(digest::PREFIX).unwrap_or(reference);
            if digest::is_hex(hex)
                && self
                    .slice_digests()?
                    .iter()
                    .any(|d| d.hex().starts_with(hex))
            {
                return Err(needs_exact());
            }
            return Err(self.not_found(reference));
        }
        if let Some(found) = self.resolve_history(reference) {
            return found;
        }
        match reference.parse::<Digest>() {
            Ok(digest) if self.slice_dir(&digest).is_dir() => Ok(digest),
            Ok(_) => Err(self.not_found(reference)),
            Err(_) => Err(needs_exact()),
        }
    }

    /// Digests of every stored slice.
    pub fn slice_digests(&self) -> Result<Vec<Digest>> {
        let dir = self.slices_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).at("read directory", &dir)? {
            let entry = entry.at("read directory", &dir)?;
            if let Some(d) = entry.file_name().to_str().and_then(Digest::from_hex) {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The names that reach `slice`: `NAME` for current refs, `NAME@N`
    /// for history.
    pub fn names_of(&self, slice: &Digest) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (name, history) in all(self)? {
            for (back, digest) in history.iter().enumerate() {
                if digest == slice {
                    out.push(if back == 0 {
                        name.clone()
                    } else {
                        format!("{name}@{back}")
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_file_names() {
        for good in ["node-20", "python-3.10", "a", "gcc+x_1"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "-x", "a/b", "sha256:ab", "a b", "ä"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    fn leftovers(store: &Store) -> Vec<String> {
        fs::read_dir(store.refs_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_failed_ref_write_leaves_no_temp_file_and_gc_sweeps_killed_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let digest = Digest::from_hex(&"ab".repeat(32)).unwrap();
        // A directory where the ref should go: the rename fails.
        fs::create_dir_all(store.refs_dir().join("x/in-the-way")).unwrap();
        assert!(write(&store, "x", &[digest]).is_err());
        assert_eq!(leftovers(&store), Vec::<String>::new());
        fs::remove_dir_all(store.refs_dir().join("x")).unwrap();
        // What a write killed between create and rename leaves.
        fs::write(store.refs_dir().join(".y.1-2-3.tmp"), "partial").unwrap();
        write(&store, "y", &[digest]).unwrap();
        prune_history(&store).unwrap();
        assert_eq!(leftovers(&store), Vec::<String>::new());
        assert_eq!(read(&store, "y").unwrap(), [digest]);
    }
}
