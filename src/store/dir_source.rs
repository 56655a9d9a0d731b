//! A directory source, ingested in one depth-first walk in name order:
//! each entry is checked against the limits, hashed, linked into the
//! staged tree and written to the staged listing as the walk meets it, and
//! each directory's digest is finished when the walk leaves it. What stays
//! in memory is the walk's path of open directories (each one's sorted
//! entries) and one digest in progress per level, never a node per entry:
//! 300,000 files cost what the largest directory among them costs.
//!
//! The digest, the listing and the tree are the ones the in-memory route
//! (`tree::tree_digest`, `listing::write`) gives for the same entries: the
//! walk sorts each directory's names bytewise, as the tree's `BTreeMap`
//! does, and visits parents before children, as `for_each_path` does.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::at;
use super::fsutil;
use super::limits::{Budget, Limits};
use super::listing;
use super::objects::{ObjectSink, ObjectWriter};
use super::prefix::{BuiltFor, PrefixCheck, PrefixScan};
use super::progress::Progress;
use super::stat_cache::StatCache;
use super::tree::{DirHasher, Node};
use super::{os, printable, printable_path, Error, IoContext, Result, Store};
use crate::digest::Digest;

/// What the walk found: the tree digest, what the manifest counts, and
/// the prefixes the tree was built for (when the staging looked).
pub(crate) struct Walked {
    pub digest: Digest,
    pub files: u64,
    pub bytes: u64,
    pub built_for: Vec<BuiltFor>,
}

/// Where the walk builds the slice: the staged tree (hardlinks to
/// objects) and its listing. `None` when only the digest is wanted.
pub(crate) struct Staging<'w, 's> {
    tree: OwnedFd,
    tree_path: PathBuf,
    listing: BufWriter<File>,
    listing_path: PathBuf,
    objects: &'w ObjectWriter<'s>,
    /// Whether the tree is built already (an archive's, built in its
    /// entries' order): the walk then only lists and seals it.
    built: bool,
    /// Where a big directory's names are spilled (`sorted_names`).
    spill_dir: PathBuf,
    /// Looks for the prefixes the tree was built for, if asked to.
    scan: Option<PrefixScan>,
}

impl<'w, 's> Staging<'w, 's> {
    /// Creates `slice_dir/tree` and `slice_dir/listing`.
    pub(crate) fn create(
        slice_dir: &Path,
        objects: &'w ObjectWriter<'s>,
        check: PrefixCheck,
    ) -> Result<Self> {
        let tree_path = slice_dir.join("tree");
        std::fs::create_dir(&tree_path).at("create directory", &tree_path)?;
        Staging::open(slice_dir, objects, check, false)
    }

    /// The staging of a tree built already in `slice_dir/tree`.
    pub(crate) fn built(
        slice_dir: &Path,
        objects: &'w ObjectWriter<'s>,
        check: PrefixCheck,
    ) -> Result<Self> {
        Staging::open(slice_dir, objects, check, true)
    }

    fn open(
        slice_dir: &Path,
        objects: &'w ObjectWriter<'s>,
        check: PrefixCheck,
        built: bool,
    ) -> Result<Self> {
        let tree_path = slice_dir.join("tree");
        let tree = at::open_dir(&tree_path).at("open", &tree_path)?;
        let listing_path = slice_dir.join("listing");
        let listing = File::create(&listing_path).at("write listing", &listing_path)?;
        Ok(Staging {
            tree,
            tree_path,
            listing: BufWriter::with_capacity(256 * 1024, listing),
            listing_path,
            objects,
            built,
            spill_dir: slice_dir.to_path_buf(),
            scan: (check != PrefixCheck::Off).then(PrefixScan::default),
        })
    }

    fn shown(&self, path: &[u8]) -> PathBuf {
        self.tree_path.join(os(path))
    }

    fn list(&mut self, path: &[u8], node: &Node) -> Result<()> {
        let mut line = Vec::with_capacity(path.len() + 96);
        listing::write_entry(&mut line, path, node);
        self.listing
            .write_all(&line)
            .at("write listing", &self.listing_path)
    }

    fn mkdir(&mut self, path: &CString, shown: &[u8]) -> Result<()> {
        if self.built {
            return Ok(());
        }
        at::mkdir_at(self.tree.as_raw_fd(), path, 0o755).at("create directory", &self.shown(shown))
    }

    /// A directory gets its final mode (0755) and the fixed mtime once filled.
    fn seal(&mut self, path: &CString, shown: &[u8]) -> Result<()> {
        let fd = self.tree.as_raw_fd();
        at::chmod_at(fd, path, 0o755).at("set mode of", &self.shown(shown))?;
        fsutil::set_fixed_mtime_at(fd, path).at("set mtime of", &self.shown(shown))
    }

    fn symlink(&mut self, path: &CString, shown: &[u8], target: &[u8]) -> Result<()> {
        if self.built {
            return Ok(());
        }
        let fd = self.tree.as_raw_fd();
        let target = at::cstring(target).at("create symlink", &self.shown(shown))?;
        at::symlink_at(&target, fd, path).at("create symlink", &self.shown(shown))?;
        fsutil::set_fixed_mtime_at(fd, path).at("set mtime of", &self.shown(shown))
    }

    fn file(
        &mut self,
        path: &CString,
        shown: &[u8],
        content: &Digest,
        executable: bool,
        size: u64,
    ) -> Result<()> {
        if self.built {
            return Ok(());
        }
        super::staged::place_file(
            self.tree.as_raw_fd(),
            path,
            &self.shown(shown),
            (content, executable, size),
            self.objects,
        )
    }

    /// Flushes the listing; the tree's top gets the fixed mtime last.
    /// Returns the prefixes found.
    fn finish(self) -> Result<Vec<BuiltFor>> {
        fsutil::set_fixed_mtime(&self.tree).at("set mtime of", &self.tree_path)?;
        let file = self
            .listing
            .into_inner()
            .map_err(|e| e.into_error())
            .at("write listing", &self.listing_path)?;
        drop(file);
        Ok(self.scan.map(PrefixScan::finish).unwrap_or_default())
    }
}

/// One directory the walk is inside: its digest so far.
struct Level {
    hasher: DirHasher,
}

fn rejected(source_name: &str, entry: &[u8], reason: String) -> Error {
    Error::Rejected {
        source_name: source_name.to_string(),
        entry: printable(entry),
        reason,
    }
}

pub(crate) fn changed(source_name: &str, entry: &[u8]) -> Error {
    rejected(
        source_name,
        entry,
        "changed while it was being added (add a tree that nobody writes to)".into(),
    )
}

/// The last component of a '/'-separated path.
fn base_name(path: &[u8]) -> &[u8] {
    path.rsplit(|b| *b == b'/').next().unwrap_or(path)
}

/// Everything the walk keeps between entries.
struct Walk<'a, 'w, 's> {
    dir: &'a Path,
    source_name: String,
    budget: Budget,
    sink: &'a dyn ObjectSink,
    staging: Option<Staging<'w, 's>>,
    progress: &'a Progress,
    /// One per directory the walk is inside, the root first.
    levels: Vec<Level>,
    files: u64,
    bytes: u64,
    first_entry: bool,
    first_file: bool,
    /// The source's stat cache, when the walk uses one.
    cache: Option<StatCache>,
    /// Serve every file from the stat cache or stop (the walk that checks
    /// whether an unchanged tree is stored already).
    only_cached: bool,
    /// Whether a file was not in the stat cache (with `only_cached`).
    missed: bool,
    /// The top of the walk, for the prefix scan's look-ups.
    top: Option<OwnedFd>,
    /// The digests of the files read last, by inode (a staged tree's).
    memo: Option<InodeMemo>,
}

/// Digests of the files a walk of a staged tree read last, by inode, in
/// a fixed number of slots: the paths of one inode (an archive's
/// hardlinks, the same content twice in a directory) are read once while
/// they come close together, and a thousand hardlinks to one big file are
/// read once, not a thousand times.
struct InodeMemo(Vec<Option<((u64, u64), Digest)>>);

impl InodeMemo {
    const SLOTS: usize = 1024;

    fn new() -> InodeMemo {
        InodeMemo(vec![None; InodeMemo::SLOTS])
    }

    fn slot(st: &libc::stat) -> ((u64, u64), usize) {
        let key = (st.st_dev, st.st_ino);
        (key, (key.1 % InodeMemo::SLOTS as u64) as usize)
    }

    fn get(&self, st: &libc::stat) -> Option<Digest> {
        let (key, slot) = InodeMemo::slot(st);
        self.0[slot].filter(|(k, _)| *k == key).map(|(_, d)| d)
    }

    fn put(&mut self, st: &libc::stat, content: Digest) {
        let (key, slot) = InodeMemo::slot(st);
        self.0[slot] = Some((key, content));
    }
}

/// How a walk uses the source's stat cache.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CacheUse {
    None,
    /// Files it vouches for are not read; what is read is recorded.
    ReadAndRecord,
    /// Every file must be in it; the walk stops at the first that is not.
    Only,
}

/// Walks a directory source below an fd (see `at::walk`: each level is
/// opened beneath its parent and checked to be the directory the walk
/// saw; every entry is lstat'ed relative to its parent's fd, and files are
/// opened the same way and fstat'ed: what is checked is what is read). A
/// tree changed during the add makes the add fail, naming the entry; it
/// never makes it follow a link, leave the source or block on a fifo.
/// With a `store`, files its stat cache vouches for are not read, and the
/// cache is renewed from what this walk saw.
pub(crate) fn walk_directory(
    dir: &Path,
    limits: Limits,
    sink: &dyn ObjectSink,
    staging: Option<Staging>,
    store: Option<&Store>,
    progress: &Progress,
) -> Result<Walked> {
    let cache = match store {
        Some(_) => CacheUse::ReadAndRecord,
        None => CacheUse::None,
    };
    let walked = run_walk(dir, limits, sink, staging, store, cache, progress)?;
    Ok(walked.expect("only a walk that uses the cache alone stops at a miss"))
}

/// The digest and counts of `dir` when its stat cache vouches for every
/// file in it, reading no file; `None` at the first file it does not.
pub(crate) fn walk_cached(
    dir: &Path,
    limits: Limits,
    store: &Store,
    progress: &Progress,
) -> Result<Option<Walked>> {
    let sink = &super::objects::HashOnly;
    run_walk(
        dir,
        limits,
        sink,
        None,
        Some(store),
        CacheUse::Only,
        progress,
    )
}

fn run_walk(
    dir: &Path,
    limits: Limits,
    sink: &dyn ObjectSink,
    staging: Option<Staging>,
    store: Option<&Store>,
    cache_use: CacheUse,
    progress: &Progress,
) -> Result<Option<Walked>> {
    let source_name = printable_path(dir);
    let root = at::open_dir(dir).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTDIR) => Error::BadSource {
            source_name: source_name.clone(),
            reason: "not a directory".into(),
        },
        _ => Error::Io {
            op: "open",
            path: dir.to_path_buf(),
            source: e,
        },
    })?;
    let cache = match (store, cache_use) {
        (Some(store), CacheUse::ReadAndRecord | CacheUse::Only) => {
            let root_stat = at::fstat(&root).at("read", dir)?;
            let write = cache_use == CacheUse::ReadAndRecord;
            Some(StatCache::open(store, &root_stat, write)?)
        }
        _ => None,
    };
    if cache_use == CacheUse::Only && !cache.as_ref().is_some_and(StatCache::has_entries) {
        return Ok(None);
    }
    // A tree staged already is walked to list and seal it: the pause
    // points belong to reading a source.
    let pauses = !staging.as_ref().is_some_and(|s| s.built);
    let spill_dir = match &staging {
        Some(staging) => staging.spill_dir.clone(),
        None => std::env::temp_dir(),
    };
    let top = match staging.as_ref().is_some_and(|s| s.scan.is_some()) {
        true => Some(root.try_clone().at("open", dir)?),
        false => None,
    };
    let walk = std::cell::RefCell::new(Walk {
        dir,
        source_name: source_name.clone(),
        budget: Budget::new(limits),
        sink,
        staging,
        progress,
        levels: vec![Level {
            hasher: DirHasher::new(),
        }],
        files: 0,
        bytes: 0,
        first_entry: pauses,
        first_file: pauses,
        cache,
        only_cached: cache_use == CacheUse::Only,
        missed: false,
        top,
        memo: (!pauses).then(InodeMemo::new),
    });
    let walked = at::walk_spilling(
        root,
        &spill_dir,
        |visit| walk.borrow_mut().visit(visit),
        |visit| walk.borrow_mut().leave(visit),
        |path, _| changed(&source_name, path),
    );
    let mut walk = walk.into_inner();
    if walk.missed {
        return Ok(None);
    }
    walked?;
    let built_for = match walk.staging.take() {
        Some(staging) => staging.finish()?,
        None => Vec::new(),
    };
    if let Some(cache) = walk.cache.take() {
        cache.finish()?;
    }
    let root = walk.levels.pop().expect("the root level");
    Ok(Some(Walked {
        digest: root.hasher.finish(),
        files: walk.files,
        bytes: walk.bytes,
        built_for,
    }))
}

/// Lists, seals and digests a tree staged already (an archive's): the
/// same walk as a directory source's, with no limits (the entries met
/// them as they came) and no object to store (they are linked). Its files
/// are read again for their digests, which costs less than recording each
/// one as it came (docs/design.md, "Archive ingest").
pub(crate) fn walk_staged(staging: Staging) -> Result<Walked> {
    let tree = staging.tree_path.clone();
    let unbounded = Limits {
        bytes: u64::MAX,
        file: u64::MAX,
        entries: u64::MAX,
        depth: u64::MAX,
        name: u64::MAX,
        path: u64::MAX,
        ratio: u64::MAX,
    };
    let quiet = Progress::start(None);
    let sink = &super::objects::HashOnly;
    let walked = run_walk(
        &tree,
        unbounded,
        sink,
        Some(staging),
        None,
        CacheUse::None,
        &quiet,
    );
    quiet.finish();
    Ok(walked?.expect("only a walk that uses the cache alone stops at a miss"))
}

impl Walk<'_, '_, '_> {
    fn refuse(&self, entry: &[u8], reason: String) -> Error {
        rejected(&self.source_name, entry, reason)
    }

    fn level(&mut self) -> &mut Level {
        self.levels
            .last_mut()
            .expect("the root level is popped last")
    }

    fn visit(&mut self, visit: &at::Visit) -> Result<()> {
        let shown = visit.path;
        if std::mem::take(&mut self.first_entry) {
            super::pause_point("add:listed");
        }
        let parts: Vec<&[u8]> = shown.split(|b| *b == b'/').collect();
        self.budget
            .entry(&parts)
            .map_err(|r| self.refuse(shown, r))?;
        let st = visit.stat;
        if at::is_dir(st) {
            if let Some(staging) = self.staging.as_mut() {
                staging.mkdir(&at::cstring(shown).at("read", self.dir)?, shown)?;
                staging.list(shown, &Node::empty_dir())?;
            }
            self.levels.push(Level {
                hasher: DirHasher::new(),
            });
            Ok(())
        } else if at::is_symlink(st) {
            self.symlink(visit)
        } else if at::is_file(st) {
            self.file(visit)
        } else {
            Err(self.refuse(
                shown,
                "is a device node, fifo or socket; slices hold only files, directories and symlinks"
                    .into(),
            ))
        }
    }

    fn symlink(&mut self, visit: &at::Visit) -> Result<()> {
        let shown = visit.path;
        let target = at::read_link_at(visit.dir, visit.name)
            .map_err(|_| changed(&self.source_name, shown))?;
        self.budget
            .symlink(&target)
            .map_err(|r| self.refuse(shown, r))?;
        self.level().hasher.symlink(base_name(shown), &target);
        if let Some(staging) = self.staging.as_mut() {
            staging.symlink(&at::cstring(shown).at("read", self.dir)?, shown, &target)?;
            staging.list(shown, &Node::Symlink { target })?;
        }
        Ok(())
    }

    fn file(&mut self, visit: &at::Visit) -> Result<()> {
        let shown = visit.path;
        self.budget
            .file(used_bytes(visit.stat))
            .map_err(|r| self.refuse(shown, r))?;
        let first = std::mem::take(&mut self.first_file);
        if first {
            super::pause_point("add:walked");
        }
        let (content, executable, size) = match self.cached(visit) {
            Some(found) => found,
            None if self.only_cached => {
                self.missed = true;
                return Err(changed(&self.source_name, shown));
            }
            None => read_file(visit, &self.source_name, self.sink, self.progress, first)?,
        };
        if let Some(memo) = self.memo.as_mut() {
            memo.put(visit.stat, content);
        }
        if let Some(cache) = self.cache.as_mut() {
            cache.record(shown, visit.stat, &content)?;
        }
        self.level()
            .hasher
            .file(base_name(shown), &content, executable);
        self.files += 1;
        self.bytes = self.bytes.saturating_add(size);
        if let Some(staging) = self.staging.as_mut() {
            let path = at::cstring(shown).at("read", self.dir)?;
            staging.file(&path, shown, &content, executable, size)?;
            if let (Some(scan), Some(top)) = (staging.scan.as_mut(), &self.top) {
                let object = staging.objects.source_of(&content, executable);
                let exists = |parts: &[&str]| at::exists_beneath(top.as_raw_fd(), parts);
                scan.file(shown, executable, &object, exists);
            }
            let node = Node::File {
                content,
                executable,
                size,
            };
            staging.list(shown, &node)?;
        }
        Ok(())
    }

    /// The file's content as the walk read it at another path of the same
    /// inode (a staged tree's), or as the stat cache has it, when the
    /// cache vouches for it and (when building a tree) the store holds it.
    fn cached(&mut self, visit: &at::Visit) -> Option<(Digest, bool, u64)> {
        let executable = visit.stat.st_mode & 0o111 != 0;
        let size = visit.stat.st_size as u64;
        if let Some(content) = self.memo.as_ref().and_then(|m| m.get(visit.stat)) {
            return Some((content, executable, size));
        }
        let content = self.cache.as_mut()?.lookup(visit.path, visit.stat)?;
        if let Some(staging) = &self.staging {
            if !staging.objects.trust_stored(&content, executable, size) {
                return None;
            }
        }
        self.progress.advance(size);
        Some((content, executable, size))
    }

    /// A directory is done: its digest goes into its parent's.
    fn leave(&mut self, visit: &at::Visit) -> Result<()> {
        let done = self.levels.pop().expect("a level per directory entered");
        let digest = done.hasher.finish();
        self.level().hasher.dir(base_name(visit.path), &digest);
        if let Some(staging) = self.staging.as_mut() {
            staging.seal(&at::cstring(visit.path).at("read", self.dir)?, visit.path)?;
        }
        Ok(())
    }
}

/// The bytes a file costs the `bytes` and `file` limits: the blocks it
/// really occupies, never more than its size. A sparse file's holes stay
/// holes in the store (objects skip blocks of zeros), so they cost nothing.
fn used_bytes(st: &libc::stat) -> u64 {
    let size = st.st_size as u64;
    (st.st_blocks as u64).saturating_mul(512).min(size)
}

/// Opens a file the walk met, checks it is the one it lstat'ed, stores it,
/// and checks it did not change while read.
fn read_file(
    visit: &at::Visit,
    source_name: &str,
    sink: &dyn ObjectSink,
    progress: &Progress,
    first: bool,
) -> Result<(Digest, bool, u64)> {
    let shown = PathBuf::from(os(visit.path));
    let opened = at::open_beneath(visit.dir, visit.name, libc::O_RDONLY | libc::O_NONBLOCK)
        .map_err(|_| changed(source_name, visit.path))?;
    let before = at::fstat(&opened).at("read", &shown)?;
    if !at::is_file(&before)
        || before.st_dev != visit.stat.st_dev
        || before.st_ino != visit.stat.st_ino
    {
        return Err(changed(source_name, visit.path));
    }
    let executable = before.st_mode & 0o111 != 0;
    if first {
        super::pause_point("add:file-opened");
    }
    let mut reader = File::from(opened);
    let (content, size) = sink.add_file(&mut reader, executable, &shown)?;
    let after = at::fstat(&reader).at("read", &shown)?;
    if size != before.st_size as u64 || !same_content_stat(&before, &after) {
        return Err(changed(source_name, visit.path));
    }
    progress.advance(size);
    Ok((content, executable, size))
}

fn same_content_stat(a: &libc::stat, b: &libc::stat) -> bool {
    (
        a.st_size,
        a.st_mtime,
        a.st_mtime_nsec,
        a.st_ctime,
        a.st_ctime_nsec,
    ) == (
        b.st_size,
        b.st_mtime,
        b.st_mtime_nsec,
        b.st_ctime,
        b.st_ctime_nsec,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tree::{place, tree_digest};
    use crate::store::{IngestOptions, Source, Store};
    use std::fs;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    /// What the tests add with: the stat cache on, no prefix check.
    fn options() -> IngestOptions {
        IngestOptions {
            mount_point: "/opt/x".into(),
            env: Vec::new(),
            limits: Limits::default(),
            progress: None,
            stat_cache: true,
            prefix_check: PrefixCheck::Off,
            from_archive: crate::store::FromArchive::default(),
        }
    }

    /// The tree the in-memory route builds for `dir` (a plain recursive
    /// read: test trees are shallow).
    fn in_memory_tree(dir: &Path) -> Node {
        fn add(root: &mut Node, top: &Path, path: &Path) {
            for entry in fs::read_dir(path).unwrap() {
                let path = entry.unwrap().path();
                let relative = path
                    .strip_prefix(top)
                    .unwrap()
                    .as_os_str()
                    .as_encoded_bytes();
                let parts: Vec<&[u8]> = relative.split(|b| *b == b'/').collect();
                let meta = fs::symlink_metadata(&path).unwrap();
                let node = if meta.is_dir() {
                    Node::empty_dir()
                } else if meta.file_type().is_symlink() {
                    let target = fs::read_link(&path).unwrap();
                    Node::Symlink {
                        target: target.as_os_str().as_encoded_bytes().to_vec(),
                    }
                } else {
                    let bytes = fs::read(&path).unwrap();
                    Node::File {
                        content: Digest::of(&bytes),
                        executable: meta.mode() & 0o111 != 0,
                        size: bytes.len() as u64,
                    }
                };
                place(root, &parts, node).unwrap();
                if meta.is_dir() {
                    add(root, top, &path);
                }
            }
        }
        let mut root = Node::empty_dir();
        add(&mut root, dir, dir);
        root
    }

    /// Names whose bytewise order differs from a walk's naive order
    /// (`a` < `a-b` < `a.c` < `a/…`), an empty dir, an empty file, an
    /// executable, a symlink and a sparse file.
    fn awkward_tree(dir: &Path) {
        fs::create_dir_all(dir.join("a/deeper/deepest")).unwrap();
        fs::create_dir(dir.join("empty")).unwrap();
        fs::write(dir.join("a-b"), "dash\n").unwrap();
        fs::write(dir.join("a.c"), "dot\n").unwrap();
        fs::write(dir.join("a/deeper/deepest/f"), "deep\n").unwrap();
        fs::write(dir.join("a/zero"), "").unwrap();
        fs::write(dir.join("B"), "upper\n").unwrap();
        fs::write(dir.join("run"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.join("run"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("../a-b", dir.join("a/link")).unwrap();
        let sparse = fs::File::create(dir.join("sparse")).unwrap();
        sparse.set_len(64 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        sparse.write_all_at(b"end", (64 << 20) - 3).unwrap();
    }

    #[test]
    fn the_streaming_walk_gives_the_in_memory_digest_listing_and_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        awkward_tree(&src);
        let expected = in_memory_tree(&src);
        let (files, bytes) = expected.count();

        let progress = Progress::start(None);
        let walked = walk_directory(
            &src,
            Limits::default(),
            &crate::store::objects::HashOnly,
            None,
            None,
            &progress,
        )
        .unwrap();
        assert_eq!(walked.digest, tree_digest(&expected));
        assert_eq!((walked.files, walked.bytes), (files, bytes));

        let store = Store::open(&tmp.path().join("store")).unwrap();
        let options = options();
        let added = store
            .add_slice("x", &Source::Directory(src.clone()), &options)
            .unwrap();
        assert_eq!(added.info.manifest.tree, tree_digest(&expected));
        assert_eq!(
            (added.info.manifest.files, added.info.manifest.bytes),
            (files, bytes)
        );
        let slice = store.slice_dir(&added.info.digest);
        assert_eq!(
            fs::read(slice.join("listing")).unwrap(),
            listing::write(&expected)
        );
        // Every stored entry shows the fixed mtime; the sparse file's
        // object kept its hole.
        for path in [
            "tree",
            "tree/a",
            "tree/a/link",
            "tree/a/zero",
            "tree/run",
            "tree/sparse",
        ] {
            let meta = fs::symlink_metadata(slice.join(path)).unwrap();
            assert_eq!(meta.mtime(), fsutil::FIXED_MTIME, "{path}");
        }
        let sparse = fs::metadata(slice.join("tree/sparse")).unwrap();
        assert_eq!(sparse.len(), 64 << 20);
        assert!(
            sparse.blocks() * 512 <= 64 << 10,
            "{} blocks",
            sparse.blocks()
        );
    }

    /// The stat cache serves a file it vouches for without reading it
    /// (shown by an entry edited to claim other content), and a file
    /// whose ctime changed is read again.
    #[test]
    fn the_stat_cache_is_used_for_unchanged_files_and_only_for_them() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/f"), "f\n").unwrap();
        fs::write(src.join("g"), "g\n").unwrap();
        // Old enough not to be racily clean when recorded.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let options = options();
        let source = Source::Directory(src.clone());
        let first = store.add_slice("x", &source, &options).unwrap();
        let caches: Vec<_> = fs::read_dir(tmp.path().join("store/stat-cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(caches.len(), 1);
        let text = fs::read_to_string(&caches[0]).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        // Unchanged: the same slice.
        let again = store.add_slice("x", &source, &options).unwrap();
        assert_eq!(again.info.digest, first.info.digest);
        // An entry claiming g's content for d/f is believed: d/f was not read.
        let (f, g) = (Digest::of(b"f\n").hex(), Digest::of(b"g\n").hex());
        fs::write(&caches[0], text.replacen(&f, &g, 1)).unwrap();
        let claimed = store.add_slice("y", &source, &options).unwrap();
        let mut lied = Node::empty_dir();
        let file = |content: &[u8]| Node::File {
            content: Digest::of(content),
            executable: false,
            size: content.len() as u64,
        };
        place(&mut lied, &[b"d"], Node::empty_dir()).unwrap();
        place(&mut lied, &[b"d", b"f"], file(b"g\n")).unwrap();
        place(&mut lied, &[b"g"], file(b"g\n")).unwrap();
        assert_eq!(claimed.info.manifest.tree, tree_digest(&lied));
        // A changed ctime (chmod back and forth) makes d/f a miss: read again.
        let perms = fs::metadata(src.join("d/f")).unwrap().permissions();
        fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(src.join("d/f"), perms).unwrap();
        let reread = store.add_slice("z", &source, &options).unwrap();
        assert_eq!(reread.info.digest, first.info.digest);
    }

    #[test]
    fn a_pinned_tree_keeps_its_digest() {
        // Pinned from the in-memory route before the streaming walk
        // replaced it: existing slices keep their digests.
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("d/e")).unwrap();
        fs::write(tmp.path().join("d/f"), "f\n").unwrap();
        symlink("d/f", tmp.path().join("l")).unwrap();
        let progress = Progress::start(None);
        let walked = walk_directory(
            tmp.path(),
            Limits::default(),
            &crate::store::objects::HashOnly,
            None,
            None,
            &progress,
        )
        .unwrap();
        assert_eq!(walked.digest.hex(), PINNED);
    }

    const PINNED: &str = "d2a0f55044c2fc4f222f251d86fa3eb6c12c2e566e819b801b07c79816c0bf51";
}
