//! A tar reader that trusts nothing: every header is checked, every size is
//! bounded before anything is read or allocated, and where two readings of
//! an archive could differ (a pax `size` against the header's, a global pax
//! header that sets a path) the archive is refused rather than read one of
//! the two ways. It understands ustar and GNU headers, pax local headers
//! (`path`, `linkpath`, `size`) and GNU long names and links; it reads each
//! entry's data exactly once, as a stream. The vendor records `SLICEBOX.*`
//! (what `slice-export` writes of a slice besides its tree) are kept from a
//! global pax header that is the archive's first header, and refused
//! anywhere else: one place, one meaning.
//!
//! The `tar` crate is not used for this: it reads GNU long names and pax
//! headers whole into memory, with no bound, so a few bytes of compressed
//! input could claim gigabytes.

use std::io::{self, Read};

pub const BLOCK: usize = 512;
/// pax headers and GNU long names larger than this are refused unread.
pub const MAX_EXTENSION_BYTES: u64 = 1 << 20;
/// The pax vendor prefix of slicebox's own records (POSIX `VENDOR.keyword`).
pub const VENDOR_PREFIX: &[u8] = b"SLICEBOX.";
/// The pax key prefix of extended attributes (GNU tar, bsdtar, Go).
pub const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// `SLICEBOX.*` records, key and value, in archive order.
pub type VendorRecords = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Hardlink,
    Symlink,
    Dir,
    CharDevice,
    BlockDevice,
    Fifo,
    Sparse,
    /// A type byte slicebox does not know.
    Other(u8),
}

/// One entry, with its pax and GNU extensions applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    /// Bytes of data that follow, as the entry's data reader delivers them.
    pub size: u64,
    /// Owner and group: a pax `uid`/`gid` of the entry's own header, else
    /// the header's fields (a global header's are refused, as its path is).
    pub uid: u64,
    pub gid: u64,
    /// `SCHILY.xattr.NAME` records of the entry's own pax header, in order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why the archive cannot be read. `entry` is the path of the entry being
/// read when it is known (the caller prints it safely).
#[derive(Debug)]
pub struct TarError {
    pub entry: Option<Vec<u8>>,
    pub reason: String,
}

impl TarError {
    fn new(reason: impl Into<String>) -> TarError {
        TarError {
            entry: None,
            reason: reason.into(),
        }
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "it is truncated".into(),
        _ => format!("it cannot be read: {}", crate::text::io_cause(e)),
    }
}

pub struct TarReader<R> {
    input: R,
    /// Data bytes of the current entry not read yet, then its padding.
    remaining: u64,
    padding: u64,
    /// Bytes consumed from `input` so far, for messages.
    offset: u64,
    finished: bool,
    vendor: VendorRecords,
}

/// Reads `buf.len()` bytes; `Ok(false)` on a clean EOF before the first byte.
fn read_block(input: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// An octal field (leading spaces, digits, then NUL or space), or GNU's
/// base-256 form (high bit set). Negative base-256 values are refused.
fn number(field: &[u8], what: &str) -> Result<u64, TarError> {
    let bad = || TarError::new(format!("a header has an invalid {what} field"));
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] == 0xff {
            return Err(bad());
        }
        let mut value: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(b as u64))
                .ok_or_else(bad)?;
        }
        return Ok(value);
    }
    let digits: &[u8] = {
        let start = field.iter().position(|b| *b != b' ').unwrap_or(field.len());
        let rest = &field[start..];
        let end = rest
            .iter()
            .position(|b| *b == 0 || *b == b' ')
            .unwrap_or(rest.len());
        if rest[end..].iter().any(|b| *b != 0 && *b != b' ') {
            return Err(bad());
        }
        &rest[..end]
    };
    let mut value: u64 = 0;
    for &b in digits {
        if !(b'0'..=b'7').contains(&b) {
            return Err(bad());
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add((b - b'0') as u64))
            .ok_or_else(bad)?;
    }
    Ok(value)
}

fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    &field[..end]
}

/// The checksum covers the header with its own field as spaces; old tars
/// summed signed chars, so both sums are accepted, as GNU tar does.
fn checksum_ok(block: &[u8; BLOCK]) -> Result<bool, TarError> {
    let stored = number(&block[148..156], "checksum")?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u64;
        signed += b as i8 as i64;
    }
    Ok(stored == unsigned || stored as i64 == signed)
}

/// Extensions read for the next entry.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<R: Read> TarReader<R> {
    pub fn new(input: R) -> TarReader<R> {
        TarReader {
            input,
            remaining: 0,
            padding: 0,
            offset: 0,
            finished: false,
            vendor: Vec::new(),
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, TarError> {
        let got = read_block(&mut self.input, buf).map_err(|e| TarError::new(io_reason(&e)))?;
        if got {
            self.offset += buf.len() as u64;
        }
        Ok(got)
    }

    /// Discards what is left of the current entry (data and padding).
    fn skip_rest(&mut self) -> Result<(), TarError> {
        let mut left = self.remaining + self.padding;
        let mut sink = [0u8; 8192];
        while left > 0 {
            let n = left.min(sink.len() as u64) as usize;
            if !self.fill(&mut sink[..n])? {
                return Err(TarError::new("it is truncated"));
            }
            left -= n as u64;
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    fn start_data(&mut self, size: u64) {
        self.remaining = size;
        self.padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
    }

    /// The data of an extension header, read whole (it is bounded).
    fn extension_data(&mut self, size: u64, what: &str) -> Result<Vec<u8>, TarError> {
        if size > MAX_EXTENSION_BYTES {
            return Err(TarError::new(format!(
                "a {what} of {size} bytes is larger than the limit of {MAX_EXTENSION_BYTES} bytes"
            )));
        }
        self.start_data(size);
        let mut data = vec![0u8; size as usize];
        if !data.is_empty() && !self.fill(&mut data)? {
            return Err(TarError::new("it is truncated"));
        }
        self.remaining = 0;
        self.skip_rest()?;
        Ok(data)
    }

    /// The `SLICEBOX.*` records of the archive's first header, when it is
    /// a global pax header; complete once [`TarReader::next_entry`] has
    /// returned once.
    pub fn vendor_records(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.vendor
    }

    /// The next entry, or `None` at the end of the archive. Any data of
    /// the previous entry that was not read is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Header>, TarError> {
        if self.finished {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut pending = Pending::default();
        loop {
            let mut block = [0u8; BLOCK];
            let at_start = self.offset == 0;
            let filled = self.fill(&mut block).map_err(|e| match e.reason.as_str() {
                "it is truncated" if at_start => TarError::new(
                    "it is shorter than one tar header (512 bytes): not a tar archive \
                     (plain, gzip or zstd), or a truncated one",
                ),
                _ => e,
            })?;
            if !filled {
                if pending.path.is_some() || pending.link.is_some() || pending.size.is_some() {
                    return Err(TarError::new(
                        "it ends after an extended header, with no entry for it",
                    ));
                }
                // No end-of-archive blocks: accepted, as GNU tar does.
                self.finished = true;
                return Ok(None);
            }
            if block.iter().all(|b| *b == 0) {
                self.finished = true;
                return Ok(None);
            }
            if !checksum_ok(&block)? {
                return Err(TarError::new(format!(
                    "the header at byte {} has a wrong checksum: this is not a tar archive, or it is damaged",
                    self.offset - BLOCK as u64
                )));
            }
            let header_size = number(&block[124..136], "size")?;
            let type_byte = block[156];
            let first_header = self.offset == BLOCK as u64;
            match type_byte {
                b'x' | b'g' | b'L' | b'K' => {
                    let what = match type_byte {
                        b'x' => "pax header",
                        b'g' => "global pax header",
                        b'L' => "GNU long name",
                        _ => "GNU long link name",
                    };
                    let data = self.extension_data(header_size, what)?;
                    match type_byte {
                        b'x' => apply_pax(&data, &mut pending, Scope::Local)?,
                        b'g' if first_header => apply_pax(
                            &data,
                            &mut Pending::default(),
                            Scope::First(&mut self.vendor),
                        )?,
                        b'g' => apply_pax(&data, &mut Pending::default(), Scope::Global)?,
                        b'L' => set_once(&mut pending.path, until_nul(&data).to_vec(), what)?,
                        _ => set_once(&mut pending.link, until_nul(&data).to_vec(), what)?,
                    }
                    continue;
                }
                _ => {}
            }
            return self.entry(&block, header_size, pending).map(Some);
        }
    }

    /// The entry a (non-extension) header block describes, with what the
    /// extensions before it set; its data is read next.
    fn entry(
        &mut self,
        block: &[u8; BLOCK],
        header_size: u64,
        mut pending: Pending,
    ) -> Result<Header, TarError> {
        let ustar = &block[257..263] == b"ustar\0";
        let name = until_nul(&block[0..100]);
        let path = match pending.path.take() {
            Some(p) => p,
            None if ustar && block[345] != 0 => {
                let mut p = until_nul(&block[345..500]).to_vec();
                p.push(b'/');
                p.extend_from_slice(name);
                p
            }
            None => name.to_vec(),
        };
        let link = pending
            .link
            .take()
            .unwrap_or_else(|| until_nul(&block[157..257]).to_vec());
        let kind = match block[156] {
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            b'S' => Kind::Sparse,
            other => Kind::Other(other),
        };
        let mode = number(&block[100..108], "mode")? as u32;
        let size = match pending.size {
            // A pax size is what every reader uses; a header that says
            // something else (but 0, written when the size does not fit)
            // would be read differently by different tools.
            Some(pax) if header_size != 0 && header_size != pax => {
                return Err(TarError {
                    entry: Some(path),
                    reason: format!(
                        "its pax size ({pax}) disagrees with its header size ({header_size})"
                    ),
                });
            }
            Some(pax) => pax,
            None => header_size,
        };
        if size != 0 && kind != Kind::File {
            return Err(TarError {
                entry: Some(path),
                reason: format!("claims {size} bytes of data, but only regular files have data"),
            });
        }
        self.start_data(size);
        let uid = match pending.uid {
            Some(uid) => uid,
            None => number(&block[108..116], "uid")?,
        };
        let gid = match pending.gid {
            Some(gid) => gid,
            None => number(&block[116..124], "gid")?,
        };
        Ok(Header {
            path,
            link,
            kind,
            mode,
            size,
            uid,
            gid,
            xattrs: pending.xattrs,
        })
    }

    /// Where the current entry's data starts in the input, in bytes: what
    /// an index of an uncompressed archive records to read a member later
    /// without walking the archive again.
    pub fn data_offset(&self) -> u64 {
        self.offset
    }

    /// Reads the current entry's data; 0 at its end. A stream that ends
    /// early is an error, never a short file.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.remaining.min(buf.len() as u64) as usize;
        loop {
            match self.input.read(&mut buf[..n]) {
                Ok(0) => return Err(TarError::new("the archive ends inside its data")),
                Ok(got) => {
                    self.remaining -= got as u64;
                    self.offset += got as u64;
                    return Ok(got);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TarError::new(io_reason(&e))),
            }
        }
    }

    /// The current entry's data as a `Read`; errors surface as io errors
    /// whose message is the reason.
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { reader: self }
    }
}

pub struct EntryData<'a, R> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader
            .read_data(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.reason))
    }
}

fn set_once(slot: &mut Option<Vec<u8>>, value: Vec<u8>, what: &str) -> Result<(), TarError> {
    if slot.is_some() {
        return Err(TarError::new(format!("two {what}s describe one entry")));
    }
    *slot = Some(value);
    Ok(())
}

/// Which pax header records are read from.
enum Scope<'a> {
    /// A local (`x`) header: it describes the next entry.
    Local,
    /// A global (`g`) header that is the archive's first header: its
    /// `SLICEBOX.*` records are kept here.
    First(&'a mut VendorRecords),
    /// Any other global header.
    Global,
}

/// pax records: `LEN SP KEY=VALUE LF`, LEN counting the whole record.
fn apply_pax(data: &[u8], pending: &mut Pending, mut scope: Scope<'_>) -> Result<(), TarError> {
    let global = !matches!(scope, Scope::Local);
    let bad = || TarError::new("a pax header is malformed");
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad());
        }
        let record = &rest[space + 1..len - 1];
        let eq = record.iter().position(|b| *b == b'=').ok_or_else(bad)?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        if key.starts_with(b"GNU.sparse.") {
            return Err(TarError::new(
                "it holds a sparse file, which is not supported",
            ));
        }
        if key.starts_with(VENDOR_PREFIX) {
            let Scope::First(vendor) = &mut scope else {
                return Err(TarError::new(format!(
                    "a pax header that is not the archive's first sets '{}'; slicebox reads \
                     its own records only from a global header at the start (as slice-export \
                     writes them)",
                    crate::text::printable(key)
                )));
            };
            vendor.push((key.to_vec(), value.to_vec()));
        } else if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
            // Only an entry's own header gives it attributes.
            if !global {
                pending.xattrs.push((name.to_vec(), value.to_vec()));
            }
        } else if matches!(key, b"path" | b"linkpath" | b"size" | b"uid" | b"gid") {
            if global {
                return Err(TarError::new(format!(
                    "a global pax header sets '{}' for every entry that follows, which is not supported",
                    String::from_utf8_lossy(key)
                )));
            }
            match key {
                b"path" => set_once(&mut pending.path, value.to_vec(), "pax path")?,
                b"linkpath" => set_once(&mut pending.link, value.to_vec(), "pax link path")?,
                _ => {
                    let number = std::str::from_utf8(value)
                        .ok()
                        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(bad)?;
                    let (slot, what) = match key {
                        b"size" => (&mut pending.size, "sizes"),
                        b"uid" => (&mut pending.uid, "uids"),
                        _ => (&mut pending.gid, "gids"),
                    };
                    if slot.replace(number).is_some() {
                        return Err(TarError::new(format!("two pax {what} describe one entry")));
                    }
                }
            }
        }
        rest = &rest[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, size: u64) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..108].copy_from_slice(b"0000644\0");
        b[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        b[156] = kind;
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|x| *x as u32).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        b
    }

    fn padded(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
        v
    }

    /// A pax header of `kind` (`x` or `g`) and its records, padded.
    fn pax(name: &str, kind: u8, records: &[u8]) -> Vec<u8> {
        let mut out = header(name, kind, records.len() as u64).to_vec();
        out.extend_from_slice(&padded(records));
        out
    }

    fn archive(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = parts.concat();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(Header, Vec<u8>)>, TarError> {
        let mut reader = TarReader::new(bytes);
        let mut out = Vec::new();
        while let Some(h) = reader.next_entry()? {
            let mut data = Vec::new();
            reader
                .data()
                .read_to_end(&mut data)
                .map_err(|e| TarError::new(e.to_string()))?;
            out.push((h, data));
        }
        Ok(out)
    }

    #[test]
    fn reads_files_dirs_and_links() {
        let bytes = archive(&[
            header("d/", b'5', 0).to_vec(),
            header("d/f", b'0', 5).to_vec(),
            padded(b"hello"),
            header("l", b'2', 0).to_vec(),
        ]);
        let entries = read_all(&bytes).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].0.path, b"d/f");
        assert_eq!(entries[1].1, b"hello");
        assert_eq!(entries[2].0.kind, Kind::Symlink);
    }

    #[test]
    fn pax_path_and_size_apply_to_the_next_entry() {
        let records = b"13 path=long\n12 size=300\n";
        let bytes = archive(&[
            header("pax", b'x', records.len() as u64).to_vec(),
            padded(records),
            header("short", b'0', 0).to_vec(),
            padded(&[7u8; 300]),
        ]);
        let entries = read_all(&bytes).unwrap();
        assert_eq!(entries[0].0.path, b"long");
        assert_eq!(entries[0].1.len(), 300);
    }

    #[test]
    fn a_pax_size_that_disagrees_with_the_header_is_refused() {
        let records = b"12 size=300\n";
        let bytes = archive(&[
            header("pax", b'x', records.len() as u64).to_vec(),
            padded(records),
            header("f", b'0', 10).to_vec(),
            padded(&[7u8; 300]),
        ]);
        let err = read_all(&bytes).unwrap_err();
        assert!(err.reason.contains("disagrees"), "{}", err.reason);
        assert_eq!(err.entry.as_deref(), Some(&b"f"[..]));
    }

    #[test]
    fn extension_headers_are_bounded_before_they_are_read() {
        let mut big = header("L", b'L', MAX_EXTENSION_BYTES + 1).to_vec();
        big.extend_from_slice(&[0u8; 1024]);
        let err = read_all(&big).unwrap_err();
        assert!(
            err.reason.contains("larger than the limit"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn truncation_anywhere_is_an_error() {
        let full = archive(&[header("f", b'0', 600).to_vec(), padded(&[1u8; 600])]);
        for cut in [100, 512, 700, 1000] {
            let err = read_all(&full[..cut]).unwrap_err();
            let said = &err.reason;
            assert!(
                said.contains("truncated") || said.contains("ends inside its data"),
                "cut {cut}: {said}"
            );
        }
    }

    #[test]
    fn garbage_is_not_a_tar_archive() {
        let err = read_all(&[b'x'; 600]).unwrap_err();
        assert!(err.reason.contains("checksum") || err.reason.contains("invalid"));
    }

    #[test]
    fn global_headers_may_not_set_paths_or_sizes() {
        let records = b"13 path=evil\n";
        let bytes = archive(&[
            header("g", b'g', records.len() as u64).to_vec(),
            padded(records),
            header("f", b'0', 0).to_vec(),
        ]);
        assert!(read_all(&bytes).unwrap_err().reason.contains("global"));
    }

    #[test]
    fn vendor_records_of_the_first_global_header_are_kept_in_order() {
        let records = b"25 SLICEBOX.at=/opt/tool\n20 SLICEBOX.env=A=1\n20 SLICEBOX.env=B=2\n";
        let bytes = archive(&[
            pax("pax_global_header", b'g', records),
            header("f", b'0', 0).to_vec(),
        ]);
        let mut reader = TarReader::new(&bytes[..]);
        assert_eq!(reader.next_entry().unwrap().unwrap().path, b"f");
        let kept: Vec<(&[u8], &[u8])> = reader
            .vendor_records()
            .iter()
            .map(|(k, v)| (&k[..], &v[..]))
            .collect();
        assert_eq!(
            kept,
            [
                (&b"SLICEBOX.at"[..], &b"/opt/tool"[..]),
                (b"SLICEBOX.env", b"A=1"),
                (b"SLICEBOX.env", b"B=2")
            ]
        );
    }

    #[test]
    fn vendor_records_anywhere_but_the_first_header_are_refused() {
        let records = b"25 SLICEBOX.at=/opt/tool\n";
        let later_global = archive(&[
            header("f", b'0', 0).to_vec(),
            pax("g", b'g', records),
            header("h", b'0', 0).to_vec(),
        ]);
        let local = archive(&[pax("x", b'x', records), header("f", b'0', 0).to_vec()]);
        for bytes in [later_global, local] {
            let err = read_all(&bytes).unwrap_err();
            assert!(
                err.reason.contains("not the archive's first"),
                "{}",
                err.reason
            );
        }
    }

    #[test]
    fn only_regular_files_carry_data() {
        let bytes = archive(&[header("d/", b'5', 10).to_vec(), padded(&[0u8; 10])]);
        assert!(read_all(&bytes)
            .unwrap_err()
            .reason
            .contains("only regular files"));
    }

    #[test]
    fn numbers_octal_and_base_256() {
        assert_eq!(number(b"  0000644 \0", "mode").unwrap(), 0o644);
        assert_eq!(
            number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], "size").unwrap(),
            256
        );
        assert!(number(b"12x4", "size").is_err());
        assert!(number(&[0xff; 12], "size").is_err());
    }
}
