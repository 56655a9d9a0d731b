//! Where a `--bind` destination lands inside the stage.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use super::holder;
use super::shadow::HostView;
use crate::runtime::error::PlanError;
use crate::runtime::stage::{HostEntry, PlannedBind, Stage};
use crate::runtime::steps::ShadowKind;
use crate::runtime::steps::Target;
use crate::text::printable_path;

/// Every bind with its destination resolved inside the stage. An `--out`
/// dir becomes a slice's mount point, and slices are never mounted
/// through a symlink: the stored slice would be unusable, so its real
/// path inside the stage is named instead.
pub fn bind_destinations(
    stage: &Stage,
    host: &dyn HostView,
) -> Result<Vec<PlannedBind>, PlanError> {
    stage
        .binds
        .iter()
        .map(|b| {
            Target::new(&b.target)?;
            let target = resolve_destination(&b.target, stage, host)?;
            if b.is_output && target != b.target {
                return Err(PlanError::OutputThroughLink {
                    given: printable_path(&b.target),
                    real: printable_path(&target),
                });
            }
            Ok(PlannedBind {
                target,
                ..b.clone()
            })
        })
        .collect()
}

/// Where a `--bind` destination lands inside the stage, following its
/// symlinks there as the payload would see them (bubblewrap binds over a
/// destination that is a symlink). The stage's tree is known before it is
/// built: each path lies in a base dir, the working directory, a slice, a
/// bind (their sources, which the planner can read) or in the stage's own
/// tmpfs (no symlinks but the base dirs' own). Only link texts are read;
/// the result is then walked like any mount point, never through a link,
/// and checked against the stage's own dirs.
pub fn resolve_destination(
    destination: &Path,
    input: &Stage,
    host: &dyn HostView,
) -> Result<PathBuf, PlanError> {
    // Target -> source, in the order the mounts stack at one target.
    let mut covers: HashMap<PathBuf, &Path> = HashMap::new();
    for (path, entry) in &input.base {
        if *entry == HostEntry::Dir {
            covers.insert(path.clone(), path);
        }
    }
    if let Some(workdir) = &input.workdir {
        covers.insert(
            workdir.clone(),
            input.workdir_source.as_ref().unwrap_or(workdir),
        );
    }
    for slice in &input.slices {
        covers.insert(slice.mount_point.clone(), &slice.tree);
    }
    for bind in &input.binds {
        covers.insert(bind.target.clone(), &bind.source);
    }
    let link_at = |path: &Path| -> Option<PathBuf> {
        for (at, entry) in &input.base {
            if let HostEntry::Symlink(text) = entry {
                if at == path {
                    return Some(text.clone());
                }
            }
        }
        // Below a tmpfs of the user's, the stage's own: no links.
        if input.tmpfs.iter().any(|t| path.starts_with(&t.target)) {
            return None;
        }
        let (target, source) = holder(&covers, path)?;
        match host.kind(&source.join(path.strip_prefix(target).ok()?))? {
            ShadowKind::Symlink(text) => Some(PathBuf::from(OsString::from_vec(text.into_bytes()))),
            _ => None,
        }
    };
    let mut todo: std::collections::VecDeque<OsString> = destination
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            _ => None,
        })
        .collect();
    let mut current = PathBuf::from("/");
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            current.pop();
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        let candidate = current.join(&part);
        match link_at(&candidate) {
            Some(text) => {
                hops += 1;
                if hops > 40 {
                    return Err(PlanError::SymlinkLoop(printable_path(destination)));
                }
                if text.is_absolute() {
                    current = PathBuf::from("/");
                }
                for (i, c) in text
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(n) => Some(n.to_os_string()),
                        Component::ParentDir => Some(OsString::from("..")),
                        _ => None,
                    })
                    .enumerate()
                {
                    todo.insert(i, c);
                }
            }
            None => current = candidate,
        }
    }
    Ok(current)
}
