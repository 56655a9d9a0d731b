//! A layer's blob: found, sized, and read raw, verified or as a tar.
//!
//! A blob is hashed as it is read, never before: a 170 MB layer read
//! twice (once to check, once to unpack) would double an image's ingest
//! time. The reader therefore fails at the end, when the digest is known,
//! and a consumer must read it to its end ([`LayerTar::finish`] does) and
//! keep nothing it read until then.

use std::io::{self, BufRead, BufReader, Read};

use sha2::{Digest as _, Sha256};

use super::container::Location;
use crate::digest::Digest;

/// How a layer's tar is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Plain,
    Gzip,
    Zstd,
    /// Not declared (a docker archive's layer): found by the blob's magic
    /// bytes when it is read.
    Sniffed,
}

impl Compression {
    /// The compression a layer media type declares, or `None` for a media
    /// type that is not a layer slicebox can read.
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        let kind = media_type
            .strip_prefix("application/vnd.oci.image.layer.nondistributable.v1.")
            .or_else(|| media_type.strip_prefix("application/vnd.oci.image.layer.v1."))
            .or_else(|| media_type.strip_prefix("application/vnd.docker.image.rootfs.foreign."))
            .or_else(|| media_type.strip_prefix("application/vnd.docker.image.rootfs."))?;
        match kind {
            "tar" | "diff.tar" => Some(Compression::Plain),
            "tar+gzip" | "diff.tar.gzip" => Some(Compression::Gzip),
            "tar+zstd" | "diff.tar.zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// One layer of an image.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// The blob's digest: of its bytes as stored (compressed or not).
    pub digest: Digest,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids`):
    /// what names the layer's content whatever its compression, so a store
    /// that has it can skip the layer.
    pub diff_id: Digest,
    /// The blob's size in bytes, as stored.
    pub size: u64,
    pub media_type: String,
    pub compression: Compression,
    /// The blob's name in the image, for messages (`blobs/sha256/…`).
    pub name: String,
    pub(super) location: Location,
}

impl LayerBlob {
    /// The blob's bytes as stored, unchecked.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        let (reader, size) = self.location.open()?;
        if size != self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the blob {} is {size} bytes, but the manifest says {}",
                    self.name, self.size
                ),
            ));
        }
        Ok(reader)
    }

    /// The blob's bytes as stored; the read that reaches the end fails if
    /// their sha256 is not [`LayerBlob::digest`], and a read past the
    /// declared size fails at once.
    pub fn open_verified(&self) -> io::Result<VerifiedRead<Box<dyn Read + Send>>> {
        Ok(VerifiedRead::new(
            self.open()?,
            self.digest,
            Some(self.size),
            format!("the blob {}", self.name),
        ))
    }

    /// The layer's tar, decompressed as its media type says (or as its
    /// magic bytes say where no media type is given), with both the blob's
    /// digest and the tar's DiffID checked at the end. The expansion is not
    /// bounded here: the ingest that reads the tar applies its limits.
    pub fn open_tar(&self) -> io::Result<LayerTar> {
        let mut raw = BufReader::with_capacity(256 * 1024, self.open_verified()?);
        let compression = match self.compression {
            Compression::Sniffed => sniff(raw.fill_buf()?),
            declared => declared,
        };
        let decoded: Box<dyn Read + Send> = match compression {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
            Compression::Plain | Compression::Sniffed => Box::new(raw),
        };
        Ok(LayerTar {
            reader: VerifiedRead::new(
                decoded,
                self.diff_id,
                None,
                format!("the uncompressed tar of the blob {}", self.name),
            ),
        })
    }
}

/// The compression that a stream's first bytes show.
fn sniff(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::Plain
    }
}

/// A reader that hashes what passes through and, at the end, fails unless
/// the sha256 is the expected one (and, with a size, unless exactly that
/// many bytes came).
pub struct VerifiedRead<R> {
    inner: R,
    hasher: Sha256,
    expected: Digest,
    size: Option<u64>,
    seen: u64,
    what: String,
    checked: bool,
    /// The verdict at the end, when it was a failure: every later read
    /// fails the same way, so no retry reads an empty "rest" as success.
    failure: Option<String>,
}

impl<R: Read> VerifiedRead<R> {
    pub fn new(inner: R, expected: Digest, size: Option<u64>, what: String) -> VerifiedRead<R> {
        VerifiedRead {
            inner,
            hasher: Sha256::new(),
            expected,
            size,
            seen: 0,
            what,
            checked: false,
            failure: None,
        }
    }

    fn invalid(&self, cause: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {cause}", self.what),
        )
    }

    fn check_end(&mut self) -> io::Result<()> {
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        self.checked = true;
        let failure = match self.size.filter(|s| *s != self.seen) {
            Some(size) => format!(
                "it ended after {} bytes, but {size} were declared",
                self.seen
            ),
            None if actual != self.expected => format!(
                "its content has the digest {actual}, not {} as named; it is damaged or was \
                 tampered with",
                self.expected
            ),
            None => return Ok(()),
        };
        self.failure = Some(failure.clone());
        Err(self.invalid(failure))
    }
}

impl<R: Read> Read for VerifiedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(failure) = &self.failure {
            return Err(self.invalid(failure.clone()));
        }
        if self.checked || buf.is_empty() {
            return Ok(0);
        }
        let got = self.inner.read(buf)?;
        if got == 0 {
            self.check_end()?;
            return Ok(0);
        }
        self.seen += got as u64;
        if let Some(size) = self.size.filter(|s| self.seen > *s) {
            return Err(self.invalid(format!("it is longer than the {size} bytes declared")));
        }
        self.hasher.update(&buf[..got]);
        Ok(got)
    }
}

/// A layer's uncompressed tar stream. A tar reader stops at the archive's
/// end marker, before the stream's end: call [`LayerTar::finish`] after it
/// to read the rest and learn whether the digests matched.
pub struct LayerTar {
    reader: VerifiedRead<Box<dyn Read + Send>>,
}

impl LayerTar {
    /// Reads what is left and checks the blob's digest and the DiffID.
    pub fn finish(mut self) -> io::Result<()> {
        io::copy(&mut self.reader, &mut io::sink())?;
        Ok(())
    }
}

impl Read for LayerTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}
