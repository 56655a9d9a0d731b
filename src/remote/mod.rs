//! Remote stages (`sandbox --on HOST`) and slice sync (`slice-push`,
//! `slice-pull`) over any byte stream: by default `ssh HOST slicebox
//! serve --stdio`. docs/protocol.md is the protocol; docs/design.md how
//! the parts fit.
//!
//! - `frame`: the framing, bounded whatever a peer claims.
//! - `conn`: one end of a session and the protocol's messages.
//! - `sync`: slices by content, only what the receiver lacks.
//! - `relay`: a stage's stdio, signals and exit status, both ends.
//! - `server`: `slicebox serve --stdio`.
//! - `client`: the transport command and the client's side of a session.

pub mod client;
pub mod conn;
pub mod frame;
pub mod relay;
pub mod server;
pub mod sync;

use std::io;
use std::path::PathBuf;

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the connection failed: {}", crate::text::io_cause(.0))]
    Transport(io::Error),
    #[error("the connection was closed")]
    Closed,
    #[error("{0}")]
    Peer(String),
    #[error("the peer broke the protocol: {0}")]
    Protocol(String),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error("cannot {op} '{}': {}", crate::text::printable_path(.path), crate::text::io_cause(.source))]
    Local {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl From<io::Error> for Error {
    /// An error that travelled through a reader (a stream of frames read
    /// through zstd) comes back as itself.
    fn from(e: io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let inner = e.into_inner().expect("checked above");
            return *inner.downcast::<Error>().expect("checked above");
        }
        Error::Transport(e)
    }
}

impl Error {
    /// For a `Read` or `Write` implementation: carried whole inside.
    pub fn into_io(self) -> io::Error {
        match self {
            Error::Transport(e) => e,
            other => io::Error::other(other),
        }
    }
}

#[cfg(test)]
mod tests;
