//! `refs/.index`: every name with the digest it points at and that slice's
//! manifest, in one file, so that a stage with many slices reads one file
//! and stats one ref per slice, instead of reading a ref and a manifest per
//! slice (docs/performance.md).
//!
//! The index is derived from the refs and the manifests, and a stage gives
//! the same answer with it as without it. Each entry records the identity
//! of the ref file it was read from (inode, size, ctime): whatever changes
//! a ref (slicebox renaming a new one over it, an older slicebox that does
//! not know the index, a hand edit in place) changes that identity, and a
//! reader uses an entry only while the ref's `lstat` still shows it. A ref
//! changed in the clock tick in which the index is written could change
//! again in the same tick and keep its ctime, so its entry records no
//! identity (`-`) and is never used: stages read that ref, until the next
//! write of the index records it.
//!
//! Writers keep the index under `refs/.lock`: before a name's digest
//! changes, the index is removed and `refs/` fsynced; after, a new index is
//! written (temp file, fsync, rename, fsync), from the old one's entries
//! whose refs still show their identity and from the refs that changed. A
//! crash in between leaves no index, and stages then read the refs
//! themselves until the next ref change or `slice-gc` writes it again.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

use super::fsutil;
use super::slice::Manifest;
use super::{at, refs, IoContext, Result, Store};
use crate::digest::Digest;

const FILE: &str = ".index";
const HEADER: &str = "slicebox-ref-index 3\n";

/// What a ref file was when it was read: any change to it (a rename over
/// it, a write in place, a chmod) changes its inode or its ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Identity {
    ctime: (i64, i64),
    ino: u64,
    size: u64,
}

impl Identity {
    fn of(st: &libc::stat) -> Identity {
        Identity {
            ctime: (st.st_ctime, st.st_ctime_nsec),
            ino: st.st_ino,
            size: st.st_size as u64,
        }
    }

    /// `INODE:SIZE:SECONDS.NANOSECONDS`.
    fn render(&self) -> String {
        format!(
            "{}:{}:{}.{:09}",
            self.ino, self.size, self.ctime.0, self.ctime.1
        )
    }

    fn parse(text: &str) -> Option<Identity> {
        let mut parts = text.split(':');
        let ino = parts.next()?.parse().ok()?;
        let size = parts.next()?.parse().ok()?;
        let (seconds, nanoseconds) = parts.next()?.split_once('.')?;
        if parts.next().is_some() {
            return None;
        }
        Some(Identity {
            ctime: (seconds.parse().ok()?, nanoseconds.parse().ok()?),
            ino,
            size,
        })
    }
}

/// The coarse clock the kernel stamps ctimes with: a ref whose ctime is
/// not older than this reading may change again without a new ctime.
fn coarse_now() -> (i64, i64) {
    // SAFETY: a zeroed timespec is valid; clock_gettime writes it.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) };
    (now.tv_sec, now.tv_nsec)
}

/// A name's entry: where it points, that slice's manifest, whether its
/// tree has a top-level `bin/` (a stage puts it on `PATH`; a stat per
/// slice otherwise), and the identity of the ref it was read from (`None`
/// when the ref changed in the clock tick the index was written in: the
/// entry is never used).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    digest: Digest,
    manifest: Manifest,
    has_bin: bool,
    identity: Option<Identity>,
}

fn render_identity(identity: Option<Identity>) -> String {
    identity.map_or_else(|| "-".into(), |i| i.render())
}

fn parse_identity(text: &str) -> Option<Option<Identity>> {
    match text {
        "-" => Some(None),
        text => Identity::parse(text).map(Some),
    }
}

type Entries = BTreeMap<String, Entry>;

/// Names, digests, identities and manifests hold no tab or newline (names
/// are validated, manifests are compact JSON, which escapes control
/// bytes), so one line per name is unambiguous:
/// `NAME\tDIGEST\tIDENTITY\tBIN\tMANIFEST-JSON\n`, BIN `bin` or `-`.
fn render(entries: &Entries) -> String {
    let mut text = String::from(HEADER);
    for (name, entry) in entries {
        let json = serde_json::to_string(&entry.manifest).expect("manifests always serialise");
        text.push_str(&format!(
            "{name}\t{}\t{}\t{}\t{json}\n",
            entry.digest,
            render_identity(entry.identity),
            if entry.has_bin { "bin" } else { "-" }
        ));
    }
    text
}

/// One line's fields, split but not parsed.
struct Line<'a> {
    name: &'a str,
    digest: &'a str,
    identity: &'a str,
    bin: &'a str,
    json: &'a str,
}

/// Splits one line into its name and, lazily, the rest; `None` when the
/// line is not one of ours.
fn split_line(line: &str) -> Option<Line<'_>> {
    let (name, rest) = line.split_once('\t')?;
    let (digest, rest) = rest.split_once('\t')?;
    let (identity, rest) = rest.split_once('\t')?;
    let (bin, json) = rest.split_once('\t')?;
    Some(Line {
        name,
        digest,
        identity,
        bin,
        json,
    })
}

/// The entry of a line, if it is whole: its identity well-formed, its
/// manifest hashing to its digest, as a manifest read from `slices/` must.
fn parse_entry(line: &Line<'_>) -> Option<Entry> {
    let digest: Digest = line.digest.parse().ok()?;
    let manifest = Manifest::parse(line.json.as_bytes()).ok()?;
    Some(Entry {
        identity: parse_identity(line.identity)?,
        digest: (manifest.slice_digest() == digest).then_some(digest)?,
        manifest,
        has_bin: match line.bin {
            "bin" => true,
            "-" => false,
            _ => return None,
        },
    })
}

/// Whether `entry` is what `refs/<name>` says now: it records an
/// identity, and the ref still has it.
fn is_current(entry: &Entry, refs: RawFd, name: &str) -> bool {
    entry.identity.is_some() && current_identity(refs, name) == entry.identity
}

pub(crate) fn path(store: &Store) -> PathBuf {
    store.refs_dir().join(FILE)
}

/// The index's entry lines (the text after its header), or `None` when
/// there is no index (or it is not ours, or of an older format).
fn read_lines(store: &Store) -> Result<Option<String>> {
    let path = path(store);
    match fs::read_to_string(&path) {
        Ok(mut text) if text.starts_with(HEADER) => {
            text.drain(..HEADER.len());
            Ok(Some(text))
        }
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
        Err(e) => Err(e).at("read ref index", &path),
    }
}

/// The identity `refs/<name>` has now, or `None` if it cannot be told.
/// A stage checks one per slice, so the name is made a C string on the
/// stack (names are at most 128 bytes).
fn current_identity(refs: RawFd, name: &str) -> Option<Identity> {
    let mut buffer = [0u8; 256];
    buffer
        .get_mut(..name.len())?
        .copy_from_slice(name.as_bytes());
    let name = std::ffi::CStr::from_bytes_until_nul(&buffer).ok()?;
    at::stat_at(refs, name).ok().map(|st| Identity::of(&st))
}

/// A slice a stage asked for: its digest, its manifest, and whether its
/// tree has a top-level `bin/` directory (for the stage's `PATH`).
#[derive(Debug, Clone)]
pub struct Found {
    pub digest: Digest,
    pub manifest: Manifest,
    pub has_bin: bool,
}

impl Store {
    /// Whether the slice's tree has a top-level `bin/` directory.
    pub fn has_bin(&self, slice: &Digest) -> bool {
        fs::symlink_metadata(self.slice_tree(slice).join("bin")).is_ok_and(|m| m.is_dir())
    }

    /// Resolves each reference and reads its manifest, as a stage does
    /// before it starts. The answers come back in the order asked, each
    /// with its own error. A ref and a manifest per slice are two small
    /// reads of about 5 µs each here, so a stage with many slices takes the
    /// names it can from the ref index (one file) instead; below
    /// `INDEX_FROM` slices reading a whole store's index costs more than
    /// it saves.
    pub fn resolve_slices(&self, references: &[&str]) -> Vec<Result<Found>> {
        const INDEX_FROM: usize = 32;
        let indexed = if references.len() >= INDEX_FROM {
            let names = references
                .iter()
                .copied()
                .filter(|r| refs::validate_name(r).is_ok())
                .collect();
            lookup(self, &names)
        } else {
            Default::default()
        };
        references
            .iter()
            .map(|reference| match indexed.get(*reference) {
                Some(entry) => Ok(entry.clone()),
                None => {
                    let digest = self.resolve(reference)?;
                    Ok(Found {
                        manifest: self.manifest(&digest)?,
                        has_bin: self.has_bin(&digest),
                        digest,
                    })
                }
            })
            .collect()
    }
}

/// What the index says of `names`, for a stage: each name it lists with an
/// entry that checks out and whose ref still is the file it was read
/// from. Any other name is left to the refs themselves (and their error
/// messages), so both ways give one answer.
pub(crate) fn lookup(store: &Store, names: &HashSet<&str>) -> BTreeMap<String, Found> {
    let Ok(Some(text)) = read_lines(store) else {
        return BTreeMap::new();
    };
    let Ok(refs) = at::open_dir(&store.refs_dir()) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(split_line)
        .filter(|line| names.contains(line.name))
        .filter_map(|line| {
            let entry = parse_entry(&line)?;
            is_current(&entry, refs.as_raw_fd(), line.name).then(|| {
                let found = Found {
                    digest: entry.digest,
                    manifest: entry.manifest,
                    has_bin: entry.has_bin,
                };
                (line.name.to_string(), found)
            })
        })
        .collect()
}

/// Every entry, when the index is there and whole; the writers' starting
/// point, so that one change does not re-read every ref.
fn load_all(store: &Store) -> Result<Option<Entries>> {
    let Some(text) = read_lines(store)? else {
        return Ok(None);
    };
    let mut entries = Entries::new();
    for line in text.lines() {
        let Some(entry) = split_line(line).and_then(|line| Some((line.name, parse_entry(&line)?)))
        else {
            return Ok(None);
        };
        entries.insert(entry.0.to_string(), entry.1);
    }
    Ok(Some(entries))
}

/// `entries` made current: an entry whose ref still shows its identity is
/// kept, every other name is read from its ref and manifest, and names
/// that are gone are dropped.
fn refresh(store: &Store, mut entries: Entries) -> Result<Entries> {
    let now = coarse_now();
    let dir = store.refs_dir();
    let refs = at::open_dir(&dir).at("read directory", &dir)?;
    let names = refs::names(store)?;
    entries.retain(|name, _| names.binary_search(name).is_ok());
    for name in names {
        if entries
            .get(&name)
            .is_some_and(|e| is_current(e, refs.as_raw_fd(), &name))
        {
            continue;
        }
        entries.remove(&name);
        if let Some(entry) = read_entry(store, refs.as_raw_fd(), &name, now)? {
            entries.insert(name, entry);
        }
    }
    Ok(entries)
}

/// A name's entry from its ref and its slice's manifest, with no identity
/// when the ref changed in this clock tick (`now`); `None` when it is not
/// to be indexed: the ref changed while it was read, or its slice cannot be
/// read (a stage then reads the ref and reports the damage).
fn read_entry(store: &Store, refs: RawFd, name: &str, now: (i64, i64)) -> Result<Option<Entry>> {
    let path = store.refs_dir().join(name);
    let opened = at::cstring(name.as_bytes())
        .and_then(|c| at::open_beneath(refs, &c, libc::O_RDONLY | libc::O_CLOEXEC));
    let fd = match opened {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at("read ref", &path),
    };
    let before = at::fstat(&fd).at("read ref", &path)?;
    let mut text = String::new();
    let mut file = fs::File::from(fd);
    if file.read_to_string(&mut text).is_err() {
        return Ok(None);
    }
    let identity = Identity::of(&at::fstat(&file).at("read ref", &path)?);
    if identity != Identity::of(&before) {
        return Ok(None);
    }
    let Some(digest) = text.lines().next().and_then(|l| l.parse::<Digest>().ok()) else {
        return Ok(None);
    };
    Ok(store.manifest(&digest).ok().map(|manifest| Entry {
        has_bin: store.has_bin(&digest),
        digest,
        manifest,
        identity: (identity.ctime < now).then_some(identity),
    }))
}

/// Removes the index before a ref changes, durably: no crash after this
/// can leave an index that disagrees with the refs. Returns what it held.
pub(crate) fn invalidate(store: &Store) -> Result<Option<Entries>> {
    let held = load_all(store)?;
    let path = path(store);
    match fs::remove_file(&path) {
        Ok(()) => fsutil::sync_dir(&store.refs_dir())?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).at("remove ref index", &path),
    }
    super::crash_point("refs:index-removed");
    Ok(held)
}

/// Writes the index after a ref change: what `held` (what `invalidate`
/// returned) still says of unchanged refs, the other refs read anew; or,
/// without `held`, every ref read anew.
pub(crate) fn write(store: &Store, held: Option<Entries>) -> Result<()> {
    let entries = refresh(store, held.unwrap_or_default())?;
    super::crash_point("refs:before-index-written");
    fsutil::write_durably(
        &store.refs_dir(),
        FILE,
        render(&entries).as_bytes(),
        "write ref index",
    )
}

/// Writes the index from the refs, as `slice-gc` does.
pub(crate) fn rebuild(store: &Store) -> Result<()> {
    write(store, None)
}

/// Where the index is damaged, for `slice-verify`: lines that are not
/// entries, entries whose manifest does not hash to their digest, and
/// entries a stage would use (their ref still shows the identity they
/// record) that name another digest than the ref does. An absent index, a
/// name it lacks and an entry whose ref changed since are not damage:
/// stages then read the refs.
pub(crate) fn disagreements(store: &Store) -> Result<Vec<String>> {
    let Some(text) = read_lines(store)? else {
        return Ok(Vec::new());
    };
    let dir = store.refs_dir();
    let refs = at::open_dir(&dir).at("read directory", &dir)?;
    let actual: BTreeMap<String, Digest> = refs::list(store)?.into_iter().collect();
    let mut problems = Vec::new();
    for line in text.lines() {
        let Some(line) = split_line(line) else {
            problems.push(format!(
                "holds a line that is not an entry: '{}'",
                super::printable(line.as_bytes())
            ));
            continue;
        };
        let name = line.name;
        let Some(entry) = parse_entry(&line) else {
            problems.push(format!(
                "its entry for '{}' is damaged: the manifest in it does not hash to its digest, \
                 or its ref identity is malformed",
                super::printable(name.as_bytes())
            ));
            continue;
        };
        if !is_current(&entry, refs.as_raw_fd(), name) {
            continue;
        }
        if let Some(points) = actual.get(name).filter(|d| **d != entry.digest) {
            problems.push(format!(
                "says '{name}' is {}, but its ref says {points}",
                entry.digest
            ));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{IngestOptions, Limits, Source};

    fn store_with(slices: &[&str]) -> (tempfile::TempDir, Store, Vec<Digest>) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let digests = slices
            .iter()
            .map(|name| {
                let src = tmp.path().join(name);
                // "a" has a bin/ directory, the others a bin file.
                match *name {
                    "a" => fs::create_dir_all(src.join("bin")).unwrap(),
                    _ => {
                        fs::create_dir_all(&src).unwrap();
                        fs::write(src.join("bin"), "not a directory").unwrap();
                    }
                }
                fs::write(src.join("f"), name).unwrap();
                let options = IngestOptions {
                    mount_point: format!("/opt/{name}"),
                    env: vec![],
                    limits: Limits::default(),
                    prefix_check: crate::store::PrefixCheck::Off,
                    progress: None,
                    stat_cache: false,
                    from_archive: crate::store::FromArchive::default(),
                };
                let added = store.add_slice(name, &Source::Directory(src), &options);
                added.unwrap().info.digest
            })
            .collect();
        (tmp, store, digests)
    }

    #[test]
    fn identities_round_trip_and_a_racy_entry_says_so() {
        let identity = Identity {
            ctime: (1_700_000_000, 5),
            ino: 42,
            size: 72,
        };
        assert_eq!(identity.render(), "42:72:1700000000.000000005");
        assert_eq!(parse_identity(&identity.render()), Some(Some(identity)));
        assert_eq!(parse_identity("-"), Some(None));
        assert_eq!(parse_identity("42:72"), None);
    }

    /// However close to the index's write a ref is rewritten in place (the
    /// same size, so only its ctime can tell), a stage never gets the
    /// digest the ref held before.
    #[test]
    fn a_ref_rewritten_in_place_right_after_the_index_is_never_read_from_the_index() {
        let (_tmp, store, digests) = store_with(&["a", "b"]);
        let (a, b) = (digests[0], digests[1]);
        let names: HashSet<&str> = ["a"].into_iter().collect();
        let ref_a = store.refs_dir().join("a");
        for round in 0..200 {
            let (from, to) = if round % 2 == 0 { (a, b) } else { (b, a) };
            fs::write(&ref_a, format!("{from}\n")).unwrap();
            rebuild(&store).unwrap();
            fs::write(&ref_a, format!("{to}\n")).unwrap();
            if let Some(found) = lookup(&store, &names).get("a") {
                assert_eq!(
                    found.digest, to,
                    "round {round}: the index's stale entry was used"
                );
            }
        }
    }

    #[test]
    fn an_index_written_long_after_the_refs_is_used_and_names_a_removed_ref_no_more() {
        let (_tmp, store, digests) = store_with(&["a", "b"]);
        std::thread::sleep(std::time::Duration::from_millis(30));
        rebuild(&store).unwrap();
        let names: HashSet<&str> = ["a", "b"].into_iter().collect();
        let found = lookup(&store, &names);
        assert_eq!(found.len(), 2, "settled refs are read from the index");
        assert_eq!(found["a"].digest, digests[0]);
        assert!(found["a"].has_bin, "a's bin/ directory is in the index");
        assert!(
            !found["b"].has_bin,
            "b's file named bin is not a bin/ directory"
        );
        let read = store.resolve_slices(&["a", "b"]);
        assert!(read[0].as_ref().unwrap().has_bin && !read[1].as_ref().unwrap().has_bin);
        fs::remove_file(store.refs_dir().join("b")).unwrap();
        assert!(!lookup(&store, &names).contains_key("b"));
        assert_eq!(disagreements(&store).unwrap(), Vec::<String>::new());
    }
}
