//! Every user-facing message of the runtime, in one place: setup steps,
//! pid 1's and the payload's fixed steps, refused namespaces, and what
//! became of a stage.

use std::ffi::CString;

pub mod init_steps;
pub mod plan_error;

pub use plan_error::PlanError;

use super::report::{Missing, Outcome, StepFailure, SOURCE_FAILED};
use super::stage::Stage;
use super::steps::{Op, Plan, Step, What};
use crate::interp::Kind;
use crate::text::{printable, printable_path};

/// Why the kernel refused a user namespace, read from the settings that
/// decide it (`read` returns a /proc/sys file's text), and what to do.
pub(crate) fn clone_hint(err: &std::io::Error, read: &dyn Fn(&str) -> Option<String>) -> String {
    let setting = |path: &str| read(path).map(|text| text.trim().to_string());
    match err.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EUSERS) => match setting("/proc/sys/user/max_user_namespaces") {
            Some(limit) if limit == "0" => "; user.max_user_namespaces is 0, so no user namespace can be made: as root, \
                 run sysctl -w user.max_user_namespaces=15000"
                .into(),
            Some(limit) => format!(
                "; the limit of user namespaces is reached (user.max_user_namespaces = {limit} here, \
                 or a lower limit of an enclosing namespace): end some, or raise it as root"
            ),
            None => "; the limit of user namespaces is reached (user.max_user_namespaces)".into(),
        },
        Some(libc::EPERM) => {
            if setting("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
                "; kernel.unprivileged_userns_clone is 0, so only root may make user namespaces: as root, \
                 run sysctl -w kernel.unprivileged_userns_clone=1"
                    .into()
            } else if setting("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
                "; AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1): \
                 as root, give slicebox an AppArmor profile with 'userns,' or set the sysctl to 0"
                    .into()
            } else {
                "; user namespaces are refused here, by a seccomp filter or the container this runs in \
                 (Docker's default profile refuses them): run slicebox on the host, or in a container \
                 that allows unshare(CLONE_NEWUSER)"
                    .into()
            }
        }
        _ => String::new(),
    }
}

impl Step {
    /// Completes "cannot …" in the error message.
    pub fn what(&self) -> String {
        let target = || {
            self.op
                .target()
                .map_or(String::new(), |t| printable_path(&t.path))
        };
        let text = |c: &CString| printable(c.as_bytes());
        match (&self.what, &self.op) {
            (What::Text(text), _) => text.to_string(),
            (What::OpenHost, Op::CloneHostTree { path, .. }) => {
                format!("open '{}' on the host", text(path))
            }
            (What::OpenStore, Op::OpenStore { path, .. }) => {
                format!("open the slice store '{}' read-only", text(path))
            }
            (What::OpenSlice(label), _) => format!("open slice '{}'", printable(label.as_bytes())),
            (What::OpenLayer(label, tree), _) => format!(
                "open layer '{}' ('{}')",
                printable(label.as_bytes()),
                printable_path(tree)
            ),
            (What::OpenUpper(dir), _) => format!(
                "open the overlay's upper or work dir '{}'",
                printable_path(dir)
            ),
            (What::MountFs, Op::MountFs { fstype, .. }) => {
                format!("mount {} on {}", fstype.to_string_lossy(), target())
            }
            (What::BindNode, _) => format!("bind {}", target()),
            (What::BindTerminal, _) => format!("bind the stage's terminal {}", target()),
            (What::Symlink, _) => format!("create symlink '{}'", target()),
            (What::MountBase, _) => format!("mount {} read-only", target()),
            (What::MountWorkdir, _) => {
                format!("mount the working directory '{}' read-only", target())
            }
            (What::MountSlice(label, _), _) => {
                format!(
                    "mount slice '{}' at '{}'",
                    printable(label.as_bytes()),
                    target()
                )
            }
            (What::Bind(source), _) => {
                format!("bind '{}' at '{}'", printable_path(source), target())
            }
            (What::Shadow, _) => format!(
                "cover '{}' with a tmpfs showing the same entries, to make a mount point below it",
                target()
            ),
            (What::SealShadow, _) => format!("make the tmpfs over '{}' read-only", target()),
            (What::Chdir, Op::Chdir { path }) => {
                format!("change directory to '{}'", text(path))
            }
            _ => "set up the stage".to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("argument contains a NUL byte")]
    Nul,
    #[error("cannot build the seccomp filter: {0}")]
    Seccomp(#[from] seccompiler::BackendError),
    #[error("cannot {what}: {}{hint}", crate::os::io_cause(.source))]
    Spawn {
        what: &'static str,
        source: std::io::Error,
        hint: String,
    },
}

/// "cannot <step>: <cause>", naming the component a walk stopped at.
pub(crate) fn setup_message(plan: &Plan, failure: StepFailure) -> String {
    let Some(step) = plan.steps.get(failure.step) else {
        return format!("cannot set up the stage: {}", strerror(failure.errno));
    };
    let cause = match (step.op.target(), failure.component) {
        (Some(target), component) if component >= 0 => {
            let at = target.prefix(component as usize);
            match failure.errno {
                libc::ELOOP => format!(
                    "'{}' is a symbolic link, and mount points are never resolved through one",
                    printable_path(&at)
                ),
                libc::ENOTDIR => format!("'{}' is not a directory", printable_path(&at)),
                errno => format!("'{}': {}", printable_path(&at), strerror(errno)),
            }
        }
        (_, SOURCE_FAILED) => format!(
            "'{}': {}",
            step.source().map_or(String::new(), printable_path),
            strerror(failure.errno)
        ),
        _ if matches!(step.op, Op::Chdir { .. }) && failure.errno == libc::ELOOP => format!(
            "{} (links to a process's descriptors, cwd or root are not followed)",
            strerror(failure.errno)
        ),
        _ => strerror(failure.errno),
    };
    // The id maps are the first thing a stage writes: when /proc refuses
    // them, the usual cause is a /proc that another container masks.
    let hint = match &step.op {
        Op::WriteFile { path, .. } if path.to_bytes().starts_with(b"/proc/self/") => {
            "; /proc cannot be written here: inside another container /proc may be masked \
             or read-only, so run slicebox on the host or in a container whose /proc is not masked"
        }
        _ => "",
    };
    format!("cannot {}: {cause}{hint}", step.what())
}

pub use crate::os::strerror;

impl From<SpawnError> for Error {
    fn from(e: SpawnError) -> Error {
        Error::Spawn {
            what: e.what,
            hint: e.hint,
            source: e.source,
        }
    }
}

/// What to print about a stage that did not simply exit or die of a
/// signal.
pub(crate) fn outcome_message(
    stage: &Stage,
    plan: &Plan,
    candidates: &[CString],
    outcome: Outcome,
) -> Option<String> {
    Some(match outcome {
        Outcome::SetupFailed(failure) => setup_message(plan, failure),
        Outcome::InitFailed { step, errno } => {
            format!("cannot {}: {}", step.what(), strerror(errno))
        }
        Outcome::TimedOut => format!(
            "stopped the stage: its --timeout of {} passed",
            stage
                .timeout
                .map(|t| format!("{}s", t.as_secs_f64()))
                .unwrap_or_default()
        ),
        Outcome::ExecFailed {
            missing: Some(missing),
            ..
        } => missing_message(stage, candidates, &missing),
        Outcome::ExecFailed {
            errno, not_found, ..
        } => format!(
            "cannot execute '{}': {}",
            printable(stage.argv[0].as_encoded_bytes()),
            if not_found {
                "command not found".to_string()
            } else {
                strerror(errno)
            }
        ),
        Outcome::Exited(_) | Outcome::Signaled(_) => return None,
    })
}

/// `cannot run './tool.py': its interpreter '/usr/bin/python9' is not in
/// the stage`, naming the file found on PATH when it is not what was typed.
fn missing_message(stage: &Stage, candidates: &[CString], missing: &Missing) -> String {
    let typed = printable(stage.argv[0].as_encoded_bytes());
    let found = candidates
        .get(missing.candidate)
        .map(|c| printable(c.to_bytes()))
        .filter(|found| *found != typed)
        .map(|found| format!(" ({found})"))
        .unwrap_or_default();
    let what = match missing.kind {
        Kind::Script => "its interpreter",
        Kind::Elf => "its loader (ELF interpreter)",
    };
    let named = printable(missing.path());
    if missing.exists {
        format!("cannot run '{typed}'{found}: {what} '{named}' is in the stage but cannot be run itself (what it needs in turn is missing)")
    } else {
        format!("cannot run '{typed}'{found}: {what} '{named}' is not in the stage")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::plan::testing::{plan_of, Input};

    #[test]
    fn a_refused_clone_explains_what_to_check() {
        let error = |errno| std::io::Error::from_raw_os_error(errno);
        let settings = |pairs: &'static [(&'static str, &'static str)]| {
            move |path: &str| {
                pairs
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, v)| format!("{v}\n"))
            }
        };
        let debian = settings(&[("/proc/sys/kernel/unprivileged_userns_clone", "0")]);
        assert!(clone_hint(&error(libc::EPERM), &debian)
            .contains("sysctl -w kernel.unprivileged_userns_clone=1"));
        let ubuntu = settings(&[
            ("/proc/sys/kernel/unprivileged_userns_clone", "1"),
            (
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
                "1",
            ),
        ]);
        assert!(clone_hint(&error(libc::EPERM), &ubuntu).contains("AppArmor"));
        let container = settings(&[]);
        assert!(clone_hint(&error(libc::EPERM), &container).contains("seccomp"));
        let none_allowed = settings(&[("/proc/sys/user/max_user_namespaces", "0")]);
        assert!(clone_hint(&error(libc::ENOSPC), &none_allowed)
            .contains("user.max_user_namespaces is 0"));
        let full = settings(&[("/proc/sys/user/max_user_namespaces", "100")]);
        assert!(clone_hint(&error(libc::ENOSPC), &full).contains("= 100 here"));
        assert_eq!(clone_hint(&error(libc::ENOMEM), &container), "");
    }

    #[test]
    fn a_refused_id_map_names_a_masked_proc() {
        let plan = plan_of(&Input::bare()).unwrap();
        let failure = StepFailure {
            step: 0,
            errno: libc::EACCES,
            component: -1,
        };
        let message = setup_message(&plan, failure);
        assert!(
            message.starts_with("cannot write /proc/self/setgroups: Permission denied"),
            "{message}"
        );
        assert!(message.contains("masked"), "{message}");
    }
}

/// Which part of starting and waiting for a stage failed.
#[derive(Debug)]
pub struct SpawnError {
    pub what: &'static str,
    pub source: std::io::Error,
    /// What to check when the kernel refused the namespaces.
    pub hint: String,
}
