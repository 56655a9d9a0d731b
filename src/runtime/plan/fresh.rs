//! Which dirs on the way to each target are new in the stage's own tmpfs,
//! so the walk makes them without looking first.

use std::collections::HashSet;
use std::ffi::CString;

use crate::runtime::steps::{Op, Step};

/// Finds, for each target, where its dirs start to be new in the stage's
/// own tmpfs root: below no mount, and not made by an earlier target.
pub(super) fn mark_fresh_dirs(steps: &mut [Step]) {
    // An overlay root holds its layers' dirs: none is known to be new.
    if steps
        .iter()
        .any(|s| matches!(s.op, Op::MountOverlayRoot { .. }))
    {
        return;
    }
    // Two passes, so that the sets borrow the steps' own components
    // instead of copying every prefix of every target (at 1000 slices the
    // copies were a quarter of planning).
    let mut fresh_from: Vec<Option<usize>> = vec![None; steps.len()];
    let mut seen: HashSet<&[CString]> = HashSet::new();
    // A set, looked up by each shorter prefix: with 1000 slices a list
    // scanned per step made this quadratic (7% of a 1000-slice start).
    let mut mounted: HashSet<&[CString]> = HashSet::new();
    for (step, fresh) in steps.iter().zip(fresh_from.iter_mut()) {
        let is_mount = !matches!(step.op, Op::Symlink { .. } | Op::RestrictUnixSockets { .. });
        let Some(target) = step.op.target() else {
            continue;
        };
        if target.create {
            for i in 0..target.components.len() {
                let prefix = &target.components[..=i];
                if seen.contains(prefix) {
                    continue;
                }
                if !(1..prefix.len()).any(|len| mounted.contains(&prefix[..len])) {
                    *fresh = Some(i);
                }
                break;
            }
        }
        for i in 0..target.components.len() {
            seen.insert(&target.components[..=i]);
        }
        if is_mount {
            mounted.insert(&target.components);
        }
    }
    for (step, fresh) in steps.iter_mut().zip(fresh_from) {
        if let (Some(target), Some(i)) = (step.op.target_mut(), fresh) {
            target.fresh_from = i;
        }
    }
}
