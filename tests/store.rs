//! The store against real files: dedup by inode, digests independent of
//! metadata, and hostile archives refused with the store left unchanged.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use slicebox::store::{Error, IngestOptions, Limits, SliceInfo, Source, Store};

fn options(at: &str) -> IngestOptions {
    IngestOptions {
        mount_point: at.into(),
        env: vec![],
        limits: Limits::default(),
        prefix_check: slicebox::store::PrefixCheck::Off,
        progress: None,
        stat_cache: false,
        from_archive: Default::default(),
    }
}

/// add_slice, returning the slice info only.
fn add(store: &Store, name: &str, source: Source, at: &str) -> SliceInfo {
    store.add_slice(name, &source, &options(at)).unwrap().info
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Every path below `dir` with what `describe` says of it, sorted.
fn described(
    dir: &Path,
    describe: impl Fn(&Path, &fs::Metadata) -> String,
) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            let what = describe(&path, &meta);
            out.push((path.strip_prefix(dir).unwrap().to_path_buf(), what));
        }
    }
    out.sort();
    out
}

/// Every path below `dir`, with type and (for files) content: a snapshot
/// to compare the store before and after a rejected add.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    described(dir, |path, meta| {
        if meta.is_dir() {
            "dir".to_string()
        } else if meta.is_file() {
            fs::read_to_string(path).unwrap_or_default()
        } else {
            format!("link {}", fs::read_link(path).unwrap().display())
        }
    })
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
    let sa = add(&store, "a", Source::Directory(a), "/opt/x");
    let sb = add(&store, "b", Source::Directory(b), "/opt/x");
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
        0o755,
        "objects are 0644 or 0755, by the exec bit alone"
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
    let sa = add(&store, "a", Source::Directory(a), "/opt/x");
    let sb = add(&store, "b", Source::Directory(b.clone()), "/opt/x");
    assert_eq!(sa.digest, sb.digest);
    fs::set_permissions(b.join("share/readme"), fs::Permissions::from_mode(0o755)).unwrap();
    let sc = add(&store, "c", Source::Directory(b), "/opt/x");
    assert_ne!(sa.digest, sc.digest);
    let sd = add(
        &store,
        "d",
        Source::Directory(tmp.path().join("a")),
        "/opt/elsewhere",
    );
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
    let from_dir = add(&store, "d", Source::Directory(dir), "/opt/t");
    let from_tar = add(&store, "t", Source::Archive(tarball), "/opt/t");
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
    add(&store, "good", Source::Directory(good), "/opt/g");
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
        "holds 1125899906842624 bytes, more than the limit of 68719476736 bytes for one file",
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
    let info = add(&store, "ok", Source::Archive(tarball), "/opt/ok");
    let tree = store.slice_tree(&info.digest);
    let su = fs::metadata(tree.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o755);
    assert_eq!(su.ino(), fs::metadata(tree.join("bin/su2")).unwrap().ino());
}

/// What a stored slice tree holds, path by path: type, mode, mtime,
/// size and (for files) content; symlink targets.
fn tree_shape(tree: &Path) -> Vec<(PathBuf, String)> {
    described(tree, |path, meta| {
        // A directory's own size depends on how it was filled.
        let size = if meta.is_dir() { 0 } else { meta.len() };
        let what = if meta.is_dir() {
            String::new()
        } else if meta.is_file() {
            fs::read_to_string(path).unwrap_or_default()
        } else {
            fs::read_link(path).unwrap().display().to_string()
        };
        format!("{:o} {} {size} {what}", meta.mode(), meta.mtime())
    })
}

/// An archive builds its tree in the order its entries come (files
/// before the directories that hold them, a directory named after
/// something was put in it, hardlinks to hardlinks, a big flat directory):
/// the slice is the one its directory gives, tree digest, listing, counts
/// and staged tree alike.
#[test]
fn an_archive_in_any_order_gives_the_slice_of_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let flat: Vec<String> = (0..3000)
        .map(|i| format!("flat/{}", (i * 7) % 3000))
        .collect();
    let mut entries = vec![
        Entry::File("a/deeper/deepest/f", "deep\n"),
        Entry::Dir("a/deeper"),
        Entry::Dir("a"),
        Entry::File("a-b", "dash\n"),
        Entry::File("a.c", "dot\n"),
        Entry::Hardlink("a/h1", "a-b"),
        Entry::Hardlink("a/deeper/h2", "a/h1"),
        Entry::File("B", "upper\n"),
        Entry::Symlink("a/link", "../a-b"),
        Entry::Dir("empty"),
        Entry::File("zero", ""),
        Entry::Hardlink("zero2", "zero"),
    ];
    entries.extend(flat.iter().map(|name| Entry::File(name, "same\n")));
    let tarball = tmp.path().join("any-order.tar");
    hostile_tar(&tarball, &entries);
    let from_tar = add(&store, "t", Source::Archive(tarball), "/opt/t");

    let dir = tmp.path().join("dir");
    for (path, text) in [
        ("a/deeper/deepest/f", "deep\n"),
        ("a-b", "dash\n"),
        ("a.c", "dot\n"),
        ("a/h1", "dash\n"),
        ("a/deeper/h2", "dash\n"),
        ("B", "upper\n"),
        ("zero", ""),
        ("zero2", ""),
    ] {
        // hostile_tar gives every entry mode 04755: executable.
        write(&dir.join(path), text, 0o755);
    }
    for name in &flat {
        write(&dir.join(name), "same\n", 0o755);
    }
    fs::create_dir(dir.join("empty")).unwrap();
    std::os::unix::fs::symlink("../a-b", dir.join("a/link")).unwrap();
    let from_dir = add(&store, "d", Source::Directory(dir), "/opt/t");

    assert_eq!(from_tar.manifest.tree, from_dir.manifest.tree);
    assert_eq!(
        (from_tar.manifest.files, from_tar.manifest.bytes),
        (from_dir.manifest.files, from_dir.manifest.bytes)
    );
    assert_eq!(from_tar.manifest.files, 3008);
    let listing =
        |info: &SliceInfo| fs::read(store.slice_dir(&info.digest).join("listing")).unwrap();
    assert_eq!(listing(&from_tar), listing(&from_dir));
    let tar_tree = tree_shape(&store.slice_tree(&from_tar.digest));
    assert_eq!(tar_tree.len(), 3014, "every entry and implicit directory");
    assert_eq!(tar_tree, tree_shape(&store.slice_tree(&from_dir.digest)));
}

/// Each question an archive's order raises keeps its answer.
#[test]
fn entries_out_of_order_keep_their_refusals() {
    assert_rejected(
        &[Entry::File("d/f", "x"), Entry::File("d", "y")],
        "d",
        "conflicts with a directory of the same name",
    );
    assert_rejected(
        &[Entry::File("d/f", "x"), Entry::Dir("d"), Entry::Dir("d/")],
        "d/",
        "appears twice in the archive",
    );
    assert_rejected(
        &[Entry::File("f", "x"), Entry::Dir("f/g")],
        "f/g",
        "lies below a file",
    );
    assert_rejected(
        &[
            Entry::Symlink("s", "d"),
            Entry::Dir("d"),
            Entry::Hardlink("h", "s"),
        ],
        "h",
        "is a hardlink to 's', which is not an earlier regular file of this archive",
    );
    assert_rejected(
        &[Entry::Dir("d"), Entry::Hardlink("h", "d")],
        "h",
        "is a hardlink to 'd', which is not an earlier regular file of this archive",
    );
    assert_rejected(
        &[Entry::Hardlink("h", "h")],
        "h",
        "is a hardlink to 'h', which is not an earlier regular file of this archive",
    );
    assert_rejected(
        &[
            Entry::Symlink("s", "/etc"),
            Entry::Hardlink("h", "s/passwd"),
        ],
        "h",
        "is a hardlink to 's/passwd', which is not an earlier regular file of this archive",
    );
    // The kind of entry is judged before where it goes.
    assert_rejected(
        &[Entry::File("f", "x"), Entry::Fifo("f/p")],
        "f/p",
        "is a fifo",
    );
}

#[test]
fn refs_resolve_by_name_digest_and_unique_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("t");
    sample_tree(&src);
    let info = add(&store, "n", Source::Directory(src), "/opt/n");
    assert_eq!(store.resolve("n").unwrap(), info.digest);
    assert_eq!(
        store.resolve(&info.digest.to_string()).unwrap(),
        info.digest
    );
    assert_eq!(store.resolve(&info.digest.hex()[..6]).unwrap(), info.digest);
    assert!(matches!(store.resolve("nope"), Err(Error::NotFound { .. })));
    assert!(
        matches!(store.resolve("abc"), Err(Error::NotFound { .. })),
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

#[test]
fn re_adding_stored_files_writes_no_object_data() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("t");
    sample_tree(&src);
    // One file above the in-memory limit takes the hash-then-copy path.
    write(&src.join("big"), &"0123456789abcdef".repeat(400_000), 0o644);
    let first = store
        .add_slice("one", &Source::Directory(src.clone()), &options("/opt/t"))
        .unwrap();
    assert!(first.written_bytes > 6_000_000, "{}", first.written_bytes);
    let again = store
        .add_slice("two", &Source::Directory(src), &options("/opt/t"))
        .unwrap();
    assert_eq!(again.written_bytes, 0);
    assert_eq!(again.info.digest, first.info.digest);
    assert_eq!(store.verify(None).unwrap(), vec![]);
}

#[test]
fn re_adding_a_name_keeps_history_until_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("t");
    sample_tree(&src);
    let v1 = add(&store, "tool", Source::Directory(src.clone()), "/opt/t");
    write(&src.join("share/readme"), "version 2\n", 0o644);
    let v2 = add(&store, "tool", Source::Directory(src), "/opt/t");
    assert_eq!(store.resolve("tool").unwrap(), v2.digest);
    assert_eq!(store.resolve("tool@1").unwrap(), v1.digest);
    assert!(matches!(
        store.resolve("tool@2"),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.slice_info(&v1.digest).unwrap().names, vec!["tool@1"]);
    let changes = store.diff(&v1.digest, &v2.digest).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].kind, changes[0].path.as_slice()),
        ("changed", &b"share/readme"[..])
    );
    let report = store.gc().unwrap();
    assert_eq!(report.slices_removed, 1);
    assert!(report.objects_removed >= 1, "the old readme's object goes");
    assert!(matches!(
        store.resolve("tool@1"),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.verify(None).unwrap(), vec![]);
}

#[test]
fn gc_keeps_named_and_pinned_slices_and_removes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let mk = |name: &str, text: &str| {
        let src = tmp.path().join(name);
        write(&src.join("f"), text, 0o644);
        add(&store, name, Source::Directory(src), "/opt/x")
    };
    let kept = mk("kept", "kept\n");
    let pinned = mk("pinned", "pinned\n");
    let dropped = mk("dropped", "dropped\n");
    store.tag("kept", "alias").unwrap();
    assert_eq!(store.remove("pinned").unwrap(), vec!["pinned"]);
    assert_eq!(
        store.remove(&dropped.digest.to_string()).unwrap(),
        vec!["dropped"]
    );
    let pin = store.pin(&[pinned.digest]).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.reclaimable_bytes, "dropped\n".len() as u64);
    let report = store.gc().unwrap();
    assert_eq!((report.slices_removed, report.objects_removed), (1, 1));
    assert!(store.slice_dir(&kept.digest).exists());
    assert!(
        store.slice_dir(&pinned.digest).exists(),
        "a running stage's slice stays"
    );
    assert!(!store.slice_dir(&dropped.digest).exists());
    drop(pin);
    assert_eq!(store.gc().unwrap().slices_removed, 1, "unpinned, it goes");
    assert_eq!(store.resolve("alias").unwrap(), kept.digest);
    assert!(fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .next()
        .is_none());
}

/// Regression (issue 13): store-stats said gc frees 0 bytes while a
/// killed stage's `--out` dir held megabytes in `tmp/`.
#[test]
fn store_stats_counts_the_leftovers_gc_removes_and_gc_removes_exactly_those() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("src");
    write(&src.join("f"), "kept content\n", 0o644);
    let kept = add(&store, "kept", Source::Directory(src), "/opt/k");
    let tmp_dir = store.root().join("tmp");
    // What a killed stage leaves: its --out dir, and the lock nobody holds.
    write(&tmp_dir.join("out-1-2-3/result"), &"x".repeat(5000), 0o644);
    write(&tmp_dir.join("out-1-2-3.lock"), "", 0o644);
    // A killed add's staging: one new file, one link to a kept object.
    write(&tmp_dir.join("stage-4-5-6/new"), "new bytes\n", 0o644);
    let object = store.object_path(&slicebox::digest::Digest::of(b"kept content\n"), false);
    fs::hard_link(&object, tmp_dir.join("stage-4-5-6/kept-link")).unwrap();
    // The --out dir of a stage that still runs stays, and is not counted.
    let running = store.output_dir().unwrap();
    write(&running.path.join("busy"), "busy\n", 0o644);
    let expected = 5000 + "new bytes\n".len() as u64;
    assert_eq!(store.stats().unwrap().reclaimable_bytes, expected);
    let report = store.gc().unwrap();
    assert_eq!(report.bytes_freed, expected);
    assert_eq!(report.leftovers_removed, 3);
    let left: Vec<_> = fs::read_dir(&tmp_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left.len(), 2, "the running stage's dir and lock: {left:?}");
    assert!(object.exists() && store.slice_dir(&kept.digest).exists());
    assert_eq!(store.stats().unwrap().reclaimable_bytes, 0);
    drop(running);
}

#[test]
fn verify_names_every_damaged_path() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("t");
    sample_tree(&src);
    let info = add(&store, "t", Source::Directory(src), "/opt/t");
    assert_eq!(store.verify(None).unwrap(), vec![]);
    let tree = store.slice_tree(&info.digest);
    let readme = tree.join("share/readme");
    fs::set_permissions(&readme, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&readme, "tampered\n").unwrap();
    fs::set_permissions(tree.join("share"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(tree.join("share/empty")).unwrap();
    fs::write(tree.join("share/smuggled"), "x").unwrap();
    let damage = store.verify(Some(&info.digest)).unwrap();
    let problems: Vec<String> = damage
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                Path::new(&d.path).file_name().unwrap().to_string_lossy(),
                d.problem
            )
        })
        .collect();
    assert_eq!(damage.len(), 3, "{problems:#?}");
    assert!(
        problems.iter().any(|p| p.starts_with("empty is missing")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("smuggled is not in")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("readme content is")),
        "{problems:#?}"
    );
    // The object itself was modified through the hardlink: verifying the
    // whole store names the object too.
    assert!(store.verify(None).unwrap().len() > 3);
}

#[test]
fn concurrent_adds_of_identical_content_all_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("t");
    for i in 0..200 {
        write(
            &src.join(format!("d{}/f{i}", i % 7)),
            &format!("file {}\n", i % 50),
            0o644,
        );
    }
    let digests: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (store, src) = (&store, &src);
                scope.spawn(move || {
                    add(
                        store,
                        &format!("n{i}"),
                        Source::Directory(src.clone()),
                        "/opt/t",
                    )
                    .digest
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(digests.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(store.verify(None).unwrap(), vec![]);
    assert_eq!(store.stats().unwrap().objects, 50);
}

#[test]
fn zstd_and_stream_sources_match_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let dir = tmp.path().join("tree");
    sample_tree(&dir);
    let mut plain = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut plain);
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &dir).unwrap();
        builder.finish().unwrap();
    }
    let zst = tmp.path().join("tree.tar.zst");
    fs::write(&zst, zstd::encode_all(plain.as_slice(), 3).unwrap()).unwrap();
    let tar_path = tmp.path().join("tree.tar");
    fs::write(&tar_path, &plain).unwrap();
    let stream = fs::File::open(&tar_path).unwrap();
    let from_dir = add(&store, "d", Source::Directory(dir), "/opt/t");
    let from_zst = add(&store, "z", Source::Archive(zst), "/opt/t");
    let from_stream = add(
        &store,
        "s",
        Source::Stream(std::os::fd::AsRawFd::as_raw_fd(&stream)),
        "/opt/t",
    );
    assert_eq!(from_dir.digest, from_zst.digest);
    assert_eq!(from_dir.digest, from_stream.digest);
}

#[test]
fn directory_sources_with_fifos_are_refused_and_leave_the_store_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    let src = tmp.path().join("t");
    sample_tree(&src);
    nix::unistd::mkfifo(&src.join("share/pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let before = snapshot(&store_dir);
    match store.add_slice("t", &Source::Directory(src), &options("/opt/t")) {
        Err(e @ Error::Rejected { .. }) => assert!(e
            .to_string()
            .contains("entry 'share/pipe' is a device node, fifo or socket")),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(snapshot(&store_dir), before);
}

#[test]
fn gc_running_alongside_adds_never_breaks_a_slice() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let sources: Vec<PathBuf> = (0..4)
        .map(|v| {
            let src = tmp.path().join(format!("src{v}"));
            for i in 0..150 {
                // Half the files are shared by every version.
                let text = if i % 2 == 0 {
                    format!("shared {i}\n")
                } else {
                    format!("v{v} {i}\n")
                };
                write(&src.join(format!("d{}/f{i}", i % 5)), &text, 0o644);
            }
            src
        })
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let collector = scope.spawn(|| {
            let mut runs = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                store.gc().unwrap();
                runs += 1;
            }
            runs
        });
        for round in 0..12 {
            let v = round % sources.len();
            let info = add(
                &store,
                &format!("n{}", round % 3),
                Source::Directory(sources[v].clone()),
                "/opt/t",
            );
            assert_eq!(store.verify(Some(&info.digest)).unwrap(), vec![]);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(collector.join().unwrap() > 0);
    });
    store.gc().unwrap();
    assert_eq!(store.verify(None).unwrap(), vec![]);
    for name in ["n0", "n1", "n2"] {
        store.resolve(name).unwrap();
    }
}
