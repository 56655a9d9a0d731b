//! Slice manifests and what `slice-list` and `slice-show` report.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fsutil;
use super::{refs, Error, IoContext, Result, Store};
use crate::digest::Digest;

/// What a slice is besides its tree. The slice digest covers the tree
/// digest, the mount point and the env additions (docs/formats.md), so the
/// same tree mounted elsewhere is a different slice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub tree: Digest,
    pub mount_point: String,
    pub env: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

impl Manifest {
    pub fn new(
        tree: Digest,
        mount_point: String,
        env: Vec<String>,
        files: u64,
        bytes: u64,
    ) -> Manifest {
        Manifest {
            format: 1,
            tree,
            mount_point,
            env,
            files,
            bytes,
        }
    }

    /// Parses a manifest.json; the caller checks it hashes to its slice.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if manifest.format != 1 {
            return Err(format!("unknown manifest format {}", manifest.format));
        }
        Ok(manifest)
    }

    pub fn slice_digest(&self) -> Digest {
        let mut text = format!(
            "slicebox-slice-v1\ntree {}\nmount {}\n",
            self.tree, self.mount_point
        );
        for entry in &self.env {
            text.push_str("env ");
            text.push_str(&entry.len().to_string());
            text.push(':');
            text.push_str(entry);
            text.push('\n');
        }
        Digest::of(text.as_bytes())
    }

    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .at("write manifest", path)?;
        let text = serde_json::to_string_pretty(self).expect("manifests always serialise");
        file.write_all(text.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .at("write manifest", path)
    }
}

/// A stored slice as the user sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SliceInfo {
    pub digest: Digest,
    pub names: Vec<String>,
    #[serde(flatten)]
    pub manifest: Manifest,
}

impl Store {
    pub fn manifest(&self, slice: &Digest) -> Result<Manifest> {
        let path = self.slice_dir(slice).join("manifest.json");
        let text = fsutil::read_small(&path).at("read manifest", &path)?;
        let manifest = Manifest::parse(text.as_bytes()).map_err(|reason| Error::Corrupt {
            path: path.clone(),
            reason,
        })?;
        if manifest.slice_digest() != *slice {
            return Err(Error::Corrupt {
                path,
                reason: format!("manifest does not hash to {slice}"),
            });
        }
        Ok(manifest)
    }

    pub fn slice_info(&self, slice: &Digest) -> Result<SliceInfo> {
        Ok(SliceInfo {
            digest: *slice,
            names: self.names_of(slice)?,
            manifest: self.manifest(slice)?,
        })
    }

    /// Every named slice, one entry per name, sorted by name, each with
    /// its manifest or why it cannot be read: one damaged slice does not
    /// hide the others.
    #[allow(clippy::type_complexity)]
    pub fn list_named(&self) -> Result<Vec<(String, Digest, Result<Manifest>)>> {
        Ok(refs::list(self)?
            .into_iter()
            .map(|(name, digest)| {
                let manifest = self.manifest(&digest);
                (name, digest, manifest)
            })
            .collect())
    }
}
