//! Untrusted text on its way to a human: file and entry names from a
//! stranger's archive, paths, refs, arguments. One function renders any of
//! them for a terminal: control characters escaped (Rust's `\u{1b}`
//! notation), invalid UTF-8 replaced, and very long strings shortened in
//! the middle. JSON output does not use it: JSON carries the real bytes
//! (see `json_bytes`). Causes from the kernel are told as users know
//! them (`strerror`, `io_cause`): "Permission denied", never "(os error 13)".

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Longer renderings keep this many characters at each end.
const KEEP: usize = 90;

/// Bytes from an untrusted source, safe to print on a terminal.
pub fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut escaped: Vec<char> = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    if escaped.len() <= 2 * KEEP + 20 {
        return escaped.into_iter().collect();
    }
    let mut out: String = escaped[..KEEP].iter().collect();
    out.push_str(&format!("…[{} more]…", escaped.len() - 2 * KEEP));
    out.extend(&escaped[escaped.len() - KEEP..]);
    out
}

pub fn printable_path(path: &Path) -> String {
    printable(path.as_os_str().as_bytes())
}

/// The last line of defence before stderr: any control character other
/// than a newline that a message still holds is escaped.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

pub use crate::os::{io_cause, strerror};

/// Names in JSON: `key` holds the bytes as a string; bytes that are not
/// UTF-8 are replaced there (U+FFFD) and given exactly in `key_hex`, as
/// lowercase hex (docs/formats.md).
pub fn json_bytes(map: &mut serde_json::Map<String, serde_json::Value>, key: &str, bytes: &[u8]) {
    map.insert(
        key.to_string(),
        String::from_utf8_lossy(bytes).into_owned().into(),
    );
    if std::str::from_utf8(bytes).is_err() {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        map.insert(format!("{key}_hex"), hex.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable(b"a\x1b[31mb\n\x07"), "a\\u{1b}[31mb\\n\\u{7}");
        assert_eq!(escape_controls("x\x1by\n"), "x\\u{1b}y\n");
    }

    #[test]
    fn causes_drop_the_os_error_suffix() {
        assert_eq!(strerror(libc::ENOENT), "No such file or directory");
        let denied = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_cause(&denied), "Permission denied");
        assert_eq!(io_cause(&std::io::Error::other("it changed")), "it changed");
    }

    #[test]
    fn very_long_strings_are_shortened_in_the_middle() {
        let long = format!("/{}/end", "a".repeat(40_000));
        let shown = printable(long.as_bytes());
        assert!(shown.chars().count() < 250, "{}", shown.len());
        assert!(shown.starts_with("/aaa") && shown.ends_with("a/end"));
        assert!(shown.contains("more]"));
    }

    #[test]
    fn json_carries_the_real_bytes() {
        let mut map = serde_json::Map::new();
        json_bytes(&mut map, "path", b"e\x1b[31m");
        assert_eq!(map["path"], "e\u{1b}[31m");
        assert!(!map.contains_key("path_hex"));
        let text = serde_json::to_string(&map).unwrap();
        assert_eq!(text, r#"{"path":"e\u001b[31m"}"#);
        let mut map = serde_json::Map::new();
        json_bytes(&mut map, "path", b"a\xffb");
        assert_eq!(map["path_hex"], "61ff62");
    }
}
