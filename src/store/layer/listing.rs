//! A layer's listing: every entry of the layer with its kind, mode,
//! owner, size, content digest or link target, and extended attributes.
//! The listing is the layer: its sha256 is the layer's digest, and the
//! files' bytes are objects of the store (docs/formats.md, "Layers").
//!
//! One line per entry, depth-first in name order (by path components),
//! the root omitted:
//! `KIND SP MODE SP UID:GID SP SIZE SP PAYLOAD SP LEN:PATH (SP LEN:NAME SP LEN:VALUE)* LF`
//! where KIND is `d` (directory), `o` (opaque directory), `f` (file), `l`
//! (symlink), `h` (hardlink) or `w` (whiteout); MODE is 4 octal digits;
//! PAYLOAD is the content hex for files, `LEN:TARGET` for symlinks and
//! hardlinks, `-` otherwise; SIZE is a file's size (a hardlink's file's).

use std::collections::BTreeMap;

use crate::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerKind {
    Dir,
    /// A directory that hides what lower layers hold at its path.
    OpaqueDir,
    File {
        content: Digest,
        size: u64,
    },
    Symlink(Vec<u8>),
    /// A hardlink to the regular file of this layer at this path.
    Hardlink {
        target: Vec<u8>,
        size: u64,
    },
    /// Deletes what lower layers hold at its path.
    Whiteout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// '/'-separated, relative to the layer root.
    pub path: Vec<u8>,
    pub kind: LayerKind,
    /// Permission bits, setuid, setgid and sticky included (0o7777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl LayerEntry {
    pub fn size(&self) -> u64 {
        match self.kind {
            LayerKind::File { size, .. } | LayerKind::Hardlink { size, .. } => size,
            _ => 0,
        }
    }
}

/// Entries keyed by their path components: the map's order is the
/// listing's (depth first, a directory right before what it holds).
pub(crate) type Entries = BTreeMap<Vec<Vec<u8>>, LayerEntry>;

fn counted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

pub(crate) fn write(entries: &Entries) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries.values() {
        let kind = match entry.kind {
            LayerKind::Dir => b'd',
            LayerKind::OpaqueDir => b'o',
            LayerKind::File { .. } => b'f',
            LayerKind::Symlink(_) => b'l',
            LayerKind::Hardlink { .. } => b'h',
            LayerKind::Whiteout => b'w',
        };
        out.push(kind);
        out.extend_from_slice(
            format!(
                " {:04o} {}:{} {} ",
                entry.mode,
                entry.uid,
                entry.gid,
                entry.size()
            )
            .as_bytes(),
        );
        match &entry.kind {
            LayerKind::File { content, .. } => out.extend_from_slice(content.hex().as_bytes()),
            LayerKind::Symlink(target) | LayerKind::Hardlink { target, .. } => {
                counted(&mut out, target)
            }
            _ => out.push(b'-'),
        }
        out.push(b' ');
        counted(&mut out, &entry.path);
        for (name, value) in &entry.xattrs {
            out.push(b' ');
            counted(&mut out, name);
            out.push(b' ');
            counted(&mut out, value);
        }
        out.push(b'\n');
    }
    out
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn until(&mut self, stops: &[u8]) -> Option<&'a [u8]> {
        let rest = &self.bytes[self.at..];
        let end = rest.iter().position(|c| stops.contains(c))?;
        self.at += end;
        Some(&rest[..end])
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    fn number<T: std::str::FromStr>(&mut self, stops: &[u8]) -> Option<T> {
        std::str::from_utf8(self.until(stops)?).ok()?.parse().ok()
    }

    fn counted(&mut self) -> Option<&'a [u8]> {
        let len: usize = self.number(b":")?;
        self.expect(b':')?;
        let value = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(value)
    }
}

/// Parses a listing; `None` if it is malformed anywhere.
pub(crate) fn parse(bytes: &[u8]) -> Option<Vec<LayerEntry>> {
    let mut c = Cursor { bytes, at: 0 };
    let mut out = Vec::new();
    while c.at < bytes.len() {
        let kind = *bytes.get(c.at)?;
        c.at += 1;
        c.expect(b' ')?;
        let mode = u32::from_str_radix(std::str::from_utf8(c.until(b" ")?).ok()?, 8).ok()?;
        c.expect(b' ')?;
        let uid = c.number(b":")?;
        c.expect(b':')?;
        let gid = c.number(b" ")?;
        c.expect(b' ')?;
        let size = c.number(b" ")?;
        c.expect(b' ')?;
        let kind = match kind {
            b'f' => {
                let content = Digest::from_hex(std::str::from_utf8(c.until(b" ")?).ok()?)?;
                LayerKind::File { content, size }
            }
            b'l' => LayerKind::Symlink(c.counted()?.to_vec()),
            b'h' => LayerKind::Hardlink {
                target: c.counted()?.to_vec(),
                size,
            },
            b'd' | b'o' | b'w' => {
                c.expect(b'-')?;
                match kind {
                    b'd' => LayerKind::Dir,
                    b'o' => LayerKind::OpaqueDir,
                    _ => LayerKind::Whiteout,
                }
            }
            _ => return None,
        };
        c.expect(b' ')?;
        let path = c.counted()?.to_vec();
        let mut xattrs = Vec::new();
        while c.expect(b' ').is_some() {
            let name = c.counted()?.to_vec();
            c.expect(b' ')?;
            xattrs.push((name, c.counted()?.to_vec()));
        }
        c.expect(b'\n')?;
        out.push(LayerEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            xattrs,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_round_trips_every_kind() {
        let entry = |path: &str, kind| LayerEntry {
            path: path.as_bytes().to_vec(),
            kind,
            mode: 0o4755,
            uid: 0,
            gid: 42,
            xattrs: vec![],
        };
        let mut entries = Entries::new();
        let kinds = [
            ("a", LayerKind::Dir),
            ("a/b c", LayerKind::OpaqueDir),
            (
                "f",
                LayerKind::File {
                    content: Digest::of(b"x"),
                    size: 1,
                },
            ),
            ("l", LayerKind::Symlink(b"/etc/x y".to_vec())),
            (
                "h",
                LayerKind::Hardlink {
                    target: b"f".to_vec(),
                    size: 1,
                },
            ),
            ("w", LayerKind::Whiteout),
        ];
        for (path, kind) in kinds {
            let mut e = entry(path, kind);
            if path == "f" {
                e.xattrs = vec![(b"security.capability".to_vec(), vec![1, 0, b' ', b'\n'])];
            }
            let key = path.split('/').map(|p| p.as_bytes().to_vec()).collect();
            entries.insert(key, e);
        }
        let bytes = write(&entries);
        let parsed = parse(&bytes).expect("parses");
        assert_eq!(parsed, entries.values().cloned().collect::<Vec<_>>());
        assert!(parse(&bytes[..bytes.len() - 1]).is_none());
    }
}
