//! The payload's environment.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::slices::Resolved;
use super::{Context, Failure, Parsed};
use crate::env;
use crate::text::printable;

/// The search path a cleared environment starts from.
pub(super) const BASE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The caller's environment, or (with `--clearenv`, and always with
/// `--cache`, where every variable is an input) only the `--keep-env`
/// names of it; then an `--image`'s Env; then `PATH` with each slice's top-level `bin/` in
/// `--slice` order ahead of the caller's `PATH` (or of `BASE_PATH` when
/// there is none); then each slice's variables in `--slice` order, each
/// seeing what the ones before it set (`PATH=/opt/node/bin:${PATH}` puts a
/// later slice first); then `SLICEBOX_STAGE` and `SLICEBOX_SLICES` for a
/// prompt to test, then `--env`, then `--unsetenv`.
pub(super) fn stage_env(
    parsed: &Parsed,
    ctx: &Context,
    resolved: &Resolved,
) -> Result<Vec<OsString>, Failure> {
    let cleared = parsed.has("clearenv") || parsed.has("cache");
    compose(parsed, ctx, resolved, cleared, true)
}

/// An exported image's Env: what a stage with `--clearenv` gets, less
/// `SLICEBOX_STAGE` and `SLICEBOX_SLICES` (whatever runs the image is
/// no slicebox stage, and the caller's variables are no part of it).
pub(super) fn image_env(
    parsed: &Parsed,
    ctx: &Context,
    resolved: &Resolved,
) -> Result<Vec<OsString>, Failure> {
    compose(parsed, ctx, resolved, true, false)
}

/// The environment in the order `stage_env` gives; `marks`: with
/// `SLICEBOX_STAGE` and `SLICEBOX_SLICES`.
fn compose(
    parsed: &Parsed,
    ctx: &Context,
    resolved: &Resolved,
    cleared: bool,
    marks: bool,
) -> Result<Vec<OsString>, Failure> {
    let mut out = start(parsed, ctx, cleared)?;
    if let Some(config) = &resolved.image {
        for entry in super::image::env(config)? {
            env::set(&mut out, entry);
        }
    }
    if let Some(path) = search_path(resolved, env::value(&out, b"PATH"), cleared) {
        env::set(&mut out, path);
    }
    for manifest in &resolved.manifests {
        for entry in &manifest.env {
            let expanded = env::expand(entry.as_bytes(), &out);
            env::set(&mut out, OsString::from_vec(expanded));
        }
    }
    if marks {
        env::set(&mut out, OsString::from("SLICEBOX_STAGE=1"));
        let labels: Vec<&str> = resolved.slices.iter().map(|s| s.label.as_str()).collect();
        env::set(
            &mut out,
            OsString::from(format!("SLICEBOX_SLICES={}", labels.join(" "))),
        );
    }
    for entry in parsed.values("env") {
        if env::split(entry.as_bytes()).is_none() {
            return Err(Failure::usage(format!(
                "--env needs NAME=VALUE, not '{}'",
                printable(entry.as_bytes())
            )));
        }
        env::set(&mut out, entry.to_os_string());
    }
    for name in parsed.values("unsetenv") {
        out.retain(|e| env::name(e.as_bytes()) != name.as_bytes());
    }
    Ok(out)
}

/// The caller's environment, or only its `--keep-env` variables.
fn start(parsed: &Parsed, ctx: &Context, cleared: bool) -> Result<Vec<OsString>, Failure> {
    let mut out = Vec::new();
    for name in parsed.values("keep-env") {
        if !env::valid_name(name.as_bytes()) {
            return Err(Failure::usage(format!(
                "--keep-env needs a variable name, not '{}'",
                printable(name.as_bytes())
            )));
        }
        if let Some(value) = env::value(&ctx.env, name.as_bytes()) {
            let mut entry = name.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(value);
            out.push(OsString::from_vec(entry));
        }
    }
    Ok(if cleared { out } else { ctx.env.clone() })
}

/// `PATH=` each slice's `bin/` (a directory at the top of its tree), at
/// its mount point, in `--slice` order, then `rest` (or `BASE_PATH` in a
/// cleared environment that kept no PATH). `None`: nothing to change.
fn search_path(resolved: &Resolved, rest: Option<&[u8]>, cleared: bool) -> Option<OsString> {
    let mut path = b"PATH=".to_vec();
    for (slice, has_bin) in resolved.slices.iter().zip(&resolved.has_bin) {
        if *has_bin {
            path.extend_from_slice(slice.mount_point.join("bin").as_os_str().as_bytes());
            path.push(b':');
        }
    }
    let rest = match rest {
        Some(rest) => rest,
        None if cleared || path.len() > 5 => BASE_PATH.as_bytes(),
        None => return None,
    };
    if path.len() == 5 && !cleared {
        return None;
    }
    path.extend_from_slice(rest);
    if rest.is_empty() && path.last() == Some(&b':') {
        path.pop();
    }
    Some(OsString::from_vec(path))
}
