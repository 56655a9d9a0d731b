//! `slice-export REF`: the slice as a deterministic tar on stdout, which
//! `slice-add NAME -` takes back to the same slice digest. First a pax
//! global header with the slice's mount point and environment
//! (`SLICEBOX.at`, `SLICEBOX.env`: store/archive_meta.rs), then the tree:
//! entries in listing order (depth-first, by name), every mtime, uid and
//! gid 0, no owner names, modes 0755 (directories, executables), 0644
//! (files) and 0777 (symlinks); hardlinks are written as files.

use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{Context, Exit, Failure, Parsed};
use crate::store::{archive_meta, Entry, Node};
use crate::text::printable_path;

const BLOCK: usize = 512;
/// The largest size an 11-digit octal field holds; larger goes in pax.
const OCTAL_11_MAX: u64 = 0o77_777_777_777;

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// One ustar header; `name` and `link` must fit (the caller uses pax).
fn header(name: &[u8], kind: u8, mode: u64, size: u64, link: &[u8]) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], mode);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size.min(OCTAL_11_MAX));
    octal(&mut h[136..148], 0);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    h
}

/// `LEN key=value\n`, LEN counting itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while (len.to_string().len() + body) != len {
        len = len.to_string().len() + body;
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// Where the tar goes; the first failed write ends the export.
struct Out<'a> {
    ctx: &'a Context,
}

impl Out<'_> {
    fn write(&self, bytes: &[u8]) -> Result<(), Failure> {
        if crate::os::write_all(self.ctx.stdio[1], bytes) {
            return Ok(());
        }
        Err(Failure {
            message: format!(
                "cannot write the tar to stdout: {}",
                crate::os::strerror(crate::os::errno())
            ),
            exit: Exit::FAILURE,
        })
    }

    /// A pax header of `kind` (`x` for the next entry, `g` for the whole
    /// archive) holding `records`, padded to whole blocks.
    fn pax_header(&self, name: &[u8], kind: u8, mut records: Vec<u8>) -> Result<(), Failure> {
        self.write(&header(name, kind, 0o644, records.len() as u64, b""))?;
        records.resize(records.len() + padding(records.len() as u64), 0);
        self.write(&records)
    }

    /// The headers of one entry: a pax header first when its path, link
    /// or size does not fit ustar.
    fn entry_header(
        &self,
        name: &[u8],
        kind: u8,
        mode: u64,
        size: u64,
        link: &[u8],
    ) -> Result<(), Failure> {
        let mut pax = Vec::new();
        if name.len() > 100 {
            pax_record(&mut pax, "path", name);
        }
        if link.len() > 100 {
            pax_record(&mut pax, "linkpath", link);
        }
        if size > OCTAL_11_MAX {
            pax_record(&mut pax, "size", size.to_string().as_bytes());
        }
        if !pax.is_empty() {
            self.pax_header(b"././@PaxHeader", b'x', pax)?;
        }
        let short = |b: &[u8]| {
            if b.len() > 100 {
                b[..100].to_vec()
            } else {
                b.to_vec()
            }
        };
        self.write(&header(&short(name), kind, mode, size, &short(link)))
    }

    /// A file's bytes from the slice's tree, exactly `size` of them.
    fn file(&self, tree: &Path, entry: &Entry, size: u64) -> Result<(), Failure> {
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
        let mut left = size;
        let mut buffer = vec![0u8; 1 << 16];
        while left > 0 {
            let want = buffer.len().min(left as usize);
            let n = read_some(&mut file, &mut buffer[..want])
                .map_err(|e| damaged(crate::text::io_cause(&e)))?;
            if n == 0 {
                return Err(damaged(format!(
                    "it is shorter than the {size} bytes the listing gives"
                )));
            }
            self.write(&buffer[..n])?;
            left -= n as u64;
        }
        self.write(&vec![0u8; padding(size)])
    }
}

fn read_some(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match file.read(buffer) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
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
    let out = Out { ctx };
    let mut settings = Vec::new();
    for (key, value) in archive_meta::records(&manifest.mount_point, &manifest.env) {
        pax_record(&mut settings, key, &value);
    }
    out.pax_header(archive_meta::HEADER_NAME, b'g', settings)?;
    for entry in &listing {
        match &entry.node {
            Node::Dir(_) => {
                let mut name = entry.path.clone();
                name.push(b'/');
                out.entry_header(&name, b'5', 0o755, 0, b"")?;
            }
            Node::File {
                executable, size, ..
            } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                out.entry_header(&entry.path, b'0', mode, *size, b"")?;
                out.file(&tree, entry, *size)?;
            }
            Node::Symlink { target } => {
                out.entry_header(&entry.path, b'2', 0o777, 0, target)?;
            }
        }
    }
    out.write(&[0u8; 2 * BLOCK])?;
    Ok(Exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let mut out = Vec::new();
        pax_record(&mut out, "path", b"a");
        assert_eq!(out, b"9 path=a\n");
        // 95 bytes of value: the length crosses from two digits to three.
        for n in [1, 90, 95, 96, 995] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", &vec![b'x'; n]);
            let text = String::from_utf8(out.clone()).unwrap();
            let stated: usize = text.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(stated, out.len(), "{text}");
        }
    }

    #[test]
    fn headers_have_a_valid_checksum() {
        let h = header(b"a", b'0', 0o644, 5, b"");
        let stored = u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|b| u64::from(*b)).sum::<u64>());
        assert_eq!(&h[124..136], b"00000000005\0");
    }
}
