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

/// An OCI image layout made from `data` and read as `layer-add` reads an
/// image: `open_image` for the host's platform and for linux/arm64, then
/// every layer as a tar to its end. `data` is split at each `\n--\n`
/// into `index.json` and up to seven blobs; in each part, `@N` becomes
/// blob N's `sha256:` digest and `#N` its size (blobs name only later
/// blobs), so that the fuzzer reaches past the digest checks. Returns how
/// many layers the host's image had, for the tests.
pub fn image(data: &[u8]) -> Option<usize> {
    use crate::digest::Digest;
    let mut parts = split(data, b"\n--\n");
    parts.truncate(8);
    for n in (1..parts.len()).rev() {
        let (digest, size) = (
            Digest::of(&parts[n]).to_string(),
            parts[n].len().to_string(),
        );
        for earlier in &mut parts[..n] {
            *earlier = replace(earlier, format!("@{n}").as_bytes(), digest.as_bytes());
            *earlier = replace(earlier, format!("#{n}").as_bytes(), size.as_bytes());
        }
    }
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("slicebox-fuzz-image.{}.{run}", std::process::id()));
    let blobs = dir.join("blobs/sha256");
    let written = std::fs::create_dir_all(&blobs).and_then(|()| {
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        std::fs::write(dir.join("index.json"), &parts[0])?;
        parts[1..]
            .iter()
            .try_for_each(|blob| std::fs::write(blobs.join(Digest::of(blob).hex()), blob))
    });
    let layers = written.ok().and_then(|()| read_image(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    layers
}

fn read_image(dir: &std::path::Path) -> Option<usize> {
    use crate::store::image::{open_image, Platform};
    let arm = Platform {
        os: "linux".into(),
        architecture: "arm64".into(),
        variant: None,
    };
    let _ = open_image(dir, Some(&arm));
    let image = open_image(dir, None).ok()?;
    for layer in &image.layers {
        if let Ok(mut tar) = layer.open_tar() {
            let _ = std::io::copy(&mut tar, &mut std::io::sink()).map(|_| tar.finish());
        }
    }
    Some(image.layers.len())
}

/// `text` with every `from` replaced by `to`.
fn replace(text: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// `data` cut at each `separator`.
fn split(data: &[u8], separator: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(separator.len()).position(|w| w == separator) {
        parts.push(rest[..at].to_vec());
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest.to_vec());
    parts
}

/// The byte stream a `slicebox serve --stdio` reads from a peer, served
/// whole into a throwaway store: frames, messages, listings, zstd streams
/// and objects, as a hostile client would send them. `Run` is refused (the
/// fuzzer is no slicebox to start a stage with).
pub fn protocol(data: &[u8]) {
    let dir = std::env::temp_dir().join(format!("slicebox-fuzz-protocol-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let settings = crate::remote::server::ServeSettings {
        default_store: Some(dir.clone()),
        limits: crate::store::Limits {
            bytes: 64 << 20,
            file: 64 << 20,
            ..Default::default()
        },
        runs_stages: false,
    };
    let input = std::io::Cursor::new(data.to_vec());
    let mut conn = crate::remote::conn::Conn::new(Box::new(input), Box::new(std::io::sink()));
    let _ = crate::remote::server::serve(&mut conn, &settings);
    let _ = std::fs::remove_dir_all(&dir);
}
