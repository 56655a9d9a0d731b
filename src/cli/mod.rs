//! The one front end shared by the bash builtins and the executable: both
//! hand over argv, the descriptors to use as stdio, and the environment.

mod args;
mod doctor;
mod export;
mod export_oci;
pub mod generate;
pub mod helper;
mod layer_mount;
mod layers;
mod messages;
mod ps;
mod remote;
mod sandbox;
mod slice_env;
mod slices;
pub mod spec;
mod tar_write;

use std::ffi::OsString;
use std::os::fd::RawFd;

pub use args::{parse, Parsed, UsageError};

/// Makes the host's signal reporter for one stage (bash's, in the builtin).
pub type HostSignalSource = fn() -> Option<Box<dyn crate::runtime::HostSignals>>;

/// Everything a command may use from its caller.
#[derive(Debug, Clone)]
pub struct Context {
    /// Descriptors that act as stdin, stdout and stderr.
    pub stdio: [RawFd; 3],
    /// `NAME=VALUE` entries: the environment an external command would get.
    pub env: Vec<OsString>,
    /// Signals the payload keeps ignored (inherited `trap '' SIG` state).
    pub ignored_signals: Vec<i32>,
    /// Whether dispositions other than `ignored_signals` may have changed.
    pub caller_signals: crate::runtime::CallerSignals,
    /// Where signals that the host (bash) handled itself while a stage ran
    /// can be learnt, to pass them on to the stage.
    pub host_signals: Option<HostSignalSource>,
    /// The caller lives on after the command (bash, a host of the C API):
    /// work on untrusted content, and work whose memory grows with the
    /// store, runs in a helper process so that the caller's size stays
    /// what it was ([`Context::run_untrusted`]). The executable's memory
    /// dies with it, so it runs such work itself.
    pub long_lived: bool,
}

impl Context {
    pub fn var(&self, name: &str) -> Option<String> {
        crate::env::value(&self.env, name.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub(crate) fn env_pairs(&self) -> Vec<(String, String)> {
        ["SLICEBOX_STORE", "XDG_DATA_HOME", "HOME"]
            .iter()
            .filter_map(|k| Some((k.to_string(), self.var(k)?)))
            .collect()
    }

    /// Runs `work` where the project's rule puts work on untrusted
    /// content or on the whole store: in a helper process when the caller
    /// is long-lived or `deadline` must be kept (the helper is killed then),
    /// in this process otherwise. See [`helper`].
    pub fn run_untrusted<T, F>(
        &self,
        deadline: Option<std::time::Instant>,
        work: F,
    ) -> Result<T, helper::HelperError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        F: FnOnce() -> T,
    {
        if !self.long_lived && deadline.is_none() {
            return Ok(work());
        }
        helper::Helper {
            ignored_signals: &self.ignored_signals,
            host_signals: self.host_signals,
            deadline,
        }
        .run(work)
    }

    pub fn out(&self, text: &str) {
        write_fd(self.stdio[1], text.as_bytes());
    }

    /// Messages are escaped once more here: whatever untrusted text a
    /// message still holds, no control character but a newline reaches the
    /// user's terminal.
    pub fn err(&self, text: &str) {
        write_fd(self.stdio[2], crate::text::escape_controls(text).as_bytes());
    }
}

/// How a command ended. `signal` is set when the payload died of a
/// signal, so the executable can die of the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exit {
    pub code: i32,
    pub signal: Option<i32>,
}

impl Exit {
    pub const SUCCESS: Exit = Exit {
        code: 0,
        signal: None,
    };
    pub const FAILURE: Exit = Exit {
        code: 1,
        signal: None,
    };
    pub const USAGE: Exit = Exit {
        code: 2,
        signal: None,
    };
    pub const SETUP_FAILED: Exit = Exit {
        code: 125,
        signal: None,
    };

    pub fn code(code: i32) -> Exit {
        Exit { code, signal: None }
    }
}

/// The process environment as `NAME=VALUE` entries: what the executable
/// and non-bash hosts pass on.
pub fn process_env() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(name, value)| {
            let mut entry = name;
            entry.push("=");
            entry.push(value);
            entry
        })
        .collect()
}

pub use crate::os::{is_open, write_all as write_fd};

/// Runs the command `name` with `args` (argv without the command name).
pub fn run(name: &str, args: &[OsString], ctx: &Context) -> Exit {
    let started = crate::runtime::now_ns();
    let Some(spec) = spec::find(name) else {
        ctx.err(&format!(
            "slicebox: unknown command '{}'{}\n",
            crate::text::printable(name.as_bytes()),
            crate::suggest::hint(name, spec::COMMANDS.iter().map(|c| c.name))
        ));
        return Exit::USAGE;
    };
    let parsed = match parse(spec, args) {
        Ok(p) => p,
        Err(e) => {
            ctx.err(&format!(
                "{name}: {e}{}\nUsage: {}\n",
                e.hint(spec),
                spec.usage
            ));
            return Exit::USAGE;
        }
    };
    if parsed.has("help") {
        ctx.out(&spec.help());
        return Exit::SUCCESS;
    }
    let result = match name {
        "sandbox" => sandbox::run(&parsed, ctx, started),
        // Forks probes: in this process, never in a helper.
        "doctor" => doctor::run(&parsed, ctx),
        "ps" => ps::run(&parsed, ctx),
        // Its own process: `ssh HOST slicebox serve --stdio`.
        "serve" => remote::serve(&parsed, ctx),
        "slice-push" => ctx
            .run_untrusted(None, || remote::push(&parsed, ctx))
            .unwrap_or_else(helper::HelperError::outcome),
        "slice-pull" => ctx
            .run_untrusted(None, || remote::pull(&parsed, ctx))
            .unwrap_or_else(helper::HelperError::outcome),
        "export-oci" => ctx
            .run_untrusted(None, || export_oci::run(&parsed, ctx))
            .unwrap_or_else(helper::HelperError::outcome),
        // Every store command reads a stranger's content or grows with the
        // store, and a helper costs about 0.45 ms here (a bash subshell
        // costs 0.3): all of them run in one.
        _ => ctx
            .run_untrusted(None, || slices::run(name, &parsed, ctx))
            .unwrap_or_else(helper::HelperError::outcome),
    };
    match result {
        Ok(exit) => exit,
        Err(failure) => {
            ctx.err(&format!("{name}: {}\n", failure.message));
            if failure.exit == Exit::USAGE {
                ctx.err(&format!("Usage: {}\n", spec.usage));
            }
            failure.exit
        }
    }
}

/// A message for the user and the status that goes with it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub message: String,
    pub exit: Exit,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            exit: Exit::USAGE,
        }
    }
}

impl From<crate::store::Error> for Failure {
    fn from(e: crate::store::Error) -> Failure {
        Failure {
            message: e.to_string(),
            exit: Exit::FAILURE,
        }
    }
}

/// The store a stage uses: failing to open it is a setup failure (125), as
/// is any step before the command runs.
fn open_store(ctx: &Context) -> Result<crate::store::Store, Failure> {
    open_store_or(ctx, Exit::SETUP_FAILED)
}

/// The store from the caller's environment, quietly `None` when it cannot
/// be opened (or made).
fn store_if_usable(ctx: &Context) -> Option<crate::store::Store> {
    let root = crate::store::Store::default_root(&ctx.env_pairs())?;
    let store = crate::store::Store::open(&root).ok()?;
    say_if_made_private(ctx, &store);
    Some(store)
}

/// The store from the caller's environment; a failure to open it ends the
/// command with `exit`.
fn open_store_or(ctx: &Context, exit: Exit) -> Result<crate::store::Store, Failure> {
    let failure = |message: String| Failure { message, exit };
    let root = crate::store::Store::default_root(&ctx.env_pairs())
        .ok_or_else(|| failure("cannot find the store: set SLICEBOX_STORE or HOME".into()))?;
    let store = crate::store::Store::open(&root).map_err(|e| failure(e.to_string()))?;
    say_if_made_private(ctx, &store);
    Ok(store)
}

/// Opening a store makes it private to its owner: say so when it was not.
fn say_if_made_private(ctx: &Context, store: &crate::store::Store) {
    if let Some(mode) = store.made_private_from() {
        ctx.err(&format!(
            "slicebox: note: the store '{}' was open to other users (mode {mode:o}); it is private to you now (mode {:o})\n",
            crate::text::printable_path(store.root()),
            mode & 0o7700
        ));
    }
}
