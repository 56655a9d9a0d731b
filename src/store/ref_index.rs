//! `refs/.index`: every name with the digest it points at and that slice's
//! manifest, in one file, so that a stage with many slices reads one file
//! instead of a ref and a manifest per slice (two small reads that cost
//! about 5 µs each on the hot path; docs/performance.md).
//!
//! The index is derived from the refs and the manifests and must never
//! disagree with them. Its writers keep that under `refs/.lock`: before a
//! name's digest changes, the index is removed and `refs/` fsynced; after,
//! a new index is written (temp file, fsync, rename, fsync). A crash in
//! between leaves no index, never a stale one, and stages then read the
//! refs themselves until the next ref change or `slice-gc` writes it again.
//! A reader that opened the old index before it was removed sees the names
//! as they were before the change, as it would had it started earlier.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::PathBuf;

use super::slice::Manifest;
use super::{refs, IoContext, Result, Store};
use crate::digest::Digest;

const FILE: &str = ".index";
const HEADER: &str = "slicebox-ref-index 1\n";

/// A name's entry: where it points now and that slice's manifest.
type Entries = BTreeMap<String, (Digest, Manifest)>;

/// Names, digests and manifests hold no tab or newline (names are
/// validated, manifests are compact JSON, which escapes control bytes), so
/// one line per name is unambiguous: `NAME\tDIGEST\tMANIFEST-JSON\n`.
fn render(entries: &Entries) -> String {
    let mut text = String::from(HEADER);
    for (name, (digest, manifest)) in entries {
        let json = serde_json::to_string(manifest).expect("manifests always serialise");
        text.push_str(&format!("{name}\t{digest}\t{json}\n"));
    }
    text
}

/// Parses one line into its name and, lazily, the rest; `None` when the
/// line is not one of ours.
fn split_line(line: &str) -> Option<(&str, &str, &str)> {
    let (name, rest) = line.split_once('\t')?;
    let (digest, json) = rest.split_once('\t')?;
    Some((name, digest, json))
}

/// The entry of a line, if it is whole: its manifest must hash to its
/// digest, as a manifest read from `slices/` must.
fn parse_entry(digest: &str, json: &str) -> Option<(Digest, Manifest)> {
    let digest: Digest = digest.parse().ok()?;
    let manifest = Manifest::parse(json.as_bytes()).ok()?;
    (manifest.slice_digest() == digest).then_some((digest, manifest))
}

pub(crate) fn path(store: &Store) -> PathBuf {
    store.refs_dir().join(FILE)
}

/// The index's entry lines (the text after its header), or `None` when
/// there is no index (or it is not ours).
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

/// What the index says of `names`, for a stage: each name it lists with an
/// entry that checks out. A name it lacks, or whose entry does not check
/// out, is left to the refs themselves (and their error messages).
pub(crate) fn lookup(store: &Store, names: &HashSet<&str>) -> BTreeMap<String, (Digest, Manifest)> {
    let Ok(Some(text)) = read_lines(store) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(split_line)
        .filter(|(name, _, _)| names.contains(name))
        .filter_map(|(name, digest, json)| Some((name.to_string(), parse_entry(digest, json)?)))
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
        let Some((name, digest, json)) = split_line(line) else {
            return Ok(None);
        };
        let Some(entry) = parse_entry(digest, json) else {
            return Ok(None);
        };
        entries.insert(name.to_string(), entry);
    }
    Ok(Some(entries))
}

/// Every name as the refs and manifests say, read one by one.
fn scan(store: &Store) -> Result<Entries> {
    let mut entries = Entries::new();
    for (name, digest) in refs::list(store)? {
        // A name whose slice cannot be read is left out: stages then look
        // it up themselves and report the damage.
        if let Ok(manifest) = store.manifest(&digest) {
            entries.insert(name, (digest, manifest));
        }
    }
    Ok(entries)
}

/// Removes the index before a ref changes, durably: no crash after this
/// can leave an index that disagrees with the refs. Returns what it held.
pub(crate) fn invalidate(store: &Store) -> Result<Option<Entries>> {
    let held = load_all(store)?;
    let path = path(store);
    match fs::remove_file(&path) {
        Ok(()) => super::ingest::sync_dir(&store.refs_dir())?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).at("remove ref index", &path),
    }
    super::crash_point("refs:index-removed");
    Ok(held)
}

/// Writes the index after a ref change: `held` (what `invalidate`
/// returned) with `change` applied, or, without one, every ref read anew.
pub(crate) fn write(
    store: &Store,
    held: Option<Entries>,
    change: impl FnOnce(&mut Entries) -> Result<()>,
) -> Result<()> {
    let entries = match held {
        Some(mut entries) => {
            change(&mut entries)?;
            entries
        }
        None => scan(store)?,
    };
    super::crash_point("refs:before-index-written");
    super::write_durably(
        &store.refs_dir(),
        FILE,
        render(&entries).as_bytes(),
        "write ref index",
    )
}

/// Writes the index from the refs, as `slice-gc` does.
pub(crate) fn rebuild(store: &Store) -> Result<()> {
    write(store, None, |_| Ok(()))
}

/// Where the index disagrees with the refs and manifests, for
/// `slice-verify`: names missing or extra, digests or manifests that
/// differ. An absent index is not damage (stages then read the refs).
pub(crate) fn disagreements(store: &Store) -> Result<Vec<String>> {
    let Some(text) = read_lines(store)? else {
        return Ok(Vec::new());
    };
    let mut listed = Entries::new();
    let mut damaged = HashSet::new();
    let mut problems = Vec::new();
    for line in text.lines() {
        let Some((name, digest, json)) = split_line(line) else {
            problems.push(format!(
                "holds a line that is not an entry: '{}'",
                super::printable(line.as_bytes())
            ));
            continue;
        };
        match parse_entry(digest, json) {
            Some(entry) => {
                listed.insert(name.to_string(), entry);
            }
            None => {
                problems.push(format!(
                    "its entry for '{}' is damaged: the manifest in it does not hash to its digest",
                    super::printable(name.as_bytes())
                ));
                damaged.insert(name);
            }
        }
    }
    let actual = scan(store)?;
    for (name, entry) in &actual {
        match listed.get(name) {
            None if damaged.contains(name.as_str()) => {}
            None => problems.push(format!("lacks '{name}'")),
            Some(listed) if listed.0 != entry.0 => problems.push(format!(
                "says '{name}' is {}, but its ref says {}",
                listed.0, entry.0
            )),
            Some(_) => {}
        }
    }
    for name in listed.keys().filter(|n| !actual.contains_key(*n)) {
        problems.push(format!("lists '{name}', which is not a name"));
    }
    Ok(problems)
}
