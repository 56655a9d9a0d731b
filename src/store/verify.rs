//! slice-verify, in memory bounded whatever a slice or the store holds.
//! A slice's listing is read as a stream, twice: once to check that it
//! describes the manifest's tree, once merged with a walk of the slice's
//! tree (the walk and the listing meet entries in the same order, and the
//! walk spills big directories: `sorted_names`). Files are re-hashed on all
//! cores in batches, and damage is handed out as it is found, in tree
//! order. The whole store's objects are checked the same way, one fan-out
//! directory after another.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::listing::{Entry, Reader};
use super::maintenance::{file_digest, hash_rest_of, object_key, same_inode, Damage, ObjectKey};
use super::stat_cache::walk_order;
use super::tree::{DirHasher, Node};
use super::{at, os, parallel, Error, IoContext, Result, Store};
use crate::digest::Digest;

/// Entries checked together: the files among them are re-hashed in
/// parallel, and their damage is handed out in order once all are done.
const BATCH: usize = 1024;
/// The most bytes one slice's verify keeps of its damaged files (content,
/// executable bit and path each), to find the other slices that link the
/// same stored files. Past it the rest are still reported, only not
/// looked for in other slices, and a line says so.
const MOST_DAMAGED_BYTES: usize = 1 << 20;

/// A slice's listing, read one entry at a time.
pub(crate) struct Listed {
    reader: Reader<BufReader<File>>,
    path: PathBuf,
}

impl Listed {
    pub(crate) fn open(store: &Store, slice: &Digest) -> Result<Listed> {
        let path = store.slice_dir(slice).join("listing");
        let file = File::open(&path).at("read listing", &path)?;
        Ok(Listed {
            reader: Reader::new(BufReader::with_capacity(64 << 10, file)),
            path,
        })
    }

    pub(crate) fn next(&mut self) -> Result<Option<Entry>> {
        self.reader.next_entry().map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => Error::Corrupt {
                path: self.path.clone(),
                reason: "the listing is malformed".into(),
            },
            _ => Error::Io {
                op: "read listing",
                path: self.path.clone(),
                source: e,
            },
        })
    }
}

/// The tree digest of a listing read in order: one hasher per directory
/// the listing is inside. `None` from [`TreeOfListing::add`] when the
/// listing is out of order or places an entry below no directory.
struct TreeOfListing {
    open: Vec<(Vec<u8>, DirHasher)>,
    last: Vec<u8>,
}

impl TreeOfListing {
    fn new() -> TreeOfListing {
        TreeOfListing {
            open: vec![(Vec::new(), DirHasher::new())],
            last: Vec::new(),
        }
    }

    /// Closes the innermost open directory into its parent.
    fn close_one(&mut self) {
        let (path, hasher) = self.open.pop().expect("the root is never closed here");
        let name = path.rsplit(|c| *c == b'/').next().unwrap_or(&path);
        let parent = &mut self.open.last_mut().expect("a parent is open").1;
        parent.dir(name, &hasher.finish());
    }

    fn add(&mut self, entry: &Entry) -> Option<()> {
        let path = entry.path.as_slice();
        let ordered = self.last.is_empty() || walk_order(&self.last, path).is_lt();
        if path.is_empty() || path.split(|c| *c == b'/').any(<[u8]>::is_empty) || !ordered {
            return None;
        }
        self.last = path.to_vec();
        let (parent, name) = match path.iter().rposition(|c| *c == b'/') {
            Some(slash) => (&path[..slash], &path[slash + 1..]),
            None => (&b""[..], path),
        };
        while self.open.len() > 1 && self.open.last()?.0 != parent {
            self.close_one();
        }
        let (open_path, hasher) = self.open.last_mut()?;
        if open_path.as_slice() != parent {
            return None;
        }
        match &entry.node {
            Node::File {
                content,
                executable,
                ..
            } => hasher.file(name, content, *executable),
            Node::Symlink { target } => hasher.symlink(name, target),
            Node::Dir(_) => self.open.push((path.to_vec(), DirHasher::new())),
        }
        Some(())
    }

    fn finish(mut self) -> Digest {
        while self.open.len() > 1 {
            self.close_one();
        }
        self.open.pop().expect("the root").1.finish()
    }
}

/// Damaged files of one slice, by content: what other slices may link.
#[derive(Default)]
pub(crate) struct DamagedFiles {
    by_key: HashMap<ObjectKey, Vec<u8>>,
    bytes: usize,
    /// Some were left out: past `MOST_DAMAGED_BYTES`.
    left_out: u64,
}

impl DamagedFiles {
    fn insert(&mut self, key: ObjectKey, path: &[u8]) {
        let cost = path.len() + 96;
        if self.by_key.contains_key(&key) {
            return;
        }
        if self.bytes + cost > MOST_DAMAGED_BYTES {
            self.left_out += 1;
            return;
        }
        self.bytes += cost;
        self.by_key.insert(key, path.to_vec());
    }
}

/// One entry of a slice checked against its listing: what is wrong with
/// it so far, and for a regular file what content it must hash to.
struct Check {
    path: Vec<u8>,
    problems: Vec<String>,
    /// The listed content and executable bit; `true`: its inode is one
    /// already verified, no need to hash it.
    file: Option<(ObjectKey, bool)>,
}

impl Check {
    fn problem(path: &[u8], problem: &str) -> Check {
        Check {
            path: path.to_vec(),
            problems: vec![problem.into()],
            file: None,
        }
    }
}

/// What is on disk against what is listed, for one entry met by the walk.
fn compare(
    visit: &at::Visit,
    node: &Node,
    trusted: Option<&HashSet<(u64, u64)>>,
) -> io::Result<Check> {
    let st = visit.stat;
    let mut check = Check {
        path: visit.path.to_vec(),
        problems: Vec::new(),
        file: None,
    };
    match node {
        Node::Dir(_) if at::is_dir(st) => {}
        Node::Symlink { target } if at::is_symlink(st) => {
            if at::read_link_at(visit.dir, visit.name)? != *target {
                check
                    .problems
                    .push("symlink target differs from the listing".into());
            }
        }
        Node::File {
            content,
            executable,
            ..
        } if at::is_file(st) => {
            if (st.st_mode & 0o111 != 0) != *executable {
                check
                    .problems
                    .push("executable bit differs from the listing".into());
            }
            let known = trusted.is_some_and(|t| t.contains(&(st.st_dev, st.st_ino)));
            check.file = Some(((*content, *executable), known));
        }
        _ => check.problems.push("has the wrong type".into()),
    }
    Ok(check)
}

/// The merge of a slice's listing with the walk of its tree.
struct Merge<'a> {
    tree: &'a Path,
    tree_fd: OwnedFd,
    listed: Listed,
    next: Option<Entry>,
    trusted: Option<&'a HashSet<(u64, u64)>>,
    batch: Vec<Check>,
    damaged: DamagedFiles,
    found: &'a mut dyn FnMut(Damage),
}

impl Merge<'_> {
    fn advance(&mut self) -> Result<()> {
        self.next = self.listed.next()?;
        Ok(())
    }

    /// Listed entries before `path` (all of them for `None`) are missing.
    fn missing_before(&mut self, path: Option<&[u8]>) -> Result<()> {
        while let Some(entry) = &self.next {
            if path.is_some_and(|p| !walk_order(&entry.path, p).is_lt()) {
                break;
            }
            let check = Check::problem(&entry.path, "is missing");
            self.push(check)?;
            self.advance()?;
        }
        Ok(())
    }

    fn visit(&mut self, visit: &at::Visit) -> Result<()> {
        self.missing_before(Some(visit.path))?;
        let check = match &self.next {
            Some(entry) if entry.path == visit.path => {
                let check = compare(visit, &entry.node, self.trusted)
                    .at("read", &self.tree.join(os(visit.path)))?;
                self.advance()?;
                check
            }
            _ => Check::problem(visit.path, "is not in the slice's listing"),
        };
        self.push(check)
    }

    fn push(&mut self, check: Check) -> Result<()> {
        self.batch.push(check);
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Re-hashes the batch's files not already known good, in parallel,
    /// and hands out its damage in order.
    fn flush(&mut self) -> Result<()> {
        let tree = self.tree;
        let tree_fd = self.tree_fd.as_raw_fd();
        let hashed = parallel::map(&self.batch, |check| {
            let Some(((content, _), false)) = check.file else {
                return Ok(None);
            };
            // Opened below the tree's fd by their path in it, which the
            // limits keep under PATH_MAX however long the store's own
            // path is.
            let opened = at::cstring(&check.path).and_then(|relative| {
                at::open_beneath(tree_fd, &relative, libc::O_RDONLY | libc::O_NONBLOCK)
            });
            Ok(match opened.and_then(|fd| hash_rest_of(File::from(fd))) {
                Ok(actual) if actual == content => None,
                Ok(actual) => Some(format!("content is {actual}, expected {content}")),
                Err(e) => Some(format!("cannot be read: {}", crate::text::io_cause(&e))),
            })
        })?;
        for (check, content_problem) in self.batch.drain(..).zip(hashed) {
            let problems: Vec<String> = check.problems.into_iter().chain(content_problem).collect();
            if let (Some((key, _)), false) = (check.file, problems.is_empty()) {
                self.damaged.insert(key, &check.path);
            }
            let full = tree.join(os(&check.path));
            for problem in problems {
                (self.found)(Damage::at(&full, problem));
            }
        }
        Ok(())
    }
}

impl Store {
    /// Re-hashes `slice` (or every slice and object) and names every
    /// damaged path. An empty result means nothing is wrong.
    pub fn verify(&self, slice: Option<&Digest>) -> Result<Vec<Damage>> {
        let mut damage = Vec::new();
        self.verify_each(slice, &mut |d| damage.push(d))?;
        Ok(damage)
    }

    /// [`Store::verify`], handing each damaged path to `found` as it is
    /// found, a slice's in tree order. Returns how many were found.
    pub fn verify_each(
        &self,
        slice: Option<&Digest>,
        found: &mut dyn FnMut(Damage),
    ) -> Result<u64> {
        // Shared: a gc removing slices and objects meanwhile would look
        // like damage.
        let _lock = self.lock_shared()?;
        let slices = match slice {
            Some(s) => vec![*s],
            None => self.slice_digests()?,
        };
        let mut count = 0;
        let mut damaged = DamagedFiles::default();
        for each in &slices {
            let mut of_slice = |mut d: Damage| {
                d.slice = Some(*each);
                count += 1;
                found(d);
            };
            damaged = self.verify_slice(each, None, &mut of_slice)?;
        }
        let mut counted = |d: Damage| {
            count += 1;
            found(d);
        };
        if let Some(slice) = slice {
            // Files share objects: a damaged one is damaged in every
            // slice that holds the same content.
            self.sharers_of_damage(slice, &damaged, &mut counted)?;
        } else {
            self.verify_objects(&mut counted)?;
            for (path, problem) in self.verify_layers()? {
                counted(Damage::at(&path, problem));
            }
            let index = super::ref_index::path(self);
            for problem in super::ref_index::disagreements(self)? {
                counted(Damage::at(
                    &index,
                    format!("{problem} (slice-gc writes the index anew)"),
                ));
            }
        }
        // Where a test reads the helper's peak memory: everything is read.
        super::pause_point("verify:done");
        Ok(count)
    }

    /// Checks one slice: manifest, listing, and the tree against the
    /// listing, re-hashing every file whose inode is not in `trusted`.
    /// Returns its damaged files (as many as `MOST_DAMAGED_BYTES` keeps).
    pub(crate) fn verify_slice(
        &self,
        slice: &Digest,
        trusted: Option<&HashSet<(u64, u64)>>,
        found: &mut dyn FnMut(Damage),
    ) -> Result<DamagedFiles> {
        let dir = self.slice_dir(slice);
        let manifest = match self.manifest(slice) {
            Ok(m) => m,
            Err(e) => {
                found(Damage::at(&dir.join("manifest.json"), e.to_string()));
                return Ok(DamagedFiles::default());
            }
        };
        match self.tree_of_listing(slice) {
            Ok(Some(tree)) if tree == manifest.tree => {}
            Ok(ordered) => {
                found(Damage::at(
                    &dir.join("listing"),
                    format!("does not describe tree {}", manifest.tree),
                ));
                if ordered.is_none() {
                    // Out of order: no merge with the walk can follow it.
                    return Ok(DamagedFiles::default());
                }
            }
            Err(e @ (Error::Io { .. } | Error::Corrupt { .. })) => {
                found(Damage::at(&dir.join("listing"), e.to_string()));
                return Ok(DamagedFiles::default());
            }
            Err(e) => return Err(e),
        }
        let tree = self.slice_tree(slice);
        let tree_fd = match at::open_dir(&tree) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                found(Damage::at(&tree, "is missing".into()));
                return Ok(DamagedFiles::default());
            }
            Err(e) => return Err(e).at("read directory", &tree),
        };
        let walk_fd = tree_fd.try_clone().at("read directory", &tree)?;
        let mut listed = Listed::open(self, slice)?;
        let mut merge = Merge {
            tree: &tree,
            tree_fd,
            next: listed.next()?,
            listed,
            trusted,
            batch: Vec::with_capacity(BATCH),
            damaged: DamagedFiles::default(),
            found,
        };
        let walked = at::walk(
            walk_fd,
            |visit| merge.visit(visit),
            |_| Ok(()),
            read_failed(&tree),
        );
        if walked.is_err() {
            // What was found before the error is still told, in order.
            let _ = merge.flush();
        }
        walked?;
        merge.missing_before(None)?;
        merge.flush()?;
        Ok(merge.damaged)
    }

    /// The tree digest `slice`'s listing describes, read as a stream;
    /// `None` if its entries are out of order.
    fn tree_of_listing(&self, slice: &Digest) -> Result<Option<Digest>> {
        let mut listed = Listed::open(self, slice)?;
        let mut tree = TreeOfListing::new();
        while let Some(entry) = listed.next()? {
            if tree.add(&entry).is_none() {
                return Ok(None);
            }
        }
        Ok(Some(tree.finish()))
    }

    /// Hands out the files of other slices that link the content found
    /// damaged in `slice`'s files.
    fn sharers_of_damage(
        &self,
        slice: &Digest,
        damaged: &DamagedFiles,
        found: &mut dyn FnMut(Damage),
    ) -> Result<()> {
        let tree = self.slice_tree(slice);
        if damaged.left_out > 0 {
            found(Damage::at(
                &tree,
                format!(
                    "holds {} more damaged files than verify keeps in memory: other slices \
                     that share their contents were not searched (slice-verify without a \
                     REF checks every slice)",
                    damaged.left_out
                ),
            ));
        }
        if damaged.by_key.is_empty() {
            return Ok(());
        }
        for other in self.slice_digests()?.iter().filter(|o| *o != slice) {
            let other_tree = self.slice_tree(other);
            let mut listed = Listed::open(self, other)?;
            while let Some(entry) = listed.next()? {
                let Node::File {
                    content,
                    executable,
                    ..
                } = entry.node
                else {
                    continue;
                };
                let Some(original) = damaged.by_key.get(&(content, executable)) else {
                    continue;
                };
                let original = tree.join(os(original));
                let path = other_tree.join(os(&entry.path));
                if same_inode(&path, &original) {
                    found(Damage {
                        path,
                        problem: format!(
                            "is the same stored file as {}, which is damaged",
                            super::printable_path(&original)
                        ),
                        slice: Some(*other),
                    });
                }
            }
        }
        Ok(())
    }

    /// Re-hashes every object, a batch at a time, in the order of a walk
    /// of `objects/` (one fan-out directory after another).
    fn verify_objects(&self, found: &mut dyn FnMut(Damage)) -> Result<()> {
        let dir = self.objects_dir();
        let mut batch: Vec<StoredObject> = Vec::with_capacity(BATCH);
        let mut flush = |batch: &mut Vec<StoredObject>| -> Result<()> {
            for problems in parallel::map(batch, check_object)? {
                problems.into_iter().for_each(&mut *found);
            }
            batch.clear();
            Ok(())
        };
        let top = at::open_dir(&dir).at("read directory", &dir)?;
        at::walk(
            top,
            |visit| {
                let Some((fanout, name)) = std::str::from_utf8(visit.path)
                    .ok()
                    .and_then(|p| p.split_once('/'))
                else {
                    return Ok(());
                };
                if let (Some(key), false) = (object_key(fanout, name), name.contains('/')) {
                    batch.push(StoredObject {
                        key,
                        path: dir.join(os(visit.path)),
                        mode: visit.stat.st_mode,
                    });
                    if batch.len() >= BATCH {
                        flush(&mut batch)?;
                    }
                }
                Ok(())
            },
            |_| Ok(()),
            read_failed(&dir),
        )?;
        flush(&mut batch)
    }
}

/// A walk's error below `top`, naming the path it happened at.
fn read_failed(top: &Path) -> impl Fn(&[u8], io::Error) -> Error + '_ {
    |path, source| Error::Io {
        op: "read directory",
        path: top.join(os(path)),
        source,
    }
}

/// An object met by the walk of `objects/`: its key, path and mode.
struct StoredObject {
    key: ObjectKey,
    path: PathBuf,
    mode: libc::mode_t,
}

/// What is wrong with one object file: its executable bit (as the walk
/// found it) and content against its name.
fn check_object(object: &StoredObject) -> Result<Vec<Damage>> {
    let (content, executable) = &object.key;
    let path = &object.path;
    let mut problems = Vec::new();
    let broken = |problem: String| Damage::at(path, problem);
    if (object.mode & 0o111 != 0) != *executable {
        problems.push(broken("executable bit differs from its name".into()));
    }
    match file_digest(path) {
        Ok(actual) if actual == *content => {}
        Ok(actual) => problems.push(broken(format!(
            "content is {actual}, not what its name says"
        ))),
        Err(e) => problems.push(broken(format!(
            "cannot be read: {}",
            crate::text::io_cause(&e)
        ))),
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::listing;
    use crate::store::tree::tests::file;
    use crate::store::tree::{place, tree_digest};

    fn streamed(entries: &[Entry]) -> Option<Digest> {
        let mut tree = TreeOfListing::new();
        for entry in entries {
            tree.add(entry)?;
        }
        Some(tree.finish())
    }

    #[test]
    fn a_streamed_listing_gives_the_tree_digest() {
        let mut root = Node::empty_dir();
        place(&mut root, &[b"a", b"b", b"c"], file(b"c", false)).unwrap();
        place(&mut root, &[b"a.x"], file(b"x", true)).unwrap();
        place(&mut root, &[b"a", b"z"], Node::empty_dir()).unwrap();
        let link = Node::Symlink {
            target: b"../a b\n".to_vec(),
        };
        place(&mut root, &[b"a", b"b", b"l"], link).unwrap();
        place(&mut root, &[b"e"], Node::empty_dir()).unwrap();
        let entries = listing::parse(&listing::write(&root)).unwrap();
        assert_eq!(entries.len(), 7);
        assert_eq!(streamed(&entries), Some(tree_digest(&root)));
        assert_eq!(streamed(&[]), Some(tree_digest(&Node::empty_dir())));
    }

    #[test]
    fn a_listing_out_of_order_or_below_a_file_describes_no_tree() {
        let entry = |path: &[u8], node: Node| Entry {
            path: path.to_vec(),
            node,
        };
        let swapped = [
            entry(b"b", file(b"b", false)),
            entry(b"a", file(b"a", false)),
        ];
        assert_eq!(streamed(&swapped), None);
        let twice = [
            entry(b"a", file(b"a", false)),
            entry(b"a", file(b"a", false)),
        ];
        assert_eq!(streamed(&twice), None);
        let below_file = [
            entry(b"a", file(b"a", false)),
            entry(b"a/b", file(b"b", false)),
        ];
        assert_eq!(streamed(&below_file), None);
        let no_parent = [entry(b"a/b", file(b"b", false))];
        assert_eq!(streamed(&no_parent), None);
    }
}
