//! The foreign mounts of the new root (base dirs, the working directory,
//! slices, binds, tmpfs), parents before children, each with the shadow
//! tmpfs it needs when its mount point is missing in a read-only dir.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::planner::{c, Planner};
use crate::runtime::error::PlanError;
use crate::runtime::layout::shadow::{self, HostView};
use crate::runtime::layout::{self, Mount, Placed, SliceSource, WritableDirs};
use crate::runtime::stage::{Facts, PlannedTmpfs, Stage};
use crate::runtime::steps::{
    Kind, Op, ShadowEntry, ShadowKind, Target, What, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID,
};

pub(super) fn foreign_mounts(
    p: &mut Planner,
    stage: &Stage,
    facts: &Facts,
    mut mounts: Vec<Mount<'_>>,
    host: &dyn HostView,
) -> Result<(), PlanError> {
    layout::parents_first(&mut mounts);
    let writable = WritableDirs::of(&mounts, stage.rw_workdir);
    // Mounts planned so far, by target: a mount's cover is its nearest
    // ancestor in here (a lookup per ancestor, not a scan: 1000 slices).
    let mut placed: HashMap<PathBuf, Placed> = HashMap::new();
    let mut shadows: Vec<PathBuf> = Vec::new();
    for mount in &mounts {
        let target = mount.target();
        let inside_writable = writable.holds(target);
        if !inside_writable {
            if let Some((dir, on_host)) = shadow::needed(&placed, target, host) {
                shadow_step(p, &dir, &on_host, host, &mut placed)?;
                shadows.push(dir);
            }
        }
        placed.insert(target.to_path_buf(), mount.placed(stage.rw_workdir));
        mount_step(p, mount, stage, facts, inside_writable)?;
    }
    for dir in shadows {
        p.push(
            Op::SealShadow {
                target: Target::existing(&dir)?,
            },
            What::SealShadow,
        );
    }
    Ok(())
}

/// Covers `dir` (whose content is `on_host`) with a tmpfs that shows the
/// same entries; its subdirs become mounts of their own, which later
/// mounts below them see as their cover.
fn shadow_step(
    p: &mut Planner,
    dir: &Path,
    on_host: &Path,
    host: &dyn HostView,
    placed: &mut HashMap<PathBuf, Placed>,
) -> Result<(), PlanError> {
    let first_slot = p.slots;
    let mut entries = Vec::new();
    for (name, kind) in host.list(on_host) {
        if matches!(kind, ShadowKind::Dir | ShadowKind::File) {
            p.slot();
        }
        if kind == ShadowKind::Dir {
            let source = Some(on_host.join(&name));
            placed.insert(
                dir.join(&name),
                Placed {
                    source,
                    read_only: true,
                },
            );
        }
        entries.push(ShadowEntry {
            name: c(&name)?,
            kind,
        });
    }
    let options = vec![(c"mode".to_owned(), c"0755".to_owned())];
    let target = Target::existing(dir)?;
    p.push(
        Op::Shadow {
            target,
            entries,
            first_slot,
            options,
        },
        What::Shadow,
    );
    placed.insert(
        dir.to_path_buf(),
        Placed {
            source: None,
            read_only: false,
        },
    );
    Ok(())
}

/// The step that mounts one foreign mount. Inside a writable host dir no
/// mount point is made: nothing is ever created on the host.
fn mount_step(
    p: &mut Planner,
    mount: &Mount<'_>,
    stage: &Stage,
    facts: &Facts,
    inside_writable: bool,
) -> Result<(), PlanError> {
    let mut target = Target::new(mount.target())?;
    target.create = !inside_writable;
    let (op, what) = match mount {
        Mount::Base { slot, .. } => (
            Op::Attach {
                slot: *slot,
                kind: Kind::Dir,
                target,
            },
            What::MountBase,
        ),
        Mount::Workdir { slot, .. } => (
            Op::Attach {
                slot: *slot,
                kind: Kind::Dir,
                target,
            },
            What::MountWorkdir,
        ),
        Mount::Bind { bind, slot } => {
            let kind = if bind.is_dir { Kind::Dir } else { Kind::File };
            (
                Op::Attach {
                    slot: *slot,
                    kind,
                    target,
                },
                What::Bind(bind.source.clone()),
            )
        }
        Mount::Slice { slice, from } => {
            let what = What::MountSlice(slice.label.clone(), slice.tree.clone());
            let op = match from {
                SliceSource::Store {
                    clone_slot,
                    path_slot,
                    relative,
                } => Op::AttachFromStore {
                    clone_slot: *clone_slot,
                    path_slot: *path_slot,
                    relative: relative.clone(),
                    target,
                },
                SliceSource::Host { slot } => Op::Attach {
                    slot: *slot,
                    kind: Kind::Dir,
                    target,
                },
            };
            (op, what)
        }
        Mount::Tmpfs(tmpfs) => (tmpfs_op(tmpfs, stage, facts, target), What::MountFs),
    };
    p.push(op, what);
    Ok(())
}

/// A `--tmpfs`: its mode and size; as root with `--uid`/`--gid` the
/// payload is that real user, and its tmpfs is its own, as a rootless
/// caller's is.
fn tmpfs_op(tmpfs: &PlannedTmpfs, stage: &Stage, facts: &Facts, target: Target) -> Op {
    let number = |n: u64| CString::new(n.to_string()).expect("digits");
    let mut options = vec![(
        c"mode".to_owned(),
        CString::new(format!("{:o}", tmpfs.mode)).expect("digits"),
    )];
    if let Some(size) = tmpfs.size {
        options.push((c"size".to_owned(), number(size)));
    }
    if let Some((uid, gid)) = stage
        .identity
        .filter(|_| super::caller_writes_id_maps(stage, facts))
    {
        options.push((c"uid".to_owned(), number(uid.into())));
        options.push((c"gid".to_owned(), number(gid.into())));
    }
    Op::MountFs {
        fstype: c"tmpfs",
        options,
        attr: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        target,
    }
}
