//! The protocol's framing (docs/protocol.md): every message is one frame,
//! a kind byte, a 32-bit big-endian payload length and the payload. A
//! reader never allocates more than [`MAX_PAYLOAD`] for one frame, however
//! the length field lies, and a short read is an error, not a short frame.

use std::io::{self, Read, Write};

/// The largest payload a frame may carry: a peer that announces more is
/// cut off before anything is allocated.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// What a frame is (docs/protocol.md lists each with its payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// JSON: protocol version, program, capabilities (both ways, first).
    Hello = 0x01,
    /// JSON: slices the sender holds and the receiver may lack.
    Offer = 0x02,
    /// JSON: which of the offered slices the receiver lacks.
    Want = 0x03,
    /// Bytes of the zstd stream of manifests and listings.
    Listings = 0x04,
    /// Bytes of the bitmap of the files whose content is needed.
    Need = 0x05,
    /// Bytes of the zstd stream of objects' content.
    Objects = 0x06,
    /// Empty: the stream of the frames of one kind before it has ended.
    End = 0x07,
    /// JSON: the slices are stored (or an error instead).
    Stored = 0x08,
    /// JSON: fetch these refs (`slice-pull`); the answer is an offer.
    Pull = 0x09,
    /// JSON: run a stage.
    Run = 0x10,
    /// Bytes for the stage's stdin.
    Stdin = 0x11,
    /// Empty: the stage's stdin has ended.
    StdinEnd = 0x12,
    /// Bytes the stage wrote to its stdout.
    Stdout = 0x13,
    /// Bytes the stage wrote to its stderr.
    Stderr = 0x14,
    /// u32: bytes of stdin the stage has consumed (flow control).
    Credit = 0x15,
    /// u8: a signal for the stage's process group.
    Signal = 0x16,
    /// Empty: nobody reads the stage's stdout any more.
    StdoutClosed = 0x17,
    /// JSON: how the stage ended.
    Exit = 0x18,
    /// JSON: the session failed; a message for the user.
    Error = 0x7f,
}

impl Kind {
    const ALL: [Kind; 19] = [
        Kind::Hello,
        Kind::Offer,
        Kind::Want,
        Kind::Listings,
        Kind::Need,
        Kind::Objects,
        Kind::End,
        Kind::Stored,
        Kind::Pull,
        Kind::Run,
        Kind::Stdin,
        Kind::StdinEnd,
        Kind::Stdout,
        Kind::Stderr,
        Kind::Credit,
        Kind::Signal,
        Kind::StdoutClosed,
        Kind::Exit,
        Kind::Error,
    ];

    pub fn from_byte(byte: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u8 == byte)
    }
}

/// One frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub payload: Vec<u8>,
}

/// Writes one frame. The caller flushes when a batch is complete.
pub fn write_frame(out: &mut dyn Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    let mut header = [0u8; 5];
    header[0] = kind as u8;
    header[1..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    out.write_all(&header)?;
    out.write_all(payload)
}

/// Reads one frame; `Ok(None)` at a clean end of stream (before a header).
pub fn read_frame(input: &mut dyn Read) -> io::Result<Option<Frame>> {
    let mut header = [0u8; 5];
    let mut got = 0;
    while got < header.len() {
        match input.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(broken("the stream ended inside a frame header")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let kind = Kind::from_byte(header[0])
        .ok_or_else(|| broken(&format!("unknown frame kind 0x{:02x}", header[0])))?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length > MAX_PAYLOAD {
        return Err(broken(&format!(
            "a frame of {length} bytes, more than the protocol's {MAX_PAYLOAD}"
        )));
    }
    let mut payload = vec![0u8; length];
    input.read_exact(&mut payload).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => broken("the stream ended inside a frame"),
        _ => e,
    })?;
    Ok(Some(Frame { kind, payload }))
}

/// A protocol violation, as an io::Error so that it travels with the
/// transport's own failures.
pub fn broken(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut wire = Vec::new();
        write_frame(&mut wire, Kind::Stdin, b"abc").unwrap();
        write_frame(&mut wire, Kind::End, b"").unwrap();
        let mut input = &wire[..];
        let first = read_frame(&mut input).unwrap().unwrap();
        assert_eq!((first.kind, &first.payload[..]), (Kind::Stdin, &b"abc"[..]));
        assert_eq!(read_frame(&mut input).unwrap().unwrap().kind, Kind::End);
        assert_eq!(read_frame(&mut input).unwrap(), None);
    }

    #[test]
    fn every_kind_reads_back_as_itself() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_byte(kind as u8), Some(kind));
        }
        assert_eq!(Kind::from_byte(0x00), None);
        assert_eq!(Kind::from_byte(0xff), None);
    }

    #[test]
    fn lying_lengths_and_cut_streams_are_errors_without_allocation() {
        let huge = [Kind::Stdout as u8, 0xff, 0xff, 0xff, 0xff];
        let error = read_frame(&mut &huge[..]).unwrap_err();
        assert!(
            error.to_string().contains("more than the protocol's"),
            "{error}"
        );
        let cut = [Kind::Stdout as u8, 0, 0, 0, 9, b'x'];
        let error = read_frame(&mut &cut[..]).unwrap_err();
        assert!(error.to_string().contains("inside a frame"), "{error}");
        let error = read_frame(&mut &[Kind::Stdout as u8, 0][..]).unwrap_err();
        assert!(error.to_string().contains("frame header"), "{error}");
        let error = read_frame(&mut &[0x42, 0, 0, 0, 0][..]).unwrap_err();
        assert!(
            error.to_string().contains("unknown frame kind 0x42"),
            "{error}"
        );
    }
}
