//! The deterministic tar writer behind `slice-export` and `export-oci`:
//! ustar headers with every mtime 0 and no owner names, and a pax header
//! before an entry whose path, link target, size or ids ustar cannot
//! hold, or that carries extended attributes (`SCHILY.xattr.NAME`, as GNU
//! tar, bsdtar and Go write them). What goes in is the caller's choice;
//! the same entries always make the same bytes.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

pub(super) const BLOCK: usize = 512;
/// The largest size an 11-digit octal field holds; larger goes in pax.
const OCTAL_11_MAX: u64 = 0o77_777_777_777;
/// The largest id a 7-digit octal field holds; larger goes in pax.
const OCTAL_7_MAX: u32 = 0o7_777_777;
/// The longest path or link target a ustar field holds.
const NAME_FIELD: usize = 100;

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// One tar entry as the caller wants it written.
#[derive(Clone, Copy)]
pub(super) struct Entry<'a> {
    pub name: &'a [u8],
    /// The ustar type byte: `0` file, `1` hardlink, `2` symlink, `5` dir.
    pub kind: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub link: &'a [u8],
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

impl<'a> Entry<'a> {
    /// An entry owned by 0:0 with no link and no extended attributes.
    pub(super) fn plain(name: &'a [u8], kind: u8, mode: u32, size: u64) -> Entry<'a> {
        Entry {
            name,
            kind,
            mode,
            uid: 0,
            gid: 0,
            size,
            link: b"",
            xattrs: &[],
        }
    }
}

/// One ustar header; fields that do not fit are cut (a pax header
/// before it holds them whole).
fn header(e: &Entry) -> [u8; BLOCK] {
    let cut = |b: &[u8]| b.len().min(NAME_FIELD);
    let mut h = [0u8; BLOCK];
    h[..cut(e.name)].copy_from_slice(&e.name[..cut(e.name)]);
    octal(&mut h[100..108], u64::from(e.mode));
    octal(&mut h[108..116], u64::from(e.uid.min(OCTAL_7_MAX)));
    octal(&mut h[116..124], u64::from(e.gid.min(OCTAL_7_MAX)));
    octal(&mut h[124..136], e.size.min(OCTAL_11_MAX));
    octal(&mut h[136..148], 0);
    h[156] = e.kind;
    h[157..157 + cut(e.link)].copy_from_slice(&e.link[..cut(e.link)]);
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
pub(super) fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while (len.to_string().len() + body) != len {
        len = len.to_string().len() + body;
    }
    out.extend_from_slice(format!("{len} ").as_bytes());
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The pax records `entry` needs, in a fixed order; empty when ustar
/// holds it all.
fn pax_records(e: &Entry) -> Vec<u8> {
    let mut pax = Vec::new();
    if e.name.len() > NAME_FIELD {
        pax_record(&mut pax, b"path", e.name);
    }
    if e.link.len() > NAME_FIELD {
        pax_record(&mut pax, b"linkpath", e.link);
    }
    if e.size > OCTAL_11_MAX {
        pax_record(&mut pax, b"size", e.size.to_string().as_bytes());
    }
    if e.uid > OCTAL_7_MAX {
        pax_record(&mut pax, b"uid", e.uid.to_string().as_bytes());
    }
    if e.gid > OCTAL_7_MAX {
        pax_record(&mut pax, b"gid", e.gid.to_string().as_bytes());
    }
    for (name, value) in e.xattrs {
        let mut key = crate::store::XATTR_PREFIX.to_vec();
        key.extend_from_slice(name);
        pax_record(&mut pax, &key, value);
    }
    pax
}

pub(super) fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// Why a file's bytes could not be copied into the tar.
pub(super) enum CopyError {
    /// Reading the file failed.
    Read(io::Error),
    /// The file ended before the size its entry gives.
    Short,
    /// Writing the tar failed.
    Write(io::Error),
}

pub(super) struct TarWriter<W> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    pub(super) fn new(out: W) -> TarWriter<W> {
        TarWriter { out }
    }

    pub(super) fn into_inner(self) -> W {
        self.out
    }

    pub(super) fn get_ref(&self) -> &W {
        &self.out
    }

    /// A pax header of `kind` (`x` for the next entry, `g` for the whole
    /// archive) holding `records`, padded to whole blocks.
    pub(super) fn pax_header(&mut self, name: &[u8], kind: u8, records: &[u8]) -> io::Result<()> {
        let size = records.len() as u64;
        self.out
            .write_all(&header(&Entry::plain(name, kind, 0o644, size)))?;
        self.out.write_all(records)?;
        self.out.write_all(&[0u8; BLOCK][..padding(size)])
    }

    /// The headers of one entry: a pax header first when it needs one.
    /// A file's `size` bytes must follow ([`TarWriter::copy_data`]).
    pub(super) fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        let pax = pax_records(entry);
        if !pax.is_empty() {
            self.pax_header(b"././@PaxHeader", b'x', &pax)?;
        }
        self.out.write_all(&header(entry))
    }

    /// Exactly `size` bytes of `from`, then the padding; with `hasher`,
    /// the bytes are hashed as they pass.
    pub(super) fn copy_data(
        &mut self,
        from: &mut impl Read,
        size: u64,
        mut hasher: Option<&mut Sha256>,
    ) -> Result<(), CopyError> {
        let mut left = size;
        let mut buffer = vec![0u8; 1 << 16];
        while left > 0 {
            let want = buffer
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match from.read(&mut buffer[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
                Ok(0) => return Err(CopyError::Short),
                Ok(n) => n,
            };
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&buffer[..n]);
            }
            self.out.write_all(&buffer[..n]).map_err(CopyError::Write)?;
            left -= n as u64;
        }
        self.out
            .write_all(&[0u8; BLOCK][..padding(size)])
            .map_err(CopyError::Write)
    }

    /// The two zero blocks that end an archive.
    pub(super) fn finish(&mut self) -> io::Result<()> {
        self.out.write_all(&[0u8; 2 * BLOCK])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", b"a");
        assert_eq!(out, b"9 path=a\n");
        // 95 bytes of value: the length crosses from two digits to three.
        for n in [1, 90, 95, 96, 995] {
            let mut out = Vec::new();
            pax_record(&mut out, b"path", &vec![b'x'; n]);
            let text = String::from_utf8(out.clone()).unwrap();
            let stated: usize = text.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(stated, out.len(), "{text}");
        }
    }

    #[test]
    fn headers_have_a_valid_checksum() {
        let h = header(&Entry::plain(b"a", b'0', 0o644, 5));
        let stored = u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|b| u64::from(*b)).sum::<u64>());
        assert_eq!(&h[124..136], b"00000000005\0");
    }

    /// Ids beyond 7 octal digits and extended attributes go in pax,
    /// which the store's own tar reader takes back.
    #[test]
    fn big_ids_and_xattrs_round_trip_through_the_store_reader() {
        let xattrs = vec![(b"user.note".to_vec(), b"a b\n".to_vec())];
        let mut tar = TarWriter::new(Vec::new());
        let entry = Entry {
            uid: 4_000_000,
            gid: 7,
            xattrs: &xattrs,
            ..Entry::plain(b"f", b'0', 0o640, 2)
        };
        tar.entry(&entry).unwrap();
        tar.copy_data(&mut &b"hi"[..], 2, None).ok().unwrap();
        tar.finish().unwrap();
        let bytes = tar.into_inner();
        let mut reader = crate::store::TarReader::new(&bytes[..]);
        let read = reader.next_entry().unwrap().unwrap();
        assert_eq!((read.uid, read.gid, read.mode), (4_000_000, 7, 0o640));
        assert_eq!(read.xattrs, xattrs);
    }
}
