//! Entry points for the cargo-fuzz targets in `fuzz/`: each feeds
//! untrusted bytes to one parser exactly as slicebox would, without a
//! store on disk. Not part of the supported API.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// A tar stream (plain, gzip or zstd) read and staged as `slice-add -`
/// would, with the default limits but 256M of files: hashing a bomb of
/// gigabytes that the defaults allow takes seconds, which the fuzzer would
/// report as a hang. The tree is built (the archive's order is checked on
/// disk) in a throwaway store below the temporary directory, removed after.
pub fn tar(data: &[u8]) {
    let limits = crate::store::Limits {
        bytes: 256 << 20,
        file: 256 << 20,
        ..Default::default()
    };
    let _ = crate::store::parse_archive_only(data, limits);
}

/// A manifest.json as a stage or `slice-show` reads it.
pub fn manifest(data: &[u8]) {
    if let Ok(manifest) = crate::store::Manifest::parse(data) {
        let _ = manifest.slice_digest();
    }
}

/// A slice listing as gc, verify and diff read it.
pub fn listing(data: &[u8]) {
    if let Some(entries) = crate::store::parse_listing(data) {
        let _ = crate::store::listing_tree_digest(&entries);
    }
}

/// A file as slice-add's prefix check and a failed exec's diagnosis read
/// it: its `#!` line or ELF headers (PT_INTERP, DT_RPATH, DT_RUNPATH).
pub fn interpreter(data: &[u8]) {
    use std::io::Write;
    // SAFETY: a NUL-terminated name; the fd is owned by `file` below.
    let fd = unsafe { libc::memfd_create(c"fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: a new fd that nothing else owns.
    let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    file.write_all(data).expect("memfd write");
    let _ = crate::store::prefix::references_in(&file);
    let mut out = [0u8; crate::interp::MOST_INTERPRETER_BYTES];
    let _ = crate::interp::interpreter(fd, &mut out);
}

/// NUL-separated arguments for every command's parser.
pub fn args(data: &[u8]) {
    let args: Vec<OsString> = data
        .split(|b| *b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    for command in crate::cli::spec::COMMANDS {
        let _ = crate::cli::parse(command, &args);
    }
}
