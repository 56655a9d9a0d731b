//! The list of steps being made, and the slots of the fds they keep.

use std::ffi::CStr;
use std::path::Path;

use crate::runtime::error::PlanError;
use crate::runtime::stage::PlannedSlice;
pub use crate::runtime::steps::c;
use crate::runtime::steps::{Op, Plan, Step, Target, What};

pub(super) struct Planner {
    pub(super) steps: Vec<Step>,
    pub(super) slots: usize,
}

impl Planner {
    pub(super) fn new() -> Planner {
        Planner {
            steps: Vec::new(),
            slots: 1, // ROOT
        }
    }

    pub(super) fn push(&mut self, op: Op, what: What) {
        self.steps.push(Step { op, what });
    }

    pub(super) fn slot(&mut self) -> usize {
        self.slots += 1;
        self.slots - 1
    }

    /// A detached clone of a host path with `attr` applied, in a new slot.
    pub(super) fn clone_host(
        &mut self,
        path: &Path,
        attr: u64,
        recursive: bool,
    ) -> Result<usize, PlanError> {
        self.clone_host_for(path, attr, recursive, What::OpenHost)
    }

    /// The same for a slice whose tree lies outside any store layout.
    pub(super) fn clone_host_as(
        &mut self,
        path: &Path,
        attr: u64,
        slice: &PlannedSlice,
    ) -> Result<usize, PlanError> {
        self.clone_host_for(path, attr, true, What::OpenSlice(slice.label.clone()))
    }

    fn clone_host_for(
        &mut self,
        path: &Path,
        attr: u64,
        recursive: bool,
        what: What,
    ) -> Result<usize, PlanError> {
        let slot = self.slot();
        let path = c(path)?;
        self.push(
            Op::CloneHostTree {
                path,
                slot,
                attr,
                recursive,
            },
            what,
        );
        Ok(slot)
    }

    pub(super) fn mount_fs(
        &mut self,
        fstype: &'static CStr,
        options: &[(&CStr, &CStr)],
        attr: u64,
        at: &Path,
    ) -> Result<(), PlanError> {
        self.push(
            Op::MountFs {
                fstype,
                options: options
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                attr,
                target: Target::new(at)?,
            },
            What::MountFs,
        );
        Ok(())
    }

    pub(super) fn symlink(&mut self, text: &Path, link: &Path) -> Result<(), PlanError> {
        self.push(
            Op::Symlink {
                text: c(text)?,
                link: Target::new(link)?,
            },
            What::Symlink,
        );
        Ok(())
    }

    /// The finished plan: fresh dirs marked, and the walk's depth.
    pub(super) fn into_plan(mut self) -> Plan {
        super::fresh::mark_fresh_dirs(&mut self.steps);
        let depth = self
            .steps
            .iter()
            .filter_map(|s| s.op.target())
            .map(|t| t.depth())
            .max()
            .unwrap_or(0);
        Plan {
            steps: self.steps,
            slots: self.slots,
            depth,
        }
    }
}
