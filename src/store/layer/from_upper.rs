//! An OverlayFS upper dir read into a layer: what a stage with `--upper`
//! changed. A 0/0 character device is a whiteout, a directory with
//! `user.overlay.opaque=y` (rootless, `userxattr`) or
//! `trusted.overlay.opaque=y` (root) is opaque. fuse-overlayfs (a rootless
//! `layer-mount --upper`) writes its own forms too: `user.fuseoverlayfs.opaque`,
//! an opaque marker of two entries (`.wh..wh..opq` and a `.wh..opq`
//! device), and `.wh.NAME` files where it cannot make a device. The walk
//! is at.rs's: one directory open at a time, never through a symlink.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::listing::{LayerEntry, LayerKind};
use super::{check_tree, special_file, Collected};
use crate::store::archive_source::rejected;
use crate::store::at::{self, Visit};
use crate::store::limits::{Budget, Limits};
use crate::store::objects::ObjectWriter;
use crate::store::progress::Progress;
use crate::store::{os, Error, IoContext, Result};

const OPAQUE: [&CStr; 3] = [
    c"user.overlay.opaque",
    c"trusted.overlay.opaque",
    c"user.fuseoverlayfs.opaque",
];
const REDIRECT: [&CStr; 2] = [c"user.overlay.redirect", c"trusted.overlay.redirect"];

/// The value of the extended attribute `name` of `fd`, when it has one.
fn xattr(fd: &OwnedFd, name: &CStr) -> Option<Vec<u8>> {
    let mut value = [0u8; 256];
    // SAFETY: a valid fd, a C string, and a buffer of the length given.
    let got = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    (got >= 0).then(|| value[..got as usize].to_vec())
}

pub(crate) fn read_upper(
    dir: &Path,
    source_name: &str,
    limits: Limits,
    objects: &ObjectWriter<'_>,
    progress: &Progress,
) -> Result<Collected> {
    let top = at::open_dir(dir).at("open", dir)?;
    let mut budget = Budget::new(limits);
    let mut collected = Collected::default();
    let failed = |path: &[u8], e: std::io::Error| Error::Io {
        op: "read",
        path: dir.join(os(path)),
        source: e,
    };
    at::walk(
        top,
        |visit| {
            let reject = |reason: String| rejected(source_name, visit.path, reason);
            let parts: Vec<Vec<u8>> = visit
                .path
                .split(|c| *c == b'/')
                .map(<[u8]>::to_vec)
                .collect();
            budget
                .entry(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
                .map_err(reject)?;
            let shown = dir.join(os(visit.path));
            let mut parts = parts;
            match marker(visit).map_err(reject)? {
                Marker::None => {}
                Marker::Opaque => {
                    parts.pop();
                    return super::make_opaque(&mut collected.entries, parts).map_err(reject);
                }
                Marker::Whiteout(name) => {
                    *parts.last_mut().expect("a walk's path has a name") = name;
                    let entry = LayerEntry {
                        path: parts.join(&b'/'),
                        kind: LayerKind::Whiteout,
                        mode: 0,
                        uid: 0,
                        gid: 0,
                        xattrs: Vec::new(),
                    };
                    collected.entries.insert(parts, entry);
                    return Ok(());
                }
            }
            let Some(kind) = kind_of(visit, &shown, &mut budget, objects).map_err(|e| match e {
                Refused::Reason(r) => reject(r),
                Refused::Error(e) => e,
            })?
            else {
                collected.devices_skipped += 1;
                return Ok(());
            };
            if let LayerKind::File { size, .. } = kind {
                progress.advance(size);
            }
            let st = visit.stat;
            let mut entry = LayerEntry {
                path: visit.path.to_vec(),
                kind,
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
                xattrs: Vec::new(),
            };
            super::normalise_whiteout(&mut entry);
            collected.entries.insert(parts, entry);
            Ok(())
        },
        |_| Ok(()),
        failed,
    )?;
    check_tree(&collected.entries)
        .map_err(|(path, reason)| rejected(source_name, &path, reason))?;
    Ok(collected)
}

/// What an OCI-style name in an upper dir stands for.
enum Marker {
    None,
    /// Its directory is opaque.
    Opaque,
    /// A whiteout of the name.
    Whiteout(Vec<u8>),
}

fn marker(visit: &Visit) -> Result<Marker, String> {
    let name = visit.name.to_bytes();
    let kind = visit.stat.st_mode & libc::S_IFMT;
    let device_0_0 = kind == libc::S_IFCHR && visit.stat.st_rdev == 0;
    Ok(match name {
        b".wh..wh..opq" => Marker::Opaque,
        // fuse-overlayfs's whiteout of the marker's name, beside it.
        b".wh..opq" if device_0_0 => Marker::Opaque,
        _ => match name.strip_prefix(b".wh.") {
            Some(b"" | b"." | b"..") => {
                return Err("is a whiteout that names its own directory or '..'".into())
            }
            Some(hidden) if kind == libc::S_IFREG => Marker::Whiteout(hidden.to_vec()),
            _ => Marker::None,
        },
    })
}

enum Refused {
    Reason(String),
    Error(Error),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Refused {
        Refused::Error(e)
    }
}

/// What the entry `visit` meets is in the layer; `None` for a device
/// node under /dev, which is skipped.
fn kind_of(
    visit: &Visit,
    shown: &Path,
    budget: &mut Budget,
    objects: &ObjectWriter<'_>,
) -> Result<Option<LayerKind>, Refused> {
    let st = visit.stat;
    let open = |flags| at::open_beneath(visit.dir, visit.name, flags).at("open", shown);
    Ok(Some(match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            let fd = open(libc::O_RDONLY | libc::O_DIRECTORY)?;
            if REDIRECT.iter().any(|name| xattr(&fd, name).is_some()) {
                return Err(Refused::Reason(
                    "is a renamed directory (an OverlayFS redirect), which layers do not take"
                        .into(),
                ));
            }
            match OPAQUE
                .iter()
                .any(|name| xattr(&fd, name).as_deref() == Some(b"y"))
            {
                true => LayerKind::OpaqueDir,
                false => LayerKind::Dir,
            }
        }
        libc::S_IFREG => {
            budget.file(st.st_size as u64).map_err(Refused::Reason)?;
            let mut file = File::from(open(libc::O_RDONLY | libc::O_NOFOLLOW)?);
            let executable = st.st_mode & 0o111 != 0;
            let (content, size) = objects.add_file(&mut file, executable, shown)?;
            LayerKind::File { content, size }
        }
        libc::S_IFLNK => {
            let target = at::read_link_at(visit.dir, visit.name).at("read link", shown)?;
            budget.symlink(&target).map_err(Refused::Reason)?;
            LayerKind::Symlink(target)
        }
        libc::S_IFCHR if st.st_rdev == 0 => LayerKind::Whiteout,
        _ => return special_file(visit.path).map_err(Refused::Reason),
    }))
}
