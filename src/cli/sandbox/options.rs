//! Every `sandbox` option, parsed and checked before anything of the
//! stage exists.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{setup_failure, Context, Failure, Parsed};
use crate::os::is_open;
use crate::runtime::{self, PlannedBind, PlannedTmpfs, Rlimit};
use crate::store::Limits;
use crate::text::{printable, printable_path};

/// The options of one `sandbox` command line.
pub(super) struct Options {
    pub isolate_net: bool,
    pub fds: Vec<(i32, i32)>,
    pub tmpfs: Vec<PlannedTmpfs>,
    pub identity: Option<(u32, u32)>,
    pub hostname: Option<OsString>,
    pub timeout: Option<std::time::Duration>,
    pub rlimits: Vec<Rlimit>,
    pub seccomp: runtime::seccomp::Filter,
    pub chdir: Option<PathBuf>,
    /// `--out DIR=NAME`.
    pub output: Option<(PathBuf, String)>,
    /// What `--out` stores and `--cache` hashes may hold.
    pub limits: Limits,
    pub cache: bool,
    pub dev: bool,
    pub rw_cwd: bool,
    pub no_cwd: bool,
}

impl Options {
    pub(super) fn parse(parsed: &Parsed, ctx: &Context) -> Result<Options, Failure> {
        let chdir = chdir(parsed)?;
        let output = parsed.last("out").map(output_spec).transpose()?;
        let options = Options {
            isolate_net: isolate_net(parsed)?,
            fds: passed_fds(parsed)?,
            tmpfs: parsed
                .values("tmpfs")
                .map(planned_tmpfs)
                .collect::<Result<_, _>>()?,
            identity: identity(parsed)?,
            hostname: hostname(parsed)?,
            timeout: timeout(parsed)?,
            rlimits: parsed
                .values("rlimit")
                .map(rlimit)
                .collect::<Result<_, _>>()?,
            seccomp: seccomp_filter(parsed)?,
            chdir,
            limits: limits(parsed, ctx, output.is_some())?,
            output,
            cache: parsed.has("cache"),
            dev: parsed.has("dev"),
            rw_cwd: parsed.has("rw-cwd"),
            no_cwd: parsed.has("no-cwd"),
        };
        if options.cache {
            refuse_undeclared_inputs(parsed, &options)?;
        }
        Ok(options)
    }

    /// Slices, layers, an image and `--out` need the store; nothing else
    /// does.
    pub(super) fn needs_store(&self, parsed: &Parsed) -> bool {
        ["slice", "layer", "image"].iter().any(|o| parsed.has(o)) || self.output.is_some()
    }
}

/// `--chdir DIR`, an absolute path.
pub(super) fn chdir(parsed: &Parsed) -> Result<Option<PathBuf>, Failure> {
    let chdir = parsed.last("chdir").map(PathBuf::from);
    if chdir.as_ref().is_some_and(|d| !d.is_absolute()) {
        return Err(Failure::usage("--chdir needs an absolute path"));
    }
    Ok(chdir)
}

fn isolate_net(parsed: &Parsed) -> Result<bool, Failure> {
    match parsed.last("net").map(|v| v.as_bytes()) {
        None | Some(b"host") => Ok(false),
        Some(b"none") => Ok(true),
        Some(other) => Err(Failure::usage(format!(
            "--net must be 'host' or 'none', not '{}'",
            printable(other)
        ))),
    }
}

fn hostname(parsed: &Parsed) -> Result<Option<OsString>, Failure> {
    match parsed.last("hostname") {
        Some(name) if name.is_empty() || name.len() > 64 => Err(Failure::usage(format!(
            "--hostname needs 1 to 64 bytes, not '{}'",
            printable(name.as_bytes())
        ))),
        other => Ok(other.map(|n| n.to_os_string())),
    }
}

fn timeout(parsed: &Parsed) -> Result<Option<std::time::Duration>, Failure> {
    parsed
        .last("timeout")
        .map(|value| {
            duration(value).ok_or_else(|| {
                Failure::usage(format!(
                    "--timeout needs a duration above 0 such as 30, 1.5s, 500ms, 2m or 1h, not '{}'",
                    printable(value.as_bytes())
                ))
            })
        })
        .transpose()
}

/// An `--out` dir is ingested as slice-add ingests, and a `--cache`
/// stage's inputs are read the same way: under the same limits.
fn limits(parsed: &Parsed, ctx: &Context, has_output: bool) -> Result<Limits, Failure> {
    if !has_output && parsed.has("limit") {
        return Err(Failure::usage(
            "--limit needs --out DIR=NAME: it limits what a stage stores",
        ));
    }
    Limits::from_settings(
        ctx.var("SLICEBOX_LIMITS").as_deref().filter(|_| has_output),
        parsed
            .values("limit")
            .map(|v| v.to_str().unwrap_or("(not UTF-8)")),
    )
    .map_err(|e| Failure::usage(printable(e.as_bytes())))
}

/// Every `--bind` and `--ro-bind`, in command-line order.
pub(super) fn binds(parsed: &Parsed, cwd: &Path) -> Result<Vec<PlannedBind>, Failure> {
    parsed
        .options
        .iter()
        .filter_map(|(name, value)| match *name {
            "bind" => Some((true, value.as_deref()?)),
            "ro-bind" => Some((false, value.as_deref()?)),
            _ => None,
        })
        .map(|(writable, value)| planned_bind(value, writable, cwd))
        .collect()
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
            crate::text::io_cause(&e)
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
            crate::text::io_cause(&e)
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

/// `--cache` takes a stage whose every input is declared, or says why not.
pub(super) fn refuse_undeclared_inputs(parsed: &Parsed, options: &Options) -> Result<(), Failure> {
    let (isolate_net, has_output) = (options.isolate_net, options.output.is_some());
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
