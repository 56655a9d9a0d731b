//! What a slice is besides its tree, carried in a tar: the mount point and
//! environment entries that `slice-export` writes as pax vendor records
//! (`SLICEBOX.at`, `SLICEBOX.env`) in a global header before the first
//! entry, and that `slice-add` takes back as defaults (docs/formats.md,
//! "Export archives"). Other tar tools ignore the records. An archive is a
//! stranger's input: each value is checked as the option it stands for.

use super::mount_point::validate_mount_point;
use crate::text::printable;

/// The mount point: one record at most.
pub const AT: &str = "SLICEBOX.at";
/// One environment entry, `NAME=VALUE`; repeated, in the slice's order.
pub const ENV: &str = "SLICEBOX.env";
/// The name of the global header's own entry, as `git archive` names it.
pub const HEADER_NAME: &[u8] = b"pax_global_header";

/// The settings an archive carries; empty for a plain tar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveSettings {
    pub mount_point: Option<String>,
    pub env: Vec<String>,
}

/// The records `slice-export` writes for a slice, in order.
pub fn records(mount_point: &str, env: &[String]) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![(AT, mount_point.as_bytes().to_vec())];
    out.extend(env.iter().map(|e| (ENV, e.as_bytes().to_vec())));
    out
}

/// The settings of an archive's `SLICEBOX.*` records, each validated as
/// `--at` and `--env` are; the reason names the record that is refused.
pub fn parse(records: &[(Vec<u8>, Vec<u8>)]) -> Result<ArchiveSettings, String> {
    let mut settings = ArchiveSettings::default();
    for (key, value) in records {
        let key = String::from_utf8_lossy(key);
        let shown = printable(value);
        let value = std::str::from_utf8(value)
            .map_err(|_| format!("its {key} record '{shown}' is not UTF-8"))?;
        match key.as_ref() {
            AT => {
                if settings.mount_point.is_some() {
                    return Err(format!("it has two {AT} records"));
                }
                let at = validate_mount_point(value)
                    .map_err(|e| format!("its {AT} record is refused: {e}"))?;
                settings.mount_point = Some(at);
            }
            ENV => {
                crate::env::check_slice_entry(value.as_bytes())
                    .map_err(|why| format!("its {ENV} record '{shown}' is refused: {why}"))?;
                settings.env.push(value.to_string());
            }
            other => {
                return Err(format!(
                    "it has a '{}' record, which this slicebox does not know \
                     (an archive from a newer slicebox?)",
                    printable(other.as_bytes())
                ))
            }
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(records: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        records
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn what_export_writes_parses_back() {
        let env = vec!["PATH=/opt/t/bin:${PATH}".to_string(), "A=1".to_string()];
        let written: Vec<(Vec<u8>, Vec<u8>)> = records("/opt/t", &env)
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect();
        let settings = parse(&written).unwrap();
        assert_eq!(settings.mount_point.as_deref(), Some("/opt/t"));
        assert_eq!(settings.env, env);
        assert_eq!(parse(&[]).unwrap(), ArchiveSettings::default());
    }

    #[test]
    fn hostile_values_are_refused_as_the_options_refuse_them() {
        for (records, says) in [
            (vec![(AT, "/proc/x")], "/proc, /dev and /tmp"),
            (vec![(AT, "opt/x")], "absolute"),
            (vec![(AT, "/opt/../etc")], "'..'"),
            (vec![(AT, "/")], "root"),
            (vec![(AT, "/opt/a"), (AT, "/opt/b")], "two SLICEBOX.at"),
            (vec![(ENV, "NOEQUALS")], "NAME=VALUE"),
            (vec![(ENV, "1X=y")], "not a variable name"),
            (vec![(ENV, "X=$(id)")], "not supported"),
            (vec![("SLICEBOX.run", "rm -rf /")], "does not know"),
        ] {
            let err = parse(&owned(&records)).unwrap_err();
            assert!(err.contains(says), "{records:?}: {err}");
        }
        let bytes = vec![(AT.as_bytes().to_vec(), b"/opt/\xff".to_vec())];
        assert!(parse(&bytes).unwrap_err().contains("not UTF-8"));
    }
}
