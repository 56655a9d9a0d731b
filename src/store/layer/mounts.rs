//! Records of `layer-mount`s: which layers a mounted view uses, so gc keeps
//! them while it is mounted. A stage's pin lives as long as a process
//! holds its flock; a mount outlives the command that made it, and as root
//! no process serves it at all. So its record says where it is mounted and
//! under which mount id, and it is live while this process's mount table
//! shows that mount at that path (docs/formats.md, "Locking, pins and gc").
//!
//! ```text
//! $SLICEBOX_STORE/
//!   mounts/<unique>           one layer-mount: JSON of LayerMount
//!   mounts/empty/             the empty bottom lower of a one-layer view
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::super::fsutil::{self, write_durably};
use super::super::{Error, IoContext, Result, Store};
use crate::digest::Digest;
use crate::os::MountEntry;

/// How a view was mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
    /// The kernel's OverlayFS, mounted by root.
    Overlay,
    /// fuse-overlayfs through fusermount3, for a user without mount power.
    FuseOverlayfs,
}

/// One layer-mount, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMount {
    /// The mount point, absolute and without symlinks.
    pub dir: PathBuf,
    /// The mount's id in the mount table; none while it is being made.
    pub mount_id: Option<u64>,
    /// How it was mounted; until then, how it is tried first.
    pub kind: MountKind,
    /// The layer references as given, bottom first.
    pub refs: Vec<String>,
    /// The layers the view is made of, bottom first.
    pub layers: Vec<Digest>,
    /// `--upper DIR`, for a writable view.
    pub upper: Option<PathBuf>,
}

impl LayerMount {
    /// Whether `table` (a mount table of this process's mount namespace)
    /// shows this mount where it was made.
    pub fn is_mounted(&self, table: &[MountEntry]) -> bool {
        self.mount_id.is_some_and(|id| {
            table
                .iter()
                .any(|m| m.id == id && m.mount_point == self.dir)
        })
    }
}

/// A record on disk: its path names it for [`Store::finish_layer_mount`]
/// and [`Store::remove_layer_mount`].
#[derive(Debug, Clone)]
pub struct MountRecord {
    pub path: PathBuf,
    pub mount: LayerMount,
}

impl Store {
    fn mounts_dir(&self) -> PathBuf {
        self.root.join("mounts")
    }

    /// An empty directory, the bottom lower dir of a view of one layer:
    /// OverlayFS without an upper dir wants two.
    pub fn empty_lower(&self) -> Result<PathBuf> {
        let dir = self.mounts_dir().join("empty");
        fs::create_dir_all(&dir).at("create store directory", &dir)?;
        Ok(dir)
    }

    /// Records `mount` before it is made. Call it under the shared lock
    /// that resolved its layers and hold that lock until
    /// [`Store::finish_layer_mount`], so gc never sees a half-made mount.
    pub fn begin_layer_mount(&self, mount: &LayerMount) -> Result<MountRecord> {
        let dir = self.mounts_dir();
        fs::create_dir_all(&dir).at("create store directory", &dir)?;
        let name = format!("mount.{}", fsutil::unique_suffix());
        write_durably(&dir, &name, &to_json(mount), "write mount record")?;
        Ok(MountRecord {
            path: dir.join(name),
            mount: mount.clone(),
        })
    }

    /// Completes `record` with how the mount was made and its id.
    pub fn finish_layer_mount(
        &self,
        record: &mut MountRecord,
        kind: MountKind,
        mount_id: u64,
    ) -> Result<()> {
        record.mount.kind = kind;
        record.mount.mount_id = Some(mount_id);
        let name = record.path.file_name().expect("a record has a file name");
        let name = name.to_string_lossy();
        write_durably(
            &self.mounts_dir(),
            &name,
            &to_json(&record.mount),
            "write mount record",
        )
    }

    pub fn remove_layer_mount(&self, record: &MountRecord) -> Result<()> {
        match fs::remove_file(&record.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            removed => removed.at("remove mount record", &record.path),
        }
    }

    /// Every record, mounted or not, in the order they were made.
    pub fn layer_mounts(&self) -> Result<Vec<MountRecord>> {
        let dir = self.mounts_dir();
        let entries = match fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            entries => entries.at("read directory", &dir)?,
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.at("read directory", &dir)?.path();
            let is_record = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("mount."));
            if !is_record {
                continue;
            }
            let text = fs::read(&path).at("read mount record", &path)?;
            let mount = serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
                path: path.clone(),
                reason: format!("not a mount record: {e}"),
            })?;
            out.push(MountRecord { path, mount });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The layers of the views mounted now. With `remove_stale` (gc, under
    /// the exclusive lock), records of views no longer mounted go.
    pub(crate) fn mounted_layers(&self, remove_stale: bool) -> Result<Vec<Digest>> {
        let records = self.layer_mounts()?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let table = crate::os::mount_table().at("read mount table", Path::new(MOUNTINFO))?;
        let mut out = Vec::new();
        for record in records {
            if record.mount.is_mounted(&table) {
                out.extend(record.mount.layers);
            } else if remove_stale {
                self.remove_layer_mount(&record)?;
            }
        }
        Ok(out)
    }
}

const MOUNTINFO: &str = "/proc/self/mountinfo";

fn to_json(mount: &LayerMount) -> Vec<u8> {
    let mut text = serde_json::to_vec_pretty(mount).expect("a mount record always serialises");
    text.push(b'\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, at: &str) -> MountEntry {
        MountEntry {
            id,
            mount_point: PathBuf::from(at),
            fstype: "overlay".into(),
            source: "slicebox".into(),
        }
    }

    #[test]
    fn a_view_is_mounted_only_under_its_own_id_at_its_own_dir() {
        let mount = LayerMount {
            dir: PathBuf::from("/mnt/view"),
            mount_id: Some(42),
            kind: MountKind::Overlay,
            refs: vec!["base".into()],
            layers: Vec::new(),
            upper: None,
        };
        assert!(mount.is_mounted(&[entry(7, "/"), entry(42, "/mnt/view")]));
        // The same id elsewhere (reused), or another mount at the dir.
        assert!(!mount.is_mounted(&[entry(42, "/mnt/other")]));
        assert!(!mount.is_mounted(&[entry(43, "/mnt/view")]));
        let unfinished = LayerMount {
            mount_id: None,
            ..mount
        };
        assert!(!unfinished.is_mounted(&[entry(42, "/mnt/view")]));
    }

    #[test]
    fn records_round_trip_and_stale_ones_go_with_gc() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let layer: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let mount = LayerMount {
            dir: tmp.path().to_path_buf(),
            mount_id: None,
            kind: MountKind::FuseOverlayfs,
            refs: vec!["base".into()],
            layers: vec![layer],
            upper: None,
        };
        let mut record = store.begin_layer_mount(&mount).unwrap();
        // An id no mount has: the record is stale.
        store
            .finish_layer_mount(&mut record, MountKind::FuseOverlayfs, u64::MAX)
            .unwrap();
        let listed = store.layer_mounts().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].mount.mount_id, Some(u64::MAX));
        assert!(store.mounted_layers(false).unwrap().is_empty());
        assert_eq!(store.layer_mounts().unwrap().len(), 1);
        assert!(store.mounted_layers(true).unwrap().is_empty());
        assert!(store.layer_mounts().unwrap().is_empty());
    }
}
