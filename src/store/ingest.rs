//! `slice-add`: read a source (rejecting anything hostile, and anything
//! beyond the limits, as it is met), build it in a private staging dir,
//! then publish objects, slice and ref in that order. Both kinds of source
//! are read in memory bounded whatever their entry count: a directory in
//! one walk (`dir_source`), an archive built in its entries' order and
//! then walked (`archive_source`).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::archive_meta::ArchiveSettings;
use super::archive_source::{stage_archive, Input};
use super::crash_point;
use super::dir_source::{walk_cached, walk_directory, Staging, Walked};
use super::fsutil::{self, sync_dir};
use super::limits::Limits;
use super::mount_point::validate_mount_point;
use super::objects::ObjectWriter;
use super::prefix::{self, BuiltFor, PrefixCheck};
use super::progress::{Progress, ProgressSink};
use super::staged::Stage;
use super::{
    printable, printable_path, refs, Error, IoContext, Manifest, Result, SliceInfo, Store,
};
use crate::digest::Digest;

/// Where a slice's files come from.
#[derive(Debug, Clone)]
pub enum Source {
    Directory(PathBuf),
    /// A `.tar`, `.tar.gz` or `.tar.zst` file; the compression is detected
    /// from its first bytes, not its name.
    Archive(PathBuf),
    /// A tar stream (possibly compressed) on an open descriptor.
    Stream(RawFd),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Directory(p) | Source::Archive(p) => printable_path(p),
            Source::Stream(_) => "-".to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub mount_point: String,
    pub env: Vec<String>,
    pub limits: Limits,
    /// Whether to look for the prefix the tree was built for (prefix.rs).
    pub prefix_check: PrefixCheck,
    /// Who hears how far the add has got, if anyone.
    pub progress: Option<ProgressSink>,
    /// Whether a directory source's files may be served from, and are
    /// recorded in, the store's stat cache: yes for `--cache` inputs,
    /// hashed again at every run; no for `slice-add`, whose re-add
    /// re-hashes (and so repairs) every object it relies on, nor for a
    /// fresh `--out` dir, never seen again.
    pub stat_cache: bool,
    /// Which settings an exported archive's own records may give.
    pub from_archive: FromArchive,
}

/// Which of an archive's settings (`slice-export`'s `SLICEBOX.at` and
/// `SLICEBOX.env`, archive_meta.rs) an add takes: `slice-add` those its
/// caller did not give. The records are validated whatever this says.
#[derive(Debug, Clone, Copy, Default)]
pub struct FromArchive {
    pub mount_point: bool,
    pub env: bool,
}

/// What `add_slice` did.
#[derive(Debug, Clone)]
pub struct Added {
    pub info: SliceInfo,
    /// Bytes of new object data written; 0 when every file was stored already.
    pub written_bytes: u64,
    /// Stored objects found damaged and replaced by this add.
    pub healed_objects: u64,
    /// Whether the same slice was stored already, damaged, and replaced.
    pub healed_slice: bool,
    /// Other slices that linked a replaced object, rebuilt.
    pub healed_sharers: u64,
    /// The prefixes the tree was built for (none unless `prefix_check`).
    pub built_for: Vec<BuiltFor>,
}

impl Store {
    /// Adds `source` as a slice and points `name` at it.
    pub fn add_slice(&self, name: &str, source: &Source, options: &IngestOptions) -> Result<Added> {
        refs::validate_name(name)?;
        self.store_slice(Some(name), source, options)
    }

    /// Stores `source` as a slice that no name points at (a `--cache`
    /// stage's inputs): the caller pins it, under the shared lock taken
    /// before this call, and slice-gc removes it once nothing does.
    pub fn add_unnamed(&self, source: &Source, options: &IngestOptions) -> Result<Added> {
        self.store_slice(None, source, options)
    }

    fn store_slice(
        &self,
        name: Option<&str>,
        source: &Source,
        options: &IngestOptions,
    ) -> Result<Added> {
        let mount_point = validate_mount_point(&options.mount_point)?;
        for entry in &options.env {
            crate::env::check_slice_entry(entry.as_bytes()).map_err(|reason| {
                Error::InvalidEnv {
                    entry: printable(entry.as_bytes()),
                    reason,
                }
            })?;
        }
        // Shared for the whole add: gc cannot delete an object this add
        // found already stored and is about to link.
        let _lock = self.lock_shared()?;
        if let (Source::Directory(dir), true) = (source, options.stat_cache) {
            if let Some(added) = self.reuse_unchanged(name, dir, &mount_point, options)? {
                return Ok(added);
            }
        }
        let stage = Stage::create(self)?;
        let objects = ObjectWriter::new(self, &stage.path)?;
        let progress = Progress::start(options.progress.clone());
        let staged_slice = stage.path.join("slice");
        fs::create_dir(&staged_slice).at("create staging directory", &staged_slice)?;
        let (walked, settings) = stage_source(source, &staged_slice, options, &objects, &progress)?;
        progress.finish();
        let built_for = walked.built_for;
        let (mount_point, env, prefix_check) = settle(mount_point, options, settings);
        let mount_point = prefix::mount_point(mount_point, prefix_check, &built_for);
        let manifest = Manifest::new(walked.digest, mount_point, env, walked.files, walked.bytes);
        let slice_digest = manifest.slice_digest();
        manifest.write(&staged_slice.join("manifest.json"))?;

        // One syncfs for the whole batch (as ostree does) instead of an
        // fsync per file: objects and tree are durable before they become
        // reachable.
        crash_point("add:staged");
        // Where a test reads the helper's peak memory: the source is read.
        super::pause_point("add:staged");
        fsutil::sync_filesystem(self.root())?;
        crash_point("add:synced");
        let healed_objects = objects.publish()?;
        crash_point("add:objects-published");
        let trusted = objects.trusted_inodes();
        let healed_slice = self.publish_slice(&staged_slice, &slice_digest, &trusted)?;
        let healed_sharers = match healed_objects {
            0 => 0,
            _ => self.heal_sharers(&objects.replaced(), &slice_digest, &trusted)?,
        };
        crash_point("add:slice-published");
        // Where a test reads the peak memory of a repairing add.
        super::pause_point("add:published");
        if let Some(name) = name {
            refs::set(self, name, &slice_digest)?;
            crash_point("add:ref-written");
        }
        drop(stage);
        Ok(Added {
            info: self.slice_info(&slice_digest)?,
            written_bytes: objects.written.load(Ordering::Relaxed),
            healed_objects,
            healed_slice,
            healed_sharers,
            built_for,
        })
    }

    /// Re-adding an unchanged directory: when the stat cache vouches for
    /// every file of `dir` and the slice they make is stored, names it
    /// (if `name`) without reading a file or building a tree. A stored
    /// slice is trusted as it is here; slice-verify checks it.
    fn reuse_unchanged(
        &self,
        name: Option<&str>,
        dir: &Path,
        mount_point: &str,
        options: &IngestOptions,
    ) -> Result<Option<Added>> {
        let progress = Progress::start(options.progress.clone());
        let walked = walk_cached(dir, options.limits, self, &progress);
        progress.finish();
        let Some(walked) = walked? else {
            return Ok(None);
        };
        let manifest = Manifest::new(
            walked.digest,
            mount_point.to_string(),
            options.env.clone(),
            walked.files,
            walked.bytes,
        );
        let slice = manifest.slice_digest();
        if self.manifest(&slice).is_err() || !self.slice_dir(&slice).join("tree").is_dir() {
            return Ok(None);
        }
        if let Some(name) = name {
            refs::set(self, name, &slice)?;
        }
        Ok(Some(Added {
            info: self.slice_info(&slice)?,
            written_bytes: 0,
            healed_objects: 0,
            healed_slice: false,
            healed_sharers: 0,
            built_for: Vec::new(),
        }))
    }

    /// Moves a finished staged slice into `slices/`. When the same slice is
    /// stored already it is checked, trusting the inodes this add has just
    /// verified: a damaged one (content, metadata, tree) is swapped for the
    /// staged one in one atomic step, and the old one is set aside under
    /// `tmp/healed-…`, which gc keeps while a running stage pins the slice.
    /// Returns whether a damaged slice was replaced.
    pub(super) fn publish_slice(
        &self,
        staged: &Path,
        slice: &Digest,
        trusted: &HashSet<(u64, u64)>,
    ) -> Result<bool> {
        let final_dir = self.slice_dir(slice);
        match fs::rename(staged, &final_dir) {
            Ok(()) => return sync_dir(&self.slices_dir()).map(|()| false),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {}
            Err(e) => return Err(e).at("store slice", &final_dir),
        }
        let mut damaged = false;
        self.verify_slice(slice, Some(trusted), &mut |_| damaged = true)?;
        if !damaged {
            return Ok(false);
        }
        nix::fcntl::renameat2(
            None,
            staged,
            None,
            &final_dir,
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        )
        .map_err(io::Error::from)
        .at("replace damaged slice", &final_dir)?;
        sync_dir(&self.slices_dir())?;
        let aside = self.tmp_dir().join(format!(
            "healed-{}-{}",
            slice.hex(),
            fsutil::unique_suffix()
        ));
        fs::rename(staged, &aside).at("set aside damaged slice", &aside)?;
        Ok(true)
    }
}

/// The mount point, environment and prefix check of an add: the caller's,
/// but for what `options.from_archive` lets the archive's settings give.
/// A mount point the archive gives is chosen, as `--at` is: the prefix
/// check only reports.
fn settle(
    mount_point: String,
    options: &IngestOptions,
    settings: ArchiveSettings,
) -> (String, Vec<String>, PrefixCheck) {
    let env = match options.from_archive.env {
        true => settings.env,
        false => options.env.clone(),
    };
    match (settings.mount_point, options.from_archive.mount_point) {
        (Some(at), true) => (at, env, PrefixCheck::Report),
        _ => (mount_point, env, options.prefix_check),
    }
}

/// Reads `source` into `staged_slice` (its `tree` and `listing`), with the
/// settings an archive carries.
fn stage_source(
    source: &Source,
    staged_slice: &Path,
    options: &IngestOptions,
    objects: &ObjectWriter<'_>,
    progress: &Progress,
) -> Result<(Walked, ArchiveSettings)> {
    let limits = options.limits;
    let check = options.prefix_check;
    let input = match source {
        Source::Directory(dir) => {
            let staging = Staging::create(staged_slice, objects, check)?;
            let store = options.stat_cache.then(|| objects.store());
            let walked = walk_directory(dir, limits, objects, Some(staging), store, progress)?;
            return Ok((walked, ArchiveSettings::default()));
        }
        Source::Archive(path) => Input::File(path),
        Source::Stream(fd) => Input::Fd(*fd),
    };
    let name = source.describe();
    stage_archive(
        input,
        &name,
        staged_slice,
        (check, limits),
        objects,
        progress,
    )
}

/// The tree digest `dir` would have as a slice, read as `slice-add` reads
/// it (same walk, same limits), storing nothing: a `--cache` stage's
/// working directory and read-only binds.
pub fn directory_digest(dir: &Path, limits: &Limits) -> Result<Digest> {
    let progress = Progress::start(None);
    let walked = walk_directory(
        dir,
        *limits,
        &super::objects::HashOnly,
        None,
        None,
        &progress,
    );
    progress.finish();
    Ok(walked?.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_absolute_normalised_and_not_ours() {
        assert_eq!(validate_mount_point("/opt//node/").unwrap(), "/opt/node");
        for bad in [
            "opt/node",
            "/",
            "/opt/../etc",
            "/proc/x",
            "/tmp",
            "/opt/\x1b",
        ] {
            assert!(validate_mount_point(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn env_entries_follow_posix_names_and_supported_forms() {
        let check = |e: &str| crate::env::check_slice_entry(e.as_bytes());
        assert!(check("PATH=/opt/x/bin:${PATH}").is_ok());
        assert!(check("_a1=").is_ok());
        for bad in ["1A=x", "=x", "A-B=x", "NOEQUALS", "X=${X:-y}"] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
