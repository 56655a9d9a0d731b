//! What keeps a store trustworthy and tells the user what it holds:
//! slice-rm, slice-tag, slice-gc, slice-verify, slice-diff, usage figures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::fsutil::{self, sync_dir};
use super::listing::{self, Entry};
use super::objects::hash_rest;
use super::tree::Node;
use super::{at, refs, Error, IoContext, Result, Store};
use crate::digest::Digest;

/// One problem `slice-verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub path: PathBuf,
    pub problem: String,
    /// The slice whose tree holds `path`, if any.
    pub slice: Option<Digest>,
}

impl Damage {
    pub(crate) fn at(path: &Path, problem: String) -> Damage {
        Damage {
            path: path.to_path_buf(),
            problem,
            slice: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub slices_removed: u64,
    pub objects_removed: u64,
    pub bytes_freed: u64,
    pub history_pruned: bool,
    /// `--cache` entries whose output is no longer named.
    pub cache_entries_removed: u64,
    /// Entries of `tmp/` that killed commands left: staging dirs, the
    /// `--out` dirs of stages that were killed, an earlier gc's trash.
    pub leftovers_removed: u64,
    /// Layers, layer stacks and blob records no layer name uses.
    pub layer_files_removed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `added`, `removed` or `changed`.
    pub kind: &'static str,
    /// The entry's path below the slice root, as stored (raw bytes).
    pub path: Vec<u8>,
}

/// Shared and unique bytes of one slice, among all stored slices.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SliceUsage {
    pub shared_bytes: u64,
    pub unique_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStats {
    /// Where the store is (printable).
    pub store: String,
    pub slices: u64,
    pub names: u64,
    pub objects: u64,
    /// Bytes of file contents on disk (objects and slice trees), each inode
    /// counted once.
    pub disk_bytes: u64,
    /// Bytes of manifests, listings, refs and pins.
    pub metadata_bytes: u64,
    /// What every stored slice holds, counting each file of each slice.
    pub logical_bytes: u64,
    /// Distinct file contents of every stored slice, each counted once.
    pub distinct_content_bytes: u64,
    /// What `slice-gc` would free now: the file contents of what it would
    /// remove (slices, objects, leftovers in `tmp/`), each inode counted
    /// once and only when every link to it goes.
    pub reclaimable_bytes: u64,
}

/// How objects are keyed: content and the executable bit.
pub(crate) type ObjectKey = (Digest, bool);

/// An object file found on disk: its key and path.
struct StoredObject {
    key: ObjectKey,
    path: PathBuf,
}

/// What gc removes, once history is pruned: every slice that no name and
/// no running stage uses, every object no kept slice lists, and the
/// leftovers in `tmp/`.
struct Sweep {
    /// The slices kept.
    live: HashSet<Digest>,
    slices: Vec<Digest>,
    objects: Vec<StoredObject>,
    leftovers: Vec<PathBuf>,
}

/// (content, executable) of every non-empty file of a listing.
fn object_keys(entries: &[Entry]) -> impl Iterator<Item = (ObjectKey, u64)> + '_ {
    entries.iter().filter_map(|e| match e.node {
        Node::File {
            content,
            executable,
            size,
        } if size > 0 => Some(((content, executable), size)),
        _ => None,
    })
}

/// Parses an object's file name back into its key.
pub(crate) fn object_key(fanout: &str, name: &str) -> Option<ObjectKey> {
    let (rest, executable) = match name.strip_suffix(".x") {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    Some((Digest::from_hex(&format!("{fanout}{rest}"))?, executable))
}

/// A file's content digest, as objects are named (verify, `--cache`).
pub fn file_digest(path: &Path) -> io::Result<Digest> {
    hash_rest_of(File::open(path)?)
}

pub(crate) fn hash_rest_of(mut file: File) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    hash_rest(&mut file, &mut hasher)?;
    Ok(Digest::from_hasher(hasher))
}

impl Store {
    pub fn listing(&self, slice: &Digest) -> Result<Vec<Entry>> {
        let path = self.slice_dir(slice).join("listing");
        let bytes = fs::read(&path).at("read listing", &path)?;
        listing::parse(&bytes).ok_or_else(|| Error::Corrupt {
            path,
            reason: "the listing is malformed".into(),
        })
    }

    /// Every object on disk.
    fn objects_on_disk(&self) -> Result<Vec<StoredObject>> {
        let dir = self.objects_dir();
        let mut out = Vec::new();
        for fanout in fs::read_dir(&dir).at("read directory", &dir)? {
            let fanout = fanout.at("read directory", &dir)?;
            let fanout_name = fanout.file_name().to_string_lossy().into_owned();
            for object in fs::read_dir(fanout.path()).at("read directory", &fanout.path())? {
                let object = object.at("read directory", &fanout.path())?;
                if let Some(key) = object_key(&fanout_name, &object.file_name().to_string_lossy()) {
                    out.push(StoredObject {
                        key,
                        path: object.path(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Removes `reference`: a name (with its history), or every name that
    /// points at a digest. The slice's data goes at the next gc.
    /// A digest prefix is never enough here: a typo must not fall through
    /// to a slice whose digest happens to start with it.
    pub fn remove(&self, reference: &str) -> Result<Vec<String>> {
        if refs::validate_name(reference).is_ok() && refs::remove(self, reference)? {
            return Ok(vec![reference.to_string()]);
        }
        let digest = self.resolve_exact(reference, "slice-rm")?;
        let mut removed = Vec::new();
        for (name, current) in refs::list(self)? {
            if current == digest && refs::remove(self, &name)? {
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Points `name` at what `reference` resolves to: a name, `NAME@N` or
    /// a full digest, never a prefix (this repoints a name).
    pub fn tag(&self, reference: &str, name: &str) -> Result<Digest> {
        refs::validate_name(name)?;
        let digest = self.resolve_exact(reference, "slice-tag")?;
        refs::set(self, name, &digest)?;
        Ok(digest)
    }

    /// Mark from refs and pins, then sweep slices, objects and staging
    /// leftovers. Each removal is atomic on its own (a slice leaves
    /// `slices/` by one rename), so killing gc at any instant leaves a
    /// consistent store with less garbage.
    pub fn gc(&self) -> Result<GcReport> {
        let _lock = self.lock_exclusive()?;
        let mut report = GcReport::default();
        refs::prune_history(self)?;
        report.history_pruned = true;
        super::crash_point("gc:history-pruned");
        let pinned: HashSet<Digest> = self.live_pins(true)?.into_iter().collect();
        report.layer_files_removed = self.sweep_layers(&pinned)?;
        let sweep = self.sweep(&pinned)?;
        // A cache entry lives as long as a name keeps its output.
        report.cache_entries_removed = self.prune_cache(&sweep.live)?;
        report.bytes_freed = self.freed_bytes(&sweep)?;
        report.leftovers_removed = sweep.leftovers.len() as u64;
        for slice in &sweep.slices {
            // Unique: an earlier, killed gc may have left the same slice's trash.
            let trash =
                self.tmp_dir()
                    .join(format!("trash-{}-{}", slice.hex(), fsutil::unique_suffix()));
            let dir = self.slice_dir(slice);
            fs::rename(&dir, &trash).at("remove slice", &dir)?;
            super::crash_point("gc:one-slice-trashed");
            report.slices_removed += 1;
        }
        sync_dir(&self.slices_dir())?;
        for object in &sweep.objects {
            fs::remove_file(&object.path).at("remove object", &object.path)?;
            super::crash_point("gc:one-object-removed");
            report.objects_removed += 1;
        }
        super::crash_point("gc:objects-swept");
        // Read again: the trash of the slices just removed goes too.
        for path in self.leftovers(&pinned)? {
            at::remove_tree(&path).at("remove leftover", &path)?;
        }
        Ok(report)
    }

    /// What gc would remove, keeping the current target of every name and
    /// the slices in `pinned`.
    fn sweep(&self, pinned: &HashSet<Digest>) -> Result<Sweep> {
        let mut live: HashSet<Digest> = refs::list(self)?.into_iter().map(|(_, d)| d).collect();
        live.extend(pinned);
        // Objects that layers use are kept as slices' are.
        let mut live_objects = self.live_layer_objects()?;
        let mut slices = Vec::new();
        for slice in self.slice_digests()? {
            if live.contains(&slice) {
                live_objects.extend(object_keys(&self.listing(&slice)?).map(|(k, _)| k));
            } else {
                slices.push(slice);
            }
        }
        let objects = self
            .objects_on_disk()?
            .into_iter()
            .filter(|object| !live_objects.contains(&object.key))
            .collect();
        Ok(Sweep {
            live,
            slices,
            objects,
            leftovers: self.leftovers(pinned)?,
        })
    }

    /// The entries of `tmp/` gc removes: no add runs while gc holds the
    /// lock, so all of `tmp/` is garbage, but for a damaged slice that an
    /// add replaced while a stage still mounts it (`healed-<hex>-…`), which
    /// goes once nothing pins <hex>, and for the `--out` dir (and its lock)
    /// of a stage that still runs (`out-…`).
    fn leftovers(&self, pinned: &HashSet<Digest>) -> Result<Vec<PathBuf>> {
        let tmp = self.tmp_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&tmp).at("read directory", &tmp)? {
            let entry = entry.at("read directory", &tmp)?;
            let name = entry.file_name();
            let name = name.to_str();
            let still_mounted = name
                .and_then(|n| n.strip_prefix("healed-"))
                .and_then(|rest| Digest::from_hex(rest.split('-').next()?))
                .is_some_and(|d| pinned.contains(&d));
            let building = name.is_some_and(|n| super::lock::output_in_use(&tmp, n));
            if !still_mounted && !building {
                out.push(entry.path());
            }
        }
        Ok(out)
    }

    /// The bytes of file contents that removing `sweep` frees: each inode
    /// once, and only when every link to it is among what goes (an object
    /// a kept slice links, or a leftover's file linked to a kept object,
    /// frees nothing). A removed slice's manifest and listing are metadata
    /// and not counted, as `disk_bytes` does not count them.
    fn freed_bytes(&self, sweep: &Sweep) -> Result<u64> {
        let mut links = Links::default();
        for slice in &sweep.slices {
            let tree = self.slice_tree(slice);
            links.add_tree(&tree).at("read directory", &tree)?;
        }
        for object in &sweep.objects {
            links.add_tree(&object.path).at("read", &object.path)?;
        }
        for leftover in &sweep.leftovers {
            links.add_tree(leftover).at("read directory", leftover)?;
        }
        Ok(links.freed())
    }

    /// Entries added, removed and changed from slice `a` to slice `b`.
    pub fn diff(&self, a: &Digest, b: &Digest) -> Result<Vec<Change>> {
        let (left, right) = (self.listing(a)?, self.listing(b)?);
        let left: BTreeMap<&[u8], &Node> =
            left.iter().map(|e| (e.path.as_slice(), &e.node)).collect();
        let right: BTreeMap<&[u8], &Node> =
            right.iter().map(|e| (e.path.as_slice(), &e.node)).collect();
        let mut paths: Vec<&[u8]> = left.keys().chain(right.keys()).copied().collect();
        paths.sort();
        paths.dedup();
        Ok(paths
            .into_iter()
            .filter_map(|path| {
                let kind = match (left.get(path), right.get(path)) {
                    (None, Some(_)) => "added",
                    (Some(_), None) => "removed",
                    (Some(l), Some(r)) if l != r => "changed",
                    _ => return None,
                };
                Some(Change {
                    kind,
                    path: path.to_vec(),
                })
            })
            .collect())
    }

    /// How many of `slice`'s bytes it shares with other stored slices.
    pub fn usage(&self, slice: &Digest) -> Result<SliceUsage> {
        let own: HashMap<ObjectKey, u64> = object_keys(&self.listing(slice)?).collect();
        let mut others = HashSet::new();
        for other in self.slice_digests()? {
            if other != *slice {
                others.extend(object_keys(&self.listing(&other)?).map(|(k, _)| k));
            }
        }
        let mut usage = SliceUsage::default();
        for (key, size) in own {
            if others.contains(&key) {
                usage.shared_bytes += size;
            } else {
                usage.unique_bytes += size;
            }
        }
        Ok(usage)
    }

    pub fn stats(&self) -> Result<StoreStats> {
        let _lock = self.lock_shared()?;
        let mut stats = StoreStats {
            store: super::printable_path(self.root()),
            names: refs::list(self)?.len() as u64,
            ..StoreStats::default()
        };
        let mut distinct = HashMap::new();
        for slice in self.slice_digests()? {
            stats.slices += 1;
            for (key, size) in object_keys(&self.listing(&slice)?) {
                stats.logical_bytes += size;
                distinct.insert(key.0, size);
            }
        }
        stats.distinct_content_bytes = distinct.values().sum();
        stats.objects = self.objects_on_disk()?.len() as u64;
        // As gc would see it: history pruned, pins nobody holds left out.
        let pinned: HashSet<Digest> = self.live_pins(false)?.into_iter().collect();
        stats.reclaimable_bytes = self.freed_bytes(&self.sweep(&pinned)?)?;
        let mut inodes = HashSet::new();
        let objects_dir = self.objects_dir();
        stats.disk_bytes =
            disk_bytes(&objects_dir, &mut inodes).at("read directory", &objects_dir)?;
        for slice in self.slice_digests()? {
            let tree = self.slice_tree(&slice);
            stats.disk_bytes += disk_bytes(&tree, &mut inodes).at("read directory", &tree)?;
        }
        // What staging, killed stages' --out dirs and trash hold is file
        // contents too, not metadata.
        let tmp = self.tmp_dir();
        stats.disk_bytes += disk_bytes(&tmp, &mut inodes).at("read directory", &tmp)?;
        stats.metadata_bytes =
            disk_bytes(self.root(), &mut inodes).at("read directory", self.root())?;
        Ok(stats)
    }
}

/// Bytes of the regular files below `top` whose inode is not yet in
/// `inodes`: hardlinked objects count once.
fn disk_bytes(top: &Path, inodes: &mut HashSet<(u64, u64)>) -> io::Result<u64> {
    let mut total = 0;
    at::walk(
        at::open_dir(top)?,
        |visit| {
            let st = visit.stat;
            if at::is_file(st) && inodes.insert((st.st_dev, st.st_ino)) {
                total += st.st_size as u64;
            }
            Ok(())
        },
        |_| Ok(()),
        |_, e: io::Error| e,
    )?;
    Ok(total)
}

/// Regular files seen below some paths, by inode: size, link count, and
/// how many of those links were seen.
#[derive(Default)]
struct Links {
    inodes: HashMap<(u64, u64), (u64, u64, u64)>,
}

impl Links {
    fn add(&mut self, inode: (u64, u64), size: u64, nlink: u64) {
        self.inodes.entry(inode).or_insert((size, nlink, 0)).2 += 1;
    }

    /// Adds `top` itself if it is a file, or every file below it; a `top`
    /// that is gone adds nothing.
    fn add_tree(&mut self, top: &Path) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = match fs::symlink_metadata(top) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if !meta.is_dir() {
            if meta.is_file() {
                self.add((meta.dev(), meta.ino()), meta.size(), meta.nlink());
            }
            return Ok(());
        }
        at::walk(
            at::open_dir(top)?,
            |visit| {
                let st = visit.stat;
                if at::is_file(st) {
                    // nlink_t is u64 on x86_64 but u32 on aarch64.
                    #[allow(clippy::unnecessary_cast)]
                    let nlink = st.st_nlink as u64;
                    self.add((st.st_dev, st.st_ino), st.st_size as u64, nlink);
                }
                Ok(())
            },
            |_| Ok(()),
            |_, e: io::Error| e,
        )
    }

    /// The bytes of the inodes whose every link was seen.
    fn freed(&self) -> u64 {
        self.inodes
            .values()
            .filter(|(_, nlink, seen)| seen >= nlink)
            .map(|(size, _, _)| size)
            .sum()
    }
}

/// Whether two paths are hardlinks of one inode.
pub(crate) fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::symlink_metadata(a), fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}
