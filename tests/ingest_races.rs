//! A directory source changed while `slice-add` reads it: the add stops
//! itself at a pause point (SIGSTOP), the test changes the tree, and the
//! add goes on. It must then fail, naming the entry, never follow a link
//! out of the source, never block on a fifo, and leave the store unchanged.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_slicebox");

fn stopped(child: &Child) -> bool {
    fs::read_to_string(format!("/proc/{}/stat", child.id()))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.chars().next()
        })
        == Some('T')
}

/// Runs `slice-add NAME SRC` until it stops at `point`, calls `change`,
/// lets it go on, and returns (exit code, stderr).
fn add_changing_at(store: &Path, src: &Path, point: &str, change: impl FnOnce()) -> (i32, String) {
    let mut child = Command::new(BIN)
        .args(["slice-add", "--at", "/opt/race", "race"])
        .arg(src)
        .env("SLICEBOX_STORE", store)
        .env("SLICEBOX_PAUSE_AT", point)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stopped(&child) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "slice-add ended before it reached {point}"
        );
        assert!(Instant::now() < deadline, "slice-add never reached {point}");
        std::thread::sleep(Duration::from_millis(5));
    }
    change();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("slice-add hung after the change at {point}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every path below `dir` with its bytes or link target.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let bytes = if meta.is_dir() {
                pending.push(path.clone());
                b"dir".to_vec()
            } else if meta.file_type().is_symlink() {
                fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                fs::read(&path).unwrap_or_default()
            };
            out.push((path, bytes));
        }
    }
    out.sort();
    out
}

struct Setup {
    _tmp: tempfile::TempDir,
    store: PathBuf,
    src: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("dir")).unwrap();
    fs::write(src.join("dir/file"), "original\n").unwrap();
    // An unrelated slice, so that "unchanged" covers a populated store.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("x"), "x\n").unwrap();
    let status = Command::new(BIN)
        .args(["slice-add", "other"])
        .arg(&other)
        .env("SLICEBOX_STORE", &store)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    Setup {
        _tmp: tmp,
        store,
        src,
    }
}

fn assert_refused(setup: &Setup, point: &str, change: impl FnOnce(), what: &str) {
    let before = snapshot(&setup.store);
    let (code, err) = add_changing_at(&setup.store, &setup.src, point, change);
    assert_eq!(code, 1, "{what}: exit status; stderr: {err}");
    assert!(
        err.contains("changed while it was being added"),
        "{what}: {err}"
    );
    assert!(err.contains("nothing was added"), "{what}: {err}");
    assert_eq!(before, snapshot(&setup.store), "{what}: the store changed");
}

#[test]
fn a_file_swapped_for_a_symlink_after_the_walk_is_never_followed() {
    let s = setup();
    let file = s.src.join("dir/file");
    assert_refused(
        &s,
        "add:walked",
        || {
            fs::remove_file(&file).unwrap();
            symlink("/etc/passwd", &file).unwrap();
        },
        "file -> symlink",
    );
}

#[test]
fn a_directory_swapped_for_a_symlink_after_the_walk_is_never_followed() {
    let s = setup();
    let dir = s.src.join("dir");
    // Paused once the top's entries are lstat'ed, before `dir` is entered
    // (the walk stores each file as it meets it: "add:walked" pauses at
    // the first file, inside `dir`).
    assert_refused(
        &s,
        "add:listed",
        || {
            fs::rename(&dir, s.src.join("moved")).unwrap();
            symlink("/etc", &dir).unwrap();
        },
        "dir -> symlink",
    );
}

#[test]
fn a_fifo_swapped_in_does_not_block_the_add() {
    let s = setup();
    let file = s.src.join("dir/file");
    assert_refused(
        &s,
        "add:walked",
        || {
            fs::remove_file(&file).unwrap();
            nix::unistd::mkfifo(&file, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        },
        "file -> fifo",
    );
}

#[test]
fn a_file_written_while_it_is_read_is_refused() {
    let s = setup();
    let file = s.src.join("dir/file");
    assert_refused(
        &s,
        "add:file-opened",
        || {
            use std::io::Write;
            let mut f = fs::OpenOptions::new().append(true).open(&file).unwrap();
            f.write_all(b"appended\n").unwrap();
        },
        "file appended to",
    );
}

#[test]
fn an_unchanged_tree_is_added_after_the_pause() {
    let s = setup();
    let (code, err) = add_changing_at(&s.store, &s.src, "add:walked", || {});
    assert_eq!(code, 0, "{err}");
}
