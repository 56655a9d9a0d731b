//! Environments as `NAME=VALUE` entries: the one parser of such an entry,
//! lookups and replacement by name, and the `${NAME}` expansion of slice
//! variables.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// `NAME=VALUE` split at its first `=`; `None` without one.
pub fn split(entry: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = entry.iter().position(|c| *c == b'=')?;
    Some((&entry[..eq], &entry[eq + 1..]))
}

/// The name of an entry: all of it when it has no `=`.
pub fn name(entry: &[u8]) -> &[u8] {
    split(entry).map_or(entry, |(name, _)| name)
}

/// The value of `name` in `env`.
pub fn value<'e>(env: &'e [OsString], name: &[u8]) -> Option<&'e [u8]> {
    env.iter()
        .find_map(|entry| split(entry.as_bytes()).filter(|(n, _)| *n == name))
        .map(|(_, value)| value)
}

/// Replaces the entry of the same name in place, or appends.
pub fn set(env: &mut Vec<OsString>, entry: OsString) {
    let new = entry.as_bytes().to_vec();
    match env.iter_mut().find(|e| name(e.as_bytes()) == name(&new)) {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

/// A name a shell can export: a letter or `_`, then letters, digits, `_`.
pub fn valid_name(name: &[u8]) -> bool {
    name.first()
        .is_some_and(|c| *c == b'_' || c.is_ascii_alphabetic())
        && name.iter().all(|c| *c == b'_' || c.is_ascii_alphanumeric())
}

/// Replaces each `${NAME}` in an entry's value by NAME's value in `env`
/// (empty when unset).
pub fn expand(entry: &[u8], env: &[OsString]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.len());
    let mut rest = entry;
    while let Some(start) = rest.windows(2).position(|w| w == b"${") {
        let Some(len) = rest[start + 2..].iter().position(|c| *c == b'}') else {
            break;
        };
        let name = &rest[start + 2..start + 2 + len];
        out.extend_from_slice(&rest[..start]);
        if let Some(value) = value(env, name) {
            out.extend_from_slice(value);
        }
        rest = &rest[start + 3 + len..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_by_name() {
        let mut env = vec![OsString::from("A=1"), OsString::from("B=2")];
        set(&mut env, OsString::from("A=3"));
        set(&mut env, OsString::from("C=4"));
        assert_eq!(env, ["A=3", "B=2", "C=4"].map(OsString::from));
    }

    #[test]
    fn an_entry_splits_at_its_first_equals_sign() {
        assert_eq!(split(b"A=b=c"), Some((&b"A"[..], &b"b=c"[..])));
        assert_eq!(split(b"A"), None);
        assert_eq!(name(b"A"), b"A");
        let env = [OsString::from("PATH=/bin"), OsString::from("PATHX=/x")];
        assert_eq!(value(&env, b"PATH"), Some(&b"/bin"[..]));
        assert_eq!(value(&env, b"PAT"), None);
        assert!(valid_name(b"_A1") && !valid_name(b"1A") && !valid_name(b""));
    }
}
