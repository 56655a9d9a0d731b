//! The store against real files: dedup by inode, digests independent of
//! metadata, and hostile archives refused with the store left unchanged.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use slicebox::store::{Error, IngestOptions, Source, Store, DEFAULT_MAX_FILE_SIZE};

fn options(at: &str) -> IngestOptions {
    IngestOptions {
        mount_point: at.into(),
        env: vec![],
        max_file_size: DEFAULT_MAX_FILE_SIZE,
    }
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Every path below `dir`, with type and (for files) content: a snapshot
/// to compare the store before and after a rejected add.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else if meta.is_file() {
                fs::read_to_string(&path).unwrap_or_default()
            } else {
                format!("link {}", fs::read_link(&path).unwrap().display())
            };
            out.push((path.strip_prefix(dir).unwrap().to_path_buf(), what));
        }
    }
    out.sort();
    out
}

fn sample_tree(root: &Path) {
    write(&root.join("bin/tool"), "#!/bin/sh\necho tool\n", 0o755);
    write(&root.join("share/readme"), "same bytes\n", 0o644);
    write(&root.join("share/empty"), "", 0o644);
    std::os::unix::fs::symlink("../bin/tool", root.join("share/link")).unwrap();
}

#[test]
fn identical_files_in_two_slices_share_one_inode() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    sample_tree(&a);
    sample_tree(&b);
    write(&b.join("extra"), "only in b\n", 0o644);
    let sa = store
        .add_slice("a", &Source::Directory(a), &options("/opt/x"))
        .unwrap();
    let sb = store
        .add_slice("b", &Source::Directory(b), &options("/opt/x"))
        .unwrap();
    assert_ne!(sa.digest, sb.digest);
    let ino = |s: &slicebox::store::SliceInfo, p: &str| {
        fs::metadata(store.slice_tree(&s.digest).join(p))
            .unwrap()
            .ino()
    };
    assert_eq!(ino(&sa, "share/readme"), ino(&sb, "share/readme"));
    assert_eq!(ino(&sa, "bin/tool"), ino(&sb, "bin/tool"));
    let tool = fs::metadata(store.slice_tree(&sa.digest).join("bin/tool")).unwrap();
    assert_eq!(
        tool.mode() & 0o777,
        0o555,
        "objects are read-only and keep the exec bit"
    );
    let link = fs::read_link(store.slice_tree(&sa.digest).join("share/link")).unwrap();
    assert_eq!(
        link,
        Path::new("../bin/tool"),
        "symlinks are kept, not followed"
    );
}

#[test]
fn digest_ignores_mtimes_and_other_mode_bits_but_not_the_exec_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    sample_tree(&a);
    sample_tree(&b);
    fs::set_permissions(b.join("share/readme"), fs::Permissions::from_mode(0o600)).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
    fs::File::options()
        .write(true)
        .open(b.join("bin/tool"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let sa = store
        .add_slice("a", &Source::Directory(a), &options("/opt/x"))
        .unwrap();
    let sb = store
        .add_slice("b", &Source::Directory(b.clone()), &options("/opt/x"))
        .unwrap();
    assert_eq!(sa.digest, sb.digest);
    fs::set_permissions(b.join("share/readme"), fs::Permissions::from_mode(0o755)).unwrap();
    let sc = store
        .add_slice("c", &Source::Directory(b), &options("/opt/x"))
        .unwrap();
    assert_ne!(sa.digest, sc.digest);
    let sd = store
        .add_slice(
            "d",
            &Source::Directory(tmp.path().join("a")),
            &options("/opt/elsewhere"),
        )
        .unwrap();
    assert_ne!(sa.digest, sd.digest, "the mount point is part of the slice");
    assert_eq!(sa.manifest.tree, sd.manifest.tree, "but not of the tree");
}

#[test]
fn a_directory_and_its_tarball_give_the_same_slice() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let dir = tmp.path().join("tree");
    sample_tree(&dir);
    let tarball = tmp.path().join("tree.tar.gz");
    let file = fs::File::create(&tarball).unwrap();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    builder.follow_symlinks(false);
    builder.append_dir_all(".", &dir).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    let from_dir = store
        .add_slice("d", &Source::Directory(dir), &options("/opt/t"))
        .unwrap();
    let from_tar = store
        .add_slice("t", &Source::Archive(tarball), &options("/opt/t"))
        .unwrap();
    assert_eq!(from_dir.digest, from_tar.digest);
    assert_eq!(from_dir.manifest.files, 3);
}

enum Entry<'a> {
    File(&'a str, &'a str),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
    CharDevice(&'a str),
    HugeFile(&'a str),
}

/// Writes a tar with raw names, bypassing the builder's own path checks,
/// as an attacker would.
fn hostile_tar(path: &Path, entries: &[Entry<'_>]) {
    let mut out = Vec::new();
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, kind, data, link): (&str, tar::EntryType, &str, Option<&str>) = match entry {
            Entry::File(n, d) => (n, tar::EntryType::Regular, d, None),
            Entry::Dir(n) => (n, tar::EntryType::Directory, "", None),
            Entry::Symlink(n, t) => (n, tar::EntryType::Symlink, "", Some(t)),
            Entry::Hardlink(n, t) => (n, tar::EntryType::Link, "", Some(t)),
            Entry::Fifo(n) => (n, tar::EntryType::Fifo, "", None),
            Entry::CharDevice(n) => (n, tar::EntryType::Char, "", None),
            Entry::HugeFile(n) => (n, tar::EntryType::Regular, "", None),
        };
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(0o4755);
        header.set_size(if matches!(entry, Entry::HugeFile(_)) {
            1 << 50
        } else {
            data.len() as u64
        });
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        if !data.is_empty() {
            out.extend_from_slice(data.as_bytes());
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    fs::write(path, out).unwrap();
}

fn assert_rejected(entries: &[Entry<'_>], entry: &str, reason: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    let good = tmp.path().join("good");
    sample_tree(&good);
    store
        .add_slice("good", &Source::Directory(good), &options("/opt/g"))
        .unwrap();
    let before = snapshot(&store_dir);
    let tarball = tmp.path().join("evil.tar");
    hostile_tar(&tarball, entries);
    match store.add_slice("evil", &Source::Archive(tarball), &options("/opt/e")) {
        Err(e @ Error::Rejected { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&format!("entry '{entry}' {reason}")),
                "{text}"
            );
            assert!(text.ends_with("nothing was added"), "{text}");
        }
        other => panic!("expected a rejection naming '{entry}', got {other:?}"),
    }
    assert_eq!(snapshot(&store_dir), before, "the store changed");
}

#[test]
fn dot_dot_entries_are_refused() {
    assert_rejected(
        &[Entry::File("a/../../escape", "x")],
        "a/../../escape",
        "contains '..'",
    );
}

#[test]
fn absolute_entries_are_refused() {
    assert_rejected(
        &[Entry::File("/etc/evil", "x")],
        "/etc/evil",
        "is an absolute path",
    );
}

#[test]
fn writes_through_a_symlink_are_refused() {
    assert_rejected(
        &[
            Entry::Symlink("link", "/etc"),
            Entry::File("link/passwd", "x"),
        ],
        "link/passwd",
        "lies below a symlink",
    );
}

#[test]
fn hardlinks_outside_the_archive_are_refused() {
    assert_rejected(
        &[Entry::Hardlink("shadow", "/etc/shadow")],
        "shadow",
        "is a hardlink to '/etc/shadow', which is not an earlier regular file of this archive",
    );
}

#[test]
fn devices_and_fifos_are_refused() {
    assert_rejected(
        &[Entry::CharDevice("dev/mem")],
        "dev/mem",
        "is a device node",
    );
    assert_rejected(&[Entry::Fifo("pipe")], "pipe", "is a fifo");
}

#[test]
fn duplicate_entries_are_refused() {
    assert_rejected(
        &[Entry::File("a", "first"), Entry::File("a", "second")],
        "a",
        "appears twice in the archive",
    );
}

#[test]
fn absurd_sizes_are_refused_before_reading() {
    assert_rejected(
        &[Entry::HugeFile("big")],
        "big",
        "claims 1125899906842624 bytes",
    );
}

#[test]
fn a_rejection_after_new_objects_were_written_still_leaves_the_store_unchanged() {
    assert_rejected(
        &[
            Entry::Dir("d"),
            Entry::File("d/new-content", "never stored"),
            Entry::File("../x", "y"),
        ],
        "../x",
        "contains '..'",
    );
}

#[test]
fn setuid_bits_are_dropped_and_hardlinks_within_the_archive_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let tarball = tmp.path().join("ok.tar");
    hostile_tar(
        &tarball,
        &[
            Entry::File("bin/su", "suid"),
            Entry::Hardlink("bin/su2", "bin/su"),
        ],
    );
    let info = store
        .add_slice("ok", &Source::Archive(tarball), &options("/opt/ok"))
        .unwrap();
    let tree = store.slice_tree(&info.digest);
    let su = fs::metadata(tree.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o555);
    assert_eq!(su.ino(), fs::metadata(tree.join("bin/su2")).unwrap().ino());
}

#[test]
fn refs_resolve_by_name_digest_and_unique_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("t");
    sample_tree(&src);
    let info = store
        .add_slice("n", &Source::Directory(src), &options("/opt/n"))
        .unwrap();
    assert_eq!(store.resolve("n").unwrap(), info.digest);
    assert_eq!(
        store.resolve(&info.digest.to_string()).unwrap(),
        info.digest
    );
    assert_eq!(store.resolve(&info.digest.hex()[..6]).unwrap(), info.digest);
    assert!(matches!(store.resolve("nope"), Err(Error::NotFound(_))));
    assert!(
        matches!(store.resolve("abc"), Err(Error::NotFound(_))),
        "prefixes need 4 digits"
    );
}

#[test]
fn bad_names_and_mount_points_are_refused_before_reading_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let missing = Source::Directory(tmp.path().join("missing"));
    assert!(matches!(
        store.add_slice("../x", &missing, &options("/opt/x")),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        store.add_slice("x", &missing, &options("relative")),
        Err(Error::InvalidMountPoint { .. })
    ));
}
