//! `slice-add`: parse a source into an in-memory tree (rejecting anything
//! hostile, and anything beyond the limits, before it touches the store),
//! materialise it in a private staging dir, then publish objects, slice and
//! ref in that order.

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::at;
use super::fsutil::{self, sync_dir};
use super::limits::{expansion_reason, Budget, Counted, ExpansionGuard, Limits};
use super::objects::{ObjectSink, ObjectWriter};
use super::prefix::{self, BuiltFor, PrefixCheck};
use super::progress::{Progress, ProgressSink};
use super::tarball::{Kind, TarError, TarReader};
use super::tree::{find, for_each_path, place, tree_digest, Node};
use super::{crash_point, listing, parallel};
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
            if !entry
                .split_once('=')
                .is_some_and(|(k, _)| valid_env_name(k))
            {
                return Err(Error::InvalidEnv {
                    entry: printable(entry.as_bytes()),
                });
            }
        }
        // Shared for the whole add: gc cannot delete an object this add
        // found already stored and is about to link.
        let _lock = self.lock_shared()?;
        let stage = Stage::create(self)?;
        let objects = ObjectWriter::new(self, &stage.path)?;
        let source_name = source.describe();
        let progress = Progress::start(options.progress.clone());
        let root = match source {
            Source::Directory(dir) => read_directory(dir, options.limits, &objects, &progress)?,
            Source::Archive(path) => {
                let file = File::open(path).at("open", path)?;
                read_archive(file, &source_name, options.limits, &objects, &progress)?
            }
            Source::Stream(fd) => {
                // SAFETY: the caller checked that `fd` is open and keeps it
                // open for this call.
                let borrowed = unsafe { BorrowedFd::borrow_raw(*fd) };
                let input = FdReader(borrowed);
                read_archive(input, &source_name, options.limits, &objects, &progress)?
            }
        };
        progress.finish();
        let built_for = match options.prefix_check {
            PrefixCheck::Off => Vec::new(),
            _ => prefix::scan(&root, |content, x| objects.source_of(content, x)),
        };
        let mount_point = prefix::mount_point(mount_point, options.prefix_check, &built_for);
        let (files, bytes) = root.count();
        let manifest = Manifest::new(
            tree_digest(&root),
            mount_point,
            options.env.clone(),
            files,
            bytes,
        );
        let slice_digest = manifest.slice_digest();

        let staged_slice = stage.path.join("slice");
        fs::create_dir(&staged_slice).at("create staging directory", &staged_slice)?;
        materialise(&root, &staged_slice.join("tree"), &objects)?;
        let listing_path = staged_slice.join("listing");
        fs::write(&listing_path, listing::write(&root)).at("write listing", &listing_path)?;
        manifest.write(&staged_slice.join("manifest.json"))?;
        drop(root);

        // One syncfs for the whole batch (as ostree does) instead of an
        // fsync per file: objects and tree are durable before they become
        // reachable.
        crash_point("add:staged");
        fsutil::sync_filesystem(self.root())?;
        crash_point("add:synced");
        let healed_objects = objects.publish()?;
        crash_point("add:objects-published");
        let healed_slice =
            self.publish_slice(&staged_slice, &slice_digest, &objects.trusted_inodes())?;
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
            built_for,
        })
    }

    /// Moves a finished staged slice into `slices/`. When the same slice is
    /// stored already it is checked, trusting the inodes this add has just
    /// verified: a damaged one (content, metadata, tree) is swapped for the
    /// staged one in one atomic step, and the old one is set aside under
    /// `tmp/healed-…`, which gc keeps while a running stage pins the slice.
    /// Returns whether a damaged slice was replaced.
    fn publish_slice(
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

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Mount points are absolute, normalised, UTF-8 paths outside the dirs the
/// runtime provides itself.
pub fn validate_mount_point(path: &str) -> Result<String> {
    let bad = |reason| Error::InvalidMountPoint {
        path: printable(path.as_bytes()),
        reason,
    };
    if !path.starts_with('/') {
        return Err(bad("it must be absolute"));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(bad("a slice cannot replace the root"));
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(bad("it must not contain '.' or '..'"));
    }
    if path.chars().any(char::is_control) {
        return Err(bad("it must not contain control characters"));
    }
    if ["proc", "dev", "tmp"].contains(&parts[0]) {
        return Err(bad("/proc, /dev and /tmp are provided by the sandbox"));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A private staging dir under `tmp/`, removed on drop: whatever happens
/// before the final renames leaves no trace outside `tmp/`.
struct Stage {
    path: PathBuf,
}

impl Stage {
    fn create(store: &Store) -> Result<Stage> {
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

/// A regular file the walk of a directory source found: where it is
/// below the source, and what it was, to check it is the same when read.
struct FoundFile {
    relative: CString,
    shown: Vec<u8>,
    dev: u64,
    ino: u64,
}

enum Found {
    Dir,
    Symlink(Vec<u8>),
    File(usize),
}

fn changed(source_name: &str, entry: &[u8]) -> Error {
    rejected(
        source_name,
        entry,
        "changed while it was being added (add a tree that nobody writes to)".into(),
    )
}

/// Walks a directory source below an fd: each level is opened with
/// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and checked to be the
/// directory the walk saw, every entry is lstat'ed relative to its parent's
/// fd, and files are opened the same way and fstat'ed: what is checked is
/// what is read. A tree changed during the add makes the add fail, naming
/// the entry; it never makes it follow a link, leave the source or block
/// on a fifo.
fn read_directory(
    dir: &Path,
    limits: Limits,
    objects: &dyn ObjectSink,
    progress: &Progress,
) -> Result<Node> {
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
    let mut budget = Budget::new(limits);
    let mut found: Vec<(Vec<u8>, Found)> = Vec::new();
    let mut files: Vec<FoundFile> = Vec::new();
    let walk_root = root.try_clone().at("read", dir)?;
    at::walk(
        walk_root,
        |visit| {
            let shown = visit.path;
            let parts: Vec<&[u8]> = shown.split(|b| *b == b'/').collect();
            let refuse = |reason| rejected(&source_name, shown, reason);
            budget.entry(&parts).map_err(refuse)?;
            let st = visit.stat;
            let what = if at::is_dir(st) {
                Found::Dir
            } else if at::is_symlink(st) {
                let target = at::read_link_at(visit.dir, visit.name)
                    .map_err(|_| changed(&source_name, shown))?;
                budget.symlink(&target).map_err(refuse)?;
                Found::Symlink(target)
            } else if at::is_file(st) {
                budget.file(st.st_size as u64).map_err(refuse)?;
                files.push(FoundFile {
                    relative: at::cstring(shown).at("read", dir)?,
                    shown: shown.to_vec(),
                    dev: st.st_dev,
                    ino: st.st_ino,
                });
                Found::File(files.len() - 1)
            } else {
                return Err(refuse(
                    "is a device node, fifo or socket; slices hold only files, directories and symlinks"
                        .into(),
                ));
            };
            found.push((shown.to_vec(), what));
            Ok(())
        },
        |_| Ok(()),
        |path, _| changed(&source_name, path),
    )?;
    super::pause_point("add:walked");
    let root_fd = root.as_raw_fd();
    let first = std::sync::atomic::AtomicBool::new(true);
    let results = parallel::map(&files, |file| {
        let shown = PathBuf::from(os(&file.shown));
        let opened = at::open_beneath(root_fd, &file.relative, libc::O_RDONLY | libc::O_NONBLOCK)
            .map_err(|_| changed(&source_name, &file.shown))?;
        let before = at::fstat(&opened).at("read", &shown)?;
        if !at::is_file(&before) || before.st_dev != file.dev || before.st_ino != file.ino {
            return Err(changed(&source_name, &file.shown));
        }
        let executable = before.st_mode & 0o111 != 0;
        if first.swap(false, Ordering::Relaxed) {
            super::pause_point("add:file-opened");
        }
        let mut reader = File::from(opened);
        let (content, size) = objects.add_file(&mut reader, executable, &shown)?;
        let after = at::fstat(&reader).at("read", &shown)?;
        let same = |a: &libc::stat, b: &libc::stat| {
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
        };
        if size != before.st_size as u64 || !same(&before, &after) {
            return Err(changed(&source_name, &file.shown));
        }
        progress.advance(size);
        Ok((content, executable, size))
    })?;
    let mut root_node = Node::empty_dir();
    for (path, what) in found {
        let node = match what {
            Found::Dir => Node::empty_dir(),
            Found::Symlink(target) => Node::Symlink { target },
            Found::File(index) => {
                let (content, executable, size) = results[index];
                Node::File {
                    content,
                    executable,
                    size,
                }
            }
        };
        let parts: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
        place(&mut root_node, &parts, node).expect("directory entries have unique names");
    }
    Ok(root_node)
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
    let tree = read_directory(dir, *limits, &super::objects::HashOnly, &progress);
    progress.finish();
    Ok(tree_digest(&tree?))
}

/// Parses a tar stream (plain, gzip or zstd) and hashes its files within
/// `limits`, storing nothing: what the fuzz target runs.
pub fn parse_archive_only(data: &[u8], limits: Limits) -> Result<Node> {
    let progress = Progress::start(None);
    let tree = read_archive(data, "-", limits, &super::objects::HashOnly, &progress);
    progress.finish();
    tree
}

fn decompression_error(source_name: &str, format: &str, cause: &io::Error) -> Error {
    Error::BadSource {
        source_name: source_name.into(),
        reason: format!("its {format} stream is damaged: {cause}"),
    }
}

fn read_archive(
    input: impl Read,
    source_name: &str,
    limits: Limits,
    sink: &dyn ObjectSink,
    progress: &Progress,
) -> Result<Node> {
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
/// into `sink`; `format` is the stream's compression, for messages.
fn read_entries(
    decoded: Box<dyn Read + '_>,
    format: &str,
    source_name: &str,
    limits: Limits,
    sink: &dyn ObjectSink,
    progress: &Progress,
) -> Result<Node> {
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
    while let Some(header) = reader.next_entry().map_err(tar_error)? {
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
            Kind::Hardlink => {
                let earlier = normalise_entry_name(&header.link)
                    .ok()
                    .and_then(|t| find(&root, &t));
                match earlier {
                    Some(Node::File {
                        content,
                        executable,
                        size,
                    }) => {
                        // A hardlink is as many bytes as its file: links to
                        // one big file cannot multiply the data unbounded
                        // (nor the copies made past the link limit).
                        budget.file(*size).map_err(reject)?;
                        Node::File {
                            content: *content,
                            executable: *executable,
                            size: *size,
                        }
                    }
                    _ => {
                        return Err(reject(format!(
                            "is a hardlink to '{}', which is not an earlier regular file of this archive",
                            printable(&header.link)
                        )))
                    }
                }
            }
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
    Ok(root)
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
fn materialise(root: &Node, dir: &Path, objects: &ObjectWriter<'_>) -> Result<()> {
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
            }
            Node::File {
                content,
                executable,
                size,
            } => {
                if *size == 0 {
                    at::create_at(tree_fd, &path, object_mode(*executable))
                        .at("create file", &shown)?;
                } else {
                    let source = objects.source_of(content, *executable);
                    match at::link_to(&source, tree_fd, &path) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EMLINK) => {
                            copy_object(&source, tree_fd, &path, *executable, &shown)?
                        }
                        Err(e) => return Err(e).at("link object into", &shown),
                    }
                }
            }
        }
        Ok(())
    })?;
    // Children before parents, so no directory is read-only while it fills.
    for path in dirs.iter().rev() {
        at::chmod_at(tree_fd, path, 0o555).at("set mode of", dir)?;
    }
    Ok(())
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
    io::copy(&mut from, &mut File::from(to)).at("copy object to", shown)?;
    Ok(())
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
    fn env_names_follow_posix() {
        assert!(valid_env_name("PATH"));
        assert!(valid_env_name("_a1"));
        assert!(!valid_env_name("1A"));
        assert!(!valid_env_name(""));
        assert!(!valid_env_name("A-B"));
    }
}
