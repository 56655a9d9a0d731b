//! Name refs: `refs/<name>` holds the digest the name points at. A ref is
//! replaced by writing a temp file and renaming it over the old one.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};

use super::ingest::sync_dir;
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

pub(crate) fn set(store: &Store, name: &str, target: &Digest) -> Result<()> {
    let dir = store.refs_dir();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .at("write ref", &temp)?;
    writeln!(file, "{target}")
        .and_then(|()| file.sync_all())
        .at("write ref", &temp)?;
    let path = dir.join(name);
    fs::rename(&temp, &path).at("update ref", &path)?;
    sync_dir(&dir)
}

fn read(store: &Store, name: &str) -> Result<Option<Digest>> {
    let path = store.refs_dir().join(name);
    match fs::read_to_string(&path) {
        Ok(text) => text
            .trim_end()
            .parse()
            .map(Some)
            .map_err(|e: digest::ParseDigestError| Error::Corrupt {
                path,
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at("read ref", &path),
    }
}

/// Every (name, digest), sorted by name.
pub(crate) fn list(store: &Store) -> Result<Vec<(String, Digest)>> {
    let dir = store.refs_dir();
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).at("read directory", &dir)? {
        let entry = entry.at("read directory", &dir)?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if validate_name(&name).is_err() {
            continue; // temp files of an update in progress
        }
        if let Some(digest) = read(store, &name)? {
            out.push((name, digest));
        }
    }
    out.sort();
    Ok(out)
}

impl Store {
    /// Resolves a name, a full `sha256:` digest, or a unique digest prefix
    /// (at least 4 hex digits, with or without `sha256:`).
    pub fn resolve(&self, reference: &str) -> Result<Digest> {
        if validate_name(reference).is_ok() {
            if let Some(found) = read(self, reference)? {
                return Ok(found);
            }
        }
        let hex = reference.strip_prefix(digest::PREFIX).unwrap_or(reference);
        if hex.len() < 4 || !digest::is_hex(hex) {
            return Err(Error::NotFound(super::printable(reference.as_bytes())));
        }
        let mut matches = self
            .slice_digests()?
            .into_iter()
            .filter(|d| d.hex().starts_with(hex))
            .collect::<Vec<_>>();
        match matches.len() {
            0 => Err(Error::NotFound(reference.to_string())),
            1 => Ok(matches.remove(0)),
            _ => Err(Error::Ambiguous {
                reference: reference.to_string(),
                candidates: matches.iter().map(Digest::to_string).collect(),
            }),
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

    pub(crate) fn names_of(&self, slice: &Digest) -> Result<Vec<String>> {
        Ok(list(self)?
            .into_iter()
            .filter(|(_, d)| d == slice)
            .map(|(n, _)| n)
            .collect())
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
}
