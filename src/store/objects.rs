//! Writing objects. A file is read once: small files are hashed in memory
//! and written only if the store lacks them; big files are hashed first
//! and copied only if new (seekable sources), or streamed into a temp file
//! while hashed (tar streams). New objects stay in the staging dir until
//! the slice commits, so a rejected source leaves the object set unchanged.
//! Safe to share between ingest threads.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use super::fsutil;
use super::{Error, IoContext, Result, Store};
use crate::digest::Digest;

/// Files up to this size are read whole into memory before any write.
const IN_MEMORY_LIMIT: usize = 4 << 20;
/// Most objects whose verification one ingest remembers (some 100 bytes
/// each). Past them an object is trusted no less, only checked again
/// where it is met again (`known`, a stored slice's verify): memory stays
/// bounded whatever the entry count, also when every object is stored
/// already (300,000 of them took the helper from 4 to 47 MB).
const MOST_REMEMBERED: usize = 1 << 16;
const CHUNK: usize = 256 << 10;

pub(crate) struct ObjectWriter<'s> {
    store: &'s Store,
    incoming: PathBuf,
    staged: PathBuf,
    next_temp: AtomicU64,
    /// Inodes of the objects this ingest created, once published, up to
    /// `MOST_REMEMBERED` (the objects themselves are the files of
    /// `staged`: no entry in memory per object).
    published: Mutex<Vec<(u64, u64)>>,
    /// Stored objects this ingest re-hashed and found right, with their
    /// inodes (a slice tree file with one of these inodes is right too),
    /// up to `MOST_REMEMBERED`.
    verified: Mutex<HashMap<(Digest, bool), (u64, u64)>>,
    /// Stored objects found damaged: ours replace them at publish.
    damaged: Mutex<HashSet<(Digest, bool)>>,
    /// Bytes of object data this ingest wrote (for tests and reports).
    pub(crate) written: AtomicU64,
}

/// Object file modes, by the executable bit alone: 0755 or 0644, the
/// modes of nearly every file a package or an image holds, so that a
/// layer's files can be the objects themselves (formats.md, Objects). No
/// stage can write one: slices are read-only mounts, and layers are an
/// overlay's lower dirs, which OverlayFS copies up before a write.
pub(crate) fn object_mode(executable: bool) -> u32 {
    if executable {
        0o755
    } else {
        0o644
    }
}

fn read_retrying(reader: &mut dyn Read, buf: &mut [u8], origin: &Path) -> Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.at("read", origin),
        }
    }
}

/// Reads into `buf` up to `limit` bytes; true when that reached EOF.
fn fill(reader: &mut dyn Read, buf: &mut Vec<u8>, limit: usize, origin: &Path) -> Result<bool> {
    // Room for most files in one read, as a fixed chunk would give.
    buf.reserve(CHUNK);
    // One byte past the limit tells "exactly at the limit" from "more".
    reader
        .take(limit as u64 + 1)
        .read_to_end(buf)
        .at("read", origin)?;
    Ok(buf.len() <= limit)
}

/// Feeds the rest of `reader` to `hasher`; returns the bytes read. The one
/// hashing loop of ingest and verify.
/// Blocks of zeros are left as holes: the unit a filesystem allocates.
const SPARSE_BLOCK: usize = 4096;

/// Writes `bytes` at `offset`, skipping every aligned block of zeros, so an
/// object keeps the holes of a sparse source (a 2 GB `truncate` file takes
/// no blocks, not 2 GB). [`finish_object`] sets the size a trailing hole
/// leaves short.
fn write_sparse(file: &File, offset: u64, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut at = 0;
    while at < bytes.len() {
        // Up to the next aligned block boundary of the file.
        let position = offset + at as u64;
        let room = SPARSE_BLOCK - (position % SPARSE_BLOCK as u64) as usize;
        let block = &bytes[at..bytes.len().min(at + room)];
        if block.iter().any(|b| *b != 0) {
            file.write_all_at(block, position)?;
        }
        at += block.len();
    }
    Ok(())
}

/// Gives an object written by [`write_sparse`] its full size and, like
/// every object, the fixed mtime (docs/formats.md, "Objects").
fn finish_object(file: &File, size: u64) -> io::Result<()> {
    file.set_len(size)?;
    fsutil::set_fixed_mtime(file)
}

pub(crate) fn hash_rest(reader: &mut dyn Read, hasher: &mut Sha256) -> io::Result<u64> {
    let mut chunk = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(size),
            Ok(n) => {
                hasher.update(&chunk[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Where parsed file contents go: into the store, or (for fuzzing and
/// checks) only through the hash.
pub(crate) trait ObjectSink: Sync {
    /// Reads `reader` to its end; returns the content digest and size.
    fn add_stream(
        &self,
        reader: &mut dyn Read,
        executable: bool,
        origin: &Path,
    ) -> Result<(Digest, u64)>;

    /// A regular file of a directory source; the same as a stream unless
    /// the sink can do better with a file it may read twice.
    fn add_file(&self, file: &mut File, executable: bool, origin: &Path) -> Result<(Digest, u64)> {
        self.add_stream(file, executable, origin)
    }
}

impl ObjectSink for ObjectWriter<'_> {
    fn add_stream(
        &self,
        reader: &mut dyn Read,
        executable: bool,
        origin: &Path,
    ) -> Result<(Digest, u64)> {
        ObjectWriter::add_stream(self, reader, executable, origin)
    }

    fn add_file(&self, file: &mut File, executable: bool, origin: &Path) -> Result<(Digest, u64)> {
        ObjectWriter::add_file(self, file, executable, origin)
    }
}

/// Hashes and forgets.
pub(crate) struct HashOnly;

impl ObjectSink for HashOnly {
    fn add_stream(
        &self,
        reader: &mut dyn Read,
        _executable: bool,
        origin: &Path,
    ) -> Result<(Digest, u64)> {
        let mut hasher = Sha256::new();
        let size = hash_rest(reader, &mut hasher).at("read", origin)?;
        Ok((Digest::from_hasher(hasher), size))
    }
}

impl<'s> ObjectWriter<'s> {
    pub(crate) fn new(store: &'s Store, stage: &Path) -> Result<ObjectWriter<'s>> {
        let incoming = stage.join("incoming");
        let staged = stage.join("objects");
        fs::create_dir(&incoming).at("create staging directory", &incoming)?;
        fs::create_dir(&staged).at("create staging directory", &staged)?;
        Ok(ObjectWriter {
            store,
            incoming,
            staged,
            next_temp: AtomicU64::new(0),
            published: Mutex::new(Vec::new()),
            verified: Mutex::new(HashMap::new()),
            damaged: Mutex::new(HashSet::new()),
            written: AtomicU64::new(0),
        })
    }

    /// Whether the store (or this ingest) already holds this content
    /// correctly. A stored object is re-hashed before it is relied on, once
    /// per ingest: a damaged one is replaced by ours at publish (re-adding
    /// a source heals what it covers), and no new slice links a damaged
    /// inode.
    fn known(&self, content: &Digest, executable: bool) -> bool {
        let key = (*content, executable);
        if self.is_staged(content, executable)
            || self
                .verified
                .lock()
                .expect("no panics while held")
                .contains_key(&key)
        {
            return true;
        }
        let path = self.store.object_path(content, executable);
        let Ok(mut file) = File::open(&path) else {
            return false;
        };
        let mut hasher = Sha256::new();
        let checked = file.metadata().and_then(|meta| {
            hash_rest(&mut file, &mut hasher)?;
            Ok(meta)
        });
        match checked {
            Ok(meta)
                if Digest::from_hasher(hasher) == *content
                    && (meta.mode() & 0o111 != 0) == executable =>
            {
                self.remember_verified(key, &meta);
                true
            }
            _ => {
                self.damaged
                    .lock()
                    .expect("no panics while held")
                    .insert(key);
                false
            }
        }
    }

    /// A stored object this ingest may rely on (re-hashed, or vouched for
    /// by the stat cache), with its inode.
    fn remember_verified(&self, key: (Digest, bool), meta: &fs::Metadata) {
        let mut verified = self.verified.lock().expect("no panics while held");
        if verified.len() < MOST_REMEMBERED {
            verified.insert(key, (meta.dev(), meta.ino()));
        }
    }

    pub(crate) fn store(&self) -> &'s Store {
        self.store
    }

    /// Whether the store holds `content` as an object, judged by its
    /// lstat only (a regular file of `size` bytes with the right executable
    /// bit): for content the stat cache vouches for, whose whole point is
    /// not to read it again. A damaged object is then found by
    /// slice-verify, not by this add.
    pub(crate) fn trust_stored(&self, content: &Digest, executable: bool, size: u64) -> bool {
        let key = (*content, executable);
        if self.is_staged(content, executable) {
            return true;
        }
        let path = self.store.object_path(content, executable);
        match fs::symlink_metadata(&path) {
            Ok(meta)
                if meta.is_file()
                    && meta.len() == size
                    && (meta.mode() & 0o111 != 0) == executable =>
            {
                self.remember_verified(key, &meta);
                true
            }
            _ => false,
        }
    }

    /// Inodes known to hold the right content: stored objects this ingest
    /// verified, and the ones it wrote.
    pub(crate) fn trusted_inodes(&self) -> HashSet<(u64, u64)> {
        let mut out: HashSet<(u64, u64)> = self
            .verified
            .lock()
            .expect("no panics while held")
            .values()
            .copied()
            .collect();
        out.extend(self.published.lock().expect("no panics while held").iter());
        out
    }

    fn temp_file(&self) -> Result<(PathBuf, File)> {
        let temp = self
            .incoming
            .join(self.next_temp.fetch_add(1, Ordering::Relaxed).to_string());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .at("create object file", &temp)?;
        Ok((temp, file))
    }

    /// Keeps a finished temp file as a new staged object, unless another
    /// thread of this ingest staged the same content meanwhile.
    fn stage(
        &self,
        temp: PathBuf,
        file: File,
        content: Digest,
        executable: bool,
        size: u64,
    ) -> Result<()> {
        file.set_permissions(fs::Permissions::from_mode(object_mode(executable)))
            .at("set mode of", &temp)?;
        drop(file);
        let staged = self.staged_path(&content, executable);
        match rename_noreplace(&temp, &staged) {
            Ok(()) => {}
            // Another thread of this ingest staged the same content.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                return fs::remove_file(&temp).at("remove temporary file", &temp);
            }
            Err(e) => return Err(e).at("stage object", &staged),
        }
        self.written.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    /// Content already hashed in memory is written straight to its staged
    /// name: one rename fewer per new file than the temp-file route.
    fn write_bytes(&self, bytes: &[u8], content: Digest, executable: bool) -> Result<()> {
        let staged = self.staged_path(&content, executable);
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&staged)
        {
            Ok(file) => file,
            // Another thread of this ingest is staging the same content.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(e).at("create object file", &staged),
        };
        write_sparse(&file, 0, bytes).at("write object file", &staged)?;
        finish_object(&file, bytes.len() as u64).at("write object file", &staged)?;
        file.set_permissions(fs::Permissions::from_mode(object_mode(executable)))
            .at("set mode of", &staged)?;
        self.written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Whether this ingest staged `content` (the staged dir is the set).
    fn is_staged(&self, content: &Digest, executable: bool) -> bool {
        self.staged_path(content, executable).exists()
    }

    fn staged_path(&self, content: &Digest, executable: bool) -> PathBuf {
        self.staged.join(format!(
            "{}{}",
            content.hex(),
            if executable { ".x" } else { "" }
        ))
    }

    /// Adds a non-seekable stream (a tar entry). Returns digest and size.
    pub(crate) fn add_stream(
        &self,
        reader: &mut dyn Read,
        executable: bool,
        origin: &Path,
    ) -> Result<(Digest, u64)> {
        let mut head = Vec::new();
        if fill(reader, &mut head, IN_MEMORY_LIMIT, origin)? {
            return self.add_bytes(&head, executable);
        }
        // Too big for memory: stream into a temp file while hashing.
        let (temp, file, content, size) = self.stream_to_temp(&head, reader, origin)?;
        if self.known(&content, executable) {
            drop(file);
            fs::remove_file(&temp).at("remove temporary file", &temp)?;
        } else {
            self.stage(temp, file, content, executable, size)?;
        }
        Ok((content, size))
    }

    /// Writes `head` and then the rest of `reader` into a new temp file,
    /// hashing as it goes.
    fn stream_to_temp(
        &self,
        head: &[u8],
        reader: &mut dyn Read,
        origin: &Path,
    ) -> Result<(PathBuf, File, Digest, u64)> {
        let (temp, file) = self.temp_file()?;
        let mut hasher = Sha256::new();
        hasher.update(head);
        write_sparse(&file, 0, head).at("write object file", &temp)?;
        let mut size = head.len() as u64;
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = read_retrying(reader, &mut chunk, origin)?;
            if n == 0 {
                break;
            }
            hasher.update(&chunk[..n]);
            write_sparse(&file, size, &chunk[..n]).at("write object file", &temp)?;
            size += n as u64;
        }
        finish_object(&file, size).at("write object file", &temp)?;
        Ok((temp, file, Digest::from_hasher(hasher), size))
    }

    fn add_bytes(&self, bytes: &[u8], executable: bool) -> Result<(Digest, u64)> {
        let content = Digest::of(bytes);
        if !bytes.is_empty() && !self.known(&content, executable) {
            self.write_bytes(bytes, content, executable)?;
        }
        Ok((content, bytes.len() as u64))
    }

    /// Adds a regular file from a directory source. Big files are hashed
    /// in one pass and copied in a second only when the store lacks them.
    pub(crate) fn add_file(
        &self,
        file: &mut File,
        executable: bool,
        origin: &Path,
    ) -> Result<(Digest, u64)> {
        let mut head = Vec::new();
        if fill(file, &mut head, IN_MEMORY_LIMIT, origin)? {
            return self.add_bytes(&head, executable);
        }
        let mut hasher = Sha256::new();
        hasher.update(&head);
        let size = head.len() as u64 + hash_rest(file, &mut hasher).at("read", origin)?;
        let content = Digest::from_hasher(hasher);
        if self.known(&content, executable) {
            return Ok((content, size));
        }
        file.rewind().at("read", origin)?;
        let (temp, copy, copied, copied_size) = self.stream_to_temp(&[], file, origin)?;
        if copied != content || copied_size != size {
            drop(copy);
            fs::remove_file(&temp).at("remove temporary file", &temp)?;
            return Err(Error::BadSource {
                source_name: super::printable_path(origin),
                reason: "the file changed while it was being read".into(),
            });
        }
        self.stage(temp, copy, content, executable, size)?;
        Ok((content, size))
    }

    /// The stored objects this ingest found damaged: it read their
    /// content from its source, staged its own copies, and replaces them
    /// with those at publish.
    pub(crate) fn replaced(&self) -> HashSet<(Digest, bool)> {
        self.damaged.lock().expect("no panics while held").clone()
    }

    /// The file a tree entry should hardlink: the staged copy when this
    /// ingest wrote it, else the stored object.
    pub(crate) fn source_of(&self, content: &Digest, executable: bool) -> PathBuf {
        let staged = self.staged_path(content, executable);
        if staged.exists() {
            staged
        } else {
            self.store.object_path(content, executable)
        }
    }

    /// Moves the staged objects into the store's fan-out dirs. An object
    /// another ingest stored meanwhile is left as it is; a damaged one is
    /// replaced, atomically: a running stage's tree still links the old
    /// inode, so nothing changes under its feet. The fan-out dirs are
    /// fsynced before anything can refer to what they hold. Returns how
    /// many damaged objects were replaced.
    pub(crate) fn publish(&self) -> Result<u64> {
        let damaged = self.damaged.lock().expect("no panics while held");
        let mut touched = HashSet::new();
        let mut made_fanout = false;
        let mut healed = 0;
        let mut published = self.published.lock().expect("no panics while held");
        let listed = fs::read_dir(&self.staged).at("read directory", &self.staged)?;
        for entry in listed {
            let entry = entry.at("read directory", &self.staged)?;
            let staged = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let (hex, executable) = match name.strip_suffix(".x") {
                Some(hex) => (hex, &true),
                None => (&*name, &false),
            };
            let Some(content) = Digest::from_hex(hex) else {
                continue;
            };
            let content = &content;
            let inode = entry.metadata().at("read", &staged)?;
            if published.len() < MOST_REMEMBERED {
                published.push((inode.dev(), inode.ino()));
            }
            let target = self.store.object_path(content, *executable);
            let fanout = target.parent().expect("object paths have a fan-out dir");
            if touched.insert(fanout.to_path_buf()) && !fanout.is_dir() {
                fs::create_dir_all(fanout).at("create object directory", fanout)?;
                made_fanout = true;
            }
            if damaged.contains(&(*content, *executable)) {
                fs::rename(&staged, &target).at("replace damaged object", &target)?;
                healed += 1;
                continue;
            }
            match rename_noreplace(&staged, &target) {
                Ok(()) => super::crash_point("add:one-object-published"),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e).at("store object", &target),
            }
        }
        for fanout in &touched {
            fsutil::sync_dir(fanout)?;
        }
        if made_fanout {
            fsutil::sync_dir(&self.store.objects_dir())?;
        }
        Ok(healed)
    }
}

/// rename(2) that never replaces: two concurrent ingests of the same
/// content both succeed, and the first copy wins.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    nix::fcntl::renameat2(
        None,
        from,
        None,
        to,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_tells_a_file_at_the_limit_from_a_longer_one() {
        let origin = Path::new("test");
        for (input, at_eof) in [(&b"abc"[..], true), (b"abcd", true), (b"abcde", false)] {
            let mut buf = Vec::new();
            assert_eq!(
                fill(&mut &input[..], &mut buf, 4, origin).unwrap(),
                at_eof,
                "{input:?}"
            );
            assert_eq!(buf, &input[..input.len().min(5)]);
        }
    }

    #[test]
    fn hash_rest_counts_and_hashes_everything() {
        let data = vec![7u8; 3 * CHUNK + 11];
        let mut hasher = Sha256::new();
        assert_eq!(
            hash_rest(&mut &data[..], &mut hasher).unwrap(),
            data.len() as u64
        );
        assert_eq!(Digest::from_hasher(hasher), Digest::of(&data));
    }
}
