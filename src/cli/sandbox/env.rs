//! The payload's environment.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::slices::Resolved;
use super::{Context, Failure, Parsed};
use crate::env;
use crate::text::printable;

/// The caller's environment (or none with `--clearenv`), then each
/// slice's variables in `--slice` order, each seeing what the ones before
/// it set (`PATH=/opt/node/bin:${PATH}` puts a later slice first), then
/// `SLICEBOX_STAGE` and `SLICEBOX_SLICES` for a prompt to test, then
/// `--env`, then `--unsetenv`.
pub(super) fn stage_env(
    parsed: &Parsed,
    ctx: &Context,
    resolved: &Resolved,
) -> Result<Vec<OsString>, Failure> {
    let mut out: Vec<OsString> = if parsed.has("clearenv") {
        Vec::new()
    } else {
        ctx.env.clone()
    };
    for manifest in &resolved.manifests {
        for entry in &manifest.env {
            let expanded = env::expand(entry.as_bytes(), &out);
            env::set(&mut out, OsString::from_vec(expanded));
        }
    }
    env::set(&mut out, OsString::from("SLICEBOX_STAGE=1"));
    let labels: Vec<&str> = resolved.slices.iter().map(|s| s.label.as_str()).collect();
    env::set(
        &mut out,
        OsString::from(format!("SLICEBOX_SLICES={}", labels.join(" "))),
    );
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
