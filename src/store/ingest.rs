//! `slice-add`: parse a source into an in-memory tree (rejecting anything
//! hostile before it touches the store), materialise it in a private
//! staging dir, then publish objects, slice and ref in that order.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::objects::{copy_object, create_empty, ObjectWriter};
use super::progress::Progress;
use super::tree::{find, place, tree_digest, Node};
use super::{crash_point, listing, parallel};
use super::{
    os, printable, printable_path, refs, Error, IoContext, Manifest, Result, SliceInfo, Store,
};

/// Where a slice's files come from.
#[derive(Debug, Clone)]
pub enum Source {
    Directory(PathBuf),
    /// A `.tar`, `.tar.gz` or `.tar.zst` file; the compression is detected from its
    /// first bytes, not its name.
    Archive(PathBuf),
    /// A tar stream (possibly gzip-compressed) on an open descriptor.
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
    /// Larger regular files are refused before any byte is read, so a
    /// header that claims petabytes cannot fill the disk.
    pub max_file_size: u64,
    /// Where to draw a progress line (a terminal), if anywhere.
    pub progress_fd: Option<RawFd>,
}

pub const DEFAULT_MAX_FILE_SIZE: u64 = 64 << 30;

/// What `add_slice` did.
#[derive(Debug, Clone)]
pub struct Added {
    pub info: SliceInfo,
    /// Bytes of new object data written; 0 when every file was stored already.
    pub written_bytes: u64,
}

impl Store {
    /// Adds `source` as a slice and points `name` at it.
    pub fn add_slice(&self, name: &str, source: &Source, options: &IngestOptions) -> Result<Added> {
        refs::validate_name(name)?;
        let mount_point = validate_mount_point(&options.mount_point)?;
        for entry in &options.env {
            if !entry
                .split_once('=')
                .is_some_and(|(k, _)| valid_env_name(k))
            {
                return Err(Error::InvalidEnv {
                    entry: entry.clone(),
                });
            }
        }
        // Shared for the whole add: gc cannot delete an object this add
        // found already stored and is about to link.
        let _lock = self.lock_shared()?;
        let stage = Stage::create(self)?;
        let objects = ObjectWriter::new(self, &stage.path)?;
        let source_name = source.describe();
        let progress = Progress::start(options.progress_fd, format!("adding {name}"));
        let root = match source {
            Source::Directory(dir) => read_directory(dir, &objects, &progress)?,
            Source::Archive(path) => {
                let file = File::open(path).at("open", path)?;
                read_archive(file, &source_name, options, &objects, &progress)?
            }
            Source::Stream(fd) => {
                // SAFETY: the caller owns `fd` and keeps it open for this call.
                let borrowed = unsafe { BorrowedFd::borrow_raw(*fd) };
                read_archive(
                    FdReader(borrowed),
                    &source_name,
                    options,
                    &objects,
                    &progress,
                )?
            }
        };
        progress.finish();
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
        let tree_dir = staged_slice.join("tree");
        materialise(&root, &tree_dir, &objects)?;
        let listing_path = staged_slice.join("listing");
        fs::write(&listing_path, listing::write(&root)).at("write listing", &listing_path)?;
        manifest.write(&staged_slice.join("manifest.json"))?;

        // One syncfs for the whole batch (as ostree does) instead of an
        // fsync per file: objects and tree are durable before they become
        // reachable.
        crash_point("add:staged");
        sync_filesystem(self.root())?;
        crash_point("add:synced");
        objects.publish()?;
        crash_point("add:objects-published");
        let final_dir = self.slice_dir(&slice_digest);
        match fs::rename(&staged_slice, &final_dir) {
            Ok(()) => {}
            // An identical slice is already stored: ours was a copy.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {}
            Err(e) => return Err(e).at("store slice", &final_dir),
        }
        sync_dir(&self.slices_dir())?;
        crash_point("add:slice-published");
        refs::set(self, name, &slice_digest)?;
        crash_point("add:ref-written");
        drop(stage);
        Ok(Added {
            info: self.slice_info(&slice_digest)?,
            written_bytes: objects.written.load(Ordering::Relaxed),
        })
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

static STAGE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Stage {
    fn create(store: &Store) -> Result<Stage> {
        let path = store.tmp_dir().join(format!(
            "stage-{}-{}",
            std::process::id(),
            STAGE_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).at("create staging directory", &path)?;
        Ok(Stage { path })
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        make_writable(&self.path);
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Read-only staged dirs must become writable again before removal.
pub(crate) fn make_writable(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_writable(&entry.path());
        }
    }
}

/// What the walk of a directory source found, before file contents are
/// hashed (in parallel).
enum Found {
    Dir,
    Symlink(Vec<u8>),
    File { path: PathBuf, executable: bool },
}

fn read_directory(dir: &Path, objects: &ObjectWriter<'_>, progress: &Progress) -> Result<Node> {
    let meta = fs::metadata(dir).at("read", dir)?;
    if !meta.is_dir() {
        return Err(Error::BadSource {
            source_name: printable_path(dir),
            reason: "not a directory".into(),
        });
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut Vec::new(), &mut found)?;
    let files: Vec<(&PathBuf, bool)> = found
        .iter()
        .filter_map(|(_, what)| match what {
            Found::File { path, executable } => Some((path, *executable)),
            _ => None,
        })
        .collect();
    let results = parallel::map(&files, |(path, executable)| {
        // O_NOFOLLOW: a file swapped for a symlink after the walk is refused.
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .at("open", path)?;
        let result = objects.add_file(&mut file, *executable, path)?;
        progress.advance(result.1);
        Ok(result)
    })?;
    let mut root = Node::empty_dir();
    let mut hashed = results.into_iter();
    for (parts, what) in found {
        let node = match what {
            Found::Dir => Node::empty_dir(),
            Found::Symlink(target) => Node::Symlink { target },
            Found::File { executable, .. } => {
                let (content, size) = hashed.next().expect("every file was hashed");
                Node::File {
                    content,
                    executable,
                    size,
                }
            }
        };
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        place(&mut root, &parts, node).expect("directory entries have unique names");
    }
    Ok(root)
}

fn walk(
    top: &Path,
    dir: &Path,
    prefix: &mut Vec<Vec<u8>>,
    found: &mut Vec<(Vec<Vec<u8>>, Found)>,
) -> Result<()> {
    for entry in fs::read_dir(dir).at("read directory", dir)? {
        let entry = entry.at("read directory", dir)?;
        let path = entry.path();
        let kind = entry.file_type().at("read", &path)?;
        prefix.push(entry.file_name().as_bytes().to_vec());
        if kind.is_dir() {
            found.push((prefix.clone(), Found::Dir));
            walk(top, &path, prefix, found)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).at("read symlink", &path)?;
            found.push((
                prefix.clone(),
                Found::Symlink(target.as_os_str().as_bytes().to_vec()),
            ));
        } else if kind.is_file() {
            let meta = fs::symlink_metadata(&path).at("read", &path)?;
            let executable = meta.permissions().mode() & 0o111 != 0;
            found.push((prefix.clone(), Found::File { path, executable }));
        } else {
            return Err(Error::Rejected {
                source_name: printable_path(top),
                entry: printable_path(path.strip_prefix(top).unwrap_or(&path)),
                reason: "is a device node, fifo or socket; slices hold only files, directories and symlinks"
                    .into(),
            });
        }
        prefix.pop();
    }
    Ok(())
}

/// Splits a tar entry name into safe components: `.` and empty parts are
/// dropped; `..` and absolute names are refused.
fn normalise_entry_name(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if name.first() == Some(&b'/') {
        return Err("is an absolute path");
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

fn read_archive(
    input: impl Read,
    source_name: &str,
    options: &IngestOptions,
    objects: &ObjectWriter<'_>,
    progress: &Progress,
) -> Result<Node> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let magic = buffered
        .fill_buf()
        .map_err(|e| bad_source(source_name, &e))?;
    let decoded: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(|e| bad_source(source_name, &e))?,
        )
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(decoded);
    let entries = archive.entries().map_err(|e| bad_source(source_name, &e))?;
    let mut root = Node::empty_dir();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| bad_source(source_name, &e))?;
        let raw_name = entry.path_bytes().into_owned();
        let reject = |reason: String| Error::Rejected {
            source_name: source_name.into(),
            entry: printable(&raw_name),
            reason,
        };
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            continue;
        }
        let parts = normalise_entry_name(&raw_name).map_err(|r| reject(r.into()))?;
        if parts.is_empty() {
            if kind.is_dir() {
                continue;
            }
            return Err(reject("has an empty name".into()));
        }
        if !seen.insert(parts.join(&b'/')) {
            return Err(reject("appears twice in the archive".into()));
        }
        let node = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let declared = entry.header().size().map_err(|e| reject(e.to_string()))?;
                if declared > options.max_file_size {
                    return Err(reject(format!(
                        "claims {declared} bytes, more than the limit of {} bytes",
                        options.max_file_size
                    )));
                }
                // Only the executable bit survives: setuid, setgid and
                // sticky bits are dropped, as are owners and mtimes.
                let mode = entry.header().mode().map_err(|e| reject(e.to_string()))?;
                let executable = mode & 0o111 != 0;
                let origin = PathBuf::from(os(&raw_name));
                let (content, size) = objects.add_stream(&mut entry, executable, &origin)?;
                progress.advance(size);
                Node::File {
                    content,
                    executable,
                    size,
                }
            }
            tar::EntryType::Directory => Node::empty_dir(),
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| reject("is a symlink without a target".into()))?;
                Node::Symlink {
                    target: target.into_owned(),
                }
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| reject("is a hardlink without a target".into()))?
                    .into_owned();
                let earlier = normalise_entry_name(&target)
                    .ok()
                    .and_then(|t| find(&root, &t).cloned());
                match earlier {
                    Some(file @ Node::File { .. }) => file,
                    _ => {
                        return Err(reject(format!(
                            "is a hardlink to '{}', which is not an earlier regular file of this archive",
                            printable(&target)
                        )))
                    }
                }
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(reject("is a device node".into()))
            }
            tar::EntryType::Fifo => return Err(reject("is a fifo".into())),
            tar::EntryType::GNUSparse => {
                return Err(reject("is a sparse file, which is not supported".into()))
            }
            other => return Err(reject(format!("has unsupported type {other:?}"))),
        };
        place(&mut root, &parts, node).map_err(|e| reject(e.to_string()))?;
    }
    Ok(root)
}

fn bad_source(source_name: &str, cause: &io::Error) -> Error {
    Error::BadSource {
        source_name: source_name.into(),
        reason: format!("not a readable tar archive: {cause}"),
    }
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

/// Builds the staged tree: hardlinks to objects, with copies for empty
/// files and for objects at the filesystem's link limit. Directories are
/// made read-only once filled.
fn materialise(node: &Node, path: &Path, objects: &ObjectWriter<'_>) -> Result<()> {
    match node {
        Node::Dir(entries) => {
            fs::create_dir(path).at("create directory", path)?;
            for (name, child) in entries {
                materialise(child, &path.join(os(name)), objects)?;
            }
            fs::set_permissions(path, fs::Permissions::from_mode(0o555)).at("set mode of", path)
        }
        Node::Symlink { target } => {
            std::os::unix::fs::symlink(os(target), path).at("create symlink", path)
        }
        Node::File {
            content,
            executable,
            size,
        } => {
            if *size == 0 {
                return create_empty(path, *executable);
            }
            let source = objects.source_of(content, *executable);
            match fs::hard_link(&source, path) {
                Ok(()) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EMLINK) => {
                    copy_object(&source, path, *executable)
                }
                Err(e) => Err(e).at("link object into", path),
            }
        }
    }
}

pub(crate) fn sync_filesystem(path: &Path) -> Result<()> {
    let dir = File::open(path).at("open", path)?;
    nix::unistd::syncfs(dir.as_raw_fd())
        .map_err(io::Error::from)
        .at("sync", path)
}

pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    File::open(path).and_then(|d| d.sync_all()).at("sync", path)
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
