//! `slices/<hex>/listing`: every entry of a slice tree with its content
//! digest, so gc, verify, diff and show never have to map inodes back to
//! objects. Written with the slice, before it becomes visible.
//!
//! One line per entry, depth-first in name order, the root omitted:
//! `KIND SP PAYLOAD SP SIZE SP LEN:PATH LF`, where KIND is `d`, `f`, `x`
//! or `l`; PAYLOAD is the content hex for files, `LEN:TARGET` for
//! symlinks and `-` for directories; SIZE is the file size (0 otherwise).

use std::convert::Infallible;
use std::io::{self, BufRead};

use super::tree::{for_each_path, Node};
use crate::digest::Digest;

/// One entry of a listing, with its path relative to the tree root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub node: Node,
}

fn length_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Depth-first in name order.
pub fn write(root: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    let written: Result<(), Infallible> = for_each_path(root, |path, node| {
        write_entry(&mut out, path, node);
        Ok(())
    });
    let Ok(()) = written;
    out
}

/// Appends the line of one entry at `path` (a directory's children are
/// not written: a streaming walk writes them as it meets them).
pub fn write_entry(out: &mut Vec<u8>, path: &[u8], node: &Node) {
    match node {
        Node::File {
            content,
            executable,
            size,
        } => {
            out.extend_from_slice(if *executable { b"x " } else { b"f " });
            out.extend_from_slice(content.hex().as_bytes());
            out.extend_from_slice(format!(" {size} ").as_bytes());
        }
        Node::Symlink { target } => {
            out.extend_from_slice(b"l ");
            length_prefixed(out, target);
            out.extend_from_slice(b" 0 ");
        }
        Node::Dir(_) => out.extend_from_slice(b"d - 0 "),
    }
    length_prefixed(out, path);
    out.push(b'\n');
}

/// The longest path or symlink target a listing may hold: far above what
/// the limits let into a slice (PATH_MAX), so only a damaged listing meets
/// it, and a damaged length never makes a reader allocate more.
const MOST_COUNTED: u64 = 1 << 16;

fn malformed() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "the listing is malformed")
}

/// Reads a listing one entry at a time, from a file or from bytes in
/// memory: what holds only one entry, however many the listing has.
pub(crate) struct Reader<R> {
    input: R,
}

impl<R: BufRead> Reader<R> {
    pub(crate) fn new(input: R) -> Reader<R> {
        Reader { input }
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.input.fill_buf()?.first().copied())
    }

    fn expect(&mut self, byte: u8) -> io::Result<()> {
        match self.peek()? {
            Some(b) if b == byte => {
                self.input.consume(1);
                Ok(())
            }
            _ => Err(malformed()),
        }
    }

    /// The bytes up to the next space, colon or newline (left unread), at
    /// most `most` of them.
    fn token(&mut self, most: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let buffer = self.input.fill_buf()?;
            if buffer.is_empty() {
                return Err(malformed());
            }
            let end = buffer
                .iter()
                .position(|c| matches!(*c, b' ' | b':' | b'\n'));
            let taken = end.unwrap_or(buffer.len());
            out.extend_from_slice(&buffer[..taken]);
            self.input.consume(taken);
            if out.len() > most {
                return Err(malformed());
            }
            if end.is_some() {
                return Ok(out);
            }
        }
    }

    fn number(&mut self) -> io::Result<u64> {
        let token = self.token(20)?;
        std::str::from_utf8(&token)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(malformed)
    }

    fn counted(&mut self) -> io::Result<Vec<u8>> {
        let len = self.number()?;
        self.expect(b':')?;
        if len > MOST_COUNTED {
            return Err(malformed());
        }
        let mut value = vec![0; len as usize];
        self.input
            .read_exact(&mut value)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => malformed(),
                _ => e,
            })?;
        Ok(value)
    }

    /// The next entry; `None` at the end. A malformed listing is an error
    /// of kind `InvalidData`.
    pub(crate) fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let Some(kind) = self.peek()? else {
            return Ok(None);
        };
        self.input.consume(1);
        self.expect(b' ')?;
        let node = match kind {
            b'f' | b'x' => {
                let hex = self.token(64)?;
                let content = std::str::from_utf8(&hex)
                    .ok()
                    .and_then(Digest::from_hex)
                    .ok_or_else(malformed)?;
                self.expect(b' ')?;
                let size = self.number()?;
                Node::File {
                    content,
                    executable: kind == b'x',
                    size,
                }
            }
            b'l' => {
                let target = self.counted()?;
                self.expect(b' ')?;
                self.number()?;
                Node::Symlink { target }
            }
            b'd' => {
                if self.token(1)? != b"-" {
                    return Err(malformed());
                }
                self.expect(b' ')?;
                self.number()?;
                Node::empty_dir()
            }
            _ => return Err(malformed()),
        };
        self.expect(b' ')?;
        let path = self.counted()?;
        self.expect(b'\n')?;
        Ok(Some(Entry { path, node }))
    }
}

/// Parses a listing; `None` if it is malformed anywhere.
pub fn parse(bytes: &[u8]) -> Option<Vec<Entry>> {
    let mut reader = Reader::new(bytes);
    let mut entries = Vec::new();
    while let Some(entry) = reader.next_entry().ok()? {
        entries.push(entry);
    }
    Some(entries)
}

/// Rebuilds the tree a listing describes (for its digest).
pub fn to_tree(entries: &[Entry]) -> Option<Node> {
    let mut root = Node::empty_dir();
    for entry in entries {
        let parts: Vec<&[u8]> = entry.path.split(|c| *c == b'/').collect();
        super::tree::place(&mut root, &parts, entry.node.clone()).ok()?;
    }
    Some(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tree::{place, tree_digest};

    #[test]
    fn round_trips_awkward_names_and_targets() {
        let mut root = Node::empty_dir();
        let file = Node::File {
            content: Digest::of(b"x"),
            executable: true,
            size: 1,
        };
        place(&mut root, &[b"dir with space", b"new\nline: 12"], file).unwrap();
        place(
            &mut root,
            &[b"link"],
            Node::Symlink {
                target: b"../a b:\n".to_vec(),
            },
        )
        .unwrap();
        place(&mut root, &[b"empty"], Node::empty_dir()).unwrap();
        let entries = parse(&write(&root)).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(tree_digest(&to_tree(&entries).unwrap()), tree_digest(&root));
    }

    #[test]
    fn malformed_listings_are_refused() {
        for bad in [
            &b"q - 0 1:a\n"[..],
            b"f zz 1 1:a\n",
            b"d - 0 5:a\n",
            b"l 3:ab 0 1:a\n",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
