//! `slice-export REF`: the slice as a deterministic tar on stdout, which
//! `slice-add NAME -` takes back to the same slice digest. First a pax
//! global header with the slice's mount point and environment
//! (`SLICEBOX.at`, `SLICEBOX.env`: store/archive_meta.rs), then the tree:
//! entries in listing order (depth-first, by name), every mtime, uid and
//! gid 0, no owner names, modes 0755 (directories, executables), 0644
//! (files) and 0777 (symlinks); hardlinks are written as files.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::tar_write::{pax_record, CopyError, Entry as TarEntry, TarWriter};
use super::{Context, Exit, Failure, Parsed};
use crate::store::{archive_meta, Entry, Node};
use crate::text::printable_path;

/// The caller's stdout, as a `Write` (unbuffered: each header is one
/// write, as before the writer was shared).
struct Stdout(std::os::fd::RawFd);

impl io::Write for Stdout {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match crate::os::write_all(self.0, bytes) {
            true => Ok(bytes.len()),
            false => Err(io::Error::from_raw_os_error(crate::os::errno())),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_failure(e: io::Error) -> Failure {
    Failure {
        message: format!(
            "cannot write the tar to stdout: {}",
            crate::text::io_cause(&e)
        ),
        exit: Exit::FAILURE,
    }
}

/// A file's bytes from the slice's tree, exactly `size` of them.
fn file(out: &mut TarWriter<Stdout>, tree: &Path, entry: &Entry, size: u64) -> Result<(), Failure> {
    let path = tree.join(std::ffi::OsStr::from_bytes(&entry.path));
    let damaged = |cause: String| {
        Failure {
        message: format!(
            "cannot export '{}': {cause} (slice-verify names the damage; re-adding the source repairs it)",
            printable_path(&path)
        ),
        exit: Exit::FAILURE,
    }
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| damaged(crate::text::io_cause(&e)))?;
    out.copy_data(&mut file, size, None).map_err(|e| match e {
        CopyError::Read(e) => damaged(crate::text::io_cause(&e)),
        CopyError::Short => damaged(format!(
            "it is shorter than the {size} bytes the listing gives"
        )),
        CopyError::Write(e) => write_failure(e),
    })
}

pub fn run(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [reference] = parsed.operands.as_slice() else {
        return Err(Failure::usage("expected one REF"));
    };
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(ctx.stdio[1]) } == 1 {
        return Err(Failure::usage(
            "refusing to write a tar to a terminal: redirect stdout to a file or a pipe",
        ));
    }
    let store = super::open_store_or(ctx, Exit::FAILURE)?;
    let _lock = store.lock_shared()?;
    let digest = store.resolve(&reference.to_string_lossy())?;
    let listing = store.listing(&digest)?;
    let manifest = store.manifest(&digest)?;
    let tree = store.slice_tree(&digest);
    let mut out = TarWriter::new(Stdout(ctx.stdio[1]));
    let mut settings = Vec::new();
    for (key, value) in archive_meta::records(&manifest.mount_point, &manifest.env) {
        pax_record(&mut settings, key.as_bytes(), &value);
    }
    out.pax_header(archive_meta::HEADER_NAME, b'g', &settings)
        .map_err(write_failure)?;
    for entry in &listing {
        match &entry.node {
            Node::Dir(_) => {
                let mut name = entry.path.clone();
                name.push(b'/');
                out.entry(&TarEntry::plain(&name, b'5', 0o755, 0))
                    .map_err(write_failure)?;
            }
            Node::File {
                executable, size, ..
            } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                out.entry(&TarEntry::plain(&entry.path, b'0', mode, *size))
                    .map_err(write_failure)?;
                file(&mut out, &tree, entry, *size)?;
            }
            Node::Symlink { target } => {
                let link = TarEntry {
                    link: target,
                    ..TarEntry::plain(&entry.path, b'2', 0o777, 0)
                };
                out.entry(&link).map_err(write_failure)?;
            }
        }
    }
    out.finish().map_err(write_failure)?;
    Ok(Exit::SUCCESS)
}
