//! The OCI image layout being written: a staging directory beside DIR,
//! blobs streamed into it while they are hashed, and one rename that
//! makes it DIR once every file in it is on disk.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{failure, io_failure};
use crate::cli::Failure;
use crate::digest::Digest;
use crate::text::printable_path;

/// A blob as a descriptor names it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Blob {
    pub digest: Digest,
    pub size: u64,
}

/// The staging directory; removed when dropped unless published.
pub(super) struct Staging {
    dir: PathBuf,
    target: PathBuf,
    published: bool,
}

/// Refuses a `target` that exists as anything but an empty directory:
/// an export never mixes with what was there.
pub(super) fn check_target(target: &Path) -> Result<(), Failure> {
    let refuse = |why: &str| {
        failure(format!(
            "cannot export to '{}': {why}",
            printable_path(target)
        ))
    };
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_failure("export to", target, &e)),
        Ok(meta) if !meta.is_dir() => Err(refuse("it exists and is not a directory")),
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(target).map_err(|e| io_failure("read", target, &e))?;
            match entries.next() {
                None => Ok(()),
                Some(_) => Err(refuse(
                    "it exists and is not empty (give a new or empty directory)",
                )),
            }
        }
    }
}

impl Staging {
    /// `.NAME.export-oci-<unique>` beside `target`, with `oci-layout` and
    /// an empty `blobs/sha256/`.
    pub(super) fn create(target: &Path) -> Result<Staging, Failure> {
        let name = target
            .file_name()
            .ok_or_else(|| {
                failure(format!(
                    "cannot export to '{}': it names no directory",
                    printable_path(target)
                ))
            })?
            .to_string_lossy()
            .into_owned();
        let parent = parent_of(target);
        let dir = parent.join(format!(
            ".{name}.export-oci-{}",
            crate::store::unique_suffix()
        ));
        std::fs::create_dir(&dir).map_err(|e| io_failure("create", &dir, &e))?;
        let staging = Staging {
            dir,
            target: target.to_path_buf(),
            published: false,
        };
        let blobs = staging.blobs_dir();
        std::fs::create_dir_all(&blobs).map_err(|e| io_failure("create", &blobs, &e))?;
        staging.write_file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(staging)
    }

    fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs/sha256")
    }

    /// A new blob, written through the returned writer.
    pub(super) fn blob(&self) -> Result<BlobWriter, Failure> {
        let path = self
            .dir
            .join(format!("partial-{}", crate::store::unique_suffix()));
        let file = File::create(&path).map_err(|e| io_failure("create", &path, &e))?;
        Ok(BlobWriter {
            file: BufWriter::with_capacity(1 << 16, file),
            hasher: Sha256::new(),
            size: 0,
            path,
        })
    }

    /// A blob of `bytes` (a JSON document).
    pub(super) fn small_blob(&self, bytes: &[u8]) -> Result<Blob, Failure> {
        let mut writer = self.blob()?;
        let path = writer.path.clone();
        writer
            .write_all(bytes)
            .map_err(|e| io_failure("write", &path, &e))?;
        self.finish_blob(writer)
    }

    /// Makes a written blob `blobs/sha256/<hex>`, durably; the same
    /// content written twice (a layer in two stacks) is one blob.
    pub(super) fn finish_blob(&self, writer: BlobWriter) -> Result<Blob, Failure> {
        let BlobWriter {
            file,
            hasher,
            size,
            path,
        } = writer;
        let file = file
            .into_inner()
            .map_err(|e| io_failure("write", &path, e.error()))?;
        file.sync_all()
            .map_err(|e| io_failure("write", &path, &e))?;
        let digest = Digest::from_hasher(hasher);
        let named = self.blobs_dir().join(digest.hex());
        std::fs::rename(&path, &named).map_err(|e| io_failure("write", &named, &e))?;
        Ok(Blob { digest, size })
    }

    /// A file at the top of the layout (`oci-layout`, `index.json`).
    pub(super) fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), Failure> {
        let path = self.dir.join(name);
        let write = || -> io::Result<()> {
            let mut file = File::create(&path)?;
            file.write_all(bytes)?;
            file.sync_all()
        };
        write().map_err(|e| io_failure("write", &path, &e))
    }

    /// Renames the staging directory to DIR, after syncing every
    /// directory in it, then syncs DIR's parent: DIR appears complete or
    /// not at all. An empty DIR is replaced; one that filled meanwhile
    /// is not.
    pub(super) fn publish(mut self) -> Result<(), Failure> {
        for dir in [self.blobs_dir(), self.dir.join("blobs"), self.dir.clone()] {
            crate::store::sync_dir(&dir)?;
        }
        std::fs::rename(&self.dir, &self.target).map_err(|e| {
            let cause = match e.raw_os_error() {
                Some(libc::ENOTEMPTY) | Some(libc::EEXIST) => {
                    "it is no longer empty (something wrote there meanwhile)".to_string()
                }
                _ => crate::text::io_cause(&e),
            };
            failure(format!(
                "cannot export to '{}': {cause}",
                printable_path(&self.target)
            ))
        })?;
        self.published = true;
        crate::store::sync_dir(&parent_of(&self.target))?;
        Ok(())
    }
}

impl Drop for Staging {
    /// A failed export leaves nothing: what was staged goes.
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A blob being written: hashed and counted as its bytes pass, never
/// held in memory.
pub(super) struct BlobWriter {
    file: BufWriter<File>,
    hasher: Sha256,
    size: u64,
    path: PathBuf,
}

impl BlobWriter {
    /// The file being written, for messages.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Write for BlobWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.file.write(bytes)?;
        self.hasher.update(&bytes[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
