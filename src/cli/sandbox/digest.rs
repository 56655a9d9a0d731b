//! The digest of a `--cache` stage: everything that can change what it
//! stores, in one canonical byte string (docs/formats.md, "Stage
//! digests"). Two runs with the same digest are taken to store the same
//! output.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Exit, Failure};
use crate::digest::Digest;
use crate::runtime::seccomp::Filter;
use crate::runtime::Stage;
use crate::text::printable_path;

/// The format's first line; a new one changes every digest.
const VERSION: &[u8] = b"slicebox stage 2\n";

/// Appends `tag LEN:bytes\n`: a length prefix keeps any byte unambiguous.
fn field(text: &mut Vec<u8>, tag: &str, bytes: &[u8]) {
    text.extend_from_slice(tag.as_bytes());
    text.extend_from_slice(format!(" {}:", bytes.len()).as_bytes());
    text.extend_from_slice(bytes);
    text.push(b'\n');
}

/// `slices` are (mount point, slice digest); `inputs` the snapshots'
/// (where the stage sees them, tree digest): the working directory and
/// each `--ro-bind`; `out_dir` is the `--out` DIR.
pub fn stage_digest(
    stage: &Stage,
    slices: &[(OsString, Digest)],
    inputs: &[(PathBuf, Digest)],
    out_dir: &Path,
) -> Result<Digest, Failure> {
    let input = |at: &Path| {
        inputs
            .iter()
            .find(|(shown, _)| shown == at)
            .map(|(_, tree)| tree.to_string())
            .ok_or_else(|| Failure {
                message: format!("no snapshot of '{}' for --cache", printable_path(at)),
                exit: Exit::SETUP_FAILED,
            })
    };
    let mut text = VERSION.to_vec();
    for arg in &stage.argv {
        field(&mut text, "arg", arg.as_bytes());
    }
    for entry in &stage.env {
        field(&mut text, "env", entry.as_bytes());
    }
    // Mounts are a set: their order on the command line changes nothing.
    let mut mounts: Vec<_> = slices.to_vec();
    mounts.sort();
    for (mount_point, digest) in &mounts {
        field(&mut text, "slice", mount_point.as_bytes());
        field(&mut text, "digest", digest.to_string().as_bytes());
    }
    // Layers are ordered, bottom first; each tree is named by the
    // layer's digest (layer-trees/<hex>).
    for layer in &stage.layers {
        let hex = layer.tree.file_name().unwrap_or_default();
        field(&mut text, "layer", hex.as_bytes());
    }
    match &stage.workdir {
        Some(dir) => {
            field(&mut text, "workdir", dir.as_os_str().as_bytes());
            field(&mut text, "digest", input(dir)?.as_bytes());
        }
        None => field(&mut text, "workdir", b""),
    }
    field(&mut text, "start", stage.start_dir.as_os_str().as_bytes());
    let mut binds: Vec<_> = stage.binds.iter().collect();
    binds.sort_by(|a, b| a.target.cmp(&b.target));
    for bind in binds {
        // The --out dir is the output, not an input.
        if bind.target == out_dir {
            continue;
        }
        field(&mut text, "ro-bind", bind.target.as_os_str().as_bytes());
        field(&mut text, "digest", input(&bind.target)?.as_bytes());
    }
    let mut tmpfs: Vec<_> = stage.tmpfs.iter().collect();
    tmpfs.sort_by(|a, b| a.target.cmp(&b.target));
    for t in tmpfs {
        field(&mut text, "tmpfs", t.target.as_os_str().as_bytes());
        field(
            &mut text,
            "options",
            format!("{:?} {:o}", t.size, t.mode).as_bytes(),
        );
    }
    field(&mut text, "dev", &[b'0' + stage.dev as u8]);
    if let Some(name) = &stage.hostname {
        field(&mut text, "hostname", name.as_bytes());
    }
    let (uid, gid) = stage.identity.unwrap_or_else(|| {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    });
    field(&mut text, "ids", format!("{uid} {gid}").as_bytes());
    for limit in &stage.rlimits {
        field(
            &mut text,
            "rlimit",
            format!("{} {} {}", limit.resource, limit.soft, limit.hard).as_bytes(),
        );
    }
    match &stage.seccomp {
        Filter::Default {
            allow_userns: false,
        } => {}
        Filter::Default { allow_userns: true } => field(&mut text, "seccomp", b"allow-userns"),
        Filter::Program(program) => field(
            &mut text,
            "seccomp",
            Digest::of(&program.to_bytes()).to_string().as_bytes(),
        ),
    }
    field(&mut text, "out", out_dir.as_os_str().as_bytes());
    Ok(Digest::of(&text))
}
