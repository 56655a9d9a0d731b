//! The in-memory tree every source is parsed into before anything is
//! materialised, and its canonical digest (docs/formats.md, "Tree digest").

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// One entry of a slice tree. Only what the digest covers is kept: no
/// owners, no mtimes, no mode bits beyond "executable".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File {
        content: Digest,
        executable: bool,
        size: u64,
    },
    Symlink {
        target: Vec<u8>,
    },
    Dir(BTreeMap<Vec<u8>, Node>),
}

impl Node {
    pub fn empty_dir() -> Node {
        Node::Dir(BTreeMap::new())
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::File { .. } => "a file",
            Node::Symlink { .. } => "a symlink",
            Node::Dir(_) => "a directory",
        }
    }

    /// Regular files and total bytes below this node.
    pub fn count(&self) -> (u64, u64) {
        match self {
            Node::File { size, .. } => (1, *size),
            Node::Symlink { .. } => (0, 0),
            Node::Dir(entries) => entries.values().fold((0, 0), |(f, b), child| {
                let (cf, cb) = child.count();
                (f + cf, b + cb)
            }),
        }
    }
}

/// Why a path cannot be placed in a tree; the caller names the entry.
#[derive(Debug, PartialEq, Eq)]
pub enum PlaceError {
    BelowNonDirectory(&'static str),
    Conflicts(&'static str),
}

impl std::fmt::Display for PlaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlaceError::BelowNonDirectory(kind) => write!(f, "lies below {kind}"),
            PlaceError::Conflicts(kind) => write!(f, "conflicts with {kind} of the same name"),
        }
    }
}

/// Places `node` at `components` (already normalised: no `.`, `..` or empty
/// parts), creating missing parent directories. Nothing is ever placed
/// below a symlink or a file, which is what makes a later materialisation
/// unable to write through a symlink. A directory over an existing
/// directory is merged; anything else over an existing entry conflicts.
pub fn place(root: &mut Node, components: &[&[u8]], node: Node) -> Result<(), PlaceError> {
    let Some((last, parents)) = components.split_last() else {
        return match (root, node) {
            (Node::Dir(_), Node::Dir(_)) => Ok(()),
            (existing, _) => Err(PlaceError::Conflicts(existing.kind())),
        };
    };
    let mut dir = root;
    for part in parents {
        let Node::Dir(entries) = dir else {
            return Err(PlaceError::BelowNonDirectory(dir.kind()));
        };
        dir = entries.entry(part.to_vec()).or_insert_with(Node::empty_dir);
    }
    let Node::Dir(entries) = dir else {
        return Err(PlaceError::BelowNonDirectory(dir.kind()));
    };
    match entries.get(*last) {
        None => {
            entries.insert(last.to_vec(), node);
            Ok(())
        }
        Some(Node::Dir(_)) if matches!(node, Node::Dir(_)) => Ok(()),
        Some(existing) => Err(PlaceError::Conflicts(existing.kind())),
    }
}

/// Looks up a regular file placed earlier (for tar hardlinks).
pub fn find<'t>(root: &'t Node, components: &[&[u8]]) -> Option<&'t Node> {
    components.iter().try_fold(root, |node, part| match node {
        Node::Dir(entries) => entries.get(*part),
        _ => None,
    })
}

/// The canonical tree digest: a Merkle hash over sorted entries, covering
/// names, types, the executable bit, symlink targets and file contents.
pub fn tree_digest(root: &Node) -> Digest {
    match root {
        Node::Dir(entries) => dir_digest(entries),
        other => {
            let mut single = BTreeMap::new();
            single.insert(Vec::new(), other.clone());
            dir_digest(&single)
        }
    }
}

fn dir_digest(entries: &BTreeMap<Vec<u8>, Node>) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(b"slicebox-tree-v1\n");
    for (name, node) in entries {
        match node {
            Node::File {
                content,
                executable,
                ..
            } => {
                hasher.update(if *executable { b"x " } else { b"f " });
                hasher.update(content.hex().as_bytes());
            }
            Node::Symlink { target } => {
                hasher.update(b"l ");
                hasher.update(length_prefixed(target));
            }
            Node::Dir(children) => {
                hasher.update(b"d ");
                hasher.update(dir_digest(children).hex().as_bytes());
            }
        }
        hasher.update(b" ");
        hasher.update(length_prefixed(name));
        hasher.update(b"\n");
    }
    Digest::from_hasher(hasher)
}

fn length_prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &[u8], executable: bool) -> Node {
        Node::File {
            content: Digest::of(content),
            executable,
            size: content.len() as u64,
        }
    }

    fn tree(entries: &[(&str, Node)]) -> Node {
        let mut root = Node::empty_dir();
        for (path, node) in entries {
            let parts: Vec<&[u8]> = path.split('/').map(str::as_bytes).collect();
            place(&mut root, &parts, node.clone()).unwrap();
        }
        root
    }

    #[test]
    fn digest_ignores_insertion_order() {
        let a = tree(&[("bin/a", file(b"1", true)), ("lib/b", file(b"2", false))]);
        let b = tree(&[("lib/b", file(b"2", false)), ("bin/a", file(b"1", true))]);
        assert_eq!(tree_digest(&a), tree_digest(&b));
    }

    #[test]
    fn digest_covers_content_exec_bit_names_and_link_targets() {
        let base = tree_digest(&tree(&[("a", file(b"1", false))]));
        assert_ne!(base, tree_digest(&tree(&[("a", file(b"2", false))])));
        assert_ne!(base, tree_digest(&tree(&[("a", file(b"1", true))])));
        assert_ne!(base, tree_digest(&tree(&[("b", file(b"1", false))])));
        let link = |t: &str| tree(&[("a", Node::Symlink { target: t.into() })]);
        assert_ne!(tree_digest(&link("x")), tree_digest(&link("y")));
    }

    #[test]
    fn digest_of_empty_tree_is_fixed() {
        // Pinned so an accidental format change shows up here and in docs/formats.md.
        assert_eq!(
            tree_digest(&Node::empty_dir()),
            Digest::of(b"slicebox-tree-v1\n")
        );
    }

    #[test]
    fn nothing_is_placed_below_a_symlink_or_file() {
        let mut root = tree(&[(
            "link",
            Node::Symlink {
                target: b"/etc".to_vec(),
            },
        )]);
        assert_eq!(
            place(&mut root, &[b"link", b"passwd"], file(b"x", false)),
            Err(PlaceError::BelowNonDirectory("a symlink"))
        );
        let mut root = tree(&[("f", file(b"1", false))]);
        assert_eq!(
            place(&mut root, &[b"f", b"g"], file(b"x", false)),
            Err(PlaceError::BelowNonDirectory("a file"))
        );
    }

    #[test]
    fn replacing_an_entry_conflicts_but_directories_merge() {
        let mut root = tree(&[("d/f", file(b"1", false))]);
        assert_eq!(place(&mut root, &[b"d"], Node::empty_dir()), Ok(()));
        assert_eq!(
            place(&mut root, &[b"d"], file(b"1", false)),
            Err(PlaceError::Conflicts("a directory"))
        );
        assert_eq!(
            place(&mut root, &[b"d", b"f"], file(b"2", false)),
            Err(PlaceError::Conflicts("a file"))
        );
    }

    #[test]
    fn counts_files_and_bytes() {
        let root = tree(&[("a", file(b"12", false)), ("d/b", file(b"345", true))]);
        assert_eq!(root.count(), (2, 5));
    }
}
