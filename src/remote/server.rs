//! `slicebox serve --stdio`: the far end of a session, on stdin and
//! stdout. It stores the slices a client offers (checked as any add is),
//! offers those a client pulls, and runs a stage as the `sandbox` command
//! line the client sends would run here: the same parser, the same
//! planner and checks, so a peer can ask for nothing that a local command
//! line of this user could not.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::conn::Offered;
use super::conn::{check_hello, hello, parse_json, unexpected, Conn, Exit, Hello, Pull, Run};
use super::frame::Kind;
use super::sync::{read_offer, receive_slices, send_slices};
use super::Error;
use crate::store::{Limits, Pin, Store};

/// What a server needs from its caller.
pub struct ServeSettings {
    /// The store when the client names none.
    pub default_store: Option<PathBuf>,
    /// What a received slice may hold (`SLICEBOX_LIMITS` of the server).
    pub limits: Limits,
    /// Whether `Run` starts a stage (not under the fuzzer, whose
    /// executable is no slicebox).
    pub runs_stages: bool,
}

/// Serves one session; returns the server's exit status. A failure is
/// sent to the client (which shows it) and returned for the server's own
/// stderr.
pub fn serve(conn: &mut Conn, settings: &ServeSettings) -> Result<(), Error> {
    let result = session(conn, settings);
    if let Err(e) = &result {
        if !matches!(e, Error::Transport(_) | Error::Closed) {
            conn.sender().fail(&e.to_string());
        }
    }
    result
}

fn session(conn: &mut Conn, settings: &ServeSettings) -> Result<(), Error> {
    let peer: Hello = conn.expect_json(Kind::Hello)?;
    check_hello(&peer)?;
    let root = match &peer.store {
        Some(path) => PathBuf::from(path),
        None => settings.default_store.clone().ok_or_else(|| {
            Error::Peer("this host has no store: set SLICEBOX_STORE or HOME there".into())
        })?,
    };
    let store = Store::open(&root)?;
    conn.send_json(Kind::Hello, &hello(None))?;
    // What this session was offered stays pinned until it ends: gc keeps
    // an unnamed slice (a working directory) from its arrival to its use.
    let mut pins: Vec<Pin> = Vec::new();
    while let Some(frame) = conn.recv_or_end()? {
        match frame.kind {
            Kind::Offer => {
                let offer = read_offer(&frame.payload)?;
                let digests: Vec<_> = offer.slices.iter().map(|s| s.digest).collect();
                pins.push(store.pin(&digests)?);
                receive_slices(conn, &store, &offer, settings.limits)?;
            }
            Kind::Pull => {
                let pull: Pull = parse_json(Kind::Pull, &frame.payload)?;
                let offers = resolve_pull(&store, &pull)?;
                send_slices(conn, &store, &offers)?;
            }
            Kind::Run if !settings.runs_stages => {
                return Err(Error::Protocol("this server runs no stages".into()))
            }
            Kind::Run => {
                let run: Run = parse_json(Kind::Run, &frame.payload)?;
                run_stage(conn, &store, run)?;
            }
            other => return Err(unexpected(other, Kind::Offer)),
        }
    }
    Ok(())
}

/// The slices a `Pull` names, each offered under the name it was asked by
/// (a digest is offered unnamed).
fn resolve_pull(store: &Store, pull: &Pull) -> Result<Vec<Offered>, Error> {
    pull.refs
        .iter()
        .map(|reference| {
            let digest = store.resolve(reference)?;
            let name = crate::store::validate_name(reference)
                .is_ok()
                .then(|| reference.clone());
            Ok(Offered { digest, name })
        })
        .collect()
}

/// Runs the client's `sandbox` command line as this executable would,
/// with each shipped directory's slice shown read-only at its path.
fn run_stage(conn: &mut Conn, store: &Store, run: Run) -> Result<(), Error> {
    let mut args: Vec<String> = Vec::new();
    for shipped in &run.shipped {
        check_shipped_path(&shipped.path)?;
        if !store.has_slice(&shipped.slice) {
            return Err(Error::Protocol(format!(
                "a run that ships slice {}, which was never sent",
                shipped.slice
            )));
        }
        let tree = store.slice_tree(&shipped.slice);
        args.push("--ro-bind".into());
        args.push(format!("{}:{}", tree.display(), shipped.path));
    }
    args.extend(run.args.iter().cloned());
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0("sandbox")
        .args(&args)
        .env("SLICEBOX_STORE", store.root());
    // Not the server's own working directory: a stage starts where its
    // `--chdir` says, and nothing of this directory is shown.
    command.current_dir("/");
    let out_name = out_name(&run.args);
    let store = store.clone();
    super::relay::serve_stage(conn, command, move |code, signal| Exit {
        code,
        signal,
        out: match (code, &out_name) {
            (0, Some(name)) => store.resolve(name).ok(),
            _ => None,
        },
    })
}

/// The NAME of an `--out DIR=NAME` among `args`.
fn out_name(args: &[String]) -> Option<String> {
    let options = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let at = args[..options].iter().rposition(|a| a == "--out")?;
    let value = args.get(at + 1)?;
    Some(value.rsplit_once('=')?.1.to_string())
}

/// A path the client shows something at: absolute, normalised, and free
/// of what `--ro-bind SRC:DST` would read as a separator.
fn check_shipped_path(path: &str) -> Result<(), Error> {
    let normal = Path::new(path).is_absolute()
        && !path.contains(":/")
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .skip(1)
            .all(|part| !part.is_empty() && part != "." && part != "..");
    match normal {
        true => Ok(()),
        false => Err(Error::Protocol(format!(
            "a shipped path that is not absolute and normalised: '{}'",
            crate::text::printable(path.as_bytes())
        ))),
    }
}
