//! The in-memory tree of a slice (what verify, diff and heal rebuild from
//! a listing), and its canonical digest (docs/formats.md, "Tree digest").

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
        let (mut files, mut bytes) = (0u64, 0u64);
        let mut pending = vec![self];
        while let Some(node) = pending.pop() {
            match node {
                Node::File { size, .. } => {
                    files += 1;
                    bytes = bytes.saturating_add(*size);
                }
                Node::Symlink { .. } => {}
                Node::Dir(entries) => pending.extend(entries.values()),
            }
        }
        (files, bytes)
    }
}

/// Calls `visit` with every node below `root` and its '/'-separated path,
/// depth first in name order, parents before their children. An explicit
/// stack: no depth of tree can overflow it.
pub fn for_each_path<E>(
    root: &Node,
    mut visit: impl FnMut(&[u8], &Node) -> Result<(), E>,
) -> Result<(), E> {
    let Node::Dir(entries) = root else {
        return Ok(());
    };
    let mut path: Vec<u8> = Vec::new();
    // Each frame: a directory's remaining entries, and the path length to
    // restore when it is done.
    let mut stack = vec![(entries.iter(), 0usize)];
    while let Some((iter, _)) = stack.last_mut() {
        let Some((name, node)) = iter.next() else {
            let (_, restore) = stack.pop().expect("checked above");
            path.truncate(restore);
            continue;
        };
        let start = path.len();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        visit(&path, node)?;
        match node {
            Node::Dir(children) => stack.push((children.iter(), start)),
            _ => path.truncate(start),
        }
    }
    Ok(())
}

/// Every walk over a tree is iterative, so no depth of input can overflow
/// the stack, not even of the bash that loaded the builtin. Dropping a
/// tree is such a walk too: the derived drop would recurse once per level.
impl Drop for Node {
    fn drop(&mut self) {
        let Node::Dir(entries) = self else { return };
        let mut pending = vec![std::mem::take(entries)];
        while let Some(map) = pending.pop() {
            for (_, mut child) in map {
                if let Node::Dir(grandchildren) = &mut child {
                    pending.push(std::mem::take(grandchildren));
                }
            }
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

/// One directory being hashed: its remaining entries, and the name of the
/// subdirectory whose digest it waits for.
struct DirFrame<'t> {
    entries: std::collections::btree_map::Iter<'t, Vec<u8>, Node>,
    hasher: Sha256,
    waiting_for: Option<&'t [u8]>,
}

impl<'t> DirFrame<'t> {
    fn new(entries: &'t BTreeMap<Vec<u8>, Node>) -> DirFrame<'t> {
        let mut hasher = Sha256::new();
        hasher.update(b"slicebox-tree-v1\n");
        DirFrame {
            entries: entries.iter(),
            hasher,
            waiting_for: None,
        }
    }
}

fn entry_line(hasher: &mut Sha256, kind: &[u8], payload: &[u8], name: &[u8]) {
    hasher.update(kind);
    hasher.update(b" ");
    hasher.update(payload);
    hasher.update(b" ");
    hasher.update(length_prefixed(name));
    hasher.update(b"\n");
}

/// Post-order over the directories, with an explicit stack.
fn dir_digest(entries: &BTreeMap<Vec<u8>, Node>) -> Digest {
    let mut stack = vec![DirFrame::new(entries)];
    loop {
        let frame = stack.last_mut().expect("the root frame is popped last");
        match frame.entries.next() {
            Some((name, node)) => match node {
                Node::File {
                    content,
                    executable,
                    ..
                } => {
                    let kind: &[u8] = if *executable { b"x" } else { b"f" };
                    entry_line(&mut frame.hasher, kind, content.hex().as_bytes(), name);
                }
                Node::Symlink { target } => {
                    entry_line(&mut frame.hasher, b"l", &length_prefixed(target), name);
                }
                Node::Dir(children) => {
                    frame.waiting_for = Some(name);
                    stack.push(DirFrame::new(children));
                }
            },
            None => {
                let done = stack.pop().expect("a frame is on the stack");
                let digest = Digest::from_hasher(done.hasher);
                let Some(parent) = stack.last_mut() else {
                    return digest;
                };
                let name = parent.waiting_for.take().expect("the parent waits for it");
                entry_line(&mut parent.hasher, b"d", digest.hex().as_bytes(), name);
            }
        }
    }
}

/// One directory's digest, fed its entries one at a time in name order:
/// what a streaming walk uses instead of a whole tree in memory. Gives the
/// same digest as [`tree_digest`] over the same entries.
pub(crate) struct DirHasher(Sha256);

impl DirHasher {
    pub(crate) fn new() -> DirHasher {
        let mut hasher = Sha256::new();
        hasher.update(b"slicebox-tree-v1\n");
        DirHasher(hasher)
    }

    pub(crate) fn file(&mut self, name: &[u8], content: &Digest, executable: bool) {
        let kind: &[u8] = if executable { b"x" } else { b"f" };
        entry_line(&mut self.0, kind, content.hex().as_bytes(), name);
    }

    pub(crate) fn symlink(&mut self, name: &[u8], target: &[u8]) {
        entry_line(&mut self.0, b"l", &length_prefixed(target), name);
    }

    pub(crate) fn dir(&mut self, name: &[u8], digest: &Digest) {
        entry_line(&mut self.0, b"d", digest.hex().as_bytes(), name);
    }

    pub(crate) fn finish(self) -> Digest {
        Digest::from_hasher(self.0)
    }
}

fn length_prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn file(content: &[u8], executable: bool) -> Node {
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

    /// A chain of `depth` nested directories, built without recursion.
    fn deep(depth: usize) -> Node {
        let mut node = file(b"bottom", false);
        for _ in 0..depth {
            let mut entries = BTreeMap::new();
            entries.insert(b"d".to_vec(), node);
            node = Node::Dir(entries);
        }
        node
    }

    #[test]
    fn a_million_levels_neither_overflow_the_stack_nor_change_the_format() {
        // Small enough to check against the recursive definition by hand.
        let two = deep(2);
        let inner = {
            let mut h = Sha256::new();
            h.update(b"slicebox-tree-v1\n");
            entry_line(&mut h, b"f", Digest::of(b"bottom").hex().as_bytes(), b"d");
            Digest::from_hasher(h)
        };
        let outer = {
            let mut h = Sha256::new();
            h.update(b"slicebox-tree-v1\n");
            entry_line(&mut h, b"d", inner.hex().as_bytes(), b"d");
            Digest::from_hasher(h)
        };
        assert_eq!(tree_digest(&two), outer);
        // Runs on a test thread's 2 MiB stack: any recursion per level
        // would overflow long before the end.
        let huge = deep(1_000_000);
        assert_eq!(huge.count(), (1, 6));
        let _ = tree_digest(&huge);
        drop(huge);
    }

    #[test]
    fn counts_files_and_bytes() {
        let root = tree(&[("a", file(b"12", false)), ("d/b", file(b"345", true))]);
        assert_eq!(root.count(), (2, 5));
    }
}
