//! `slice-add`: read a source (rejecting anything hostile, and anything
//! beyond the limits, as it is met), build it in a private staging dir,
//! then publish objects, slice and ref in that order. A directory source
//! is streamed (`dir_source`); an archive is parsed into an in-memory tree
//! first, as its entries come in any order.

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::archive_meta::{self, ArchiveSettings};
use super::at;
use super::dir_source::{walk_cached, walk_directory, Staging, Walked};
use super::fsutil::{self, sync_dir};
use super::limits::{expansion_reason, Budget, Counted, ExpansionGuard, Limits};
use super::mount_point::validate_mount_point;
use super::objects::{ObjectSink, ObjectWriter};
use super::prefix::{self, BuiltFor, PrefixCheck};
use super::progress::{Progress, ProgressSink};
use super::tarball::{Kind, TarError, TarReader};
use super::tree::{find, for_each_path, place, tree_digest, Node};
use super::{crash_point, listing};
use super::{
    os, printable, printable_path, refs, Error, IoContext, Manifest, Result, SliceInfo, Store,
};
use crate::digest::Digest;

/// Where a slice's files come from.
#[derive(Debug, Clone)]
pub enum Source {
    Directory(PathBuf),
    /// A `.tar`, `.tar.gz` or `.tar.zst` file; the compression is detected
    /// from its first bytes, not its name.
    Archive(PathBuf),
    /// A tar stream (possibly compressed) on an open descriptor.
    Stream(RawFd),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Directory(p) | Source::Archive(p) => printable_path(p),
            Source::Stream(_) => "-".to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub mount_point: String,
    pub env: Vec<String>,
    pub limits: Limits,
    /// Whether to look for the prefix the tree was built for (prefix.rs).
    pub prefix_check: PrefixCheck,
    /// Who hears how far the add has got, if anyone.
    pub progress: Option<ProgressSink>,
    /// Whether a directory source's files may be served from, and are
    /// recorded in, the store's stat cache: yes for `--cache` inputs,
    /// hashed again at every run; no for `slice-add`, whose re-add
    /// re-hashes (and so repairs) every object it relies on, nor for a
    /// fresh `--out` dir, never seen again.
    pub stat_cache: bool,
    /// Which settings an exported archive's own records may give.
    pub from_archive: FromArchive,
}

/// Which of an archive's settings (`slice-export`'s `SLICEBOX.at` and
/// `SLICEBOX.env`, archive_meta.rs) an add takes: `slice-add` those its
/// caller did not give. The records are validated whatever this says.
#[derive(Debug, Clone, Copy, Default)]
pub struct FromArchive {
    pub mount_point: bool,
    pub env: bool,
}

/// What `add_slice` did.
#[derive(Debug, Clone)]
pub struct Added {
    pub info: SliceInfo,
    /// Bytes of new object data written; 0 when every file was stored already.
    pub written_bytes: u64,
    /// Stored objects found damaged and replaced by this add.
    pub healed_objects: u64,
    /// Whether the same slice was stored already, damaged, and replaced.
    pub healed_slice: bool,
    /// Other slices that linked a replaced object, rebuilt.
    pub healed_sharers: u64,
    /// The prefixes the tree was built for (none unless `prefix_check`).
    pub built_for: Vec<BuiltFor>,
}

impl Store {
    /// Adds `source` as a slice and points `name` at it.
    pub fn add_slice(&self, name: &str, source: &Source, options: &IngestOptions) -> Result<Added> {
        refs::validate_name(name)?;
        self.store_slice(Some(name), source, options)
    }

    /// Stores `source` as a slice that no name points at (a `--cache`
    /// stage's inputs): the caller pins it, under the shared lock taken
    /// before this call, and slice-gc removes it once nothing does.
    pub fn add_unnamed(&self, source: &Source, options: &IngestOptions) -> Result<Added> {
        self.store_slice(None, source, options)
    }

    fn store_slice(
        &self,
        name: Option<&str>,
        source: &Source,
        options: &IngestOptions,
    ) -> Result<Added> {
        let mount_point = validate_mount_point(&options.mount_point)?;
        for entry in &options.env {
            crate::env::check_slice_entry(entry.as_bytes()).map_err(|reason| {
                Error::InvalidEnv {
                    entry: printable(entry.as_bytes()),
                    reason,
                }
            })?;
        }
        // Shared for the whole add: gc cannot delete an object this add
        // found already stored and is about to link.
        let _lock = self.lock_shared()?;
        if let (Source::Directory(dir), true) = (source, options.stat_cache) {
            if let Some(added) = self.reuse_unchanged(name, dir, &mount_point, options)? {
                return Ok(added);
            }
        }
        let stage = Stage::create(self)?;
        let objects = ObjectWriter::new(self, &stage.path)?;
        let progress = Progress::start(options.progress.clone());
        let staged_slice = stage.path.join("slice");
        fs::create_dir(&staged_slice).at("create staging directory", &staged_slice)?;
        let (walked, settings) = stage_source(source, &staged_slice, options, &objects, &progress)?;
        progress.finish();
        let (mount_point, env, prefix_check) = settle(mount_point, options, settings);
        let built_for = built_for(&staged_slice, prefix_check, &objects)?;
        let mount_point = prefix::mount_point(mount_point, prefix_check, &built_for);
        let manifest = Manifest::new(walked.digest, mount_point, env, walked.files, walked.bytes);
        let slice_digest = manifest.slice_digest();
        manifest.write(&staged_slice.join("manifest.json"))?;

        // One syncfs for the whole batch (as ostree does) instead of an
        // fsync per file: objects and tree are durable before they become
        // reachable.
        crash_point("add:staged");
        // Where a test reads the helper's peak memory: the source is read.
        super::pause_point("add:staged");
        fsutil::sync_filesystem(self.root())?;
        crash_point("add:synced");
        let healed_objects = objects.publish()?;
        crash_point("add:objects-published");
        let trusted = objects.trusted_inodes();
        let healed_slice = self.publish_slice(&staged_slice, &slice_digest, &trusted)?;
        let healed_sharers = match healed_objects {
            0 => 0,
            _ => self.heal_sharers(&objects.replaced(), &slice_digest, &trusted)?,
        };
        crash_point("add:slice-published");
        if let Some(name) = name {
            refs::set(self, name, &slice_digest)?;
            crash_point("add:ref-written");
        }
        drop(stage);
        Ok(Added {
            info: self.slice_info(&slice_digest)?,
            written_bytes: objects.written.load(Ordering::Relaxed),
            healed_objects,
            healed_slice,
            healed_sharers,
            built_for,
        })
    }

    /// Re-adding an unchanged directory: when the stat cache vouches for
    /// every file of `dir` and the slice they make is stored, names it
    /// (if `name`) without reading a file or building a tree. A stored
    /// slice is trusted as it is here; slice-verify checks it.
    fn reuse_unchanged(
        &self,
        name: Option<&str>,
        dir: &Path,
        mount_point: &str,
        options: &IngestOptions,
    ) -> Result<Option<Added>> {
        let progress = Progress::start(options.progress.clone());
        let walked = walk_cached(dir, options.limits, self, &progress);
        progress.finish();
        let Some(walked) = walked? else {
            return Ok(None);
        };
        let manifest = Manifest::new(
            walked.digest,
            mount_point.to_string(),
            options.env.clone(),
            walked.files,
            walked.bytes,
        );
        let slice = manifest.slice_digest();
        if self.manifest(&slice).is_err() || !self.slice_dir(&slice).join("tree").is_dir() {
            return Ok(None);
        }
        if let Some(name) = name {
            refs::set(self, name, &slice)?;
        }
        Ok(Some(Added {
            info: self.slice_info(&slice)?,
            written_bytes: 0,
            healed_objects: 0,
            healed_slice: false,
            healed_sharers: 0,
            built_for: Vec::new(),
        }))
    }

    /// Moves a finished staged slice into `slices/`. When the same slice is
    /// stored already it is checked, trusting the inodes this add has just
    /// verified: a damaged one (content, metadata, tree) is swapped for the
    /// staged one in one atomic step, and the old one is set aside under
    /// `tmp/healed-…`, which gc keeps while a running stage pins the slice.
    /// Returns whether a damaged slice was replaced.
    pub(super) fn publish_slice(
        &self,
        staged: &Path,
        slice: &Digest,
        trusted: &HashSet<(u64, u64)>,
    ) -> Result<bool> {
        let final_dir = self.slice_dir(slice);
        match fs::rename(staged, &final_dir) {
            Ok(()) => return sync_dir(&self.slices_dir()).map(|()| false),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {}
            Err(e) => return Err(e).at("store slice", &final_dir),
        }
        if self.verify_slice(slice, Some(trusted))?.is_empty() {
            return Ok(false);
        }
        nix::fcntl::renameat2(
            None,
            staged,
            None,
            &final_dir,
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        )
        .map_err(io::Error::from)
        .at("replace damaged slice", &final_dir)?;
        sync_dir(&self.slices_dir())?;
        let aside = self.tmp_dir().join(format!(
            "healed-{}-{}",
            slice.hex(),
            fsutil::unique_suffix()
        ));
        fs::rename(staged, &aside).at("set aside damaged slice", &aside)?;
        Ok(true)
    }
}

/// The mount point, environment and prefix check of an add: the caller's,
/// but for what `options.from_archive` lets the archive's settings give.
/// A mount point the archive gives is chosen, as `--at` is: the prefix
/// check only reports.
fn settle(
    mount_point: String,
    options: &IngestOptions,
    settings: ArchiveSettings,
) -> (String, Vec<String>, PrefixCheck) {
    let env = match options.from_archive.env {
        true => settings.env,
        false => options.env.clone(),
    };
    match (settings.mount_point, options.from_archive.mount_point) {
        (Some(at), true) => (at, env, PrefixCheck::Report),
        _ => (mount_point, env, options.prefix_check),
    }
}

/// The prefixes the staged tree was built for, read from its listing
/// (slice-add only: `--out` and `--cache` inputs are not scanned).
fn built_for(
    staged_slice: &Path,
    check: PrefixCheck,
    objects: &ObjectWriter<'_>,
) -> Result<Vec<BuiltFor>> {
    if let PrefixCheck::Off = check {
        return Ok(Vec::new());
    }
    let path = staged_slice.join("listing");
    let bytes = fs::read(&path).at("read listing", &path)?;
    let Some(root) = listing::parse(&bytes).and_then(|e| listing::to_tree(&e)) else {
        return Ok(Vec::new());
    };
    Ok(prefix::scan(&root, |content, x| {
        objects.source_of(content, x)
    }))
}

/// Reads `source` into `staged_slice` (its `tree` and `listing`): a
/// directory in one streaming walk, an archive through an in-memory tree;
/// with the settings an archive carries.
fn stage_source(
    source: &Source,
    staged_slice: &Path,
    options: &IngestOptions,
    objects: &ObjectWriter<'_>,
    progress: &Progress,
) -> Result<(Walked, ArchiveSettings)> {
    let limits = options.limits;
    let source_name = source.describe();
    let (root, settings) = match source {
        Source::Directory(dir) => {
            let staging = Staging::create(staged_slice, objects)?;
            let store = options.stat_cache.then(|| objects.store());
            let walked = walk_directory(dir, limits, objects, Some(staging), store, progress)?;
            return Ok((walked, ArchiveSettings::default()));
        }
        Source::Archive(path) => {
            let file = File::open(path).at("open", path)?;
            read_archive(file, &source_name, limits, objects, progress)?
        }
        Source::Stream(fd) => {
            // SAFETY: the caller checked that `fd` is open and keeps it
            // open for this call.
            let borrowed = unsafe { BorrowedFd::borrow_raw(*fd) };
            read_archive(FdReader(borrowed), &source_name, limits, objects, progress)?
        }
    };
    materialise(&root, &staged_slice.join("tree"), objects)?;
    let listing_path = staged_slice.join("listing");
    fs::write(&listing_path, listing::write(&root)).at("write listing", &listing_path)?;
    let (files, bytes) = root.count();
    let walked = Walked {
        digest: tree_digest(&root),
        files,
        bytes,
    };
    Ok((walked, settings))
}

/// A private staging dir under `tmp/`, removed on drop: whatever happens
/// before the final renames leaves no trace outside `tmp/`.
pub(super) struct Stage {
    pub(super) path: PathBuf,
}

impl Stage {
    pub(super) fn create(store: &Store) -> Result<Stage> {
        let path = store
            .tmp_dir()
            .join(format!("stage-{}", fsutil::unique_suffix()));
        fs::create_dir(&path).at("create staging directory", &path)?;
        Ok(Stage { path })
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = at::remove_tree(&self.path);
    }
}

fn rejected(source_name: &str, entry: &[u8], reason: String) -> Error {
    Error::Rejected {
        source_name: source_name.to_string(),
        entry: printable(entry),
        reason,
    }
}

/// Splits a tar entry name into safe components: `.` and empty parts are
/// dropped; `..` and absolute names are refused.
fn normalise_entry_name(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if name.first() == Some(&b'/') {
        return Err("is an absolute path");
    }
    if name.contains(&0) {
        return Err("has a NUL byte in its name, which no file name can hold");
    }
    let mut parts = Vec::new();
    for part in name.split(|c| *c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("contains '..'"),
            other => parts.push(other),
        }
    }
    Ok(parts)
}

/// The tree digest `dir` would have as a slice, read as `slice-add` reads
/// it (same walk, same limits), storing nothing: a `--cache` stage's
/// working directory and read-only binds.
pub fn directory_digest(dir: &Path, limits: &Limits) -> Result<Digest> {
    let progress = Progress::start(None);
    let walked = walk_directory(
        dir,
        *limits,
        &super::objects::HashOnly,
        None,
        None,
        &progress,
    );
    progress.finish();
    Ok(walked?.digest)
}

/// Parses a tar stream (plain, gzip or zstd) and hashes its files within
/// `limits`, storing nothing: what the fuzz target runs.
pub fn parse_archive_only(data: &[u8], limits: Limits) -> Result<Node> {
    let progress = Progress::start(None);
    let tree = read_archive(data, "-", limits, &super::objects::HashOnly, &progress);
    progress.finish();
    tree.map(|(root, _)| root)
}

fn decompression_error(source_name: &str, format: &str, cause: &io::Error) -> Error {
    Error::BadSource {
        source_name: source_name.into(),
        reason: format!("its {format} stream is damaged: {cause}"),
    }
}

/// An archive's tree, and the settings its `SLICEBOX.*` records give.
type ReadArchive = (Node, ArchiveSettings);

fn read_archive(
    input: impl Read,
    source_name: &str,
    limits: Limits,
    sink: &dyn ObjectSink,
    progress: &Progress,
) -> Result<ReadArchive> {
    let compressed = Rc::new(Cell::new(0));
    let counted = Counted {
        inner: input,
        count: compressed.clone(),
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, counted);
    let magic = buffered.fill_buf().map_err(|e| Error::BadSource {
        source_name: source_name.into(),
        reason: format!("it cannot be read: {e}"),
    })?;
    let (decoded, format): (Box<dyn Read>, &str) = if magic.starts_with(&[0x1f, 0x8b]) {
        (
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            "gzip",
        )
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::with_buffer(buffered)
            .map_err(|e| decompression_error(source_name, "zstd", &e))?;
        (Box::new(decoder), "zstd")
    } else {
        // A plain tar is its own size: nothing to bound.
        let entries = read_entries(
            Box::new(buffered),
            "tar",
            source_name,
            limits,
            sink,
            progress,
        );
        return entries;
    };
    let guard = ExpansionGuard::new(decoded, compressed, limits.ratio);
    let verdict = guard.verdict();
    let entries = read_entries(Box::new(guard), format, source_name, limits, sink, progress);
    match verdict.get() {
        // Whatever error the stopped stream caused on its way out, the
        // reason is the expansion.
        Some((expanded, compressed)) => Err(Error::BadSource {
            source_name: source_name.into(),
            reason: expansion_reason(format, expanded, compressed, limits.ratio),
        }),
        None => entries,
    }
}

/// Reads the entries of a decoded tar stream into a tree, hashing files
/// into `sink`; `format` is the stream's compression, for messages. The
/// archive's settings are checked as soon as its first header is read.
fn read_entries(
    decoded: Box<dyn Read + '_>,
    format: &str,
    source_name: &str,
    limits: Limits,
    sink: &dyn ObjectSink,
    progress: &Progress,
) -> Result<ReadArchive> {
    let mut reader = TarReader::new(decoded);
    let tar_error = |e: TarError| match e.entry {
        Some(entry) => rejected(source_name, &entry, e.reason),
        None if format != "tar" && e.reason.starts_with("it cannot be read") => Error::BadSource {
            source_name: source_name.into(),
            reason: format!("its {format} stream is damaged ({})", e.reason),
        },
        None => Error::BadSource {
            source_name: source_name.into(),
            reason: format!("not a readable tar archive: {}", e.reason),
        },
    };
    let mut budget = Budget::new(limits);
    let mut root = Node::empty_dir();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut settings = None;
    loop {
        let next = reader.next_entry().map_err(tar_error)?;
        if settings.is_none() {
            let parsed = archive_meta::parse(reader.vendor_records());
            settings = Some(parsed.map_err(|reason| Error::BadSource {
                source_name: source_name.into(),
                reason,
            })?);
        }
        let Some(header) = next else {
            break;
        };
        let raw_name = header.path.clone();
        let reject = |reason: String| rejected(source_name, &raw_name, reason);
        let parts = normalise_entry_name(&raw_name).map_err(|r| reject(r.into()))?;
        if parts.is_empty() {
            if header.kind == Kind::Dir {
                continue;
            }
            return Err(reject("has an empty name".into()));
        }
        budget.entry(&parts).map_err(reject)?;
        if !seen.insert(parts.join(&b'/')) {
            return Err(reject("appears twice in the archive".into()));
        }
        let node = match header.kind {
            Kind::File => {
                budget.file(header.size).map_err(reject)?;
                // Only the executable bit survives: setuid, setgid and
                // sticky bits are dropped, as are owners and mtimes.
                let executable = header.mode & 0o111 != 0;
                let origin = PathBuf::from(os(&raw_name));
                let (content, size) = sink
                    .add_stream(&mut reader.data(), executable, &origin)
                    .map_err(|e| match e {
                        // The tar reader's own reasons (truncation) name the entry.
                        Error::Io { source, .. } if source.kind() == io::ErrorKind::InvalidData => {
                            reject(format!("is cut short: {source}"))
                        }
                        other => other,
                    })?;
                if size != header.size {
                    return Err(reject(format!(
                        "delivered {size} bytes, not the {} its header claims",
                        header.size
                    )));
                }
                progress.advance(size);
                Node::File {
                    content,
                    executable,
                    size,
                }
            }
            Kind::Dir => Node::empty_dir(),
            Kind::Symlink => {
                if header.link.is_empty() {
                    return Err(reject("is a symlink without a target".into()));
                }
                budget.symlink(&header.link).map_err(reject)?;
                Node::Symlink {
                    target: header.link.clone(),
                }
            }
            Kind::Hardlink => linked_file(&root, &header.link, &mut budget).map_err(reject)?,
            Kind::CharDevice | Kind::BlockDevice => return Err(reject("is a device node".into())),
            Kind::Fifo => return Err(reject("is a fifo".into())),
            Kind::Sparse => return Err(reject("is a sparse file, which is not supported".into())),
            Kind::Other(byte) => {
                return Err(reject(format!(
                    "has the unsupported entry type '{}'",
                    printable(&[byte])
                )))
            }
        };
        place(&mut root, &parts, node).map_err(|e| reject(e.to_string()))?;
    }
    Ok((root, settings.unwrap_or_default()))
}

/// A hardlink entry: the earlier regular file of the archive it names.
fn linked_file(root: &Node, link: &[u8], budget: &mut Budget) -> Result<Node, String> {
    let earlier = normalise_entry_name(link).ok().and_then(|t| find(root, &t));
    let Some(Node::File {
        content,
        executable,
        size,
    }) = earlier
    else {
        return Err(format!(
            "is a hardlink to '{}', which is not an earlier regular file of this archive",
            printable(link)
        ));
    };
    // A hardlink is as many bytes as its file: links to one big file
    // cannot multiply the data unbounded (nor the copies made past the
    // link limit).
    budget.file(*size)?;
    Ok(Node::File {
        content: *content,
        executable: *executable,
        size: *size,
    })
}

struct FdReader<'fd>(BorrowedFd<'fd>);

impl Read for FdReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match nix::unistd::read(self.0.as_raw_fd(), buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

/// Builds the staged tree below `dir`: hardlinks to objects, with copies for
/// empty files and for objects at the filesystem's link limit (bounded:
/// every link counted against the source's byte limit). Every path is
/// relative to the tree's fd and never followed through a symlink, and the
/// walk is iterative. Directories are made read-only once filled.
pub(super) fn materialise(root: &Node, dir: &Path, objects: &ObjectWriter<'_>) -> Result<()> {
    fs::create_dir(dir).at("create directory", dir)?;
    let tree = at::open_dir(dir).at("open", dir)?;
    let tree_fd = tree.as_raw_fd();
    let Node::Dir(_) = root else {
        return Err(Error::BadSource {
            source_name: printable_path(dir),
            reason: "the source is not a directory tree".into(),
        });
    };
    let mut dirs: Vec<CString> = Vec::new();
    for_each_path(root, |relative, node| {
        let path = at::cstring(relative).at("create", dir)?;
        let shown = dir.join(os(relative));
        match node {
            Node::Dir(_) => {
                at::mkdir_at(tree_fd, &path, 0o755).at("create directory", &shown)?;
                dirs.push(path);
            }
            Node::Symlink { target } => {
                let target = at::cstring(target).at("create symlink", &shown)?;
                at::symlink_at(&target, tree_fd, &path).at("create symlink", &shown)?;
                fsutil::set_fixed_mtime_at(tree_fd, &path).at("set mtime of", &shown)?;
            }
            Node::File {
                content,
                executable,
                size,
            } => place_file(
                tree_fd,
                &path,
                &shown,
                (content, *executable, *size),
                objects,
            )?,
        }
        Ok(())
    })?;
    // Children before parents, so no directory is read-only while it fills.
    for path in dirs.iter().rev() {
        at::chmod_at(tree_fd, path, 0o755).at("set mode of", dir)?;
        fsutil::set_fixed_mtime_at(tree_fd, path).at("set mtime of", dir)?;
    }
    fsutil::set_fixed_mtime(&tree).at("set mtime of", dir)
}

/// Puts one file of a staged tree at `path`: a hardlink to its object,
/// or a copy for an empty file and for an object at the filesystem's link
/// limit (bounded: every link counted against the source's byte limit).
/// Every file shows the fixed mtime; an object stored before objects had
/// it gets it here (it is the same inode).
pub(crate) fn place_file(
    tree_fd: RawFd,
    path: &CString,
    shown: &Path,
    (content, executable, size): (&Digest, bool, u64),
    objects: &ObjectWriter<'_>,
) -> Result<()> {
    if size == 0 {
        let file =
            at::create_at(tree_fd, path, object_mode(executable)).at("create file", shown)?;
        return fsutil::set_fixed_mtime(&file).at("set mtime of", shown);
    }
    let source = objects.source_of(content, executable);
    match at::link_to(&source, tree_fd, path) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EMLINK) => {
            copy_object(&source, tree_fd, path, executable, shown)?
        }
        Err(e) => return Err(e).at("link object into", shown),
    }
    fsutil::set_fixed_mtime_at(tree_fd, path).at("set mtime of", shown)
}

fn object_mode(executable: bool) -> libc::mode_t {
    if executable {
        0o555
    } else {
        0o444
    }
}

fn copy_object(
    source: &Path,
    tree_fd: RawFd,
    path: &CString,
    executable: bool,
    shown: &Path,
) -> Result<()> {
    let mut from = File::open(source).at("open object", source)?;
    let to = at::create_at(tree_fd, path, object_mode(executable)).at("create file", shown)?;
    let mut to = File::from(to);
    io::copy(&mut from, &mut to).at("copy object to", shown)?;
    fsutil::set_fixed_mtime(&to).at("set mtime of", shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_normalised_or_refused() {
        assert_eq!(
            normalise_entry_name(b"./a//b/./c"),
            Ok(vec![&b"a"[..], b"b", b"c"])
        );
        assert_eq!(normalise_entry_name(b"./"), Ok(vec![]));
        assert_eq!(
            normalise_entry_name(b"/etc/passwd"),
            Err("is an absolute path")
        );
        assert_eq!(normalise_entry_name(b"a/../../x"), Err("contains '..'"));
    }

    #[test]
    fn mount_points_are_absolute_normalised_and_not_ours() {
        assert_eq!(validate_mount_point("/opt//node/").unwrap(), "/opt/node");
        for bad in [
            "opt/node",
            "/",
            "/opt/../etc",
            "/proc/x",
            "/tmp",
            "/opt/\x1b",
        ] {
            assert!(validate_mount_point(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn env_entries_follow_posix_names_and_supported_forms() {
        let check = |e: &str| crate::env::check_slice_entry(e.as_bytes());
        assert!(check("PATH=/opt/x/bin:${PATH}").is_ok());
        assert!(check("_a1=").is_ok());
        for bad in ["1A=x", "=x", "A-B=x", "NOEQUALS", "X=${X:-y}"] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
