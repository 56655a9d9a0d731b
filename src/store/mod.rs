//! The slice store: content-addressed objects, immutable slice trees built
//! from hardlinks to them, and name refs.
//!
//! ```text
//! $SLICEBOX_STORE/
//!   objects/ab/cdef…        one file's bytes, named by sha256; `.x` suffix when executable
//!   slices/<hex>/manifest.json
//!   slices/<hex>/tree/…     read-only tree of hardlinks into objects/
//!   slices/<hex>/listing    every entry with its content digest
//!   refs/<name>             the digest a name points at, then its history
//!   pins/<pid>.<n>          slices a running stage uses (flock'ed while it runs)
//!   tmp/                    staging; anything here is garbage after a crash
//!   lock                    shared by adds, exclusive for gc
//! ```
//!
//! A slice becomes visible only by the rename of its finished staging dir,
//! and its ref is written last, so a crash leaves the old state or the new
//! one (see docs/formats.md).

pub(crate) mod archive_meta;
mod archive_source;
mod at;
mod cache;
mod dir_source;
mod fsutil;
mod heal;
pub mod image;
mod ingest;
pub mod layer;
mod limits;
mod listing;
mod lock;
mod maintenance;
mod mount_point;
mod objects;
mod parallel;
pub(crate) mod prefix;
mod progress;
mod receive;
mod ref_index;
mod refs;
mod slice;
mod sorted_names;
mod staged;
mod stat_cache;
mod tarball;
mod tree;
mod verify;

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use archive_source::parse_archive_only;
/// For writers of what the store reads back (`slice-export`, `export-oci`).
pub(crate) use fsutil::{sync_dir, unique_suffix};
pub use ingest::{directory_digest, Added, FromArchive, IngestOptions, Source};
pub use limits::{Limits, LIMIT_KEYS};
pub use listing::{parse as parse_listing, Entry};
pub use lock::{OutputDir, Pin, StageNote, StoreLock};
pub use maintenance::{file_digest, Change, Damage, GcReport, SliceUsage, StoreStats};
pub use mount_point::validate_mount_point;
pub use prefix::{BuiltFor, PrefixCheck};
pub use progress::{ProgressSink, Tally};
pub use receive::{wire_files, Incoming, WireFile};
pub use ref_index::Found;
pub use refs::validate_name;
pub use slice::{Manifest, SliceInfo};
#[cfg(test)]
pub(crate) use tarball::TarReader;
pub(crate) use tarball::XATTR_PREFIX;
pub use tree::{tree_digest, Node};

/// The tree digest a listing describes, if it describes a tree at all.
pub fn listing_tree_digest(entries: &[Entry]) -> Option<Digest> {
    listing::to_tree(entries).map(|t| tree_digest(&t))
}

use crate::digest::Digest;

/// Everything that can go wrong in the store. Each variant names the step
/// that failed and the path or entry it failed on, so the caller can print
/// `program: cannot <op> '<path>': <cause>` without knowing store internals.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {op} '{}': {}", printable_path(.path), crate::text::io_cause(.source))]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot add '{source_name}': entry '{entry}' {reason}; nothing was added")]
    Rejected {
        source_name: String,
        entry: String,
        reason: String,
    },
    #[error("cannot add '{source_name}': {reason}; nothing was added")]
    BadSource { source_name: String, reason: String },
    #[error("no slice '{reference}' in the store '{}'{hint}", printable_path(.store))]
    NotFound {
        reference: String,
        store: PathBuf,
        /// `"; did you mean 'NAME'?"` for a stored name close to `reference`, or empty.
        hint: String,
    },
    #[error("no layer '{reference}' in the store '{}' (layer-list lists the layer names)", printable_path(.store))]
    NoLayer { reference: String, store: PathBuf },
    #[error(
        "'{reference}' is neither a name nor a full sha256: digest; {command} changes the store, \
         so it takes no digest prefixes (slice-show or slice-list gives the full digest)"
    )]
    NeedsExactRef { reference: String, command: String },
    #[error(
        "slice reference '{reference}' is ambiguous in the store '{}'; it matches: {}",
        printable_path(.store),
        .candidates.join(", ")
    )]
    Ambiguous {
        reference: String,
        store: PathBuf,
        candidates: Vec<String>,
    },
    #[error("invalid slice name '{name}': {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid mount point '{path}': {reason}")]
    InvalidMountPoint { path: String, reason: &'static str },
    #[error("invalid environment entry '{entry}': {reason}")]
    InvalidEnv { entry: String, reason: String },
    #[error("store is damaged at '{}': {reason}", printable_path(.path))]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}", foreign_store(.path, *.owner, *.you))]
    ForeignStore { path: PathBuf, owner: u32, you: u32 },
}

/// `'alice' (uid 1000)`, or `uid 1000` for a uid without a name.
fn describe_user(uid: u32) -> String {
    match crate::os::user_name(uid) {
        Some(name) => format!("'{}' (uid {uid})", printable(name.as_bytes())),
        None => format!("uid {uid}"),
    }
}

/// Why a store another user owns is refused, and what to do instead. Root
/// is refused too: what root added there its owner could not remove, and
/// what the owner put there root would mount and run.
fn foreign_store(path: &Path, owner: u32, you: u32) -> String {
    let owner = describe_user(owner);
    let mut text = format!(
        "cannot use the store '{}': it belongs to {owner}, not to you, {}; slicebox uses only a \
         store of your own, as git refuses another user's repository: set SLICEBOX_STORE to a \
         directory of yours (slicebox makes it, private to you), or run as {owner}",
        printable_path(path),
        describe_user(you),
    );
    if you == 0 {
        text.push_str(
            " (root too is refused: what root adds there its owner cannot remove, \
             and what its owner puts there root would run)",
        );
    }
    text
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the failing operation and path to an io::Error.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// An opened store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// The root's mode when `open` found it open to other users and made
    /// it private.
    made_private_from: Option<u32>,
}

impl Store {
    /// `$SLICEBOX_STORE`, else `${XDG_DATA_HOME:-$HOME/.local/share}/slicebox/store`.
    /// The store has a directory of its own, so that wiping it leaves what
    /// else lives in `slicebox/` (the YSH module of a `make install` into
    /// `~/.local`). A store made where versions before 0.2 put it, in
    /// `slicebox/` itself, is found by its lock file and still used.
    pub fn default_root(env: &[(String, String)]) -> Option<PathBuf> {
        let get = |key: &str| {
            env.iter()
                .find(|(k, v)| k == key && !v.is_empty())
                .map(|(_, v)| PathBuf::from(v))
        };
        if let Some(explicit) = get("SLICEBOX_STORE") {
            return Some(explicit);
        }
        let data = get("XDG_DATA_HOME").or_else(|| get("HOME").map(|h| h.join(".local/share")))?;
        let ours = data.join("slicebox");
        if fs::symlink_metadata(ours.join("lock")).is_ok() {
            return Some(ours);
        }
        Some(ours.join("store"))
    }

    /// Opens the store at `root`, creating its directories when missing:
    /// the root's parents as `mkdir -p` makes them, the root itself private
    /// to its owner (0700). A root another user owns is refused; one of
    /// ours that other users may enter is made private (docs/formats.md).
    pub fn open(root: &Path) -> Result<Store> {
        let made_private_from = own_root(root)?;
        // The lock file is made last: a store that has it has the rest (a
        // crash in between makes them again next time). Stages open the
        // store on every start, so a made one costs one lookup here.
        let lock = root.join("lock");
        if fs::symlink_metadata(&lock).is_err() {
            for sub in ["objects", "slices", "refs", "tmp", "pins"] {
                let dir = root.join(sub);
                fs::create_dir_all(&dir).at("create store directory", &dir)?;
            }
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&lock)
                .at("create store lock", &lock)?;
        }
        // Absolute, so that paths handed to the runtime survive a chdir.
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            fs::canonicalize(root).at("open store", root)?
        };
        Ok(Store {
            root,
            made_private_from,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The mode the root had when `open` made it private (it was open to
    /// other users); `None` when it was private already.
    pub fn made_private_from(&self) -> Option<u32> {
        self.made_private_from
    }

    fn objects_dir(&self) -> PathBuf {
        self.root.join("objects")
    }

    fn slices_dir(&self) -> PathBuf {
        self.root.join("slices")
    }

    fn refs_dir(&self) -> PathBuf {
        self.root.join("refs")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the object for `content` lives. The executable bit is part of
    /// the key because hardlinks share one mode.
    pub fn object_path(&self, content: &Digest, executable: bool) -> PathBuf {
        let hex = content.hex();
        let mut name = hex[2..].to_string();
        if executable {
            name.push_str(".x");
        }
        self.objects_dir().join(&hex[..2]).join(name)
    }

    pub fn slice_dir(&self, slice: &Digest) -> PathBuf {
        self.slices_dir().join(slice.hex())
    }

    /// The read-only tree a stage bind-mounts for `slice`.
    pub fn slice_tree(&self, slice: &Digest) -> PathBuf {
        self.slice_dir(slice).join("tree")
    }
}

pub use crate::text::{printable, printable_path};

/// Makes `root` if it is missing (0700, its parents as `mkdir -p`), checks
/// that this user owns it, and takes group and other access away if it
/// has any. Returns the mode it had then.
fn own_root(root: &Path) -> Result<Option<u32>> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let meta = match fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).at("create store directory", parent)?;
            }
            match fs::DirBuilder::new().mode(0o700).create(root) {
                Ok(()) => {}
                // Made meanwhile: checked below like any other.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).at("create store directory", root),
            }
            fs::metadata(root)
        }
        found => found,
    }
    .at("open store", root)?;
    if !meta.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR)).at("open store", root);
    }
    let you = nix::unistd::geteuid().as_raw();
    if meta.uid() != you {
        return Err(Error::ForeignStore {
            path: root.to_path_buf(),
            owner: meta.uid(),
            you,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(root, fs::Permissions::from_mode(mode & 0o7700))
        .at("make the store private (chmod go-rwx)", root)?;
    Ok(Some(mode))
}

/// Crash points for tests: when `SLICEBOX_CRASH_AT` names this point, the
/// process kills itself with SIGKILL right here, so a test can stop an add
/// or a gc between any two of its durable steps. Costs one env lookup.
pub(crate) fn crash_point(name: &str) {
    if std::env::var_os("SLICEBOX_CRASH_AT").is_some_and(|at| at == name) {
        // SAFETY: raising a signal on ourselves.
        unsafe { libc::raise(libc::SIGKILL) };
    }
}

/// Pause points for tests: when `SLICEBOX_PAUSE_AT` names this point, the
/// process stops itself (SIGSTOP) right here, so a test can change the
/// source under it and let it go on with SIGCONT. With
/// `SLICEBOX_PAUSE_FILE` set, it creates that file instead and waits
/// until the test removes it (some shells continue a stopped child on
/// their own). Costs one env lookup.
pub fn pause_point(name: &str) {
    if !std::env::var_os("SLICEBOX_PAUSE_AT").is_some_and(|at| at == name) {
        return;
    }
    let Some(file) = std::env::var_os("SLICEBOX_PAUSE_FILE") else {
        // SAFETY: raising a signal on ourselves.
        unsafe { libc::raise(libc::SIGSTOP) };
        return;
    };
    if fs::write(&file, name).is_ok() {
        while Path::new(&file).exists() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

pub(crate) fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_new_store_is_private_and_an_open_one_is_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let new = tmp.path().join("a/b/store");
        let store = Store::open(&new).unwrap();
        assert_eq!(mode(&new), 0o700);
        assert_eq!(store.made_private_from(), None);
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o2775)).unwrap();
        assert_eq!(
            Store::open(&open).unwrap().made_private_from(),
            Some(0o2775)
        );
        assert_eq!(mode(&open), 0o2700);
        assert_eq!(Store::open(&open).unwrap().made_private_from(), None);
    }

    #[test]
    fn a_store_another_uid_owns_is_refused_before_anything_is_made_in_it() {
        if !nix::unistd::geteuid().is_root() {
            return; // chown needs root; spec/store-owner.test.sh covers the rest
        }
        let tmp = tempfile::tempdir().unwrap();
        let foreign = tmp.path().join("foreign");
        fs::create_dir(&foreign).unwrap();
        std::os::unix::fs::chown(&foreign, Some(4242), None).unwrap();
        let err = Store::open(&foreign).unwrap_err();
        assert!(
            matches!(err, Error::ForeignStore { owner: 4242, .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("belongs to uid 4242") && text.contains("SLICEBOX_STORE"),
            "{text}"
        );
        assert_eq!(fs::read_dir(&foreign).unwrap().count(), 0);
    }

    #[test]
    fn io_errors_read_without_the_os_error_suffix() {
        let err = fs::read("/nonexistent/x").at("read manifest", Path::new("/nonexistent/x"));
        assert_eq!(
            err.unwrap_err().to_string(),
            "cannot read manifest '/nonexistent/x': No such file or directory"
        );
    }

    #[test]
    fn default_root_prefers_the_explicit_variable() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            Store::default_root(&env(&[("HOME", "/h"), ("SLICEBOX_STORE", "/s")])),
            Some(PathBuf::from("/s"))
        );
        assert_eq!(
            Store::default_root(&env(&[("HOME", "/h"), ("XDG_DATA_HOME", "/x")])),
            Some(PathBuf::from("/x/slicebox/store"))
        );
        assert_eq!(
            Store::default_root(&env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.local/share/slicebox/store"))
        );
        assert_eq!(Store::default_root(&env(&[])), None);
        // A store where earlier versions made it is found and used.
        let old = std::env::temp_dir().join(format!("old-store-{}", std::process::id()));
        Store::open(&old.join("slicebox")).unwrap();
        let xdg = old.to_str().unwrap();
        assert_eq!(
            Store::default_root(&env(&[("HOME", "/h"), ("XDG_DATA_HOME", xdg)])),
            Some(old.join("slicebox"))
        );
        fs::remove_dir_all(&old).unwrap();
    }
}
