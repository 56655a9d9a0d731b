//! `slices/<hex>/listing`: every entry of a slice tree with its content
//! digest, so gc, verify, diff and show never have to map inodes back to
//! objects. Written with the slice, before it becomes visible.
//!
//! One line per entry, depth-first in name order, the root omitted:
//! `KIND SP PAYLOAD SP SIZE SP LEN:PATH LF`, where KIND is `d`, `f`, `x`
//! or `l`; PAYLOAD is the content hex for files, `LEN:TARGET` for
//! symlinks and `-` for directories; SIZE is the file size (0 otherwise).

use std::convert::Infallible;

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

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn token(&mut self) -> Option<&'a [u8]> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .iter()
            .position(|c| *c == b' ' || *c == b':' || *c == b'\n')?;
        self.at += end;
        Some(&rest[..end])
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    fn number(&mut self) -> Option<u64> {
        std::str::from_utf8(self.token()?).ok()?.parse().ok()
    }

    fn counted(&mut self) -> Option<&'a [u8]> {
        let len = self.number()? as usize;
        self.expect(b':')?;
        let value = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(value)
    }
}

/// Parses a listing; `None` if it is malformed anywhere.
pub fn parse(bytes: &[u8]) -> Option<Vec<Entry>> {
    let mut cursor = Cursor { bytes, at: 0 };
    let mut entries = Vec::new();
    while cursor.at < bytes.len() {
        let kind = *bytes.get(cursor.at)?;
        cursor.at += 1;
        cursor.expect(b' ')?;
        let node = match kind {
            b'f' | b'x' => {
                let content = Digest::from_hex(std::str::from_utf8(cursor.token()?).ok()?)?;
                cursor.expect(b' ')?;
                let size = cursor.number()?;
                Node::File {
                    content,
                    executable: kind == b'x',
                    size,
                }
            }
            b'l' => {
                let target = cursor.counted()?.to_vec();
                cursor.expect(b' ')?;
                cursor.number()?;
                Node::Symlink { target }
            }
            b'd' => {
                (cursor.token()? == b"-").then_some(())?;
                cursor.expect(b' ')?;
                cursor.number()?;
                Node::empty_dir()
            }
            _ => return None,
        };
        cursor.expect(b' ')?;
        let path = cursor.counted()?.to_vec();
        cursor.expect(b'\n')?;
        entries.push(Entry { path, node });
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
