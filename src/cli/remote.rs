//! The commands that reach another host: `slice-push`, `slice-pull`,
//! `slicebox serve --stdio`, and what `sandbox --on` shares with them
//! (how a host is reached, how a failed session is told).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::os::fd::{AsFd, BorrowedFd};

use super::{open_store_or, Context, Exit, Failure, Parsed};
use crate::remote::client::{control_dir, Reach, Session};
use crate::remote::conn::Offered;
use crate::remote::server::{serve as serve_session, ServeSettings};
use crate::store::{Limits, Store};
use crate::text::printable;

/// A session that could not be had or broke: 255, as ssh's own failures.
pub(in crate::cli) const UNREACHABLE: Exit = Exit {
    code: 255,
    signal: None,
};

/// How to reach `host`, from the caller's environment.
pub(in crate::cli) fn reach(ctx: &Context, host: &OsStr, remote_store: Option<&OsStr>) -> Reach {
    let set = |name: &str| ctx.var(name).filter(|v| !v.trim().is_empty());
    Reach {
        host: host.to_string_lossy().into_owned(),
        rsh: set("SLICEBOX_RSH"),
        remote_program: set("SLICEBOX_REMOTE_COMMAND"),
        remote_store: remote_store.map(|s| s.to_string_lossy().into_owned()),
        control_dir: control_dir(ctx.var("XDG_RUNTIME_DIR").as_deref()),
    }
}

/// The failure of a session with `reach.host` at `operation` ("run the
/// stage on"), with what the transport said on its stderr (`said`).
fn session_failure(
    operation: &str,
    reach: &Reach,
    error: crate::remote::Error,
    said: String,
) -> Failure {
    Failure {
        message: format!(
            "cannot {operation} '{}': {error}{}",
            printable(reach.host.as_bytes()),
            printable(said.as_bytes())
        ),
        exit: UNREACHABLE,
    }
}

/// Runs `work` in a session with `reach` and closes it; a failure is the
/// session's, with what the transport said.
pub(in crate::cli) fn in_session<T>(
    operation: &str,
    reach: &Reach,
    work: impl FnOnce(&mut Session) -> Result<T, crate::remote::Error>,
) -> Result<T, Failure> {
    let mut session =
        Session::connect(reach).map_err(|(e, said)| session_failure(operation, reach, e, said))?;
    match work(&mut session) {
        Ok(done) => {
            session.close();
            Ok(done)
        }
        Err(e) => Err(session_failure(
            operation,
            reach,
            e,
            session.transport_said(),
        )),
    }
}

/// Ignores SIGPIPE in this process (the executable, or a builtin's
/// helper): a closed stdout or a dead transport is then an error to act
/// on, not a death.
pub(in crate::cli) fn ignore_sigpipe() {
    // SAFETY: setting a disposition to SIG_IGN involves no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

fn host_and_refs(parsed: &Parsed) -> Result<(&OsStr, Vec<String>), Failure> {
    match parsed.operands.split_first() {
        Some((host, refs)) if !refs.is_empty() => Ok((
            host.as_os_str(),
            refs.iter()
                .map(|r| r.to_string_lossy().into_owned())
                .collect(),
        )),
        _ => Err(Failure::usage("expected HOST and at least one REF")),
    }
}

/// `slice-push HOST REF...`.
pub fn push(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let (host, refs) = host_and_refs(parsed)?;
    let store = open_store_or(ctx, Exit::FAILURE)?;
    let mut offers = Vec::new();
    for reference in &refs {
        let digest = store.resolve(reference)?;
        let name = crate::store::validate_name(reference)
            .is_ok()
            .then(|| reference.clone());
        offers.push(Offered { digest, name });
    }
    let digests: Vec<_> = offers.iter().map(|o| o.digest).collect();
    let _pin = store.lock_shared().and_then(|_lock| store.pin(&digests))?;
    ignore_sigpipe();
    let reach = reach(ctx, host, parsed.last("remote-store"));
    let moved = in_session("push to", &reach, |session| session.push(&store, &offers))?;
    ctx.out(&format!(
        "sent {} of {} slices to {} ({} bytes of content stored there)\n",
        moved.slices,
        offers.len(),
        printable(reach.host.as_bytes()),
        moved.written
    ));
    Ok(Exit::SUCCESS)
}

/// `slice-pull HOST REF...`.
pub fn pull(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let (host, refs) = host_and_refs(parsed)?;
    let store = open_store_or(ctx, Exit::FAILURE)?;
    ignore_sigpipe();
    let reach = reach(ctx, host, parsed.last("remote-store"));
    let limits = limits(ctx)?;
    let (digests, moved, _pin) = in_session("pull from", &reach, |session| {
        session.pull(&store, &refs, limits)
    })?;
    ctx.out(&format!(
        "fetched {} of {} slices from {} ({} bytes of content stored here)\n",
        moved.slices,
        digests.len(),
        printable(reach.host.as_bytes()),
        moved.written
    ));
    Ok(Exit::SUCCESS)
}

/// What a slice from a peer may hold: the defaults, or `SLICEBOX_LIMITS`.
pub(in crate::cli) fn limits(ctx: &Context) -> Result<Limits, Failure> {
    Limits::from_settings(ctx.var("SLICEBOX_LIMITS").as_deref(), std::iter::empty())
        .map_err(|e| Failure::usage(printable(e.as_bytes())))
}

/// `slicebox serve --stdio`.
pub fn serve(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    if !parsed.has("stdio") {
        return Err(Failure::usage(
            "serve needs --stdio: it speaks only on stdin and stdout",
        ));
    }
    let settings = ServeSettings {
        default_store: Store::default_root(&ctx.env_pairs()),
        limits: limits(ctx)?,
        runs_stages: true,
    };
    let input = BufReader::with_capacity(256 << 10, own(std::io::stdin().as_fd(), "stdin")?);
    let output = BufWriter::with_capacity(256 << 10, own(std::io::stdout().as_fd(), "stdout")?);
    let mut conn = crate::remote::conn::Conn::new(Box::new(input), Box::new(output));
    serve_session(&mut conn, &settings).map_err(|e| Failure {
        message: e.to_string(),
        exit: Exit::FAILURE,
    })?;
    Ok(Exit::SUCCESS)
}

/// A descriptor of ours as a `File` that the session owns (unbuffered by
/// std, unlike `Stdout`).
fn own(fd: BorrowedFd<'_>, name: &str) -> Result<File, Failure> {
    let owned = fd.try_clone_to_owned().map_err(|e| Failure {
        message: format!("cannot use {name}: {}", crate::text::io_cause(&e)),
        exit: Exit::FAILURE,
    })?;
    Ok(File::from(owned))
}
