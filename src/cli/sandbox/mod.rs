//! `sandbox`: parse the options, resolve slices in the store, build the
//! stage, run it, and turn its outcome into an exit status.
//!
//! `options` parses every option into `Options`; `slices` resolves and
//! pins the slices; `env` builds the payload's environment; `cache` stores
//! a `--cache` stage's inputs and computes its digest (`digest`); `output`
//! makes and stores an `--out` dir; `composition` resolves a stage's
//! parts without running it, for `export-oci`.

mod cache;
mod composition;
mod digest;
mod env;
mod image;
mod options;
mod output;
mod remote;
mod slices;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::{open_store, Context, Exit, Failure, Parsed};
use crate::runtime::{self, Outcome, Stage, WorkdirView};
use crate::text::printable_path;
use options::Options;

pub(in crate::cli) use composition::{compose, ComposedSlice, Composition};

fn setup_failure(message: String) -> Failure {
    Failure {
        message,
        exit: Exit::SETUP_FAILED,
    }
}

/// A store failure before the command runs is a setup failure (125).
fn store_setup_failure(e: crate::store::Error) -> Failure {
    setup_failure(e.to_string())
}

/// The exit status of a stage killed by `--timeout`, as timeout(1) has it.
const TIMED_OUT: i32 = 124;

/// `started`: when the command line began to be parsed (for `SLICEBOX_TIMES`).
pub fn run(parsed: &Parsed, ctx: &Context, started: u64) -> Result<Exit, Failure> {
    if let Some(host) = parsed.last("on") {
        return remote::run(parsed, ctx, host);
    }
    if parsed.has("ship") || parsed.has("remote-store") {
        return Err(Failure::usage(
            "--ship and --remote-store go with --on HOST",
        ));
    }
    let parsed_at = runtime::now_ns();
    let mut options = Options::parse(parsed, ctx)?;
    let store = match options.needs_store(parsed) {
        true => Some(open_store(ctx)?),
        // Only to be listed by `slicebox ps`: a store that cannot be
        // opened (none writable, another user's) leaves the stage unlisted.
        false => super::store_if_usable(ctx),
    };
    let resolved = slices::resolve(store.as_ref(), parsed)?;
    let mut command = parsed.operands.clone();
    if let Some(config) = &resolved.image {
        // What the command line says wins over the image's config.
        command = image::command(config, &parsed.operands).unwrap_or_default();
        if options.identity.is_none() {
            options.identity = image::identity(config)?;
        }
        if options.chdir.is_none() {
            options.chdir = image::start_dir(config)?;
        }
    }
    let env = env::stage_env(parsed, ctx, &resolved)?;
    let output = match (&options.output, &store) {
        (Some(spec), Some(store)) => Some(output::Output::prepare(store, spec, options.identity)?),
        _ => None,
    };
    let mut stage = build_stage(
        parsed,
        &command,
        ctx,
        &options,
        resolved.slices.clone(),
        env,
        &output,
    )?;
    if !resolved.layers.is_empty() {
        // The layers are the base: nothing of the host's is shown.
        stage.layers = resolved.layers.clone();
        stage.base = Vec::new();
    }
    if let Some(dir) = parsed.last("upper") {
        stage.upper = Some(upper_dirs(parsed, dir, store.as_ref())?);
    }
    let remembered = match (&output, &store, options.cache) {
        (Some(output), Some(store), true) => {
            match cache::prepare(ctx, store, &mut stage, &resolved.mounted, output, &options)? {
                cache::Prepared::Reused => return Ok(Exit::SUCCESS),
                cache::Prepared::Ended(exit) => return Ok(exit),
                cache::Prepared::Run(run) => Some(run),
            }
        }
        _ => None,
    };
    let exit = run_stage(ctx, &stage, started, parsed_at)?;
    if let (Some(output), Some(store), Exit::SUCCESS) = (&output, &store, exit) {
        let deadline = options.timeout.map(|t| std::time::Instant::now() + t);
        let stored = match output.store(ctx, store, &options.limits, deadline)? {
            Ok(stored) => stored,
            Err(ended) => return Ok(ended),
        };
        // Said at a terminal only: a script's stages stay quiet, as on a hit.
        if crate::os::is_terminal(ctx.stdio[2]) {
            ctx.err(&format!("sandbox: {}\n", output.stored_message(&stored)));
        }
        if let Some(run) = &remembered {
            store.remember_output(&run.digest, &stored)?;
        }
    }
    Ok(exit)
}

/// The stage: the command (or the user's shell), its environment, slices,
/// binds (and the `--out` dir), the working directory and every option.
fn build_stage(
    parsed: &Parsed,
    command: &[OsString],
    ctx: &Context,
    options: &Options,
    slices: Vec<runtime::PlannedSlice>,
    env: Vec<OsString>,
    output: &Option<output::Output>,
) -> Result<Stage, Failure> {
    // No command: the user's shell, interactive when stdin is a terminal.
    let (argv, fallback) = if command.is_empty() {
        let shell = crate::env::value(&env, b"SHELL")
            .filter(|s| s.starts_with(b"/"))
            .map(|s| OsString::from_vec(s.to_vec()))
            .unwrap_or_else(|| OsString::from("/bin/sh"));
        (vec![shell], Some(OsString::from("/bin/sh")))
    } else {
        (command.to_vec(), None)
    };
    let cwd = std::env::current_dir().map_err(|e| {
        setup_failure(format!(
            "cannot read the current directory: {}",
            crate::text::io_cause(&e)
        ))
    })?;
    let mut binds = options::binds(parsed, &cwd)?;
    binds.extend(output.as_ref().map(output::Output::bind));
    let base = runtime::host_base();
    let workdir = shown_workdir(ctx, options, cwd, &base);
    let start_dir = options
        .chdir
        .clone()
        .or_else(|| workdir.clone())
        .unwrap_or_else(|| PathBuf::from("/"));
    Ok(Stage {
        argv,
        fallback,
        env,
        slices,
        layers: Vec::new(),
        upper: None,
        base,
        workdir,
        workdir_source: None,
        start_dir,
        isolate_net: options.isolate_net,
        binds,
        stdio: ctx
            .stdio
            .map(|fd| if crate::os::is_open(fd) { fd } else { -1 }),
        fds: options.fds.clone(),
        ignored_signals: ctx.ignored_signals.clone(),
        caller_signals: ctx.caller_signals,
        dev: options.dev,
        tmpfs: options.tmpfs.clone(),
        rw_workdir: options.rw_cwd,
        hostname: options.hostname.clone(),
        identity: options.identity,
        rlimits: options.rlimits.clone(),
        timeout: options.timeout,
        seccomp: options.seccomp.clone(),
        timed: ctx
            .var("SLICEBOX_TIMES")
            .is_some_and(|v| !v.is_empty() && v != "0"),
    })
}

/// `--upper DIR`: DIR and OverlayFS's work dir `DIR.work` beside it (on
/// the same filesystem, as OverlayFS needs), for a root of layers.
fn upper_dirs(
    parsed: &Parsed,
    dir: &std::ffi::OsStr,
    store: Option<&crate::store::Store>,
) -> Result<(PathBuf, PathBuf), Failure> {
    if !parsed.has("layer") && !parsed.has("image") {
        return Err(Failure::usage(
            "--upper needs a root of layers: --layer or --image",
        ));
    }
    if parsed.has("cache") {
        return Err(Failure::usage(
            "--cache refuses --upper: what the stage writes there is no declared output",
        ));
    }
    upper_and_work_dirs(dir, store)
}

/// `--upper DIR` (of a stage or a layer-mount): DIR and `DIR.work`, made
/// where missing, and never inside the store.
pub(in crate::cli) fn upper_and_work_dirs(
    dir: &std::ffi::OsStr,
    store: Option<&crate::store::Store>,
) -> Result<(PathBuf, PathBuf), Failure> {
    let upper = std::path::absolute(dir).map_err(|e| {
        setup_failure(format!(
            "cannot use --upper '{}': {}",
            printable_path(Path::new(dir)),
            crate::text::io_cause(&e)
        ))
    })?;
    let mut work = upper.clone().into_os_string();
    work.push(".work");
    let work = PathBuf::from(work);
    // The store's files are hardlinks of its objects: an upper among
    // them would write into what every slice and layer shares.
    let store_root = store.and_then(|s| s.root().canonicalize().ok());
    for made in [&upper, &work] {
        let in_store = |dir: &Path| {
            let real = dir.canonicalize().ok();
            store_root
                .as_ref()
                .is_some_and(|root| real.is_some_and(|r| r.starts_with(root)))
        };
        let existing = made.ancestors().find(|a| a.exists()).unwrap_or(made);
        if in_store(existing) {
            return Err(Failure::usage(format!(
                "--upper '{}' is inside the store: a stage would write into its files",
                printable_path(made)
            )));
        }
        std::fs::create_dir_all(made).map_err(|e| {
            setup_failure(format!(
                "cannot make the --upper dir '{}': {}",
                printable_path(made),
                crate::text::io_cause(&e)
            ))
        })?;
    }
    Ok((upper, work))
}

/// The working directory the stage shows, or none, with a note when it
/// cannot be shown and the user did not say where to start.
fn shown_workdir(
    ctx: &Context,
    options: &Options,
    cwd: PathBuf,
    base: &[(PathBuf, runtime::HostEntry)],
) -> Option<PathBuf> {
    if options.no_cwd {
        return None;
    }
    match runtime::workdir_view(&cwd, base) {
        WorkdirView::Hidden(why) => {
            if options.chdir.is_none() {
                ctx.err(&format!(
                    "sandbox: note: the working directory '{}' is not shown inside: {why}; \
                     the command starts in / (--no-cwd says so quietly)\n",
                    printable_path(&cwd)
                ));
            }
            None
        }
        WorkdirView::Shown | WorkdirView::InsideBase => Some(cwd),
    }
}

/// Runs the stage, prints what became of it, and maps that to an exit.
fn run_stage(ctx: &Context, stage: &Stage, started: u64, parsed_at: u64) -> Result<Exit, Failure> {
    let mut host_signals = ctx.host_signals.and_then(|make| make());
    let report = runtime::run(stage, host_signals.as_deref_mut()).map_err(|e| match e {
        // Mount points that can never work are the arguments' fault.
        runtime::Error::Plan(_) => Failure::usage(e.to_string()),
        _ => setup_failure(e.to_string()),
    })?;
    if let Some(message) = &report.message {
        ctx.err(&format!("sandbox: {message}\n"));
    }
    if let Some((planning, child)) = report.times {
        ctx.err(&format!(
            "sandbox: {}\n",
            step_times(started, parsed_at, planning, &child)
        ));
    }
    Ok(match report.outcome {
        Outcome::Exited(code) => Exit::code(code),
        Outcome::Signaled(signal) => Exit {
            code: 128 + signal,
            signal: Some(signal),
        },
        Outcome::SetupFailed { .. } | Outcome::InitFailed { .. } => Exit::SETUP_FAILED,
        Outcome::ExecFailed { not_found, .. } => Exit::code(if not_found { 127 } else { 126 }),
        Outcome::TimedOut => Exit::code(TIMED_OUT),
    })
}

/// One line of a stage's start, step by step, in µs (`SLICEBOX_TIMES=1`).
/// A step whose end the child did not reach (a failed setup) shows `-`.
fn step_times(started: u64, parsed: u64, planning: u64, child: &runtime::ChildTimes) -> String {
    let m = child.marks;
    let span = |from: u64, to: u64| {
        if from == 0 || to == 0 || to < from {
            "-".to_string()
        } else {
            ((to - from) / 1000).to_string()
        }
    };
    format!(
        "times in µs: parse {}, store and options {}, plan {}, clone {}, setup {}, start command {}, command {}, teardown {} (total {})",
        span(started, parsed),
        span(parsed, planning),
        span(planning, child.cloned),
        span(child.cloned, m[0]),
        span(m[0], m[1]),
        span(m[1], m[3]),
        span(m[3], m[4]),
        span(m[4], child.reaped),
        span(started, runtime::now_ns()),
    )
}
