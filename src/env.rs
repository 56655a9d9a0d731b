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
/// (empty when unset). A `:`-separated element that is only `${NAME}` and
/// comes to nothing is dropped with its `:`: `PYTHONPATH=/opt/x:${PYTHONPATH}`
/// with PYTHONPATH unset is `/opt/x`, not `/opt/x:` (an empty element of a
/// search path means the current directory).
pub fn expand(entry: &[u8], env: &[OsString]) -> Vec<u8> {
    let Some((name, value)) = split(entry) else {
        return expand_text(entry, env);
    };
    let mut out = name.to_vec();
    out.push(b'=');
    let mut first = true;
    for element in value.split(|c| *c == b':') {
        let expanded = expand_text(element, env);
        if expanded.is_empty() && is_reference(element) {
            continue;
        }
        if !first {
            out.push(b':');
        }
        first = false;
        out.extend_from_slice(&expanded);
    }
    out
}

/// Whether `text` is exactly one `${NAME}`.
fn is_reference(text: &[u8]) -> bool {
    text.strip_prefix(b"${")
        .and_then(|t| t.strip_suffix(b"}"))
        .is_some_and(valid_name)
}

fn expand_text(text: &[u8], env: &[OsString]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
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

/// Checks one entry of a slice's environment (`slice-add --env`, an
/// exported archive's `SLICEBOX.env`): `NAME=VALUE`, NAME a name a shell
/// can export, VALUE in the forms `expand` supports.
pub fn check_slice_entry(entry: &[u8]) -> Result<(), String> {
    let Some((name, value)) = split(entry) else {
        return Err("expected NAME=VALUE".into());
    };
    if !valid_name(name) {
        return Err(format!(
            "expected NAME=VALUE, and '{}' is not a variable name (a letter or _, then letters, digits, _)",
            crate::text::printable(name)
        ));
    }
    check_value(value)
}

/// Checks that a slice variable's value uses no form `expand` does not
/// support: every `$` starts a `${NAME}`. Names the first other form.
pub fn check_value(value: &[u8]) -> Result<(), String> {
    let mut rest = value;
    while let Some(at) = rest.iter().position(|c| *c == b'$') {
        rest = &rest[at..];
        let form = match rest.get(1) {
            Some(b'{') => match rest.iter().position(|c| *c == b'}') {
                Some(end) if valid_name(&rest[2..end]) => {
                    rest = &rest[end + 1..];
                    continue;
                }
                Some(end) => &rest[..=end],
                None => rest,
            },
            Some(b'(') => match rest.iter().position(|c| *c == b')') {
                Some(end) => &rest[..=end],
                None => rest,
            },
            Some(_) => {
                let word = rest[1..]
                    .iter()
                    .take_while(|c| **c == b'_' || c.is_ascii_alphanumeric())
                    .count();
                &rest[..rest.len().min(2 + word.saturating_sub(1))]
            }
            None => rest,
        };
        let shown = String::from_utf8_lossy(&form[..form.len().min(40)]).into_owned();
        return Err(format!(
            "'{shown}' is not supported: only ${{NAME}} is expanded (to NAME's value, or to nothing)"
        ));
    }
    Ok(())
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

    #[test]
    fn an_unset_reference_drops_its_path_element() {
        let env = [OsString::from("SET=/s"), OsString::from("EMPTY=")];
        let x = |entry: &str| String::from_utf8(expand(entry.as_bytes(), &env)).unwrap();
        assert_eq!(x("P=/opt/x:${UNSET}"), "P=/opt/x");
        assert_eq!(x("P=${UNSET}:/opt/x"), "P=/opt/x");
        assert_eq!(x("P=/a:${UNSET}:/b"), "P=/a:/b");
        assert_eq!(x("P=/a:${EMPTY}"), "P=/a");
        assert_eq!(x("P=/opt/x:${SET}"), "P=/opt/x:/s");
        assert_eq!(x("P=${UNSET}"), "P=");
        // Only a whole element drops; an empty element written out stays.
        assert_eq!(x("P=/a::/b"), "P=/a::/b");
        assert_eq!(x("P=pre${UNSET}:/b"), "P=pre:/b");
        assert_eq!(x("P=a=b:${SET}"), "P=a=b:/s");
    }

    #[test]
    fn unsupported_forms_are_named() {
        assert!(check_value(b"/opt/x:${PATH}").is_ok());
        assert!(check_value(b"plain").is_ok());
        let err = |v: &str| check_value(v.as_bytes()).unwrap_err();
        assert!(err("${X:+/a}").starts_with("'${X:+/a}' is not supported"));
        assert!(err("a:${X:-b}").starts_with("'${X:-b}'"));
        assert!(err("$(id)").starts_with("'$(id)'"));
        assert!(err("$HOME/x").starts_with("'$HOME'"));
        assert!(err("x$").starts_with("'$'"));
        assert!(err("${unterminated").starts_with("'${unterminated'"));
    }
}
