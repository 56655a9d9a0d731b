//! `sandbox`: resolve slices in the store, build the stage, run it, and
//! turn its outcome into an exit status.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::{is_open, open_store, Context, Exit, Failure, Parsed};
use crate::runtime::{self, Outcome, PlannedSlice, Stage, WorkdirView};
use crate::text::{printable, printable_path};

fn setup_failure(message: String) -> Failure {
    Failure {
        message,
        exit: Exit::SETUP_FAILED,
    }
}

/// `started`: when the command line began to be parsed (for `SLICEBOX_TIMES`).
pub fn run(parsed: &Parsed, ctx: &Context, started: u64) -> Result<Exit, Failure> {
    let parsed_at = runtime::now_ns();
    let isolate_net = match parsed.last("net").map(|v| v.as_bytes()) {
        None | Some(b"host") => false,
        Some(b"none") => true,
        Some(other) => {
            return Err(Failure::usage(format!(
                "--net must be 'host' or 'none', not '{}'",
                printable(other)
            )))
        }
    };
    let fds = passed_fds(parsed)?;
    let tmpfs = parsed
        .values("tmpfs")
        .map(planned_tmpfs)
        .collect::<Result<Vec<_>, _>>()?;
    let identity = identity(parsed)?;
    let hostname = match parsed.last("hostname") {
        Some(name) if name.is_empty() || name.len() > 64 => {
            return Err(Failure::usage(format!(
                "--hostname needs 1 to 64 bytes, not '{}'",
                printable(name.as_bytes())
            )))
        }
        other => other.map(|n| n.to_os_string()),
    };
    let timeout = parsed
        .last("timeout")
        .map(|value| {
            duration(value).ok_or_else(|| {
                Failure::usage(format!(
                    "--timeout needs a duration above 0 such as 30, 1.5s, 500ms, 2m or 1h, not '{}'",
                    printable(value.as_bytes())
                ))
            })
        })
        .transpose()?;
    let rlimits = parsed
        .values("rlimit")
        .map(rlimit)
        .collect::<Result<Vec<_>, _>>()?;
    let seccomp = seccomp_filter(parsed)?;
    let chdir = parsed.last("chdir").map(PathBuf::from);
    if chdir.as_ref().is_some_and(|d| !d.is_absolute()) {
        return Err(Failure::usage("--chdir needs an absolute path"));
    }
    let output = parsed.last("out").map(output_spec).transpose()?;
    // An --out dir is ingested as slice-add ingests, and a --cache stage's
    // inputs are read the same way: under the same limits.
    if output.is_none() && parsed.has("limit") {
        return Err(Failure::usage(
            "--limit needs --out DIR=NAME: it limits what a stage stores",
        ));
    }
    let limits = crate::store::Limits::from_settings(
        ctx.var("SLICEBOX_LIMITS")
            .as_deref()
            .filter(|_| output.is_some()),
        parsed
            .values("limit")
            .map(|v| v.to_str().unwrap_or("(not UTF-8)")),
    )
    .map_err(|e| Failure::usage(printable(e.as_bytes())))?;
    let cache = parsed.has("cache");
    if cache {
        refuse_undeclared_inputs(parsed, isolate_net, output.is_some())?;
    }

    let mut slices = Vec::new();
    let mut env: Vec<OsString> = if parsed.has("clearenv") {
        Vec::new()
    } else {
        ctx.env.clone()
    };
    let slice_refs: Vec<_> = parsed.values("slice").collect();
    let needs_store = !slice_refs.is_empty() || output.is_some();
    let store = if needs_store {
        Some(open_store(ctx)?)
    } else {
        None
    };
    // Held until the stage ends, so slice-gc keeps what it mounts.
    let mut _pin = None;
    let mut mounted: Vec<(OsString, crate::digest::Digest)> = Vec::new();
    if let (Some(store), false) = (&store, slice_refs.is_empty()) {
        // Resolving and pinning under the shared lock: gc cannot run between.
        let lock = store.lock_shared()?;
        let mut digests = Vec::new();
        let refs: Vec<(String, Option<String>)> = slice_refs
            .iter()
            .map(|reference| {
                let text = reference.to_string_lossy();
                match text.split_once(':') {
                    // `sha256:…` is a digest, not NAME:MOUNTPOINT.
                    Some((n, rest)) if n != "sha256" => (n.to_string(), Some(rest.to_string())),
                    Some(("sha256", rest)) if rest.contains(':') => {
                        let (hex, at) = rest.split_once(':').expect("checked above");
                        (format!("sha256:{hex}"), Some(at.to_string()))
                    }
                    _ => (text.to_string(), None),
                }
            })
            .collect();
        let names: Vec<&str> = refs.iter().map(|(name, _)| name.as_str()).collect();
        for ((name, at), found) in refs.iter().zip(store.resolve_slices(&names)) {
            let failure = |e: crate::store::Error| {
                setup_failure(format!(
                    "cannot use slice '{}': {e}",
                    printable(name.as_bytes())
                ))
            };
            let (digest, manifest) = found.map_err(failure)?;
            let mount_point = match at {
                Some(at) => crate::store::validate_mount_point(at)
                    .map_err(|e| Failure::usage(e.to_string()))?,
                None => manifest.mount_point.clone(),
            };
            // In --slice order, each entry seeing what the ones before it
            // set: `PATH=/opt/node/bin:${PATH}` puts a later slice first.
            for entry in &manifest.env {
                let expanded = expand(entry.as_bytes(), &env);
                set_env(&mut env, OsString::from_vec(expanded));
            }
            digests.push(digest);
            mounted.push((OsString::from(&mount_point), digest));
            slices.push(PlannedSlice {
                label: name.clone(),
                tree: store.slice_tree(&digest),
                mount_point: PathBuf::from(mount_point),
            });
        }
        _pin = Some(store.pin(&digests)?);
        drop(lock);
    }
    // A prompt can test these; set before --env and --unsetenv, which may
    // change them.
    set_env(&mut env, OsString::from("SLICEBOX_STAGE=1"));
    let mut names = OsString::from("SLICEBOX_SLICES=");
    names.push(
        slices
            .iter()
            .map(|s| s.label.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    );
    set_env(&mut env, names);
    for entry in parsed.values("env") {
        if !entry.as_bytes().contains(&b'=') {
            return Err(Failure::usage(format!(
                "--env needs NAME=VALUE, not '{}'",
                printable(entry.as_bytes())
            )));
        }
        set_env(&mut env, entry.to_os_string());
    }
    for name in parsed.values("unsetenv") {
        env.retain(|e| env_name(e) != name.as_bytes());
    }

    // No command: the user's shell, interactive when stdin is a terminal.
    let (argv, fallback) = if parsed.operands.is_empty() {
        let shell = super::env_value(&env, b"SHELL")
            .filter(|s| s.starts_with(b"/"))
            .map(|s| OsString::from_vec(s.to_vec()))
            .unwrap_or_else(|| OsString::from("/bin/sh"));
        (vec![shell], Some(OsString::from("/bin/sh")))
    } else {
        (parsed.operands.clone(), None)
    };

    let cwd = std::env::current_dir()
        .map_err(|e| setup_failure(format!("cannot read the current directory: {e}")))?;
    let mut binds = parsed
        .options
        .iter()
        .filter_map(|(name, value)| match *name {
            "bind" => Some((true, value.as_deref()?)),
            "ro-bind" => Some((false, value.as_deref()?)),
            _ => None,
        })
        .map(|(writable, value)| planned_bind(value, writable, &cwd))
        .collect::<Result<Vec<_>, _>>()?;
    let output_dir = match (&output, &store) {
        (Some((dir, _)), Some(store)) => {
            let made = store.output_dir()?;
            // As root with --uid/--gid the command is that real user: the
            // output dir is its own, as a rootless caller's is.
            if let (Some((uid, gid)), true) = (identity, nix::unistd::geteuid().is_root()) {
                std::os::unix::fs::chown(&made.path, Some(uid), Some(gid)).map_err(|e| {
                    setup_failure(format!(
                        "cannot give the --out dir to uid {uid}: {}",
                        runtime::strerror(e.raw_os_error().unwrap_or(libc::EIO))
                    ))
                })?;
            }
            binds.push(runtime::PlannedBind {
                source: made.path.clone(),
                target: dir.clone(),
                writable: true,
                is_dir: true,
                is_output: true,
            });
            Some(made)
        }
        _ => None,
    };
    let base = runtime::host_base();
    let workdir = if parsed.has("no-cwd") {
        None
    } else {
        match runtime::workdir_view(&cwd, &base) {
            WorkdirView::Hidden(why) => {
                if chdir.is_none() {
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
    };
    let start_dir = chdir
        .or_else(|| workdir.clone())
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut stage = Stage {
        argv,
        fallback,
        env,
        slices,
        base,
        workdir,
        workdir_source: None,
        start_dir,
        isolate_net,
        binds,
        stdio: ctx.stdio.map(|fd| if is_open(fd) { fd } else { -1 }),
        fds,
        ignored_signals: ctx.ignored_signals.clone(),
        dev: parsed.has("dev"),
        tmpfs,
        rw_workdir: parsed.has("rw-cwd"),
        hostname,
        identity,
        rlimits,
        timeout,
        seccomp,
        timed: ctx
            .var("SLICEBOX_TIMES")
            .is_some_and(|v| !v.is_empty() && v != "0"),
    };
    // A --cache stage either reuses an earlier output, or runs with stdin
    // from /dev/null: input it reads must be declared, and stdin is not.
    let mut _null = None;
    let mut _snapshots = None;
    let stage_digest = match (&output, &store, cache) {
        (Some((dir, name)), Some(store), true) => {
            // A --cache stage's host name is fixed, as it is part of what
            // the command can read: a host's own name is no input.
            stage
                .hostname
                .get_or_insert_with(|| OsString::from(CACHE_HOSTNAME));
            let snapshots = snapshot_inputs(store, &mut stage, limits)?;
            let digest =
                super::stage_digest::stage_digest(&stage, &mounted, &snapshots.trees, dir)?;
            _snapshots = Some(snapshots);
            if let Some(reused) = store.reuse_output(&digest, name)? {
                ctx.err(&format!(
                    "sandbox: --cache: '{}' is {reused}, stored by an earlier run of this stage; the command did not run\n",
                    printable(name.as_bytes())
                ));
                return Ok(Exit::SUCCESS);
            }
            let null = std::fs::File::open("/dev/null")
                .map_err(|e| setup_failure(format!("cannot open '/dev/null': {e}")))?;
            stage.stdio[0] = std::os::fd::AsRawFd::as_raw_fd(&null);
            _null = Some(null);
            Some(digest)
        }
        _ => None,
    };
    let mut host_signals = ctx.host_signals.and_then(|make| make());
    let report = runtime::run(&stage, host_signals.as_deref_mut()).map_err(|e| match e {
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
    let exit = match report.outcome {
        Outcome::Exited(code) => Exit::code(code),
        Outcome::Signaled(signal) => Exit {
            code: 128 + signal,
            signal: Some(signal),
        },
        Outcome::SetupFailed { .. } | Outcome::InitFailed { .. } => Exit::SETUP_FAILED,
        Outcome::ExecFailed { not_found, .. } => Exit::code(if not_found { 127 } else { 126 }),
        Outcome::TimedOut => Exit::code(TIMED_OUT),
    };
    if let (Some((dir, name)), Some(made), Some(store), Exit::SUCCESS) =
        (&output, &output_dir, &store, exit)
    {
        let stored = store_output(store, made, dir, name, &limits)?;
        if let Some(stage_digest) = stage_digest {
            store.remember_output(&stage_digest, &stored)?;
        }
    }
    Ok(exit)
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

/// The host name of a `--cache` stage that names none.
const CACHE_HOSTNAME: &str = "localhost";

/// What a `--cache` stage reads from the host, stored before it runs: the
/// stage mounts these snapshots, not the live paths, so what it sees is
/// exactly what its digest covers, whatever writes to the host meanwhile.
struct Snapshots {
    /// Keeps the unnamed snapshot slices from slice-gc while the stage runs.
    _pin: crate::store::Pin,
    /// (where the stage sees it, its tree digest), for the stage digest.
    trees: Vec<(PathBuf, crate::digest::Digest)>,
}

/// Stores the working directory and each `--ro-bind` source as unnamed
/// slices, through slice-add's ingest (a file bind as a tree of one file,
/// so that its executable bit counts), and points the stage at them.
fn snapshot_inputs(
    store: &crate::store::Store,
    stage: &mut Stage,
    limits: crate::store::Limits,
) -> Result<Snapshots, Failure> {
    // Held from the first store to the pin: gc cannot remove a snapshot
    // that no name points at in between.
    let _lock = store.lock_shared().map_err(store_setup_failure)?;
    let mut slices = Vec::new();
    let mut trees = Vec::new();
    if let Some(dir) = stage.workdir.clone() {
        let (slice, tree) = snapshot(store, &dir, "the working directory", &dir, limits)?;
        stage.workdir_source = Some(store.slice_tree(&slice));
        slices.push(slice);
        trees.push((dir, tree));
    }
    for bind in stage.binds.iter_mut().filter(|b| !b.is_output) {
        let (slice, tree) = if bind.is_dir {
            snapshot(store, &bind.source, "--ro-bind", &bind.target, limits)?
        } else {
            let scratch = store.output_dir().map_err(store_setup_failure)?;
            let copy = scratch.path.join(FILE_SNAPSHOT);
            std::fs::copy(&bind.source, &copy).map_err(|e| {
                setup_failure(format!(
                    "cannot store --ro-bind '{}' for --cache: {}",
                    printable_path(&bind.source),
                    runtime::strerror(e.raw_os_error().unwrap_or(libc::EIO))
                ))
            })?;
            snapshot(store, &scratch.path, "--ro-bind", &bind.target, limits)?
        };
        bind.source = store.slice_tree(&slice);
        if !bind.is_dir {
            bind.source.push(FILE_SNAPSHOT);
        }
        slices.push(slice);
        trees.push((bind.target.clone(), tree));
    }
    crate::store::pause_point("sandbox:inputs-stored");
    let pin = store.pin(&slices).map_err(store_setup_failure)?;
    Ok(Snapshots { _pin: pin, trees })
}

/// The name of a file `--ro-bind` source in its one-file snapshot tree.
const FILE_SNAPSHOT: &str = "file";

/// One snapshot: the slice digest and its tree digest. `what` and `shown`
/// (the path inside the stage) name it, and a refused entry is named by
/// its path below `shown`.
fn snapshot(
    store: &crate::store::Store,
    source: &Path,
    what: &str,
    shown: &Path,
    limits: crate::store::Limits,
) -> Result<(crate::digest::Digest, crate::digest::Digest), Failure> {
    let added = store
        .add_unnamed(
            &crate::store::Source::Directory(source.to_path_buf()),
            &crate::store::IngestOptions {
                mount_point: SNAPSHOT_MOUNT_POINT.to_string(),
                env: Vec::new(),
                limits,
                progress_fd: None,
            },
        )
        .map_err(|e| {
            setup_failure(format!(
                "cannot store {what} '{}' for --cache: {}",
                printable_path(shown),
                ingest_cause(shown, e)
            ))
        })?;
    Ok((added.info.digest, added.info.manifest.tree))
}

/// The mount point recorded for snapshots; the stage mounts them where
/// their source was, and no name points at them.
const SNAPSHOT_MOUNT_POINT: &str = "/slicebox-cache-input";

fn store_setup_failure(e: crate::store::Error) -> Failure {
    setup_failure(e.to_string())
}

/// The exit status of a stage killed by `--timeout`, as timeout(1) has it.
const TIMED_OUT: i32 = 124;

/// Why the store refused a directory, naming the entry by `shown`, the
/// path the user knows it as (for an `--out` dir, the path inside the
/// stage, not the store's own).
pub(super) fn ingest_cause(shown: &Path, error: crate::store::Error) -> String {
    match error {
        crate::store::Error::Rejected { entry, reason, .. } => {
            format!("'{}/{entry}' {reason}", printable_path(shown))
        }
        crate::store::Error::BadSource { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// Stores what the stage left in its `--out` dir as slice `name`, through
/// the same ingest as `slice-add`.
fn store_output(
    store: &crate::store::Store,
    made: &crate::store::OutputDir,
    dir: &Path,
    name: &str,
    limits: &crate::store::Limits,
) -> Result<crate::digest::Digest, Failure> {
    let mount_point = dir.to_str().expect("checked UTF-8").to_string();
    store
        .add_slice(
            name,
            &crate::store::Source::Directory(made.path.clone()),
            &crate::store::IngestOptions {
                mount_point,
                env: Vec::new(),
                limits: *limits,
                progress_fd: None,
            },
        )
        .map_err(|e| {
            let cause = ingest_cause(dir, e);
            Failure {
                message: format!(
                    "cannot store --out '{}' as slice '{}': {cause}; nothing was stored",
                    printable_path(dir),
                    printable(name.as_bytes())
                ),
                exit: Exit::FAILURE,
            }
        })
        .map(|added| added.info.digest)
}

/// `--cache` takes a stage whose every input is declared, or says why not.
fn refuse_undeclared_inputs(
    parsed: &Parsed,
    isolate_net: bool,
    has_output: bool,
) -> Result<(), Failure> {
    let refuse = |why: String| Err(Failure::usage(format!("--cache: {why}")));
    if !has_output {
        return refuse("it needs --out DIR=NAME, the output it remembers".into());
    }
    if !isolate_net {
        return refuse(
            "it needs --net none: through the host's network a stage reads what no digest covers"
                .into(),
        );
    }
    if let Some(bind) = parsed.values("bind").next() {
        return refuse(format!(
            "it refuses --bind '{}': a writable host path is an input and an output at once (--ro-bind is hashed)",
            printable(bind.as_bytes())
        ));
    }
    if parsed.has("rw-cwd") {
        return refuse(
            "it refuses --rw-cwd: a writable working directory is an input and an output at once"
                .into(),
        );
    }
    if parsed.has("fd") {
        return refuse("it refuses --fd: what a descriptor holds is not part of the digest".into());
    }
    Ok(())
}

/// `--out DIR=NAME`: DIR a mount point, NAME a slice name.
fn output_spec(value: &OsStr) -> Result<(PathBuf, String), Failure> {
    let bad = || {
        Failure::usage(format!(
            "--out needs DIR=NAME, an absolute directory and a slice name, not '{}'",
            printable(value.as_bytes())
        ))
    };
    let text = value.to_str().ok_or_else(bad)?;
    let (dir, name) = text.rsplit_once('=').ok_or_else(bad)?;
    let dir = crate::store::validate_mount_point(dir).map_err(|e| Failure::usage(e.to_string()))?;
    crate::store::validate_name(name).map_err(|e| Failure::usage(e.to_string()))?;
    Ok((PathBuf::from(dir), name.to_string()))
}

/// `--fd N` or `--fd N=M`: the caller's N, as M in the stage.
fn passed_fds(parsed: &Parsed) -> Result<Vec<(i32, i32)>, Failure> {
    let mut fds: Vec<(i32, i32)> = Vec::new();
    for value in parsed.values("fd") {
        let bad = || {
            Failure::usage(format!(
                "--fd needs N or N=M, descriptor numbers above 2, not '{}'",
                printable(value.as_bytes())
            ))
        };
        let text = value.to_str().ok_or_else(bad)?;
        let (from, to) = text.split_once('=').unwrap_or((text, text));
        let number = |s: &str| s.parse::<i32>().ok().filter(|fd| *fd > 2);
        let (from, to) = (number(from).ok_or_else(bad)?, number(to).ok_or_else(bad)?);
        if !is_open(from) {
            return Err(setup_failure(format!(
                "cannot pass descriptor {from}: it is not open"
            )));
        }
        if fds.iter().any(|(_, t)| *t == to) {
            return Err(Failure::usage(format!(
                "--fd: two descriptors would be number {to} in the stage"
            )));
        }
        // The payload copies each descriptor above the highest target
        // before moving it, and slicebox's own report socket sits above
        // them too: all of that must fit below the descriptor limit.
        let highest = highest_fd_target();
        if to > highest {
            return Err(Failure::usage(format!(
                "--fd {}: {to} is too high a number; the highest is {highest} \
                 (the descriptor limit, ulimit -n, less room for moving descriptors)",
                printable(value.as_bytes())
            )));
        }
        fds.push((from, to));
    }
    if fds.len() > runtime::MAX_FDS {
        return Err(Failure::usage(format!(
            "--fd: at most {} descriptors can be passed",
            runtime::MAX_FDS
        )));
    }
    Ok(fds)
}

/// The highest number a `--fd` may have in the stage: the soft limit of
/// descriptors, less one copy per passed descriptor and stdio, and the
/// report socket.
fn highest_fd_target() -> i32 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(i32::MAX as u64) as i32
    } else {
        1024
    };
    soft - (runtime::MAX_FDS as i32 + 3 + 2)
}

/// The default seccomp filter (without its user namespace rules for
/// `--allow-userns`), or the program `--seccomp-fd N` holds, read here,
/// before anything of the stage exists.
fn seccomp_filter(parsed: &Parsed) -> Result<runtime::seccomp::Filter, Failure> {
    use runtime::seccomp::{Filter, Program, INSTRUCTION_SIZE, MAX_INSTRUCTIONS};
    let allow_userns = parsed.has("allow-userns");
    let Some(value) = parsed.last("seccomp-fd") else {
        return Ok(Filter::Default { allow_userns });
    };
    if allow_userns {
        return Err(Failure::usage(
            "--allow-userns changes the default seccomp filter, which --seccomp-fd replaces",
        ));
    }
    let fd = value
        .to_str()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| {
            Failure::usage(format!(
                "--seccomp-fd needs a descriptor number, not '{}'",
                printable(value.as_bytes())
            ))
        })?;
    if !is_open(fd) {
        return Err(setup_failure(format!(
            "cannot read the seccomp program of --seccomp-fd {fd}: descriptor {fd} is not open"
        )));
    }
    // One byte more than the largest program, to tell a longer one.
    let bytes = read_at_most(fd, MAX_INSTRUCTIONS * INSTRUCTION_SIZE + 1).map_err(|e| {
        setup_failure(format!(
            "cannot read the seccomp program of --seccomp-fd {fd}: {}",
            runtime::strerror(e.raw_os_error().unwrap_or(libc::EIO))
        ))
    })?;
    Program::from_bytes(&bytes)
        .map(Filter::Program)
        .map_err(|e| Failure::usage(format!("--seccomp-fd {fd}: {e}")))
}

/// Reads up to `limit` bytes from the caller's open descriptor `fd`,
/// which stays open: it is the caller's (the shell's) to close.
fn read_at_most(fd: i32, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is open (checked by the caller); ManuallyDrop keeps the
    // File from closing a descriptor it borrows.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let mut bytes = Vec::new();
    (&*file).take(limit as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `--uid N` and `--gid N`; the one not given stays the caller's.
fn identity(parsed: &Parsed) -> Result<Option<(u32, u32)>, Failure> {
    let id = |option: &str| {
        parsed
            .last(option)
            .map(|value| {
                value
                    .to_str()
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|v| *v != u32::MAX)
                    .ok_or_else(|| {
                        Failure::usage(format!(
                            "--{option} needs a number from 0 to 4294967294, not '{}'",
                            printable(value.as_bytes())
                        ))
                    })
            })
            .transpose()
    };
    let (uid, gid) = (id("uid")?, id("gid")?);
    if uid.is_none() && gid.is_none() {
        return Ok(None);
    }
    Ok(Some((
        uid.unwrap_or_else(|| nix::unistd::geteuid().as_raw()),
        gid.unwrap_or_else(|| nix::unistd::getegid().as_raw()),
    )))
}

/// `30` (seconds), `1.5s`, `500ms`, `2m`, `1h`, `1d`.
fn duration(value: &OsStr) -> Option<std::time::Duration> {
    let text = value.to_str()?;
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return None,
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let seconds = number.parse::<f64>().ok()? * scale;
    (seconds > 0.0 && seconds < 1e9).then(|| std::time::Duration::from_secs_f64(seconds))
}

const RLIMITS: &[(&str, i32)] = &[
    ("as", libc::RLIMIT_AS as i32),
    ("core", libc::RLIMIT_CORE as i32),
    ("cpu", libc::RLIMIT_CPU as i32),
    ("data", libc::RLIMIT_DATA as i32),
    ("fsize", libc::RLIMIT_FSIZE as i32),
    ("memlock", libc::RLIMIT_MEMLOCK as i32),
    ("nofile", libc::RLIMIT_NOFILE as i32),
    ("nproc", libc::RLIMIT_NPROC as i32),
    ("stack", libc::RLIMIT_STACK as i32),
];

/// `NAME=SOFT[:HARD]`; values are numbers (with K, M, G, T for sizes) or
/// `unlimited`. Without HARD both are SOFT. Checked against the current
/// hard limit here: the stage has no capability to raise it.
fn rlimit(value: &OsStr) -> Result<runtime::Rlimit, Failure> {
    let bad =
        |why: &str| Failure::usage(format!("--rlimit {}: {why}", printable(value.as_bytes())));
    let text = value.to_str().ok_or_else(|| bad("not UTF-8"))?;
    let (name, values) = text
        .split_once('=')
        .ok_or_else(|| bad("needs NAME=SOFT[:HARD]"))?;
    let resource = RLIMITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            bad(&format!(
                "unknown limit; the limits are {}",
                RLIMITS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let number = |v: &str| match v {
        "unlimited" | "infinity" => Some(libc::RLIM_INFINITY),
        v => crate::store::Limits::parse_size(v),
    };
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    let soft = number(soft).ok_or_else(|| bad("needs numbers or 'unlimited'"))?;
    let hard = number(hard).ok_or_else(|| bad("needs numbers or 'unlimited'"))?;
    if soft > hard {
        return Err(bad("the soft limit is above the hard one"));
    }
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit.
    if unsafe { libc::getrlimit(resource as libc::__rlimit_resource_t, &mut current) } == 0
        && hard > current.rlim_max
    {
        return Err(bad(&format!(
            "the hard limit cannot go above the current one, {}",
            if current.rlim_max == libc::RLIM_INFINITY {
                "unlimited".to_string()
            } else {
                current.rlim_max.to_string()
            }
        )));
    }
    Ok(runtime::Rlimit {
        resource,
        soft,
        hard,
    })
}

/// `--tmpfs DST[:size=N,mode=M]`.
fn planned_tmpfs(value: &OsStr) -> Result<runtime::PlannedTmpfs, Failure> {
    let bad =
        |why: &str| Failure::usage(format!("--tmpfs '{}': {why}", printable(value.as_bytes())));
    let text = value.to_str().ok_or_else(|| bad("not UTF-8"))?;
    let (target, options) = match text.rsplit_once(':') {
        Some((t, o)) if o.contains('=') => (t, Some(o)),
        _ => (text, None),
    };
    let target =
        crate::store::validate_mount_point(target).map_err(|e| Failure::usage(e.to_string()))?;
    let mut tmpfs = runtime::PlannedTmpfs {
        target: PathBuf::from(target),
        size: None,
        mode: 0o755,
    };
    for option in options.into_iter().flat_map(|o| o.split(',')) {
        match option.split_once('=') {
            Some(("size", v)) => {
                tmpfs.size = Some(
                    crate::store::Limits::parse_size(v)
                        .filter(|s| *s > 0)
                        .ok_or_else(|| bad("size needs a number of bytes (with K, M, G)"))?,
                )
            }
            Some(("mode", v)) => {
                tmpfs.mode = u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad("mode needs an octal number such as 700 or 1777"))?
            }
            _ => return Err(bad("the options are size=N and mode=M")),
        }
    }
    Ok(tmpfs)
}

/// Replaces each `${NAME}` in an entry's value by NAME's value in `env`
/// (empty when unset).
fn expand(entry: &[u8], env: &[OsString]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.len());
    let mut rest = entry;
    while let Some(start) = rest.windows(2).position(|w| w == b"${") {
        let Some(len) = rest[start + 2..].iter().position(|c| *c == b'}') else {
            break;
        };
        let name = &rest[start + 2..start + 2 + len];
        out.extend_from_slice(&rest[..start]);
        if let Some(value) = super::env_value(env, name) {
            out.extend_from_slice(value);
        }
        rest = &rest[start + 3 + len..];
    }
    out.extend_from_slice(rest);
    out
}

/// `SRC[:DST]`: DST starts at the last ':' followed by '/', so a SRC may
/// itself hold ':' when DST is given. SRC is resolved on the host, as the
/// caller would; DST is a path inside the stage.
fn planned_bind(
    value: &std::ffi::OsStr,
    writable: bool,
    cwd: &std::path::Path,
) -> Result<runtime::PlannedBind, Failure> {
    let bytes = value.as_bytes();
    let split = bytes
        .windows(2)
        .rposition(|w| w == b":/")
        .filter(|&i| i > 0);
    let (source, target) = match split {
        Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
        None => (bytes, None),
    };
    let option = if writable { "--bind" } else { "--ro-bind" };
    let source = cwd.join(std::ffi::OsStr::from_bytes(source));
    let resolved = std::fs::canonicalize(&source).map_err(|e| {
        setup_failure(format!(
            "cannot bind '{}' ({option}): {}",
            printable_path(&source),
            runtime::strerror(e.raw_os_error().unwrap_or(libc::EIO))
        ))
    })?;
    let is_dir = resolved.is_dir();
    let target = match target {
        Some(t) => PathBuf::from(std::ffi::OsStr::from_bytes(t)),
        None => resolved.clone(),
    };
    Ok(runtime::PlannedBind {
        source: resolved,
        target,
        writable,
        is_dir,
        is_output: false,
    })
}

fn env_name(entry: &OsString) -> &[u8] {
    let bytes = entry.as_bytes();
    let end = bytes.iter().position(|c| *c == b'=').unwrap_or(bytes.len());
    &bytes[..end]
}

/// Replaces an existing NAME=… entry in place, or appends.
fn set_env(env: &mut Vec<OsString>, entry: OsString) {
    let name = env_name(&entry).to_vec();
    match env.iter_mut().find(|e| env_name(e) == name.as_slice()) {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_env_replaces_by_name() {
        let mut env = vec![OsString::from("A=1"), OsString::from("B=2")];
        set_env(&mut env, OsString::from("A=3"));
        set_env(&mut env, OsString::from("C=4"));
        assert_eq!(
            env,
            vec![
                OsString::from("A=3"),
                OsString::from("B=2"),
                OsString::from("C=4")
            ]
        );
    }
}
