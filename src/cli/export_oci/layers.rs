//! The image's layer tars: a stored layer written back from its listing
//! (whiteouts as `.wh.NAME`, opaque dirs with `.wh..wh..opq`, modes,
//! owners and extended attributes as recorded), and a slice's tree under
//! its mount point. Each is streamed into its blob; file bytes are
//! checked against the digest the store lists them by.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use sha2::Sha256;

use super::layout::{Blob, BlobWriter, Staging};
use super::{failure, io_failure};
use crate::cli::sandbox::ComposedSlice;
use crate::cli::tar_write::{CopyError, Entry, TarWriter};
use crate::cli::Failure;
use crate::digest::Digest;
use crate::store::layer::listing::{LayerEntry, LayerKind};
use crate::store::{Node, Store};
use crate::text::printable_path;

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// A layer tar being written into its blob.
struct LayerTar<'a> {
    tar: TarWriter<BlobWriter>,
    staging: &'a Staging,
}

impl<'a> LayerTar<'a> {
    fn new(staging: &'a Staging) -> Result<LayerTar<'a>, Failure> {
        Ok(LayerTar {
            tar: TarWriter::new(staging.blob()?),
            staging,
        })
    }

    fn write_failure(&self, e: &std::io::Error) -> Failure {
        io_failure("write", self.tar.get_ref().path(), e)
    }

    fn entry(&mut self, entry: &Entry) -> Result<(), Failure> {
        self.tar.entry(entry).map_err(|e| self.write_failure(&e))
    }

    /// A file entry and its bytes from `source` (a store file), which
    /// must hash to `content`.
    fn file(&mut self, entry: &Entry, source: &Path, content: &Digest) -> Result<(), Failure> {
        self.entry(entry)?;
        if entry.size == 0 {
            return Ok(());
        }
        let damaged = |cause: String| {
            failure(format!(
                "cannot export '{}': {cause} (slice-verify names the damage; re-adding the source repairs it)",
                printable_path(source)
            ))
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(source)
            .map_err(|e| damaged(crate::text::io_cause(&e)))?;
        let mut hasher = <Sha256 as sha2::Digest>::new();
        match self.tar.copy_data(&mut file, entry.size, Some(&mut hasher)) {
            Ok(()) => {}
            Err(CopyError::Read(e)) => return Err(damaged(crate::text::io_cause(&e))),
            Err(CopyError::Short) => {
                return Err(damaged(format!(
                    "it is shorter than the {} bytes the store lists",
                    entry.size
                )))
            }
            Err(CopyError::Write(e)) => return Err(self.write_failure(&e)),
        }
        let read = Digest::from_hasher(hasher);
        if read != *content {
            return Err(damaged(format!(
                "its bytes hash to {read}, not to {content}"
            )));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Blob, Failure> {
        self.tar.finish().map_err(|e| self.write_failure(&e))?;
        self.staging.finish_blob(self.tar.into_inner())
    }
}

fn with_slash(path: &[u8]) -> Vec<u8> {
    let mut name = path.to_vec();
    name.push(b'/');
    name
}

/// A stored layer as an image layer. Entries come in listing order,
/// hardlinks last: a link may sort before its file, and tar readers
/// (layer-add among them) take a link only to an earlier file.
pub(super) fn stored_layer(
    store: &Store,
    staging: &Staging,
    layer: &Digest,
) -> Result<Blob, Failure> {
    let entries = store.layer_listing(layer)?;
    let is_link = |e: &&LayerEntry| matches!(e.kind, LayerKind::Hardlink { .. });
    let mut out = LayerTar::new(staging)?;
    for entry in entries.iter().filter(|e| !is_link(e)) {
        stored_entry(&mut out, store, entry)?;
    }
    for entry in entries.iter().filter(is_link) {
        stored_entry(&mut out, store, entry)?;
    }
    out.finish()
}

fn stored_entry(out: &mut LayerTar, store: &Store, e: &LayerEntry) -> Result<(), Failure> {
    let meta = Entry {
        name: &e.path,
        kind: b'0',
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        size: 0,
        link: b"",
        xattrs: &e.xattrs,
    };
    match &e.kind {
        LayerKind::Dir => out.entry(&Entry {
            name: &with_slash(&e.path),
            kind: b'5',
            ..meta
        }),
        LayerKind::OpaqueDir => {
            let dir = with_slash(&e.path);
            out.entry(&Entry {
                name: &dir,
                kind: b'5',
                ..meta
            })?;
            let marker = [dir.as_slice(), OPAQUE].concat();
            out.entry(&Entry::plain(&marker, b'0', 0, 0))
        }
        LayerKind::File { content, size } => {
            let object = store.object_path(content, e.mode & 0o111 != 0);
            let entry = Entry {
                size: *size,
                ..meta
            };
            out.file(&entry, &object, content)
        }
        LayerKind::Symlink(target) => out.entry(&Entry {
            kind: b'2',
            link: target,
            ..meta
        }),
        LayerKind::Hardlink { target, .. } => out.entry(&Entry {
            kind: b'1',
            link: target,
            ..meta
        }),
        LayerKind::Whiteout => {
            let (dir, name) = match e.path.iter().rposition(|b| *b == b'/') {
                Some(i) => (&e.path[..=i], &e.path[i + 1..]),
                None => (&e.path[..0], &e.path[..]),
            };
            let marked = [dir, WHITEOUT, name].concat();
            out.entry(&Entry {
                name: &marked,
                ..meta
            })
        }
    }
}

/// A slice as an image layer: the parents of its mount point (0755,
/// 0:0), the mount point marked opaque (the slice hides what lower
/// layers hold there, as its mount does in a stage), then its tree as
/// slice-export writes it. It depends on the tree and mount point alone.
pub(super) fn slice_layer(
    store: &Store,
    staging: &Staging,
    slice: &ComposedSlice,
) -> Result<Blob, Failure> {
    let listing = store.listing(&slice.digest)?;
    let at = slice.mount_point.as_os_str().as_bytes();
    let at = at.strip_prefix(b"/").unwrap_or(at);
    let mut out = LayerTar::new(staging)?;
    for (end, _) in at.iter().enumerate().filter(|(_, b)| **b == b'/') {
        out.entry(&Entry::plain(&with_slash(&at[..end]), b'5', 0o755, 0))?;
    }
    let root = with_slash(at);
    out.entry(&Entry::plain(&root, b'5', 0o755, 0))?;
    out.entry(&Entry::plain(
        &[root.as_slice(), OPAQUE].concat(),
        b'0',
        0,
        0,
    ))?;
    for entry in &listing {
        let name = [root.as_slice(), &entry.path].concat();
        match &entry.node {
            Node::Dir(_) => out.entry(&Entry::plain(&with_slash(&name), b'5', 0o755, 0))?,
            Node::File {
                content,
                executable,
                size,
            } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                let source = slice.tree.join(std::ffi::OsStr::from_bytes(&entry.path));
                out.file(&Entry::plain(&name, b'0', mode, *size), &source, content)?;
            }
            Node::Symlink { target } => out.entry(&Entry {
                link: target,
                ..Entry::plain(&name, b'2', 0o777, 0)
            })?,
        }
    }
    out.finish()
}
