//! The prefix a tree was built for, read from what it stores: a script's
//! first line (`#!/root/.pyenv/versions/3.10.13/bin/python3.10`), an ELF
//! file's interpreter (PT_INTERP) and its run paths (DT_RPATH,
//! DT_RUNPATH). A path that names a file of the tree under some other
//! directory names that directory as the tree's prefix: the tree works
//! only when mounted there.
//!
//! Every file is hostile input: at most the first `HEAD` bytes of a script
//! are read, and an ELF file's headers are parsed with every offset and
//! size checked against the file and capped, so no file can make this
//! read much or index out of bounds.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::interp::{
    shebang, Elf, Segment, DT_NULL, DT_RPATH, DT_RUNPATH, DT_STRTAB, PT_DYNAMIC, PT_INTERP, PT_LOAD,
};

/// What slice-add does with the prefixes it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixCheck {
    /// Look at nothing (a `--cache` input, an `--out` dir).
    Off,
    /// Report them (the mount point was given).
    Report,
    /// Report them, and mount at the one prefix found, if exactly one.
    Default,
}

/// A prefix the tree was built for, and the first file that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltFor {
    pub prefix: String,
    /// The file, relative to the tree.
    pub witness: String,
    /// Where in it: "first line", "ELF interpreter", "RPATH", "RUNPATH".
    pub how: &'static str,
}

/// Bytes of a file read for its `#!` line and ELF identification: the
/// kernel reads no more of a script's first line (BINPRM_BUF_SIZE).
const HEAD: usize = 256;
/// Most prefixes kept: a tree naming more is described by the first ones.
const MOST_PREFIXES: usize = 8;
/// Caps on what an ELF file's headers may make us read.
const MOST_DYNAMIC_BYTES: u64 = 1 << 20;
const MOST_STRING_BYTES: u64 = 4096;

/// Directories of the stage's base: a reference into them names the host
/// system, not a prefix the tree could be mounted at (`#!/usr/local/bin/python`
/// in CPython's own library names whatever Python the host has there).
const BASE: [&str; 9] = [
    "/",
    "/usr",
    "/usr/local",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/etc",
];

/// The prefixes a tree was built for, found as a walk meets its files in
/// name order: what it keeps is what it found (at most `MOST_PREFIXES`),
/// in the order their first witness comes in the tree, never the tree.
#[derive(Default)]
pub(crate) struct PrefixScan {
    found: Vec<BuiltFor>,
}

impl PrefixScan {
    /// A regular file of the tree at `path`, its bytes in `object`;
    /// `exists` tells whether a path of the tree (its components) names
    /// an entry of it.
    pub(crate) fn file(
        &mut self,
        path: &[u8],
        executable: bool,
        object: &Path,
        exists: impl Fn(&[&str]) -> bool,
    ) {
        if self.found.len() >= MOST_PREFIXES || (!executable && !is_shared_library(path)) {
            return;
        }
        for (reference, how) in references(object) {
            let Some(prefix) = prefix_of(&reference, &exists) else {
                continue;
            };
            if self.found.iter().all(|f| f.prefix != prefix) {
                self.found.push(BuiltFor {
                    prefix,
                    witness: String::from_utf8_lossy(path).into_owned(),
                    how,
                });
            }
        }
    }

    pub(crate) fn finish(self) -> Vec<BuiltFor> {
        self.found
    }
}

/// The mount point: `given`, unless `check` asks for the default and
/// exactly one prefix that can be a mount point was found.
pub fn mount_point(given: String, check: PrefixCheck, found: &[BuiltFor]) -> String {
    match (check, found) {
        (PrefixCheck::Default, [one]) => super::validate_mount_point(&one.prefix).unwrap_or(given),
        _ => given,
    }
}

fn is_shared_library(path: &[u8]) -> bool {
    let name = path.rsplit(|c| *c == b'/').next().unwrap_or(path);
    name.ends_with(b".so") || name.windows(4).any(|w| w == b".so.")
}

/// The directory under which `reference` names an entry of the tree:
/// the shortest leading part whose rest is a path of the tree (`exists`).
/// `None` for a relative or `$ORIGIN` path, one that names nothing of the
/// tree, or a base directory.
fn prefix_of(reference: &[u8], exists: impl Fn(&[&str]) -> bool) -> Option<String> {
    let text = std::str::from_utf8(reference).ok()?;
    if !text.starts_with('/') || text.contains('$') {
        return None;
    }
    let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty()).collect();
    (1..parts.len())
        .find(|k| exists(&parts[*k..]))
        .map(|k| format!("/{}", parts[..k].join("/")))
        .filter(|prefix| !BASE.contains(&prefix.as_str()))
}

/// The absolute paths a file names for the kernel or the dynamic loader.
fn references(file: &Path) -> Vec<(Vec<u8>, &'static str)> {
    match File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(file)
    {
        Ok(file) => references_in(&file),
        Err(_) => Vec::new(),
    }
}

/// What `references` reads, from an open file (the fuzz target's way in).
pub fn references_in(file: &File) -> Vec<(Vec<u8>, &'static str)> {
    let mut head = [0u8; HEAD];
    let Ok(n) = file.read_at(&mut head, 0) else {
        return Vec::new();
    };
    let head = &head[..n];
    if let Some(interpreter) = shebang(head) {
        return vec![(interpreter.to_vec(), "first line")];
    }
    match Elf::parse(head) {
        Some(elf) => elf.references(file),
        None => Vec::new(),
    }
}

impl Elf {
    fn segments(&self, file: &File) -> Option<Vec<Segment>> {
        let size = self.phentsize.checked_mul(self.phnum)?;
        let table = read_exact_at(file, self.phoff, size)?;
        let mut segments = Vec::new();
        for entry in table.chunks_exact(self.phentsize as usize) {
            segments.push(Segment {
                kind: self.int(entry, 0, 4)? as u32,
                offset: self.word(entry, 8, 4)?,
                vaddr: self.word(entry, 16, 8)?,
                filesz: self.word(entry, 32, 16)?,
            });
        }
        Some(segments)
    }

    fn references(&self, file: &File) -> Vec<(Vec<u8>, &'static str)> {
        let mut out = Vec::new();
        let Some(segments) = self.segments(file) else {
            return out;
        };
        for segment in &segments {
            match segment.kind {
                PT_INTERP if segment.filesz <= MOST_STRING_BYTES => {
                    if let Some(bytes) = read_exact_at(file, segment.offset, segment.filesz) {
                        out.push((until_nul(&bytes).to_vec(), "ELF interpreter"));
                    }
                }
                PT_DYNAMIC => out.extend(self.run_paths(file, segment, &segments)),
                _ => {}
            }
        }
        out
    }

    /// Each directory of DT_RPATH and DT_RUNPATH.
    fn run_paths(
        &self,
        file: &File,
        dynamic: &Segment,
        segments: &[Segment],
    ) -> Vec<(Vec<u8>, &'static str)> {
        let mut out = Vec::new();
        let size = dynamic.filesz.min(MOST_DYNAMIC_BYTES);
        let Some(table) = read_exact_at(file, dynamic.offset, size) else {
            return out;
        };
        let entry = if self.wide { 16 } else { 8 };
        let (mut strtab, mut paths) = (None, Vec::new());
        for chunk in table.chunks_exact(entry) {
            let (Some(tag), Some(value)) = (self.word(chunk, 0, 0), self.word(chunk, 8, 4)) else {
                break;
            };
            match tag {
                DT_NULL => break,
                DT_STRTAB => strtab = Some(value),
                DT_RPATH => paths.push((value, "RPATH")),
                DT_RUNPATH => paths.push((value, "RUNPATH")),
                _ => {}
            }
        }
        let Some(strtab) = strtab.and_then(|address| file_offset(segments, address)) else {
            return out;
        };
        for (index, how) in paths {
            let Some(at) = strtab.checked_add(index) else {
                continue;
            };
            let Some(bytes) = read_at_most(file, at, MOST_STRING_BYTES) else {
                continue;
            };
            for dir in until_nul(&bytes).split(|c| *c == b':') {
                out.push((dir.to_vec(), how));
            }
        }
        out
    }
}

/// Where a virtual address is in the file, through the PT_LOAD that maps it.
fn file_offset(segments: &[Segment], address: u64) -> Option<u64> {
    segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| address >= s.vaddr && address - s.vaddr < s.filesz)
        .and_then(|s| s.offset.checked_add(address - s.vaddr))
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().position(|c| *c == 0).unwrap_or(bytes.len())]
}

fn read_at_most(file: &File, offset: u64, len: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    let n = file.read_at(&mut buf, offset).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// `len` bytes at `offset`, or `None` when the file is shorter.
fn read_exact_at(file: &File, offset: u64, len: u64) -> Option<Vec<u8>> {
    let size = file.metadata().ok()?.len();
    if offset.checked_add(len)? > size || len > MOST_DYNAMIC_BYTES {
        return None;
    }
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `parts` names an entry of the tree of `paths`
    /// ('/'-separated), for tests: an entry or one of its parents.
    fn tree_of<'p>(paths: &'p [&str]) -> impl Fn(&[&str]) -> bool + 'p {
        move |parts: &[&str]| {
            let wanted = parts.join("/");
            paths
                .iter()
                .any(|p| *p == wanted || p.starts_with(&format!("{wanted}/")))
        }
    }

    #[test]
    fn a_prefix_is_what_is_left_of_a_path_into_the_tree() {
        let tree = tree_of(&["bin/python3.10", "lib/libpython3.10.so.1.0", "bin/env"]);
        let prefix = |r: &str| prefix_of(r.as_bytes(), &tree);
        assert_eq!(
            prefix("/root/.pyenv/versions/3.10.13/bin/python3.10").as_deref(),
            Some("/root/.pyenv/versions/3.10.13")
        );
        assert_eq!(
            prefix("/root/.pyenv/versions/3.10.13/lib").as_deref(),
            Some("/root/.pyenv/versions/3.10.13")
        );
        // The host's own dirs, relative and $ORIGIN paths name no prefix.
        assert_eq!(prefix("/usr/bin/env"), None);
        assert_eq!(prefix("/usr/bin/python3"), None);
        assert_eq!(prefix("/usr/local/bin/python3.10"), None);
        assert_eq!(prefix("$ORIGIN/../lib"), None);
        assert_eq!(prefix("lib"), None);
        assert_eq!(prefix("/opt/x/share/nothing"), None);
    }

    #[test]
    fn the_default_mount_point_is_the_one_prefix_found() {
        let found = |p: &str| BuiltFor {
            prefix: p.into(),
            witness: "bin/x".into(),
            how: "RUNPATH",
        };
        let at = |check, f: &[BuiltFor]| mount_point("/opt/n".into(), check, f);
        assert_eq!(at(PrefixCheck::Default, &[found("/p")]), "/p");
        assert_eq!(at(PrefixCheck::Report, &[found("/p")]), "/opt/n");
        assert_eq!(
            at(PrefixCheck::Default, &[found("/p"), found("/q")]),
            "/opt/n"
        );
        assert_eq!(at(PrefixCheck::Default, &[found("/tmp/build")]), "/opt/n");
        assert_eq!(at(PrefixCheck::Default, &[]), "/opt/n");
    }

    /// A 64-bit little-endian ELF file with a PT_INTERP, a PT_LOAD and a
    /// PT_DYNAMIC whose DT_RUNPATH names two dirs.
    fn elf64(interp: &[u8], runpath: &[u8], phnum: u16) -> Vec<u8> {
        let mut f = vec![0u8; 0x400];
        f[..6].copy_from_slice(b"\x7fELF\x02\x01");
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&phnum.to_le_bytes());
        let ph = |f: &mut Vec<u8>, i: usize, kind: u32, off: u64, vaddr: u64, size: u64| {
            let at = 64 + i * 56;
            f[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            f[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            f[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        };
        ph(&mut f, 0, PT_INTERP, 0x200, 0x200, interp.len() as u64 + 1);
        ph(&mut f, 1, PT_LOAD, 0, 0x10000, 0x400);
        ph(&mut f, 2, PT_DYNAMIC, 0x300, 0x10300, 48);
        f[0x200..0x200 + interp.len()].copy_from_slice(interp);
        let dt = |f: &mut Vec<u8>, i: usize, tag: u64, value: u64| {
            let at = 0x300 + i * 16;
            f[at..at + 8].copy_from_slice(&tag.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&value.to_le_bytes());
        };
        dt(&mut f, 0, DT_STRTAB, 0x10380);
        dt(&mut f, 1, DT_RUNPATH, 1);
        dt(&mut f, 2, DT_NULL, 0);
        f[0x381..0x381 + runpath.len()].copy_from_slice(runpath);
        f
    }

    fn references_of(bytes: &[u8]) -> Vec<(String, &'static str)> {
        let dir = std::env::temp_dir().join(format!(
            "slicebox-prefix-{}",
            crate::store::fsutil::unique_suffix()
        ));
        std::fs::write(&dir, bytes).unwrap();
        let found = references(&dir);
        std::fs::remove_file(&dir).unwrap();
        found
            .into_iter()
            .map(|(r, how)| (String::from_utf8(r).unwrap(), how))
            .collect()
    }

    #[test]
    fn an_elf_file_names_its_interpreter_and_run_paths() {
        let found = references_of(&elf64(
            b"/lib64/ld-linux-x86-64.so.2",
            b"/p/lib:$ORIGIN/../lib",
            3,
        ));
        assert_eq!(
            found,
            [
                ("/lib64/ld-linux-x86-64.so.2".to_string(), "ELF interpreter"),
                ("/p/lib".to_string(), "RUNPATH"),
                ("$ORIGIN/../lib".to_string(), "RUNPATH"),
            ]
        );
    }

    #[test]
    fn a_hostile_elf_file_is_read_no_further_than_it_goes() {
        // Program headers past the end, too many of them, a truncated file:
        // nothing is found and nothing panics.
        assert!(references_of(&elf64(b"/i", b"/p/lib", 3)[..100]).is_empty());
        assert!(references_of(&elf64(b"/i", b"/p/lib", 300)).is_empty());
        let mut far = elf64(b"/i", b"/p/lib", 3);
        far[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(references_of(&far).is_empty());
        let mut strtab_outside = elf64(b"/i", b"/p/lib", 3);
        strtab_outside[0x308..0x310].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            references_of(&strtab_outside),
            [("/i".to_string(), "ELF interpreter")]
        );
        for cut in (0..0x400).step_by(7) {
            let _ = references_of(&elf64(b"/i", b"/p/lib", 3)[..cut]);
        }
    }
}
