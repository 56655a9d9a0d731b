//! A layer tarball read into a listing: every entry checked as slice
//! ingest checks it (names, limits, the tar reader's own checks), files
//! stored as objects as they come, and OCI whiteouts (`.wh.NAME`,
//! `.wh..wh..opq`) turned into whiteout entries and opaque directories.

use std::io::{self, Read};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::listing::{Entries, LayerEntry, LayerKind};
use super::{check_entry_meta, check_tree, Collected};
use crate::digest::Digest;
use crate::store::archive_source::{decode, normalise_entry_name, rejected, tar_error, Decoded};
use crate::store::limits::{Budget, Limits};
use crate::store::objects::ObjectWriter;
use crate::store::progress::Progress;
use crate::store::tarball::{Header, Kind, TarReader};
use crate::store::{os, printable, Error, IoContext, Result};

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// Hashes what is read through it: the blob's digest, known once the
/// stream is read to its end.
pub(crate) struct Hashing<R> {
    pub(crate) inner: R,
    pub(crate) hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf)?;
        self.hasher.update(&buf[..got]);
        Ok(got)
    }
}

/// Reads the layer tarball `input` (plain, gzip or zstd); returns its
/// entries and the sha256 of its bytes as given (the blob digest).
pub(crate) fn read_layer(
    input: impl Read,
    source_name: &str,
    limits: Limits,
    objects: &ObjectWriter<'_>,
    progress: &Progress,
) -> Result<(Collected, Digest)> {
    let mut hashing = Hashing {
        inner: input,
        hasher: Sha256::new(),
    };
    let Decoded { reader, guard } = decode(&mut hashing, source_name, limits)?;
    let mut reader = TarReader::new(reader);
    let read = read_entries(
        &mut reader,
        guard.format,
        source_name,
        limits,
        objects,
        progress,
    );
    let collected = guard.judge(source_name, limits, read)?;
    drop(reader);
    // What follows the end of the archive is part of the blob.
    io::copy(&mut hashing, &mut io::sink()).at("read", &PathBuf::from(source_name))?;
    Ok((collected, Digest::from_hasher(hashing.hasher)))
}

fn read_entries(
    reader: &mut TarReader<Box<dyn Read + '_>>,
    format: &str,
    source_name: &str,
    limits: Limits,
    objects: &ObjectWriter<'_>,
    progress: &Progress,
) -> Result<Collected> {
    let mut budget = Budget::new(limits);
    let mut collected = Collected::default();
    let mut opaque = Vec::new();
    while let Some(header) = reader
        .next_entry()
        .map_err(|e| tar_error(source_name, format, e))?
    {
        let reject = |reason: String| rejected(source_name, &header.path, reason);
        let parts = normalise_entry_name(&header.path).map_err(|r| reject(r.into()))?;
        let parts: Vec<Vec<u8>> = parts.into_iter().map(<[u8]>::to_vec).collect();
        let Some(last) = parts.last() else {
            if header.kind == Kind::Dir {
                continue;
            }
            return Err(reject("has an empty name".into()));
        };
        budget
            .entry(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
            .map_err(reject)?;
        if header.kind == Kind::Dir && last.starts_with(WHITEOUT) {
            return Err(reject("is a directory named as a whiteout".into()));
        }
        if last.as_slice() == OPAQUE {
            if parts.len() == 1 {
                return Err(reject(
                    "makes the layer root opaque, which would hide every lower layer".into(),
                ));
            }
            opaque.push((parts[..parts.len() - 1].to_vec(), header.path.clone()));
            continue;
        }
        let (key, kind) = match last.strip_prefix(WHITEOUT) {
            Some(name) => (
                whiteout_key(&parts, name).map_err(reject)?,
                LayerKind::Whiteout,
            ),
            None => {
                let kind = kind_of(&header, reader, &mut budget, &collected.entries, objects);
                match kind? {
                    Ok(Some(kind)) => (parts, kind),
                    Ok(None) => {
                        collected.devices_skipped += 1;
                        continue;
                    }
                    Err(reason) => return Err(reject(reason)),
                }
            }
        };
        if let LayerKind::File { size, .. } = kind {
            progress.advance(size);
        }
        let mut entry = LayerEntry {
            path: key.join(&b'/'),
            kind,
            mode: header.mode & 0o7777,
            uid: owner_id(header.uid).map_err(reject)?,
            gid: owner_id(header.gid).map_err(reject)?,
            xattrs: header.xattrs.clone(),
        };
        super::normalise_whiteout(&mut entry);
        check_entry_meta(&entry).map_err(reject)?;
        if collected.entries.insert(key, entry).is_some() {
            return Err(reject("appears twice in the layer".into()));
        }
    }
    for (dir, marker) in opaque {
        super::make_opaque(&mut collected.entries, dir)
            .map_err(|reason| rejected(source_name, &marker, reason))?;
    }
    check_tree(&collected.entries)
        .map_err(|(path, reason)| rejected(source_name, &path, reason))?;
    Ok(collected)
}

fn owner_id(id: u64) -> Result<u32, String> {
    u32::try_from(id).map_err(|_| format!("has the owner or group id {id}, beyond 32 bits"))
}

/// Where `.wh.NAME` in the directory `parts` names: refused when NAME
/// would leave its directory or name nothing.
fn whiteout_key(parts: &[Vec<u8>], name: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    match name {
        b"" | b"." => Err("is a whiteout that names its own directory".into()),
        b".." => Err("is a whiteout that names '..', outside its directory".into()),
        n if n.starts_with(WHITEOUT) => Err(format!(
            "is a whiteout of the unsupported kind '{}'",
            printable(n)
        )),
        n => {
            let mut key = parts[..parts.len() - 1].to_vec();
            key.push(n.to_vec());
            Ok(key)
        }
    }
}

/// What a (non-whiteout) entry is in the layer, its data stored; `None`
/// for a device node under /dev, which is skipped; `Err` with the reason
/// the entry is refused.
fn kind_of(
    header: &Header,
    reader: &mut TarReader<Box<dyn Read + '_>>,
    budget: &mut Budget,
    entries: &Entries,
    objects: &ObjectWriter<'_>,
) -> Result<Result<Option<LayerKind>, String>> {
    Ok(Ok(Some(match header.kind {
        Kind::File => {
            if let Err(reason) = budget.file(header.size) {
                return Ok(Err(reason));
            }
            let origin = PathBuf::from(os(&header.path));
            let executable = header.mode & 0o111 != 0;
            let (content, size) = match objects.add_stream(&mut reader.data(), executable, &origin)
            {
                Ok(stored) => stored,
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::InvalidData => {
                    return Ok(Err(format!("is cut short: {source}")));
                }
                Err(other) => return Err(other),
            };
            LayerKind::File { content, size }
        }
        Kind::Dir => LayerKind::Dir,
        Kind::Symlink => {
            if header.link.is_empty() {
                return Ok(Err("is a symlink without a target".into()));
            }
            if let Err(reason) = budget.symlink(&header.link) {
                return Ok(Err(reason));
            }
            LayerKind::Symlink(header.link.clone())
        }
        Kind::Hardlink => {
            let target = normalise_entry_name(&header.link).ok();
            let key: Option<Vec<Vec<u8>>> =
                target.map(|parts| parts.into_iter().map(<[u8]>::to_vec).collect());
            match key.as_ref().and_then(|k| entries.get(k)) {
                Some(LayerEntry {
                    kind: LayerKind::File { size, .. },
                    path,
                    ..
                }) => {
                    if let Err(reason) = budget.file(*size) {
                        return Ok(Err(reason));
                    }
                    LayerKind::Hardlink {
                        target: path.clone(),
                        size: *size,
                    }
                }
                _ => {
                    return Ok(Err(format!(
                        "is a hardlink to '{}', which is not an earlier regular file of this layer",
                        printable(&header.link)
                    )))
                }
            }
        }
        Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => {
            return Ok(super::special_file(&header.path));
        }
        Kind::Sparse => return Ok(Err("is a sparse file, which is not supported".into())),
        Kind::Other(byte) => {
            return Ok(Err(format!(
                "has the unsupported entry type '{}'",
                printable(&[byte])
            )))
        }
    })))
}
