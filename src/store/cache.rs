//! Memoized stages (`sandbox --out DIR=NAME --cache`): `cache/<hex>`
//! names the slice that the stage whose digest is `<hex>` stored. The
//! stage digest is the caller's business (docs/formats.md defines it);
//! the store keeps the entries crash-safe and drops those whose slice
//! is no longer named (slice-gc).

use std::fs;
use std::path::PathBuf;

use super::fsutil::{self, sync_dir};
use super::{refs, IoContext, Result, Store};
use crate::digest::Digest;

impl Store {
    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// If an earlier run of the stage `stage` stored a slice that is still
    /// in the store, points `name` at it (as slice-tag would) and returns
    /// it.
    pub fn reuse_output(&self, stage: &Digest, name: &str) -> Result<Option<Digest>> {
        refs::validate_name(name)?;
        // Shared: gc cannot remove the slice between the check and the ref.
        let _lock = self.lock_shared()?;
        let path = self.cache_dir().join(stage.hex());
        let output = match fsutil::read_small(&path) {
            Ok(text) => match text.trim().parse::<Digest>() {
                Ok(digest) => digest,
                // A damaged entry is a miss; the run rewrites it.
                Err(_) => return Ok(None),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at("read cache entry", &path),
        };
        if self.manifest(&output).is_err() || !self.slice_tree(&output).is_dir() {
            return Ok(None);
        }
        refs::set(self, name, &output)?;
        Ok(Some(output))
    }

    /// Records that the stage `stage` stored `output`.
    pub fn remember_output(&self, stage: &Digest, output: &Digest) -> Result<()> {
        let _lock = self.lock_shared()?;
        let dir = self.cache_dir();
        fs::create_dir_all(&dir).at("create store directory", &dir)?;
        fsutil::write_durably(
            &dir,
            &stage.hex(),
            format!("{output}\n").as_bytes(),
            "write cache entry",
        )
    }

    /// gc's part: drops entries (and leftover temp files) whose slice is
    /// not live. Call with the exclusive lock held.
    pub(crate) fn prune_cache(&self, live: &std::collections::HashSet<Digest>) -> Result<u64> {
        let dir = self.cache_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).at("read directory", &dir),
        };
        let mut dropped = 0;
        for entry in entries {
            let path = entry.at("read directory", &dir)?.path();
            let keep = fsutil::read_small(&path)
                .ok()
                .and_then(|text| text.trim().parse::<Digest>().ok())
                .is_some_and(|output| live.contains(&output))
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !keep {
                fs::remove_file(&path).at("remove cache entry", &path)?;
                dropped += 1;
            }
        }
        if dropped > 0 {
            sync_dir(&dir)?;
        }
        Ok(dropped)
    }
}
