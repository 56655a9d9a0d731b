//! A mount point missing below a read-only mount cannot be made there: the
//! dir on the way gets a tmpfs that shows the same entries (a shadow).
//! What the planner may learn of host paths for that goes through
//! `HostView`, which tests replace.

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::{holder, Placed};
use crate::runtime::steps::ShadowKind;

/// What the planner may learn of a host path (a read-only mount's source)
/// before cloning: whether a mount point below it exists, and what a dir
/// holds. `RealHost` reads the filesystem; tests use a fixed one.
pub trait HostView {
    /// `None` when the path does not exist.
    fn kind(&self, path: &Path) -> Option<ShadowKind>;
    fn list(&self, dir: &Path) -> Vec<(OsString, ShadowKind)>;
}

pub struct RealHost;

impl HostView for RealHost {
    fn kind(&self, path: &Path) -> Option<ShadowKind> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(if meta.file_type().is_symlink() {
            let text = std::fs::read_link(path).ok()?;
            ShadowKind::Symlink(CString::new(text.into_os_string().into_vec()).ok()?)
        } else if meta.is_dir() {
            ShadowKind::Dir
        } else {
            ShadowKind::File
        })
    }

    fn list(&self, dir: &Path) -> Vec<(OsString, ShadowKind)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<_> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let kind = match e.file_type().ok()? {
                    t if t.is_dir() => ShadowKind::Dir,
                    t if t.is_symlink() => self.kind(&e.path())?,
                    _ => ShadowKind::File,
                };
                Some((e.file_name(), kind))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Where a mount at `target` needs a shadow: below a read-only mount
/// already `placed`, the dir inside the stage to cover and its source on
/// the host. (The caller skips targets inside a writable host dir.)
pub fn needed(
    placed: &HashMap<PathBuf, Placed>,
    target: &Path,
    host: &dyn HostView,
) -> Option<(PathBuf, PathBuf)> {
    let (at, cover) = holder(placed, target).filter(|(_, c)| c.read_only)?;
    missing_below(at, cover, target, host)
}

/// For a mount at `target` below the read-only mount `cover`: the deepest
/// dir of `cover` on the way that exists, when the next component does
/// not (a mount point must be made there, and a read-only mount cannot
/// make it). `None` when the way exists, or stops at something the walk
/// itself will refuse or report.
fn missing_below(
    cover_target: &Path,
    cover: &Placed,
    target: &Path,
    host: &dyn HostView,
) -> Option<(PathBuf, PathBuf)> {
    let source = cover.source.as_ref()?;
    let relative = target.strip_prefix(cover_target).ok()?;
    let (mut inside, mut on_host) = (cover_target.to_path_buf(), source.clone());
    if host.kind(&on_host) != Some(ShadowKind::Dir) {
        return None;
    }
    for part in relative.components() {
        let next = on_host.join(part);
        match host.kind(&next) {
            Some(ShadowKind::Dir) => {}
            None => return Some((inside, on_host)),
            Some(_) => return None,
        }
        inside.push(part);
        on_host = next;
    }
    None
}
