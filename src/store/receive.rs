//! Slices that arrive from a peer (`sandbox --on`, `slice-push`,
//! `slice-pull`): a manifest, a listing and the content of only the files
//! the store lacks. The peer is a stranger: every path of its listing is
//! checked as an archive's entry is (`..`, empty parts, limits), the
//! listing must hash to the manifest's tree and the manifest to the slice
//! digest the peer offered, and every object is hashed as it arrives and
//! refused unless it is the content the listing names. The slice is then
//! built and published with the steps of a local add: staging under
//! `tmp/`, one syncfs, objects, then the slice by a rename, so a receive
//! cut off at any point leaves only garbage that slice-gc removes.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::Path;

use super::limits::{Budget, Limits};
use super::listing::{self, Entry};
use super::objects::ObjectWriter;
use super::staged::{materialise, Stage};
use super::tree::{tree_digest, Node};
use super::{fsutil, Error, IoContext, Manifest, Result, Store};
use crate::digest::Digest;

/// A slice a peer described, checked to be the slice it claims to be.
#[derive(Debug)]
pub struct Incoming {
    pub digest: Digest,
    manifest: Manifest,
    entries: Vec<Entry>,
    tree: Node,
}

/// One file whose content a receive may need, in listing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireFile {
    pub content: Digest,
    pub executable: bool,
    pub size: u64,
}

impl Incoming {
    /// Checks what a peer sent for slice `digest`: the manifest hashes to
    /// it, the listing to the manifest's tree, and every entry is one an
    /// add would take under `limits`.
    pub fn check(
        digest: &Digest,
        manifest: &[u8],
        listing_bytes: &[u8],
        limits: Limits,
    ) -> Result<Incoming> {
        let refuse = |reason: String| Error::BadSource {
            source_name: format!("slice {digest} from the peer"),
            reason,
        };
        let manifest =
            Manifest::parse(manifest).map_err(|e| refuse(format!("its manifest: {e}")))?;
        if manifest.slice_digest() != *digest {
            return Err(refuse(format!(
                "its manifest hashes to {}, not to the slice offered",
                manifest.slice_digest()
            )));
        }
        super::validate_mount_point(&manifest.mount_point)?;
        for entry in &manifest.env {
            crate::env::check_slice_entry(entry.as_bytes())
                .map_err(|reason| refuse(format!("its environment entry: {reason}")))?;
        }
        let entries = listing::parse(listing_bytes)
            .ok_or_else(|| refuse("its listing is malformed".into()))?;
        let mut budget = Budget::new(limits);
        for entry in &entries {
            check_entry(entry, &mut budget).map_err(|reason| {
                refuse(format!(
                    "its entry '{}' {reason}",
                    super::printable(&entry.path)
                ))
            })?;
        }
        let tree = listing::to_tree(&entries)
            .ok_or_else(|| refuse("its listing names an entry twice or below a file".into()))?;
        if tree_digest(&tree) != manifest.tree {
            return Err(refuse(
                "its listing does not hash to the tree its manifest names".into(),
            ));
        }
        if tree.count() != (manifest.files, manifest.bytes) {
            return Err(refuse(
                "its manifest's file and byte counts are not its listing's".into(),
            ));
        }
        Ok(Incoming {
            digest: *digest,
            manifest,
            entries,
            tree,
        })
    }

    /// The files with content (empty files are no objects), in listing
    /// order: the order in which a peer sends the ones asked for.
    pub fn files(&self) -> impl Iterator<Item = WireFile> + '_ {
        wire_files(&self.entries)
    }
}

/// The files with content of a listing, in its order.
pub fn wire_files(entries: &[Entry]) -> impl Iterator<Item = WireFile> + '_ {
    entries.iter().filter_map(|entry| match entry.node {
        Node::File {
            content,
            executable,
            size,
        } if size > 0 => Some(WireFile {
            content,
            executable,
            size,
        }),
        _ => None,
    })
}

/// One listing entry from a peer: a normalised relative path (no empty,
/// `.` or `..` part, no NUL), within the limits an add applies.
fn check_entry(entry: &Entry, budget: &mut Budget) -> std::result::Result<(), String> {
    let parts: Vec<&[u8]> = entry.path.split(|c| *c == b'/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == b"." || *p == b".." || p.contains(&0))
    {
        return Err("is not a normalised relative path".into());
    }
    budget.entry(&parts)?;
    match &entry.node {
        Node::Symlink { target } => budget.symlink(target),
        Node::File { size, .. } => budget.file(*size),
        Node::Dir(_) => Ok(()),
    }
}

impl Store {
    /// Whether slice `digest` is stored whole.
    pub fn has_slice(&self, digest: &Digest) -> bool {
        self.manifest(digest).is_ok() && self.slice_tree(digest).is_dir()
    }

    /// For each file of `incoming`, in order, whether the peer must send
    /// it: the store lacks its object and no earlier file brings it.
    pub fn objects_needed(&self, incoming: &[Incoming]) -> Vec<bool> {
        let mut asked = HashSet::new();
        incoming
            .iter()
            .flat_map(Incoming::files)
            .map(|file| {
                let stored = fs::symlink_metadata(self.object_path(&file.content, file.executable))
                    .is_ok_and(|meta| meta.is_file() && meta.len() == file.size);
                !stored && asked.insert((file.content, file.executable))
            })
            .collect()
    }

    /// Stores `incoming`: `objects` holds the content of each file that
    /// `needed` marks, one after the other in listing order. Each object is
    /// hashed as it is written and refused unless it is what the listing
    /// names. Returns the bytes of object data written.
    pub fn receive(
        &self,
        incoming: &[Incoming],
        needed: &[bool],
        objects: &mut dyn Read,
    ) -> Result<u64> {
        // Shared for the whole receive: gc cannot delete an object this
        // receive found stored and is about to link.
        let _lock = self.lock_shared()?;
        let stage = Stage::create(self)?;
        let writer = ObjectWriter::new(self, &stage.path)?;
        let origin = Path::new("the peer's object stream");
        let mut marks = needed.iter();
        for slice in incoming {
            for file in slice.files() {
                if !marks.next().copied().unwrap_or(false) {
                    continue;
                }
                let mut one = objects.take(file.size);
                let (content, size) = writer.add_stream(&mut one, file.executable, origin)?;
                if (content, size) != (file.content, file.size) {
                    return Err(Error::BadSource {
                        source_name: format!("slice {} from the peer", slice.digest),
                        reason: format!(
                            "an object arrived as {size} bytes hashing to {content}, not as the \
                             {} bytes of {} its listing names: it was damaged in flight, or the \
                             peer sent what it did not describe",
                            file.size, file.content
                        ),
                    });
                }
            }
        }
        let mut staged = Vec::new();
        for slice in incoming {
            let dir = stage.path.join(slice.digest.hex());
            fs::create_dir(&dir).at("create staging directory", &dir)?;
            materialise(&slice.tree, &dir.join("tree"), &writer)?;
            let listing_path = dir.join("listing");
            fs::write(&listing_path, listing::write(&slice.tree))
                .at("write listing", &listing_path)?;
            slice.manifest.write(&dir.join("manifest.json"))?;
            staged.push((dir, slice.digest));
        }
        super::crash_point("receive:staged");
        fsutil::sync_filesystem(self.root())?;
        writer.publish()?;
        super::crash_point("receive:objects-published");
        let trusted = writer.trusted_inodes();
        for (dir, digest) in &staged {
            self.publish_slice(dir, digest, &trusted)?;
        }
        super::crash_point("receive:slices-published");
        drop(stage);
        Ok(writer.written.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Store {
    /// What a peer needs to receive slice `digest`: its manifest and
    /// listing, as stored.
    pub fn wire_form(&self, digest: &Digest) -> Result<(Vec<u8>, Vec<u8>)> {
        let dir = self.slice_dir(digest);
        let manifest = dir.join("manifest.json");
        let listing = dir.join("listing");
        Ok((
            fs::read(&manifest).at("read manifest", &manifest)?,
            fs::read(&listing).at("read listing", &listing)?,
        ))
    }
}

impl Store {
    /// Points `name` at the stored slice `digest` (a name a peer gave).
    pub fn set_ref(&self, name: &str, digest: &Digest) -> Result<()> {
        super::refs::validate_name(name)?;
        super::refs::set(self, name, digest)
    }
}
