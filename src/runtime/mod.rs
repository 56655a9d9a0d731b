//! The kernel work: a `Stage` becomes namespaces, mounts and one exec, and
//! a `Report` of what became of it.
//!
//! ```text
//! Stage ─ plan (layout) ─> Plan ─┐
//!       ─ prepared ──────> Prepared ─ parent: clone ─> child: exec(Plan), init, payload
//!                                     parent: wait, relay ─> Outcome ─ error ─> Report
//! ```
//! `stage` is the one description; `plan` (with `layout`) turns it into
//! `steps`; `prepared` makes everything the child needs before the clone;
//! `parent` and `child` are the two sides of the clone, which talk through
//! `report`; `exec` runs the steps in the child; `sys` is the one seam
//! every kernel call of the child goes through; `error` words every
//! message; `terminal` and `seccomp` are a stage's pty and system call
//! filter.

mod child;
pub mod clock;
pub mod error;
pub(crate) mod exec;
pub mod layout;
pub mod parent;
pub mod plan;
pub mod prepared;
pub mod report;
pub mod seccomp;
pub mod stage;
pub mod steps;
pub mod sys;
pub mod terminal;
pub mod view;

pub use clock::{now_ns, ChildTimes};
pub use error::{strerror, Error, PlanError};
pub use parent::{forward_signals_to_stage, HostSignals};
pub use prepared::MAX_FDS;
pub use report::{InitStep, Outcome};
pub use stage::{
    host_base, workdir_view, CallerSignals, Facts, HostEntry, PlannedBind, PlannedLayer,
    PlannedSlice, PlannedTmpfs, Rlimit, Stage, WorkdirView,
};

use layout::shadow::RealHost;
use prepared::Prepared;
use terminal::Terminal;

/// What became of a stage, with the message to print when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    pub message: Option<String>,
    /// With `Stage::timed`: when planning began, and the child's times.
    pub times: Option<(u64, ChildTimes)>,
}

/// Runs the stage to completion. `host` reports signals the caller's host
/// (bash) received itself while the stage ran.
pub fn run(stage: &Stage, host: Option<&mut (dyn HostSignals + 'static)>) -> Result<Report, Error> {
    let planning = now_ns();
    let mut stdio = stage.stdio;
    let (mut terminal, terminal_slot) = Terminal::attach(&mut stdio)
        .map_err(|source| Error::Spawn {
            what: "give the stage a terminal of its own",
            source,
            hint: String::new(),
        })?
        .unzip();
    let facts = Facts::read(stage, terminal.as_ref().map(Terminal::number));
    let plan = plan::plan(stage, &facts, &RealHost)?;
    let prepared = Prepared::new(stage, &facts, plan, stdio, terminal_slot)?;
    let (outcome, times) = parent::spawn_and_wait(&prepared, terminal.as_mut(), host)?;
    Ok(Report {
        outcome,
        message: error::outcome_message(stage, &prepared.plan, &prepared.exec_candidates, outcome),
        times: times.map(|t| (planning, t)),
    })
}
