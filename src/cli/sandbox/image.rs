//! `--image NAME`: a layer stack whose image config (layer-add kept it)
//! fills in what the command line leaves out, as `docker run` does: the
//! command (Entrypoint, then the operands or else Cmd), the environment
//! (Env over the caller's, under `--env`), the start dir (WorkingDir,
//! under `--chdir`) and the ids (User, under `--uid`/`--gid`).

use std::ffi::OsString;
use std::path::PathBuf;

use super::Failure;
use crate::store::layer::ImageConfig;
use crate::text::printable;

/// Entrypoint followed by `operands`, or by Cmd when there are none.
/// `None`: the image names no command and the caller gave none (the
/// user's shell then runs, as without an image).
pub(super) fn command(config: &ImageConfig, operands: &[OsString]) -> Option<Vec<OsString>> {
    let mut argv: Vec<OsString> = config
        .entrypoint
        .iter()
        .flatten()
        .map(OsString::from)
        .collect();
    argv.extend(arguments(config, operands).into_iter().flatten());
    (!argv.is_empty()).then_some(argv)
}

/// What follows the Entrypoint: the operands, or Cmd when there are none
/// (`None`: neither). An exported image keeps it as its Cmd.
pub(super) fn arguments(config: &ImageConfig, operands: &[OsString]) -> Option<Vec<OsString>> {
    match operands {
        [] => config
            .cmd
            .as_ref()
            .map(|cmd| cmd.iter().map(OsString::from).collect()),
        given => Some(given.to_vec()),
    }
}

/// Env entries as the image has them, each `NAME=value`.
pub(super) fn env(config: &ImageConfig) -> Result<Vec<OsString>, Failure> {
    config
        .env
        .iter()
        .map(|entry| match crate::env::split(entry.as_bytes()) {
            Some(_) => Ok(OsString::from(entry)),
            None => Err(super::setup_failure(format!(
                "the image's Env entry '{}' is not NAME=VALUE",
                printable(entry.as_bytes())
            ))),
        })
        .collect()
}

/// WorkingDir, when it is an absolute path.
pub(super) fn start_dir(config: &ImageConfig) -> Result<Option<PathBuf>, Failure> {
    match config.working_dir.as_deref() {
        None | Some("") => Ok(None),
        Some(dir) if dir.starts_with('/') => Ok(Some(PathBuf::from(dir))),
        Some(dir) => Err(super::setup_failure(format!(
            "the image's WorkingDir '{}' is not an absolute path",
            printable(dir.as_bytes())
        ))),
    }
}

/// User as ids: `UID[:GID]` in numbers (a uid alone has gid 0, as Docker
/// gives a user the image's /etc/passwd does not list), or `root`.
/// Other names would need the image's /etc/passwd: `--uid` says it.
pub(super) fn identity(config: &ImageConfig) -> Result<Option<(u32, u32)>, Failure> {
    let Some(user) = config.user.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let id = |text: &str| match text {
        "root" => Some(0),
        _ => text.parse::<u32>().ok().filter(|v| *v != u32::MAX),
    };
    let (uid, gid) = match user.split_once(':') {
        Some((uid, gid)) => (id(uid), id(gid)),
        None => (id(user), Some(0)),
    };
    match (uid, gid) {
        (Some(uid), Some(gid)) => Ok(Some((uid, gid))),
        _ => Err(super::setup_failure(format!(
            "the image's User '{}' names a user or group by name; give --uid and --gid",
            printable(user.as_bytes())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(
        user: Option<&str>,
        entrypoint: Option<&[&str]>,
        cmd: Option<&[&str]>,
    ) -> ImageConfig {
        let argv = |a: Option<&[&str]>| a.map(|a| a.iter().map(|s| s.to_string()).collect());
        ImageConfig {
            env: Vec::new(),
            working_dir: None,
            user: user.map(String::from),
            entrypoint: argv(entrypoint),
            cmd: argv(cmd),
        }
    }

    #[test]
    fn operands_replace_cmd_and_follow_the_entrypoint() {
        let c = config(None, Some(&["/bin/sh", "-c"]), Some(&["echo hi"]));
        assert_eq!(command(&c, &[]).unwrap(), ["/bin/sh", "-c", "echo hi"]);
        let operands = [OsString::from("true")];
        assert_eq!(command(&c, &operands).unwrap(), ["/bin/sh", "-c", "true"]);
        assert_eq!(command(&config(None, None, None), &[]), None);
        let empty = config(None, Some(&[]), Some(&[]));
        assert_eq!(command(&empty, &[]), None);
    }

    #[test]
    fn users_are_numbers_or_root() {
        let ids = |u: &str| identity(&config(Some(u), None, None)).map_err(|f| f.message);
        assert_eq!(ids("0:0").unwrap(), Some((0, 0)));
        assert_eq!(ids("1000").unwrap(), Some((1000, 0)));
        assert_eq!(ids("root").unwrap(), Some((0, 0)));
        assert_eq!(ids("").unwrap(), None);
        let named = ids("www-data").unwrap_err();
        assert!(
            named.contains("'www-data'") && named.contains("--uid"),
            "{named}"
        );
    }
}
