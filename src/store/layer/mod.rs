//! Layers: the horizontal parts of a stage, from container images or an
//! OverlayFS upper dir. A layer is stored as a listing (listing.rs) whose
//! files are objects of the same store as slices; a name points at a
//! layer stack, the layers bottom first and an image's config.
//!
//! ```text
//! $SLICEBOX_STORE/
//!   layers/<hex>              a layer's listing; <hex> is its sha256
//!   layer-stacks/<hex>.json   layer digests bottom first, and a config
//!   layer-blobs/<hex>         blob digest (as read) -> layer digest
//!   layer-refs/<name>         the stack a name points at, then its history
//!   layer-trees/<hex>/        the layer as a tree, OverlayFS's lower dir
//! ```
//!
//! An add publishes objects, then the layer's tree, then its listing,
//! then the stack, then the ref, each by a rename, so a crash leaves the
//! old state or the new one (and at worst a tree gc removes).

mod from_tar;
mod from_upper;
pub mod listing;
pub mod mounts;
mod tree;

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::listing::{Entries, LayerEntry, LayerKind};
use super::archive_source::{open_input, Input};
use super::at;
use super::fsutil::{self, sync_dir, write_durably};
use super::limits::Limits;
use super::objects::ObjectWriter;
use super::progress::{Progress, ProgressSink};
use super::staged::Stage;
use super::{crash_point, refs, Error, IoContext, Result, Store};
use crate::digest::Digest;

/// Where one layer's content comes from.
#[derive(Debug, Clone)]
pub enum LayerInput {
    /// A layer tarball (`.tar`, `.tar.gz`, `.tar.zst`), by its bytes.
    Archive(PathBuf),
    /// A tar stream on an open descriptor.
    Stream(std::os::fd::RawFd),
    /// An OverlayFS upper dir: 0/0 character devices are whiteouts, dirs
    /// with `user.overlay.opaque` or `trusted.overlay.opaque` opaque.
    Upper(PathBuf),
    /// One layer of an image (`image::open_image`): its bytes must hash
    /// to the blob digest its manifest names, or nothing is added.
    Blob(crate::store::image::LayerBlob),
}

/// One layer of a stack to add.
#[derive(Debug, Clone)]
pub struct LayerSource {
    pub input: LayerInput,
    /// How messages name it.
    pub name: String,
    /// Digests the caller knows the layer's blob by (an OCI manifest's
    /// layer digest): one that maps to a stored layer spares the read.
    /// Only a digest this add computes itself is recorded, so a manifest
    /// that lies cannot point a digest at another layer.
    pub known_digests: Vec<Digest>,
}

/// The parts of an image's config a stage uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
}

/// What a name points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStack {
    /// Bottom first.
    pub layers: Vec<Digest>,
    pub config: Option<ImageConfig>,
}

impl LayerStack {
    fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a stack serialises")
    }

    pub fn digest(&self) -> Digest {
        Digest::of(&self.bytes())
    }
}

/// What `add_layer_stack` did, layer by layer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LayersAdded {
    pub stack: Option<Digest>,
    pub layers: Vec<LayerAdded>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerAdded {
    pub digest: Digest,
    /// Whether the layer was stored already (and not read again).
    pub reused: bool,
    /// Device nodes under /dev left out (every stage has its own /dev).
    pub devices_skipped: u64,
    pub written_bytes: u64,
}

/// A layer's entries as read, before they are stored.
#[derive(Default)]
pub(crate) struct Collected {
    pub(crate) entries: Entries,
    pub(crate) devices_skipped: u64,
}

/// Extended attributes no layer may carry: OverlayFS's own, which would
/// steer the mount (redirects, metacopy, opacity) from a stranger's tar.
fn check_entry_meta(entry: &LayerEntry) -> Result<(), String> {
    for (name, _) in &entry.xattrs {
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            return Err(format!(
                "carries the OverlayFS attribute '{}', which only slicebox sets",
                super::printable(name)
            ));
        }
    }
    Ok(())
}

/// A whiteout's mode and owner say nothing (OverlayFS reads only that it
/// is one), so every whiteout has 0 and 0:0: the same deletion is the
/// same entry whether it came as `.wh.NAME` or as an upper dir's device.
fn normalise_whiteout(entry: &mut LayerEntry) {
    if entry.kind == LayerKind::Whiteout {
        (entry.mode, entry.uid, entry.gid) = (0, 0, 0);
    }
}

/// A device node or fifo at `path`: skipped under /dev, refused elsewhere.
fn special_file(path: &[u8]) -> Result<Option<LayerKind>, String> {
    let parts = super::archive_source::normalise_entry_name(path).unwrap_or_default();
    match parts.first() {
        Some(&b"dev") if parts.len() > 1 => Ok(None),
        _ => Err("is a device node or fifo outside /dev".into()),
    }
}

/// Marks the directory `dir` opaque: one the layer lists, or one made for
/// the marker (0755, root's, as a tar that omits parents has them).
fn make_opaque(entries: &mut Entries, dir: Vec<Vec<u8>>) -> Result<(), String> {
    let path = dir.join(&b'/');
    let entry = entries.entry(dir).or_insert(LayerEntry {
        path,
        kind: LayerKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        xattrs: Vec::new(),
    });
    match entry.kind {
        LayerKind::Dir | LayerKind::OpaqueDir => {
            entry.kind = LayerKind::OpaqueDir;
            Ok(())
        }
        _ => Err("marks as opaque something that is not a directory".into()),
    }
}

/// Checks what each entry lies below in the layer: a directory, or
/// nothing of this layer (a lower layer's directory). Returns the path
/// and the reason of the first entry that lies below anything else.
fn check_tree(entries: &Entries) -> Result<(), (Vec<u8>, String)> {
    for (key, entry) in entries {
        for depth in (1..key.len()).rev() {
            let Some(above) = entries.get(&key[..depth]) else {
                continue;
            };
            let what = match above.kind {
                LayerKind::Dir | LayerKind::OpaqueDir => break,
                LayerKind::Symlink(_) => "a symlink",
                LayerKind::Whiteout => "a whiteout",
                _ => "a file",
            };
            return Err((
                entry.path.clone(),
                format!("lies below {what} of the layer"),
            ));
        }
    }
    Ok(())
}

/// The files of `dir` whose names `live` does not accept.
fn unused_files(dir: &Path, live: &dyn Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).at("read directory", dir)? {
        let entry = entry.at("read directory", dir)?;
        if !entry.file_name().to_str().is_some_and(live) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// An image's layer blob, read as any layer tarball (the same decoding,
/// limits and expansion ratio), then held to the digest its manifest
/// names: a blob that is not what the manifest says adds nothing.
fn read_blob(
    blob: &crate::store::image::LayerBlob,
    name: &str,
    limits: Limits,
    objects: &ObjectWriter<'_>,
    progress: &Progress,
) -> Result<(Collected, Option<Digest>)> {
    let input = blob.open().map_err(|e| Error::BadSource {
        source_name: name.to_string(),
        reason: crate::text::io_cause(&e),
    })?;
    let (collected, read) = from_tar::read_layer(input, name, limits, objects, progress)?;
    if read != blob.digest {
        return Err(Error::BadSource {
            source_name: name.to_string(),
            reason: format!(
                "its bytes hash to {read}, not to the digest {} the manifest names",
                blob.digest
            ),
        });
    }
    Ok((collected, Some(read)))
}

/// Every file of `entries` that is an object, with its executable bit.
fn object_keys(entries: &[LayerEntry]) -> impl Iterator<Item = (Digest, bool)> + '_ {
    entries.iter().filter_map(|e| match e.kind {
        LayerKind::File { content, size } if size > 0 => Some((content, e.mode & 0o111 != 0)),
        _ => None,
    })
}

impl Store {
    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn stacks_dir(&self) -> PathBuf {
        self.root.join("layer-stacks")
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("layer-blobs")
    }

    fn layer_refs_dir(&self) -> PathBuf {
        self.root.join("layer-refs")
    }

    fn layer_trees_dir(&self) -> PathBuf {
        self.root.join("layer-trees")
    }

    /// The tree of `layer` that a stage's OverlayFS takes as a lower dir.
    pub fn layer_tree(&self, layer: &Digest) -> PathBuf {
        self.layer_trees_dir().join(layer.hex())
    }

    /// Makes `layer`'s tree from its listing where it is missing (a
    /// store from before layers had trees, or a tree gc removed after a
    /// crash), under the shared lock.
    fn ensure_layer_tree(&self, layer: &Digest, entries: Option<&Entries>) -> Result<()> {
        let final_path = self.layer_tree(layer);
        if final_path.is_dir() {
            return Ok(());
        }
        let stage = Stage::create(self)?;
        let objects = ObjectWriter::new(self, &stage.path)?;
        let staged = stage.path.join("tree");
        match entries {
            Some(entries) => tree::materialise(entries.values(), &staged, &objects)?,
            None => {
                let listed = self.layer_listing(layer)?;
                tree::materialise(listed.iter(), &staged, &objects)?;
            }
        }
        fsutil::sync_filesystem(self.root())?;
        objects.publish()?;
        match fs::rename(&staged, &final_path) {
            // Another add of the same layer made it meanwhile.
            Err(_) if final_path.is_dir() => {}
            renamed => renamed.at("publish layer tree", &final_path)?,
        }
        sync_dir(&self.layer_trees_dir())?;
        crash_point("layer-add:tree-published");
        Ok(())
    }

    fn make_layer_dirs(&self) -> Result<()> {
        for dir in [
            self.layers_dir(),
            self.stacks_dir(),
            self.blobs_dir(),
            self.layer_refs_dir(),
            self.layer_trees_dir(),
        ] {
            fs::create_dir_all(&dir).at("create store directory", &dir)?;
        }
        Ok(())
    }

    /// Adds `sources` as layers, bottom first, and points `name` at the
    /// stack they make with `config`. A layer whose blob this store has
    /// read before is not read again.
    pub fn add_layer_stack(
        &self,
        name: &str,
        sources: &[LayerSource],
        config: Option<ImageConfig>,
        limits: Limits,
        progress: Option<ProgressSink>,
    ) -> Result<LayersAdded> {
        refs::validate_name(name)?;
        self.make_layer_dirs()?;
        let _lock = self.lock_shared()?;
        let mut added = LayersAdded::default();
        for source in sources {
            added
                .layers
                .push(self.add_layer(source, limits, progress.clone())?);
        }
        let stack = LayerStack {
            layers: added.layers.iter().map(|l| l.digest).collect(),
            config,
        };
        let digest = stack.digest();
        let file = format!("{}.json", digest.hex());
        if !self.stacks_dir().join(&file).exists() {
            write_durably(
                &self.stacks_dir(),
                &file,
                &stack.bytes(),
                "write layer stack",
            )?;
        }
        crash_point("layer-add:stack-written");
        self.set_layer_ref(name, &digest)?;
        crash_point("layer-add:ref-written");
        added.stack = Some(digest);
        Ok(added)
    }

    /// The stored layer a blob digest maps to, if it is stored still.
    fn known_layer(&self, blob: &Digest) -> Option<Digest> {
        let text = fsutil::read_small(&self.blobs_dir().join(blob.hex())).ok()?;
        let layer: Digest = text.trim().parse().ok()?;
        self.layers_dir()
            .join(layer.hex())
            .is_file()
            .then_some(layer)
    }

    fn add_layer(
        &self,
        source: &LayerSource,
        limits: Limits,
        progress: Option<ProgressSink>,
    ) -> Result<LayerAdded> {
        let reused = |digest| -> Result<LayerAdded> {
            self.ensure_layer_tree(&digest, None)?;
            Ok(LayerAdded {
                digest,
                reused: true,
                devices_skipped: 0,
                written_bytes: 0,
            })
        };
        if let Some(layer) = source
            .known_digests
            .iter()
            .find_map(|d| self.known_layer(d))
        {
            return reused(layer);
        }
        if let LayerInput::Archive(path) = &source.input {
            let blob = super::maintenance::file_digest(path).at("read", path)?;
            if let Some(layer) = self.known_layer(&blob) {
                return reused(layer);
            }
        }
        let stage = Stage::create(self)?;
        let objects = ObjectWriter::new(self, &stage.path)?;
        let progress = Progress::start(progress);
        let read = match &source.input {
            LayerInput::Upper(dir) => {
                from_upper::read_upper(dir, &source.name, limits, &objects, &progress)
                    .map(|c| (c, None))
            }
            LayerInput::Archive(path) => {
                let input = open_input(Input::File(path))?;
                from_tar::read_layer(input, &source.name, limits, &objects, &progress)
                    .map(|(c, blob)| (c, Some(blob)))
            }
            LayerInput::Stream(fd) => {
                let input = open_input(Input::Fd(*fd))?;
                from_tar::read_layer(input, &source.name, limits, &objects, &progress)
                    .map(|(c, blob)| (c, Some(blob)))
            }
            LayerInput::Blob(blob) => read_blob(blob, &source.name, limits, &objects, &progress),
        };
        progress.finish();
        let (collected, blob) = read?;
        let bytes = listing::write(&collected.entries);
        let digest = Digest::of(&bytes);
        crash_point("layer-add:staged");
        fsutil::sync_filesystem(self.root())?;
        objects.publish()?;
        crash_point("layer-add:objects-published");
        self.ensure_layer_tree(&digest, Some(&collected.entries))?;
        if !self.layers_dir().join(digest.hex()).is_file() {
            write_durably(&self.layers_dir(), &digest.hex(), &bytes, "write layer")?;
        }
        crash_point("layer-add:layer-written");
        if let Some(blob) = blob {
            let text = format!("{digest}\n");
            write_durably(
                &self.blobs_dir(),
                &blob.hex(),
                text.as_bytes(),
                "write layer blob",
            )?;
        }
        Ok(LayerAdded {
            digest,
            reused: false,
            devices_skipped: collected.devices_skipped,
            written_bytes: objects.written.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    fn set_layer_ref(&self, name: &str, stack: &Digest) -> Result<()> {
        let dir = self.layer_refs_dir();
        let _guard = refs::lock_dir(&dir)?;
        let mut history = refs::read_in(&dir, name)?;
        if history.first() == Some(stack) {
            return Ok(());
        }
        history.insert(0, *stack);
        refs::write_in(&dir, name, &history)
    }

    /// Every layer name and the stack it points at, sorted by name.
    pub fn layer_names(&self) -> Result<Vec<(String, Digest)>> {
        let dir = self.layer_refs_dir();
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for name in refs::names_in(&dir)? {
            if let Some(current) = refs::read_in(&dir, &name)?.first() {
                out.push((name, *current));
            }
        }
        Ok(out)
    }

    /// The stack `reference` names: a name, NAME@N, or a full digest.
    pub fn resolve_layers(&self, reference: &str) -> Result<Digest> {
        let not_found = || Error::NoLayer {
            reference: reference.to_string(),
            store: self.root.clone(),
        };
        let (name, back) = match reference.rsplit_once('@') {
            Some((name, n)) => (name, n.parse::<usize>().map_err(|_| not_found())?),
            None => (reference, 0),
        };
        if refs::validate_name(name).is_ok() && self.layer_refs_dir().is_dir() {
            if let Some(found) = refs::read_in(&self.layer_refs_dir(), name)?.get(back) {
                return Ok(*found);
            }
        }
        match reference.parse::<Digest>() {
            Ok(d)
                if self
                    .stacks_dir()
                    .join(format!("{}.json", d.hex()))
                    .is_file() =>
            {
                Ok(d)
            }
            _ => Err(not_found()),
        }
    }

    pub fn layer_stack(&self, stack: &Digest) -> Result<LayerStack> {
        let path = self.stacks_dir().join(format!("{}.json", stack.hex()));
        let bytes = fs::read(&path).at("read layer stack", &path)?;
        let corrupt = |reason: String| Error::Corrupt {
            path: path.clone(),
            reason,
        };
        if Digest::of(&bytes) != *stack {
            return Err(corrupt("its content does not match its digest".into()));
        }
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))
    }

    /// A stored layer's entries, checked against its digest.
    pub fn layer_listing(&self, layer: &Digest) -> Result<Vec<LayerEntry>> {
        let path = self.layers_dir().join(layer.hex());
        let bytes = fs::read(&path).at("read layer", &path)?;
        let corrupt = |reason: &str| Error::Corrupt {
            path: path.clone(),
            reason: reason.into(),
        };
        if Digest::of(&bytes) != *layer {
            return Err(corrupt("its listing does not match its digest"));
        }
        listing::parse(&bytes).ok_or_else(|| corrupt("its listing is malformed"))
    }

    /// Removes a layer name and its history; layer-gc (slice-gc) frees
    /// what only it used.
    pub fn remove_layer_name(&self, name: &str) -> Result<bool> {
        refs::validate_name(name)?;
        let dir = self.layer_refs_dir();
        if !dir.is_dir() {
            return Ok(false);
        }
        let _guard = refs::lock_dir(&dir)?;
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&dir).map(|()| true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).at("remove layer ref", &path),
        }
    }

    /// The stacks every layer name points at now, and their layers.
    fn live_layers(&self) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let stacks: HashSet<Digest> = self.layer_names()?.into_iter().map(|(_, d)| d).collect();
        let mut layers = HashSet::new();
        for stack in &stacks {
            layers.extend(self.layer_stack(stack)?.layers);
        }
        Ok((stacks, layers))
    }

    /// The objects the layers that names point at use (gc keeps them).
    pub(crate) fn live_layer_objects(&self) -> Result<HashSet<(Digest, bool)>> {
        let mut keep = HashSet::new();
        for layer in self.live_layers()?.1 {
            keep.extend(object_keys(&self.layer_listing(&layer)?));
        }
        Ok(keep)
    }

    /// For gc, under the exclusive lock: drops layer ref history and
    /// removes the blob records, stacks and layers no name uses, and the
    /// trees of those no running stage has pinned either; returns how
    /// many files and trees went.
    pub(crate) fn sweep_layers(&self, pinned: &HashSet<Digest>) -> Result<u64> {
        let dir = self.layer_refs_dir();
        if !dir.is_dir() {
            return Ok(0);
        }
        {
            let _guard = refs::lock_dir(&dir)?;
            for name in refs::names_in(&dir)? {
                let history = refs::read_in(&dir, &name)?;
                if history.len() > 1 {
                    refs::write_in(&dir, &name, &history[..1])?;
                }
            }
        }
        let (live_stacks, live_layers) = self.live_layers()?;
        let hex_in = |set: &HashSet<Digest>, hex: &str| {
            Digest::from_hex(hex).is_some_and(|d| set.contains(&d))
        };
        // Blob records first: none points at a removed layer meanwhile.
        let blobs = unused_files(&self.blobs_dir(), &|name| {
            fsutil::read_small(&self.blobs_dir().join(name))
                .ok()
                .and_then(|t| t.trim().parse::<Digest>().ok())
                .is_some_and(|d| live_layers.contains(&d))
        })?;
        let stacks = unused_files(&self.stacks_dir(), &|name| {
            name.strip_suffix(".json")
                .is_some_and(|hex| hex_in(&live_stacks, hex))
        })?;
        let layers = unused_files(&self.layers_dir(), &|name| hex_in(&live_layers, name))?;
        let mut removed = 0;
        for path in blobs.iter().chain(&stacks).chain(&layers) {
            fs::remove_file(path).at("remove", path)?;
            crash_point("gc:one-layer-file-removed");
            removed += 1;
        }
        // A tree goes after its listing: a crash between leaves a tree
        // the next gc removes, never a listing without its tree.
        if !self.layer_trees_dir().is_dir() {
            return Ok(removed);
        }
        let trees = unused_files(&self.layer_trees_dir(), &|name| {
            hex_in(&live_layers, name) || hex_in(pinned, name)
        })?;
        for path in &trees {
            // Out of layer-trees/ by one rename: a crash mid-removal
            // leaves no half tree that a later add would take as made.
            let doomed = self
                .tmp_dir()
                .join(format!("doomed-{}", fsutil::unique_suffix()));
            fs::rename(path, &doomed).at("remove", path)?;
            crash_point("gc:layer-tree-moved");
            at::remove_tree(&doomed).at("remove", &doomed)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Checks every stored layer: listing against digest, and each file
    /// object present with the content the listing names.
    pub(crate) fn verify_layers(&self) -> Result<Vec<(PathBuf, String)>> {
        let mut damage = Vec::new();
        if !self.layers_dir().is_dir() {
            return Ok(damage);
        }
        for entry in fs::read_dir(self.layers_dir()).at("read directory", &self.layers_dir())? {
            let path = entry.at("read directory", &self.layers_dir())?.path();
            let Some(layer) = path.file_name().and_then(|n| Digest::from_hex(n.to_str()?)) else {
                continue;
            };
            let entries = match self.layer_listing(&layer) {
                Ok(e) => e,
                Err(e) => {
                    damage.push((path, e.to_string()));
                    continue;
                }
            };
            // slice-verify re-hashes every object; here, that each is there.
            for (content, executable) in object_keys(&entries) {
                let object = self.object_path(&content, executable);
                if !fs::symlink_metadata(&object).is_ok_and(|m| m.is_file()) {
                    let problem = format!("is missing, and the layer {layer} lists it");
                    damage.push((object, problem));
                }
            }
        }
        Ok(damage)
    }
}
