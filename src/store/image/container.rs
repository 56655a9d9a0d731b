//! Where an image's files are: a directory (an OCI image layout) or an
//! uncompressed tar archive (an oci-archive, a docker archive). Both are
//! read by relative names that never leave the image: in a directory no
//! symlink is followed and no `..` climbs out; in an archive a member is
//! found in an index of its headers, and a symlink member resolves to
//! another member, never to a file outside.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Error, Result, MAX_JSON_BYTES};
use crate::digest::Digest;
use crate::store::at;
use crate::store::tarball::{Kind, TarReader};
use crate::text::printable;

/// The most members an image archive may hold: real ones hold a few per
/// layer; the index of a hostile one stays small.
const MAX_MEMBERS: usize = 100_000;

/// How many symlink members a name may pass through in an archive.
const MAX_LINK_HOPS: usize = 8;

/// An image's files, open.
pub(super) struct Container {
    image: PathBuf,
    files: Files,
}

enum Files {
    Dir(Arc<OwnedFd>),
    Archive {
        file: Arc<File>,
        members: HashMap<String, Member>,
    },
}

enum Member {
    File { offset: u64, size: u64 },
    Symlink(String),
}

/// A file in an image, to be opened when needed.
#[derive(Clone)]
pub(super) enum Location {
    InDir {
        dir: Arc<OwnedFd>,
        name: String,
    },
    InArchive {
        file: Arc<File>,
        offset: u64,
        size: u64,
    },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::InDir { name, .. } => write!(f, "file {name}"),
            Location::InArchive { offset, size, .. } => {
                write!(f, "archive member at {offset}, {size} bytes")
            }
        }
    }
}

impl Location {
    /// The file's bytes from the start, and how many there are. A file in
    /// a directory must be a regular file (a FIFO or device would block or
    /// never end).
    pub(super) fn open(&self) -> io::Result<(Box<dyn Read + Send>, u64)> {
        match self {
            Location::InDir { dir, name } => {
                let c = at::cstring(name.as_bytes())?;
                let fd = at::open_beneath(dir.as_raw_fd(), &c, libc::O_RDONLY | libc::O_CLOEXEC)?;
                let st = at::fstat(&fd)?;
                if !at::is_file(&st) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "it is not a regular file",
                    ));
                }
                Ok((Box::new(File::from(fd)), st.st_size as u64))
            }
            Location::InArchive { file, offset, size } => Ok((
                Box::new(Range {
                    file: file.clone(),
                    position: *offset,
                    end: offset + size,
                }),
                *size,
            )),
        }
    }
}

/// A member's bytes, read with pread so that any number of readers can
/// share the archive's descriptor.
struct Range {
    file: Arc<File>,
    position: u64,
    end: u64,
}

impl Read for Range {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.position).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..want], self.position)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside this member (was it truncated after it was read?)",
            ));
        }
        self.position += got as u64;
        Ok(got)
    }
}

impl Container {
    /// Opens a directory, or indexes an uncompressed tar archive.
    pub(super) fn open(image: &Path) -> Result<Container> {
        let fail = |cause: String| Error {
            image: image.to_path_buf(),
            file: ".".into(),
            cause,
        };
        let meta = std::fs::metadata(image).map_err(|e| fail(crate::os::io_cause(&e)))?;
        let files = if meta.is_dir() {
            let fd = at::open_dir(image).map_err(|e| fail(crate::os::io_cause(&e)))?;
            Files::Dir(Arc::new(fd))
        } else if meta.is_file() {
            let file = File::open(image).map_err(|e| fail(crate::os::io_cause(&e)))?;
            let members = index_archive(&file).map_err(fail)?;
            Files::Archive {
                file: Arc::new(file),
                members,
            }
        } else {
            return Err(fail("it is neither a directory nor a regular file".into()));
        };
        Ok(Container {
            image: image.to_path_buf(),
            files,
        })
    }

    /// An error about `file` in this image.
    pub(super) fn error(&self, file: &str, cause: impl Into<String>) -> Error {
        Error {
            image: self.image.clone(),
            file: printable(file.as_bytes()),
            cause: cause.into(),
        }
    }

    /// Whether the image has a file `name` (a valid relative name).
    pub(super) fn has(&self, name: &str) -> bool {
        self.locate(name).is_ok()
    }

    /// Finds `name`, a relative path that must stay inside the image.
    pub(super) fn locate(&self, name: &str) -> Result<Location> {
        let parts = components(name).ok_or_else(|| {
            self.error(
                name,
                "the name is not a plain relative path inside the image (absolute, empty, or \
                 with '..')",
            )
        })?;
        match &self.files {
            Files::Dir(dir) => {
                if !at::exists_beneath(dir.as_raw_fd(), &parts) {
                    return Err(self.error(name, "there is no such file in the image"));
                }
                Ok(Location::InDir {
                    dir: dir.clone(),
                    name: parts.join("/"),
                })
            }
            Files::Archive { file, members } => {
                let (offset, size) = resolve_member(members, parts.join("/"))
                    .map_err(|cause| self.error(name, cause))?;
                Ok(Location::InArchive {
                    file: file.clone(),
                    offset,
                    size,
                })
            }
        }
    }

    /// The blob `digest` names, as `blobs/sha256/<hex>`.
    pub(super) fn blob(&self, digest: &Digest) -> (String, Result<Location>) {
        let name = blob_name(digest);
        let location = self.locate(&name);
        (name, location)
    }

    /// Reads a JSON document of at most [`MAX_JSON_BYTES`]; with `expect`,
    /// checks its size and digest against its descriptor's.
    pub(super) fn read_json(&self, name: &str, expect: Option<(&Digest, u64)>) -> Result<Vec<u8>> {
        let location = self.locate(name)?;
        let (reader, size) = location
            .open()
            .map_err(|e| self.error(name, crate::os::io_cause(&e)))?;
        if size > MAX_JSON_BYTES {
            return Err(self.error(
                name,
                format!("it is {size} bytes; an image's JSON may have at most {MAX_JSON_BYTES}"),
            ));
        }
        if let Some((_, declared)) = expect {
            if size != declared {
                return Err(self.error(
                    name,
                    format!("it is {size} bytes, but its descriptor says {declared}"),
                ));
            }
        }
        let mut bytes = Vec::with_capacity(size as usize);
        reader
            .take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.error(name, crate::os::io_cause(&e)))?;
        if bytes.len() as u64 != size {
            return Err(self.error(name, "it changed size while it was read"));
        }
        if let Some((digest, _)) = expect {
            let actual = Digest::of(&bytes);
            if actual != *digest {
                return Err(self.error(
                    name,
                    format!("its content has the digest {actual}, not {digest} as named"),
                ));
            }
        }
        Ok(bytes)
    }
}

pub(super) fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// A relative name's components: none empty (after dropping `./` and a
/// trailing `/`), none `.` or `..`, not absolute.
fn components(name: &str) -> Option<Vec<&str>> {
    if name.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") || name.contains('\0') {
        return None;
    }
    Some(parts)
}

/// A member name as an index key: `./` prefixes and doubled slashes gone.
fn normalize(name: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(name).ok()?;
    Some(components(text)?.join("/"))
}

/// Follows symlink members from `name` to a regular member, lexically and
/// inside the archive: a target that climbs above the archive's top is
/// refused, as is a chain longer than [`MAX_LINK_HOPS`].
fn resolve_member(
    members: &HashMap<String, Member>,
    mut name: String,
) -> Result<(u64, u64), String> {
    for _ in 0..=MAX_LINK_HOPS {
        match members.get(&name) {
            None => return Err("there is no such member in the archive".into()),
            Some(Member::File { offset, size }) => return Ok((*offset, *size)),
            Some(Member::Symlink(target)) => {
                let mut parts: Vec<&str> = match target.starts_with('/') {
                    true => Vec::new(),
                    false => name.split('/').collect(),
                };
                parts.pop();
                for part in target.split('/') {
                    match part {
                        "" | "." => {}
                        ".." => {
                            if parts.pop().is_none() {
                                return Err(format!(
                                    "it is a symlink to '{}', outside the archive",
                                    printable(target.as_bytes())
                                ));
                            }
                        }
                        other => parts.push(other),
                    }
                }
                name = parts.join("/");
            }
        }
    }
    Err(format!(
        "it passes through more than {MAX_LINK_HOPS} symlinks"
    ))
}

/// Reads the archive's headers once: where each regular member's data is,
/// and where each symlink member points. Directories and other kinds are
/// not needed to read an image and are left out.
fn index_archive(file: &File) -> Result<HashMap<String, Member>, String> {
    let mut magic = [0u8; 4];
    let got = file
        .read_at(&mut magic, 0)
        .map_err(|e| crate::os::io_cause(&e))?;
    if magic[..got].starts_with(&[0x1f, 0x8b])
        || magic[..got].starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
    {
        return Err(
            "it is a compressed archive; an image archive is read uncompressed \
                    (decompress it first: gzip -d or zstd -d)"
                .into(),
        );
    }
    let mut reader = TarReader::new(BufReader::with_capacity(1 << 16, file));
    let mut members = HashMap::new();
    while let Some(header) = reader.next_entry().map_err(|e| {
        let entry = e.entry.as_deref().map(printable).unwrap_or_default();
        format!("it is not a readable tar archive ({entry}): {}", e.reason)
    })? {
        let member = match header.kind {
            Kind::File => Member::File {
                offset: reader.data_offset(),
                size: header.size,
            },
            Kind::Symlink => match String::from_utf8(header.link.clone()) {
                Ok(target) => Member::Symlink(target),
                Err(_) => continue,
            },
            _ => continue,
        };
        // A member whose name no lookup can produce is never read.
        let Some(name) = normalize(&header.path) else {
            continue;
        };
        if members.len() >= MAX_MEMBERS {
            return Err(format!(
                "it has more than {MAX_MEMBERS} members; an image archive has a few per layer"
            ));
        }
        if members.insert(name.clone(), member).is_some() {
            return Err(format!(
                "it holds the member '{}' twice, so which one is meant is unclear",
                printable(name.as_bytes())
            ));
        }
    }
    Ok(members)
}
