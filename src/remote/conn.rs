//! One end of a session: frames in from a byte stream, frames out through
//! a shared writer (the relay's threads all send), and the JSON messages
//! of docs/protocol.md.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::frame::{broken, read_frame, write_frame, Frame, Kind, MAX_PAYLOAD};
use super::Error;

/// The version of docs/protocol.md this build speaks.
pub const PROTOCOL: u32 = 1;

/// The first message each way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    /// `slicebox 0.1.0`: for messages only.
    pub program: String,
    /// What this end can do beyond the protocol's core (none yet).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The client's `--remote-store PATH`: the store the server uses.
    #[serde(default)]
    pub store: Option<String>,
}

/// One slice the sender holds, and the name the receiver should give it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offered {
    pub digest: crate::digest::Digest,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offer {
    pub slices: Vec<Offered>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Want {
    /// Indexes into the offer's slices, ascending.
    pub slices: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub slices: usize,
    /// Bytes of object content the receiver wrote.
    pub written: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pull {
    pub refs: Vec<String>,
}

/// A directory of the client's, shipped as a slice and shown read-only at
/// its own path (the working directory, `--ship PATH`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shipped {
    pub slice: crate::digest::Digest,
    pub path: String,
}

/// The stage to run: `sandbox` arguments as a local command line would
/// have them (slices by full digest), and the shipped directories.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub args: Vec<String>,
    #[serde(default)]
    pub shipped: Vec<Shipped>,
}

/// How the stage ended, and the slice its `--out` stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exit {
    pub code: i32,
    #[serde(default)]
    pub signal: Option<i32>,
    #[serde(default)]
    pub out: Option<crate::digest::Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failed {
    pub message: String,
}

/// A session's end: reads frames, sends through the shared writer.
pub struct Conn {
    input: Box<dyn Read + Send>,
    output: Sender,
    /// The peer's Hello has not been read yet: the client sends its first
    /// request right behind its own Hello and reads the answer's Hello
    /// when it reads the answer, which saves a round trip.
    hello_pending: bool,
}

/// The sending half, which the relay's threads share.
#[derive(Clone)]
pub struct Sender(Arc<Mutex<Box<dyn Write + Send>>>);

impl Sender {
    /// Sends one frame and flushes it.
    pub fn send(&self, kind: Kind, payload: &[u8]) -> io::Result<()> {
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        write_frame(&mut *out, kind, payload)?;
        out.flush()
    }

    pub fn send_json<T: Serialize>(&self, kind: Kind, message: &T) -> io::Result<()> {
        let bytes = serde_json::to_vec(message).expect("messages always serialise");
        if bytes.len() > MAX_PAYLOAD {
            return Err(broken("a message too large for one frame"));
        }
        self.send(kind, &bytes)
    }

    /// Closes the stream for good: the peer reads its end, whichever
    /// thread still holds a clone of this sender.
    pub fn close(&self) {
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.flush();
        *out = Box::new(io::sink());
    }

    /// Tells the peer why the session ends (best effort: it may be gone).
    pub fn fail(&self, message: &str) {
        let _ = self.send_json(
            Kind::Error,
            &Failed {
                message: message.to_string(),
            },
        );
    }
}

impl Conn {
    pub fn new(input: Box<dyn Read + Send>, output: Box<dyn Write + Send>) -> Conn {
        Conn {
            input,
            output: Sender(Arc::new(Mutex::new(output))),
            hello_pending: false,
        }
    }

    pub fn sender(&self) -> Sender {
        self.output.clone()
    }

    pub fn send(&self, kind: Kind, payload: &[u8]) -> Result<(), Error> {
        self.output.send(kind, payload).map_err(Error::from)
    }

    pub fn send_json<T: Serialize>(&self, kind: Kind, message: &T) -> Result<(), Error> {
        self.output.send_json(kind, message).map_err(Error::from)
    }

    /// The next frame; the peer's end of stream, or its `Error`, is an
    /// error here.
    pub fn recv(&mut self) -> Result<Frame, Error> {
        if self.hello_pending {
            self.hello_pending = false;
            let peer: Hello = self.expect_json(Kind::Hello)?;
            check_hello(&peer)?;
        }
        self.read_one()
    }

    /// Sends this end's Hello; the peer's is checked before the next
    /// frame is read.
    pub fn greet(&mut self, store: Option<String>) -> Result<(), Error> {
        self.send_json(Kind::Hello, &hello(store))?;
        self.hello_pending = true;
        Ok(())
    }

    fn read_one(&mut self) -> Result<Frame, Error> {
        match read_frame(&mut self.input).map_err(Error::from)? {
            None => Err(Error::Closed),
            Some(frame) if frame.kind == Kind::Error => Err(Error::Peer(
                serde_json::from_slice::<Failed>(&frame.payload)
                    .map(|f| f.message)
                    .unwrap_or_else(|_| "the peer failed without a readable message".into()),
            )),
            Some(frame) => Ok(frame),
        }
    }

    /// A failure to send is often the peer hanging up after it said why:
    /// its `Error`, when one is waiting, explains the failure better.
    pub fn explain(&mut self, error: Error) -> Error {
        if !matches!(error, Error::Transport(_) | Error::Closed) {
            return error;
        }
        for _ in 0..1024 {
            match self.recv() {
                Err(said @ Error::Peer(_)) => return said,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        error
    }

    /// The next frame, `None` at a clean end of stream.
    pub fn recv_or_end(&mut self) -> Result<Option<Frame>, Error> {
        match self.recv() {
            Err(Error::Closed) => Ok(None),
            other => other.map(Some),
        }
    }

    /// The next frame, which must be `kind`.
    pub fn expect(&mut self, kind: Kind) -> Result<Vec<u8>, Error> {
        let frame = self.recv()?;
        if frame.kind != kind {
            return Err(unexpected(frame.kind, kind));
        }
        Ok(frame.payload)
    }

    /// The next frame, a `kind` message in JSON.
    pub fn expect_json<T: DeserializeOwned>(&mut self, kind: Kind) -> Result<T, Error> {
        let payload = self.expect(kind)?;
        parse_json(kind, &payload)
    }
}

pub fn parse_json<T: DeserializeOwned>(kind: Kind, payload: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(payload)
        .map_err(|e| Error::Protocol(format!("a {kind:?} message that does not parse: {e}")))
}

pub fn unexpected(got: Kind, wanted: Kind) -> Error {
    Error::Protocol(format!("a {got:?} frame where a {wanted:?} frame belongs"))
}

/// This end's hello.
pub fn hello(store: Option<String>) -> Hello {
    Hello {
        protocol: PROTOCOL,
        program: format!("slicebox {}", env!("CARGO_PKG_VERSION")),
        capabilities: Vec::new(),
        store,
    }
}

/// Checks the peer's hello.
pub fn check_hello(peer: &Hello) -> Result<(), Error> {
    if peer.protocol != PROTOCOL {
        return Err(Error::Protocol(format!(
            "the peer ({}) speaks protocol {}, this slicebox protocol {PROTOCOL}; install the same \
             version on both hosts",
            crate::text::printable(peer.program.as_bytes()),
            peer.protocol
        )));
    }
    Ok(())
}
