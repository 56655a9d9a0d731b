//! Writing objects: each file's bytes are streamed once into a temp file in
//! the store while being hashed, then kept only if the store lacks them.
//! New objects stay in the staging dir until the slice commits, so a
//! rejected source leaves the store's object set unchanged.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{IoContext, Result, Store};
use crate::digest::Digest;

pub(crate) struct ObjectWriter<'s> {
    store: &'s Store,
    incoming: PathBuf,
    staged: PathBuf,
    next_temp: u64,
    /// Objects this ingest created, by (content, executable).
    new: HashMap<(Digest, bool), PathBuf>,
}

/// Object file modes: read-only, keeping only the executable bit.
fn object_mode(executable: bool) -> u32 {
    if executable {
        0o555
    } else {
        0o444
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
            next_temp: 0,
            new: HashMap::new(),
        })
    }

    /// Streams `reader` into the store. `origin` names the source entry in
    /// errors. Returns the content digest and the byte count.
    pub(crate) fn add(
        &mut self,
        reader: &mut dyn Read,
        executable: bool,
        origin: &Path,
    ) -> Result<(Digest, u64)> {
        let temp = self.incoming.join(self.next_temp.to_string());
        self.next_temp += 1;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .at("create object file", &temp)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).at("read", origin),
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).at("write object file", &temp)?;
            size += n as u64;
        }
        let content = Digest::from_hasher(hasher);
        if size == 0
            || self.new.contains_key(&(content, executable))
            || self.store.object_path(&content, executable).exists()
        {
            drop(file);
            fs::remove_file(&temp).at("remove temporary file", &temp)?;
            return Ok((content, size));
        }
        file.set_permissions(fs::Permissions::from_mode(object_mode(executable)))
            .at("set mode of", &temp)?;
        drop(file);
        let staged = self.staged.join(format!(
            "{}{}",
            content.hex(),
            if executable { ".x" } else { "" }
        ));
        fs::rename(&temp, &staged).at("stage object", &staged)?;
        self.new.insert((content, executable), staged);
        Ok((content, size))
    }

    /// The file a tree entry should hardlink: the staged copy when this
    /// ingest wrote it, else the stored object.
    pub(crate) fn source_of(&self, content: &Digest, executable: bool) -> PathBuf {
        self.new
            .get(&(*content, executable))
            .cloned()
            .unwrap_or_else(|| self.store.object_path(content, executable))
    }

    /// Moves the staged objects into the store's fan-out dirs. An object
    /// another ingest stored meanwhile is left as it is.
    pub(crate) fn publish(&self) -> Result<()> {
        for ((content, executable), staged) in &self.new {
            let target = self.store.object_path(content, *executable);
            let fanout = target.parent().expect("object paths have a fan-out dir");
            fs::create_dir_all(fanout).at("create object directory", fanout)?;
            match rename_noreplace(staged, &target) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e).at("store object", &target),
            }
        }
        Ok(())
    }
}

/// Creates an empty or copied file when a hardlink is not possible.
pub(crate) fn copy_object(source: &Path, dest: &Path, executable: bool) -> Result<()> {
    let mut from = File::open(source).at("open object", source)?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(object_mode(executable))
        .open(dest)
        .at("create file", dest)?;
    io::copy(&mut from, &mut to).at("copy object to", dest)?;
    Ok(())
}

pub(crate) fn create_empty(dest: &Path, executable: bool) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(object_mode(executable))
        .open(dest)
        .at("create file", dest)?;
    Ok(())
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
