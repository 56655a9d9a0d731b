//! Moving slices between two stores by content (docs/protocol.md, "Sync"):
//!
//! 1. `Offer`: the slices the sender holds; `Want`: those the receiver
//!    lacks. A re-run whose slices are all there ends here, after one
//!    round trip.
//! 2. `Listings`: one zstd stream of the wanted slices' manifests and
//!    listings. `Need`: one bit per file with content, in listing order,
//!    set where the receiver lacks the object (each object asked once).
//! 3. `Objects`: one zstd stream of the asked files' content, back to
//!    back, no round trip per object. `Stored`: the slices are committed.
//!
//! Every stream is a run of frames of one kind closed by `End`, so a
//! stream of any size costs no round trip of its own.

use std::fs::File;
use std::io::{self, Read, Write};

use super::conn::{parse_json, unexpected, Conn, Offer, Offered, Sender, Stored, Want};
use super::frame::{Kind, MAX_PAYLOAD};
use super::Error;
use crate::digest::Digest;
use crate::store::{wire_files, Incoming, Limits, Store};

/// At most this many slices in one offer.
const MOST_OFFERED: usize = 10_000;
/// A manifest is a few hundred bytes; a longer one is a lie.
const MOST_MANIFEST: u64 = 1 << 20;
/// zstd's window is at most 2^this bytes here, whatever a peer's stream
/// asks: a hostile frame header cannot make the decoder take gigabytes.
const WINDOW_LOG_MAX: u32 = 24;
/// How hard the sender compresses: zstd's default, as `tar | zstd`.
const LEVEL: i32 = 3;

/// What a sync moved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Moved {
    pub slices: usize,
    pub written: u64,
}

/// Offers `slices` and sends what the peer lacks.
pub fn send_slices(conn: &mut Conn, store: &Store, slices: &[Offered]) -> Result<Moved, Error> {
    send_offered(conn, store, slices).map_err(|e| conn.explain(e))
}

fn send_offered(conn: &mut Conn, store: &Store, slices: &[Offered]) -> Result<Moved, Error> {
    conn.send_json(
        Kind::Offer,
        &Offer {
            slices: slices.to_vec(),
        },
    )?;
    let want: Want = conn.expect_json(Kind::Want)?;
    if want.slices.is_empty() {
        return Ok(Moved::default());
    }
    let mut wanted = Vec::new();
    for &index in &want.slices {
        let offered = slices
            .get(index)
            .ok_or_else(|| Error::Protocol(format!("a Want of slice {index}, never offered")))?;
        wanted.push(store.wire_form(&offered.digest)?);
    }
    let mut listings = compressor(conn.sender(), Kind::Listings)?;
    let mut files = Vec::new();
    for (manifest, listing) in &wanted {
        write_item(&mut listings, manifest)?;
        write_item(&mut listings, listing)?;
        let entries = crate::store::parse_listing(listing)
            .ok_or_else(|| Error::Protocol("a stored listing that does not parse".into()))?;
        files.extend(wire_files(&entries));
    }
    finish(listings)?;
    // One bit per file, no more: a peer cannot make this end hold more.
    let needed = read_stream(conn, Kind::Need, files.len().div_ceil(8))?;
    let mut objects = compressor(conn.sender(), Kind::Objects)?;
    for (bit, file) in files.iter().enumerate() {
        if needed[bit / 8] & (1 << (bit % 8)) != 0 {
            copy_object(store, file, &mut objects)?;
        }
    }
    finish(objects)?;
    let stored: Stored = conn.expect_json(Kind::Stored)?;
    Ok(Moved {
        slices: stored.slices,
        written: stored.written,
    })
}

/// Answers an offer: asks for what the store lacks, checks and stores it,
/// and names what the offer names. A name is written before the message
/// that ends the sync for the sender (Want when nothing is wanted, Stored
/// otherwise): a sender that saw success finds the names there.
pub fn receive_slices(
    conn: &mut Conn,
    store: &Store,
    offer: &Offer,
    limits: Limits,
) -> Result<Moved, Error> {
    // A slice offered twice is wanted once.
    let mut seen = std::collections::HashSet::new();
    let wanted: Vec<usize> = (0..offer.slices.len())
        .filter(|&i| seen.insert(offer.slices[i].digest))
        .filter(|&i| !store.has_slice(&offer.slices[i].digest))
        .collect();
    let lacking: std::collections::HashSet<_> =
        wanted.iter().map(|&i| offer.slices[i].digest).collect();
    name_offered(store, offer, |digest| !lacking.contains(digest))?;
    conn.send_json(
        Kind::Want,
        &Want {
            slices: wanted.clone(),
        },
    )?;
    if wanted.is_empty() {
        return Ok(Moved::default());
    }
    let moved = receive_wanted(conn, store, offer, &wanted, limits)?;
    name_offered(store, offer, |digest| lacking.contains(digest))?;
    let stored = Stored {
        slices: moved.slices,
        written: moved.written,
    };
    conn.send_json(Kind::Stored, &stored)?;
    Ok(moved)
}

/// Points each offered name whose slice `now` picks at it.
fn name_offered(store: &Store, offer: &Offer, now: impl Fn(&Digest) -> bool) -> Result<(), Error> {
    for offered in &offer.slices {
        if let (Some(name), true) = (&offered.name, now(&offered.digest)) {
            store.set_ref(name, &offered.digest)?;
        }
    }
    Ok(())
}

fn receive_wanted(
    conn: &mut Conn,
    store: &Store,
    offer: &Offer,
    wanted: &[usize],
    limits: Limits,
) -> Result<Moved, Error> {
    let mut listings = decompressor(conn, Kind::Listings)?;
    let mut incoming = Vec::new();
    for &index in wanted {
        let digest = offer.slices[index].digest;
        let manifest = read_item(&mut listings, MOST_MANIFEST)?;
        let listing = read_item(&mut listings, most_listing(&limits))?;
        incoming.push(Incoming::check(&digest, &manifest, &listing, limits)?);
    }
    expect_end(listings)?;
    let needed = store.objects_needed(&incoming);
    let sender = conn.sender();
    for chunk in bitmap(&needed).chunks(MAX_PAYLOAD) {
        sender.send(Kind::Need, chunk).map_err(Error::from)?;
    }
    sender.send(Kind::End, b"").map_err(Error::from)?;
    let mut objects = decompressor(conn, Kind::Objects)?;
    let written = store.receive(&incoming, &needed, &mut objects)?;
    expect_end(objects)?;
    Ok(Moved {
        slices: incoming.len(),
        written,
    })
}

/// Checks an offer's size before anything of it is looked at.
pub fn read_offer(payload: &[u8]) -> Result<Offer, Error> {
    let offer: Offer = parse_json(Kind::Offer, payload)?;
    if offer.slices.len() > MOST_OFFERED {
        return Err(Error::Protocol(format!(
            "an offer of {} slices, more than {MOST_OFFERED}",
            offer.slices.len()
        )));
    }
    Ok(offer)
}

/// The longest listing the limits allow: a line per entry of at most the
/// path limit plus its fields.
fn most_listing(limits: &Limits) -> u64 {
    limits
        .entries
        .saturating_mul(limits.path.saturating_add(160))
}

fn bitmap(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
        out[i / 8] |= 1 << (i % 8);
    }
    out
}

fn copy_object(
    store: &Store,
    file: &crate::store::WireFile,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let path = store.object_path(&file.content, file.executable);
    let object = File::open(&path).map_err(|e| Error::Local {
        op: "read object",
        path: path.clone(),
        source: e,
    })?;
    let copied = io::copy(&mut object.take(file.size), out).map_err(Error::from)?;
    if copied != file.size {
        return Err(Error::Local {
            op: "read object",
            path,
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "shorter than its listing says",
            ),
        });
    }
    Ok(())
}

/// A length-prefixed item of a stream (u64, big-endian).
fn write_item(out: &mut dyn Write, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(&(bytes.len() as u64).to_be_bytes())
        .and_then(|()| out.write_all(bytes))
        .map_err(Error::from)
}

fn read_item(input: &mut dyn Read, most: u64) -> Result<Vec<u8>, Error> {
    let mut length = [0u8; 8];
    input.read_exact(&mut length).map_err(Error::from)?;
    let length = u64::from_be_bytes(length);
    if length > most {
        return Err(Error::Protocol(format!(
            "an item of {length} bytes, more than the {most} the limits allow"
        )));
    }
    let mut bytes = Vec::new();
    input
        .take(length)
        .read_to_end(&mut bytes)
        .map_err(Error::from)?;
    if bytes.len() as u64 != length {
        return Err(Error::Protocol("a stream that ends inside an item".into()));
    }
    Ok(bytes)
}

/// Writes a stream as frames of `kind`, each at most [`CHUNK`] bytes.
pub struct FrameWriter {
    sender: Sender,
    kind: Kind,
    buffer: Vec<u8>,
}

const CHUNK: usize = 256 << 10;

impl FrameWriter {
    pub fn new(sender: Sender, kind: Kind) -> FrameWriter {
        FrameWriter {
            sender,
            kind,
            buffer: Vec::with_capacity(CHUNK),
        }
    }

    /// Sends what is buffered and the stream's `End`.
    pub fn end(mut self) -> io::Result<()> {
        self.flush()?;
        self.sender.send(Kind::End, b"")
    }
}

impl Write for FrameWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let taken = room.min(bytes.len());
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == CHUNK {
            self.flush()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.sender.send(self.kind, &self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }
}

fn compressor(sender: Sender, kind: Kind) -> Result<zstd::Encoder<'static, FrameWriter>, Error> {
    zstd::Encoder::new(FrameWriter::new(sender, kind), LEVEL).map_err(Error::from)
}

fn finish(encoder: zstd::Encoder<'static, FrameWriter>) -> Result<(), Error> {
    encoder
        .finish()
        .and_then(FrameWriter::end)
        .map_err(Error::from)
}

/// Reads the frames of `kind` up to their `End` as one stream.
pub struct FrameReader<'c> {
    conn: &'c mut Conn,
    kind: Kind,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl<'c> FrameReader<'c> {
    pub fn new(conn: &'c mut Conn, kind: Kind) -> FrameReader<'c> {
        FrameReader {
            conn,
            kind,
            chunk: Vec::new(),
            at: 0,
            ended: false,
        }
    }
}

impl Read for FrameReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            let frame = self.conn.recv().map_err(Error::into_io)?;
            match frame.kind {
                Kind::End => self.ended = true,
                kind if kind == self.kind => {
                    self.chunk = frame.payload;
                    self.at = 0;
                }
                other => return Err(Error::into_io(unexpected(other, self.kind))),
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

type Decompressor<'c> = zstd::Decoder<'static, io::BufReader<FrameReader<'c>>>;

fn decompressor(conn: &mut Conn, kind: Kind) -> Result<Decompressor<'_>, Error> {
    let mut decoder = zstd::Decoder::new(FrameReader::new(conn, kind)).map_err(Error::from)?;
    decoder
        .window_log_max(WINDOW_LOG_MAX)
        .map_err(Error::from)?;
    Ok(decoder)
}

/// The stream must hold nothing more, and its `End` must have come.
fn expect_end(mut decoder: Decompressor<'_>) -> Result<(), Error> {
    let mut rest = [0u8; 1];
    match decoder.read(&mut rest).map_err(Error::from)? {
        0 => {}
        _ => {
            return Err(Error::Protocol(
                "a stream with more than it described".into(),
            ))
        }
    }
    let mut frames = decoder.finish().into_inner();
    let mut tail = Vec::new();
    frames.read_to_end(&mut tail).map_err(Error::from)?;
    match tail.is_empty() {
        true => Ok(()),
        false => Err(Error::Protocol("bytes after the end of a stream".into())),
    }
}

/// Reads a plain (uncompressed) stream of `kind` up to its `End`, which
/// must hold exactly `length` bytes.
fn read_stream(conn: &mut Conn, kind: Kind, length: usize) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    // One byte more than belongs: a longer stream is told from a whole one.
    FrameReader::new(conn, kind)
        .take(length as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::from)?;
    if bytes.len() != length {
        return Err(Error::Protocol(format!(
            "a {kind:?} stream of {}{} bytes where {length} belong",
            bytes.len(),
            if bytes.len() > length { " or more" } else { "" }
        )));
    }
    Ok(bytes)
}
