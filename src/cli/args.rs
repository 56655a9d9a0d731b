//! The one argument parser. It only splits argv by the command's option
//! table; turning values into typed settings is each command's job.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use super::spec::CommandSpec;

#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// (long name, value) in command-line order.
    pub options: Vec<(&'static str, Option<OsString>)>,
    pub operands: Vec<OsString>,
}

impl Parsed {
    pub fn has(&self, long: &str) -> bool {
        self.options.iter().any(|(name, _)| *name == long)
    }

    pub fn values<'a>(&'a self, long: &'a str) -> impl Iterator<Item = &'a OsStr> + 'a {
        self.options
            .iter()
            .filter(move |(name, _)| *name == long)
            .filter_map(|(_, v)| v.as_deref())
    }

    pub fn last<'a>(&'a self, long: &'a str) -> Option<&'a OsStr> {
        self.values(long).last()
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("unknown option '{0}'")]
    Unknown(String),
    #[error("option '--{0}' needs a value")]
    MissingValue(&'static str),
    #[error("option '--{0}' takes no value")]
    UnexpectedValue(&'static str),
    #[error("{0}")]
    Other(String),
}

impl UsageError {
    /// `"; did you mean '--slice'?"` for an unknown option close to one of
    /// `spec`'s, or empty.
    pub fn hint(&self, spec: &CommandSpec) -> String {
        let UsageError::Unknown(given) = self else {
            return String::new();
        };
        let given = given
            .split_once('=')
            .map_or(given.as_str(), |(name, _)| name);
        let longs: Vec<String> = spec
            .options
            .iter()
            .map(|o| format!("--{}", o.long))
            .collect();
        crate::suggest::hint(given, longs.iter().map(String::as_str))
    }
}

pub fn parse(spec: &CommandSpec, args: &[OsString]) -> Result<Parsed, UsageError> {
    let mut parsed = Parsed {
        options: Vec::new(),
        operands: Vec::new(),
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            parsed.operands.extend(rest.cloned());
            break;
        }
        if bytes == b"-h" {
            parsed.options.push(("help", None));
            continue;
        }
        let Some(body) = bytes.strip_prefix(b"--") else {
            if bytes.len() > 1 && bytes[0] == b'-' {
                return Err(UsageError::Unknown(crate::text::printable(bytes)));
            }
            parsed.operands.push(arg.clone());
            if spec.options_end_at_operand {
                parsed.operands.extend(rest.cloned());
                break;
            }
            continue;
        };
        let (name, inline) = match body.iter().position(|c| *c == b'=') {
            Some(i) => (
                &body[..i],
                Some(OsStr::from_bytes(&body[i + 1..]).to_os_string()),
            ),
            None => (body, None),
        };
        let Some(option) = spec.options.iter().find(|o| o.long.as_bytes() == name) else {
            return Err(match super::spec::refusal(spec, bytes) {
                Some(why) => UsageError::Other(why),
                None => UsageError::Unknown(crate::text::printable(bytes)),
            });
        };
        let value = match (option.value, inline) {
            (Some(_), Some(v)) => Some(v),
            (Some(_), None) => Some(
                rest.next()
                    .cloned()
                    .ok_or(UsageError::MissingValue(option.long))?,
            ),
            (None, Some(_)) => return Err(UsageError::UnexpectedValue(option.long)),
            (None, None) => None,
        };
        parsed.options.push((option.long, value));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::super::spec::{SANDBOX, SLICE_ADD};
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn sandbox_options_stop_at_the_command() {
        let p = parse(
            &SANDBOX,
            &args(&["--slice", "a", "--net=none", "ls", "--slice", "x"]),
        )
        .unwrap();
        assert_eq!(p.values("slice").collect::<Vec<_>>(), vec![OsStr::new("a")]);
        assert_eq!(p.last("net"), Some(OsStr::new("none")));
        assert_eq!(p.operands, args(&["ls", "--slice", "x"]));
    }

    #[test]
    fn double_dash_ends_options() {
        let p = parse(&SANDBOX, &args(&["--", "--weird-command"])).unwrap();
        assert_eq!(p.operands, args(&["--weird-command"]));
    }

    #[test]
    fn options_may_follow_operands_for_slice_add() {
        let p = parse(&SLICE_ADD, &args(&["n", "./d", "--at", "/opt/n"])).unwrap();
        assert_eq!(p.operands, args(&["n", "./d"]));
        assert_eq!(p.last("at"), Some(OsStr::new("/opt/n")));
    }

    #[test]
    fn unknown_options_get_the_closest_one() {
        let hint = |arg: &str| parse(&SANDBOX, &args(&[arg])).unwrap_err().hint(&SANDBOX);
        assert_eq!(hint("--slcie"), "; did you mean '--slice'?");
        assert_eq!(hint("--clearnev"), "; did you mean '--clearenv'?");
        assert_eq!(hint("--slcie=py"), "; did you mean '--slice'?");
        assert_eq!(hint("--frobnicate"), "");
    }

    #[test]
    fn export_oci_names_the_run_time_option_it_refuses() {
        use super::super::spec::EXPORT_OCI;
        let Err(UsageError::Other(why)) = parse(&EXPORT_OCI, &args(&["--bind=/a", "d"])) else {
            panic!("--bind is refused with a reason");
        };
        assert!(why.starts_with("--bind sets up a running stage"), "{why}");
        assert!(why.ends_with("--keep-env, --chdir"), "{why}");
        assert_eq!(
            parse(&EXPORT_OCI, &args(&["--nope", "d"])),
            Err(UsageError::Unknown("--nope".into()))
        );
    }

    #[test]
    fn bad_options_are_usage_errors() {
        assert_eq!(
            parse(&SANDBOX, &args(&["--nope"])),
            Err(UsageError::Unknown("--nope".into()))
        );
        assert_eq!(
            parse(&SANDBOX, &args(&["--slice"])),
            Err(UsageError::MissingValue("slice"))
        );
        assert_eq!(
            parse(&SANDBOX, &args(&["--clearenv=1"])),
            Err(UsageError::UnexpectedValue("clearenv"))
        );
        assert_eq!(
            parse(&SANDBOX, &args(&["-x"])),
            Err(UsageError::Unknown("-x".into()))
        );
    }
}
