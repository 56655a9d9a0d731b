//! An archive source (`.tar`, `.tar.gz`, `.tar.zst`, a file or a stream),
//! ingested in memory bounded whatever its entry count: the filesystem is
//! the index. Each entry is checked and stored as it comes, and built at
//! once in the staged tree, one component at a time below a directory fd
//! and never through a symlink (a directory as a directory, a symlink as a
//! symlink, a file as a hardlink to its object). So the questions an
//! archive's order raises ("appears twice", "lies below a symlink",
//! "conflicts with a directory", "a hardlink to an earlier regular file")
//! are answered by the tree built so far, in arrival order, as they were
//! by the in-memory tree this replaced, with the same messages. Then the
//! directory walk (`dir_source::walk_staged`) lists, seals and digests the
//! tree in name order.
//!
//! A directory an entry names explicitly is made with the sticky bit,
//! which no other directory of the tree has until the walk seals them all
//! (0755): a second entry for it "appears twice", while a directory made
//! only as some entry's parent may still come as an entry of its own.

use std::cell::Cell;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::archive_meta::{self, ArchiveSettings};
use super::at;
use super::dir_source::{walk_staged, Staging, Walked};
use super::fsutil;
use super::limits::{expansion_reason, Budget, Counted, ExpansionGuard, Limits};
use super::objects::ObjectWriter;
use super::prefix::PrefixCheck;
use super::progress::Progress;
use super::staged::{place_file, place_link, Stage};
use super::tarball::{Header, Kind, TarError, TarReader};
use super::{os, printable, Error, IoContext, Result, Store};
use crate::digest::Digest;

/// Where an archive comes from.
pub(crate) enum Input<'a> {
    File(&'a Path),
    /// A descriptor open for reading.
    Fd(RawFd),
    Bytes(&'a [u8]),
}

/// Reads the archive into `slice_dir` (its `tree` and `listing`), with
/// the settings its `SLICEBOX.*` records give (archive_meta.rs).
pub(crate) fn stage_archive(
    input: Input,
    source_name: &str,
    slice_dir: &Path,
    (check, limits): (PrefixCheck, Limits),
    objects: &ObjectWriter<'_>,
    progress: &Progress,
) -> Result<(Walked, ArchiveSettings)> {
    let mut arrivals = Arrivals::new(slice_dir, objects)?;
    let reader = open_input(input)?;
    let settings = read_archive(reader, source_name, limits, &mut arrivals, progress)?;
    drop(arrivals);
    let walked = walk_staged(Staging::built(slice_dir, objects, check)?)?;
    Ok((walked, settings))
}

/// Parses a tar stream (plain, gzip or zstd) and stages it within
/// `limits` in a throwaway store below the system's temporary directory,
/// exactly as `slice-add -` would up to publishing: what the fuzz target
/// runs. Returns the tree digest.
pub fn parse_archive_only(data: &[u8], limits: Limits) -> Result<Digest> {
    let scratch = std::env::temp_dir().join(format!("slicebox-parse-{}", fsutil::unique_suffix()));
    let parsed = (|| {
        let store = Store::open(&scratch)?;
        let stage = Stage::create(&store)?;
        let objects = ObjectWriter::new(&store, &stage.path)?;
        let slice_dir = stage.path.join("slice");
        fs::create_dir(&slice_dir).at("create staging directory", &slice_dir)?;
        let progress = Progress::start(None);
        let options = (PrefixCheck::Off, limits);
        let input = Input::Bytes(data);
        let walked = stage_archive(input, "-", &slice_dir, options, &objects, &progress);
        progress.finish();
        Ok(walked?.0.digest)
    })();
    let _ = at::remove_tree(&scratch);
    parsed
}

/// The staged tree as the archive's entries build it, in their order.
struct Arrivals<'w, 's> {
    tree: OwnedFd,
    tree_path: PathBuf,
    objects: &'w ObjectWriter<'s>,
    /// The directory the last entry went into, open ('/'-joined path, fd):
    /// entries come directory by directory as a rule.
    parent: (Vec<u8>, OwnedFd),
}

/// Where an entry's parent directory stands in the tree built so far.
enum Parent {
    /// It is there, open in `Arrivals::parent`.
    Open,
    /// Some directory on the way is not there yet.
    Missing,
    /// Something on the way is not a directory: "a file", "a symlink".
    Below(&'static str),
}

impl<'w, 's> Arrivals<'w, 's> {
    fn new(slice_dir: &Path, objects: &'w ObjectWriter<'s>) -> Result<Self> {
        let tree_path = slice_dir.join("tree");
        fs::create_dir(&tree_path).at("create directory", &tree_path)?;
        let tree = at::open_dir(&tree_path).at("open", &tree_path)?;
        Ok(Arrivals {
            parent: (Vec::new(), tree.try_clone().at("open", &tree_path)?),
            tree,
            tree_path,
            objects,
        })
    }

    fn shown(&self, parts: &[&[u8]]) -> PathBuf {
        self.tree_path.join(os(&parts.join(&b'/')))
    }

    fn parent_fd(&self) -> RawFd {
        self.parent.1.as_raw_fd()
    }

    /// Finds (or with `create`, makes) the directory `parents` name: at
    /// once when it is the last one used or a path of directories only,
    /// else one component at a time, never through a symlink.
    fn descend(&mut self, parents: &[&[u8]], create: bool) -> io::Result<Parent> {
        let joined = parents.join(&b'/');
        if self.parent.0 == joined {
            return Ok(Parent::Open);
        }
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        if let Ok(fd) =
            at::cstring(&joined).and_then(|p| at::open_beneath(self.tree.as_raw_fd(), &p, flags))
        {
            self.parent = (joined, fd);
            return Ok(Parent::Open);
        }
        let mut dir = self.tree.try_clone()?;
        for part in parents {
            let name = at::cstring(part)?;
            let st = match at::stat_at(dir.as_raw_fd(), &name) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                    at::mkdir_at(dir.as_raw_fd(), &name, 0o700)?;
                    at::stat_at(dir.as_raw_fd(), &name)?
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Parent::Missing),
                other => other?,
            };
            if at::is_symlink(&st) {
                return Ok(Parent::Below("a symlink"));
            }
            if !at::is_dir(&st) {
                return Ok(Parent::Below("a file"));
            }
            dir = at::open_beneath(dir.as_raw_fd(), &name, flags)?;
        }
        self.parent = (joined, dir);
        Ok(Parent::Open)
    }

    /// What is at `parts` already: nothing, a directory made only as a
    /// parent (`Some(false)`), or an entry of the archive (`Some(true)`).
    fn existing(&mut self, parts: &[&[u8]]) -> io::Result<Option<bool>> {
        let (last, parents) = parts.split_last().expect("entries have a name");
        if !matches!(self.descend(parents, false)?, Parent::Open) {
            return Ok(None);
        }
        match at::stat_at(self.parent_fd(), &at::cstring(last)?) {
            Ok(st) => Ok(Some(!at::is_dir(&st) || st.st_mode & libc::S_ISVTX != 0)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The regular file at `link` (a hardlink's target), if the tree has
    /// one there: its directory (open) and name, and its executable bit
    /// and size. Nothing of it is read: a thousand links to one big file
    /// cost a thousand links, as a directory source's would.
    fn earlier_file(&mut self, link: &[u8]) -> Result<Option<EarlierFile>> {
        let Ok(parts) = normalise_entry_name(link) else {
            return Ok(None);
        };
        let Some((last, parents)) = parts.split_last() else {
            return Ok(None);
        };
        let shown = self.shown(&parts);
        if !matches!(
            self.descend(parents, false).at("read", &shown)?,
            Parent::Open
        ) {
            return Ok(None);
        }
        let name = at::cstring(last).at("read", &shown)?;
        match at::stat_at(self.parent_fd(), &name) {
            Ok(st) if at::is_file(&st) => Ok(Some(EarlierFile {
                dir: self.parent.1.try_clone().at("open", &shown)?,
                name,
                executable: st.st_mode & 0o111 != 0,
                size: st.st_size as u64,
            })),
            _ => Ok(None),
        }
    }

    /// Puts `node` at `parts`, where `existing` found what it found.
    fn place(
        &mut self,
        parts: &[&[u8]],
        node: Arrived,
        existing: Option<bool>,
    ) -> Result<Result<(), String>> {
        let shown = self.shown(parts);
        let (last, parents) = parts.split_last().expect("entries have a name");
        match self.descend(parents, true).at("create directory", &shown)? {
            Parent::Open => {}
            Parent::Below(kind) => return Ok(Err(format!("lies below {kind}"))),
            Parent::Missing => {
                let missing = io::Error::from_raw_os_error(libc::ENOENT);
                return Err(missing).at("create directory", &shown);
            }
        }
        let name = at::cstring(last).at("create", &shown)?;
        let fd = self.parent_fd();
        match (node, existing) {
            // A parent made earlier comes as an entry of its own.
            (Arrived::Dir, Some(false)) => {
                at::chmod_at(fd, &name, 0o1700).at("set mode of", &shown)?
            }
            (Arrived::Dir, _) => at::mkdir_at(fd, &name, 0o1700).at("create directory", &shown)?,
            (_, Some(_)) => return Ok(Err("conflicts with a directory of the same name".into())),
            (Arrived::Symlink(target), None) => {
                let target = at::cstring(&target).at("create symlink", &shown)?;
                at::symlink_at(&target, fd, &name).at("create symlink", &shown)?;
                fsutil::set_fixed_mtime_at(fd, &name).at("set mtime of", &shown)?;
            }
            (Arrived::File(content, executable, size), None) => place_file(
                fd,
                &name,
                &shown,
                (&content, executable, size),
                self.objects,
            )?,
            (Arrived::Link(earlier), None) => {
                let from = (earlier.dir.as_raw_fd(), earlier.name.as_c_str());
                let file = (earlier.executable, earlier.size);
                place_link(from, fd, &name, &shown, file)?
            }
        }
        Ok(Ok(()))
    }
}

/// An entry as it goes into the tree.
enum Arrived {
    Dir,
    Symlink(Vec<u8>),
    File(Digest, bool, u64),
    /// A hardlink, to this file.
    Link(EarlierFile),
}

/// A regular file already in the tree.
struct EarlierFile {
    dir: OwnedFd,
    name: CString,
    executable: bool,
    size: u64,
}

pub(crate) fn rejected(source_name: &str, entry: &[u8], reason: String) -> Error {
    Error::Rejected {
        source_name: source_name.to_string(),
        entry: printable(entry),
        reason,
    }
}

/// Splits a tar entry name into safe components: `.` and empty parts are
/// dropped; `..` and absolute names are refused.
pub(crate) fn normalise_entry_name(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if name.first() == Some(&b'/') {
        return Err("is an absolute path");
    }
    if name.contains(&0) {
        return Err("has a NUL byte in its name, which no file name can hold");
    }
    let mut parts = Vec::new();
    for part in name.split(|c| *c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("contains '..'"),
            other => parts.push(other),
        }
    }
    Ok(parts)
}

fn decompression_error(source_name: &str, format: &str, cause: &io::Error) -> Error {
    Error::BadSource {
        source_name: source_name.into(),
        reason: format!("its {format} stream is damaged: {cause}"),
    }
}

/// A tar stream as read through its decompressor, if any, and the guard
/// against its expansion.
pub(crate) struct Decoded<'a> {
    pub(crate) reader: Box<dyn Read + 'a>,
    pub(crate) guard: Guard,
}

/// Where the expansion guard leaves (expanded, compressed) when it stops
/// a stream.
type Verdict = Rc<Cell<Option<(u64, u64)>>>;

/// What the expansion guard of a decoded stream found.
pub(crate) struct Guard {
    /// `tar`, `gzip` or `zstd`, for messages.
    pub(crate) format: &'static str,
    verdict: Option<Verdict>,
}

impl Guard {
    /// What reading the stream came to: `result`, unless the expansion
    /// guard stopped the stream, which is then the reason whatever error
    /// the stopped stream caused on its way out.
    pub(crate) fn judge<T>(
        &self,
        source_name: &str,
        limits: Limits,
        result: Result<T>,
    ) -> Result<T> {
        match self.verdict.as_ref().and_then(|v| v.get()) {
            Some((expanded, compressed)) => Err(Error::BadSource {
                source_name: source_name.into(),
                reason: expansion_reason(self.format, expanded, compressed, limits.ratio),
            }),
            None => result,
        }
    }
}

/// Opens `input` as a tar stream: plain, gzip or zstd by its first bytes,
/// a compressed one bounded by `limits.ratio`.
pub(crate) fn decode<'a>(
    input: impl Read + 'a,
    source_name: &str,
    limits: Limits,
) -> Result<Decoded<'a>> {
    let compressed = Rc::new(Cell::new(0));
    let counted = Counted {
        inner: input,
        count: compressed.clone(),
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, counted);
    let magic = buffered.fill_buf().map_err(|e| Error::BadSource {
        source_name: source_name.into(),
        reason: format!("it cannot be read: {e}"),
    })?;
    let (decoded, format): (Box<dyn Read + 'a>, &'static str) = if magic.starts_with(&[0x1f, 0x8b])
    {
        (
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            "gzip",
        )
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::with_buffer(buffered)
            .map_err(|e| decompression_error(source_name, "zstd", &e))?;
        (Box::new(decoder), "zstd")
    } else {
        // A plain tar is its own size: nothing to bound.
        return Ok(Decoded {
            reader: Box::new(buffered),
            guard: Guard {
                format: "tar",
                verdict: None,
            },
        });
    };
    let guard = ExpansionGuard::new(decoded, compressed, limits.ratio);
    let verdict = guard.verdict();
    Ok(Decoded {
        reader: Box::new(guard),
        guard: Guard {
            format,
            verdict: Some(verdict),
        },
    })
}

/// An input's descriptor or file as a reader.
pub(crate) fn open_input<'a>(input: Input<'a>) -> Result<Box<dyn Read + 'a>> {
    Ok(match input {
        Input::File(path) => Box::new(File::open(path).at("open", path)?),
        // SAFETY: the caller checked that `fd` is open and keeps it open
        // while the reader lives.
        Input::Fd(fd) => Box::new(FdReader(unsafe { BorrowedFd::borrow_raw(fd) })),
        Input::Bytes(bytes) => Box::new(bytes),
    })
}

fn read_archive(
    input: impl Read,
    source_name: &str,
    limits: Limits,
    arrivals: &mut Arrivals,
    progress: &Progress,
) -> Result<ArchiveSettings> {
    let Decoded { reader, guard } = decode(input, source_name, limits)?;
    let reader = TarReader::new(reader);
    let entries = read_entries(
        reader,
        guard.format,
        source_name,
        limits,
        arrivals,
        progress,
    );
    guard.judge(source_name, limits, entries)
}

/// The error for what the tar reader found wrong in `source_name`, read
/// through `format` (for messages).
pub(crate) fn tar_error(source_name: &str, format: &str, e: TarError) -> Error {
    match e.entry {
        Some(entry) => rejected(source_name, &entry, e.reason),
        None if format != "tar" && e.reason.starts_with("it cannot be read") => Error::BadSource {
            source_name: source_name.into(),
            reason: format!("its {format} stream is damaged ({})", e.reason),
        },
        None => Error::BadSource {
            source_name: source_name.into(),
            reason: format!("not a readable tar archive: {}", e.reason),
        },
    }
}

/// Reads the entries of a decoded tar stream into the tree, storing files
/// as objects; `format` is the stream's compression, for messages. The
/// archive's settings are checked as soon as its first header is read.
fn read_entries(
    mut reader: TarReader<Box<dyn Read + '_>>,
    format: &str,
    source_name: &str,
    limits: Limits,
    arrivals: &mut Arrivals,
    progress: &Progress,
) -> Result<ArchiveSettings> {
    let tar_error = |e: TarError| tar_error(source_name, format, e);
    let mut budget = Budget::new(limits);
    let mut settings = None;
    loop {
        let next = reader.next_entry().map_err(tar_error)?;
        if settings.is_none() {
            let parsed = archive_meta::parse(reader.vendor_records());
            settings = Some(parsed.map_err(|reason| Error::BadSource {
                source_name: source_name.into(),
                reason,
            })?);
        }
        let Some(header) = next else {
            break;
        };
        let reject = |reason: String| rejected(source_name, &header.path, reason);
        let parts = normalise_entry_name(&header.path).map_err(|r| reject(r.into()))?;
        if parts.is_empty() {
            if header.kind == Kind::Dir {
                continue;
            }
            return Err(reject("has an empty name".into()));
        }
        budget.entry(&parts).map_err(reject)?;
        let existing = arrivals
            .existing(&parts)
            .at("read", &arrivals.shown(&parts))?;
        if existing == Some(true) {
            return Err(reject("appears twice in the archive".into()));
        }
        let node =
            arrived(&header, &mut reader, &mut budget, arrivals, progress)?.map_err(reject)?;
        arrivals.place(&parts, node, existing)?.map_err(reject)?;
    }
    Ok(settings.unwrap_or_default())
}

/// What one entry puts in the tree, its data read and stored; `Err` with
/// the reason the entry is refused.
fn arrived(
    header: &Header,
    reader: &mut TarReader<Box<dyn Read + '_>>,
    budget: &mut Budget,
    arrivals: &mut Arrivals,
    progress: &Progress,
) -> Result<Result<Arrived, String>> {
    Ok(Ok(match header.kind {
        Kind::File => {
            if let Err(reason) = budget.file(header.size) {
                return Ok(Err(reason));
            }
            // Only the executable bit survives: setuid, setgid and
            // sticky bits are dropped, as are owners and mtimes.
            let executable = header.mode & 0o111 != 0;
            let origin = PathBuf::from(os(&header.path));
            let stored = arrivals
                .objects
                .add_stream(&mut reader.data(), executable, &origin);
            let (content, size) = match stored {
                Ok(stored) => stored,
                // The tar reader's own reasons (truncation) name the entry.
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::InvalidData => {
                    return Ok(Err(format!("is cut short: {source}")));
                }
                Err(other) => return Err(other),
            };
            if size != header.size {
                return Ok(Err(format!(
                    "delivered {size} bytes, not the {} its header claims",
                    header.size
                )));
            }
            progress.advance(size);
            Arrived::File(content, executable, size)
        }
        Kind::Dir => Arrived::Dir,
        Kind::Symlink => {
            if header.link.is_empty() {
                return Ok(Err("is a symlink without a target".into()));
            }
            if let Err(reason) = budget.symlink(&header.link) {
                return Ok(Err(reason));
            }
            Arrived::Symlink(header.link.clone())
        }
        Kind::Hardlink => match arrivals.earlier_file(&header.link)? {
            Some(earlier) => {
                // A hardlink is as many bytes as its file: links to one
                // big file cannot multiply the data unbounded (nor the
                // copies made past the link limit).
                if let Err(reason) = budget.file(earlier.size) {
                    return Ok(Err(reason));
                }
                Arrived::Link(earlier)
            }
            None => {
                return Ok(Err(format!(
                    "is a hardlink to '{}', which is not an earlier regular file of this archive",
                    printable(&header.link)
                )))
            }
        },
        Kind::CharDevice | Kind::BlockDevice => return Ok(Err("is a device node".into())),
        Kind::Fifo => return Ok(Err("is a fifo".into())),
        Kind::Sparse => return Ok(Err("is a sparse file, which is not supported".into())),
        Kind::Other(byte) => {
            return Ok(Err(format!(
                "has the unsupported entry type '{}'",
                printable(&[byte])
            )))
        }
    }))
}

struct FdReader<'fd>(BorrowedFd<'fd>);

impl Read for FdReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match nix::unistd::read(self.0.as_raw_fd(), buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_normalised_or_refused() {
        assert_eq!(
            normalise_entry_name(b"./a//b/./c"),
            Ok(vec![&b"a"[..], b"b", b"c"])
        );
        assert_eq!(normalise_entry_name(b"./"), Ok(vec![]));
        assert_eq!(
            normalise_entry_name(b"/etc/passwd"),
            Err("is an absolute path")
        );
        assert_eq!(normalise_entry_name(b"a/../../x"), Err("contains '..'"));
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// The fuzz target's way in stages the archive as slice-add does, and
    /// leaves nothing behind in the temporary directory.
    #[test]
    fn parse_only_gives_the_tree_digest_and_the_refusals() {
        let leftovers = || {
            fs::read_dir(std::env::temp_dir())
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().starts_with("slicebox-parse-")
                })
                .count()
        };
        let before = leftovers();
        let digest = parse_archive_only(&tar_of(&[("d/f", b"x")]), Limits::default()).unwrap();
        let mut tree = crate::store::Node::empty_dir();
        let file = crate::store::Node::File {
            content: Digest::of(b"x"),
            executable: false,
            size: 1,
        };
        crate::store::tree::place(&mut tree, &[b"d", b"f"], file).unwrap();
        assert_eq!(digest, crate::store::tree_digest(&tree));
        let twice = tar_of(&[("f", b"x"), ("f", b"y")]);
        let err = parse_archive_only(&twice, Limits::default()).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        assert_eq!(leftovers(), before);
    }
}
