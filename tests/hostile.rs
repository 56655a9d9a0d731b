//! A named corpus of hostile archives (built by tests/hostile/build-corpus.py,
//! described by its expected.tsv) against `slicebox slice-add`, read from a
//! file and from a pipe on stdin. Each archive goes into a fresh store that
//! already holds one slice; a refused archive must exit with status 1 (not
//! a signal, not a panic), say why on stderr in the documented form, print
//! no raw control character and no overlong line, and leave the store the
//! same byte for byte. An accepted one must exit 0 with the stated
//! property. Every case runs; the failures are listed together, by name.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_slicebox");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/build-corpus.py");
/// No case may take longer; past it the add is killed and reported hung.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Untrusted names are shortened in the middle; no line gets longer.
const MAX_LINE: usize = 400;

/// Cases the corpus must hold, whatever else it holds: the script cannot
/// drop one of them silently.
const REQUIRED: &[&str] = &[
    "dotdot.tar",
    "dotdot-inside.tar",
    "absolute.tar",
    "below-symlink.tar",
    "below-file.tar",
    "hardlink-to-later.tar",
    "hardlink-to-symlink.tar",
    "hardlink-to-directory.tar",
    "hardlink-outside.tar",
    "char-device.tar",
    "block-device.tar",
    "fifo.tar",
    "duplicate.tar",
    "dir-file-conflict.tar",
    "gnu-sparse.tar",
    "unknown-type.tar",
    "deep-100000.tar",
    "deep-100000-raised-limits.tar",
    "name-300.tar",
    "path-5000-pax.tar",
    "gnu-longname-2MiB.tar.gz",
    "pax-header-over-1MiB.tar.gz",
    "pax-size-disagrees.tar",
    "pax-size-zero.tar",
    "global-pax-path.tar",
    "pax-path-dotdot.tar",
    "pax-linkpath-outside.tar",
    "bad-checksum.tar",
    "garbage.bin",
    "gzip-garbage.tar.gz",
    "gzip-truncated.tar.gz",
    "zstd-garbage.tar.zst",
    "truncated-in-header.tar",
    "truncated-in-data.tar",
    "file-1TiB-no-data.tar",
    "dir-with-data.tar",
    "gzip-bomb-2GiB.tar.gz",
    "zstd-bomb-200MiB.tar.zst",
    "hardlink-bomb.tar.gz",
    "entry-count-bomb.tar.gz",
    "control-chars-name.tar",
    "setuid-setgid-sticky.tar",
    "non-utf8-name.tar",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Reject,
    Accept,
}

#[derive(Debug, Clone)]
struct Case {
    file: String,
    outcome: Outcome,
    limits: Vec<String>,
    /// A stderr fragment (reject) or a property of the slice (accept).
    expect: String,
}

/// python3 from PATH, or a failure that says so: the corpus cannot be
/// built without it, and a test that skips itself proves nothing.
fn python3() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "python3 is not on PATH ({}): it is needed to build the hostile-archive corpus \
                 with tests/hostile/build-corpus.py; install python3, this test does not skip",
                path.to_string_lossy()
            )
        })
}

/// Builds the corpus into `dir` and reads its expected.tsv.
fn build_corpus(dir: &Path) -> Vec<Case> {
    let started = Instant::now();
    let out = Command::new(python3())
        .arg(SCRIPT)
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{SCRIPT} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("corpus built in {:.2?}", started.elapsed());
    let tsv = fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let cases: Vec<Case> = tsv
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [file, outcome, limits, expect] = fields[..] else {
                panic!("expected.tsv: not four tab-separated fields: {line:?}")
            };
            Case {
                file: file.to_string(),
                outcome: match outcome {
                    "reject" => Outcome::Reject,
                    "accept" => Outcome::Accept,
                    other => panic!("expected.tsv: unknown outcome {other:?} for {file}"),
                },
                limits: match limits {
                    "-" => vec![],
                    list => list.split(',').map(str::to_string).collect(),
                },
                expect: expect.to_string(),
            }
        })
        .collect();
    for required in REQUIRED {
        assert!(
            cases.iter().any(|c| c.file == *required),
            "the corpus lacks the case {required}"
        );
    }
    let rejects = cases
        .iter()
        .filter(|c| c.outcome == Outcome::Reject)
        .count();
    assert!(
        rejects >= 30,
        "only {rejects} hostile archives in the corpus"
    );
    for case in &cases {
        let size = fs::metadata(dir.join(&case.file)).unwrap().len();
        assert!(size < 5 << 20, "{} is {size} bytes", case.file);
    }
    cases
}

/// One entry of a store snapshot: everything but times and inode numbers.
fn describe(path: &Path, meta: &fs::Metadata) -> String {
    let mode = meta.mode() & 0o7777;
    let kind = meta.file_type();
    if kind.is_dir() {
        // A directory's own size is the filesystem's business; its
        // entries are snapshotted one by one.
        format!("dir {mode:o}")
    } else if kind.is_file() {
        let mut hasher = Sha256::new();
        let mut file = fs::File::open(path).unwrap();
        std::io::copy(&mut file, &mut hasher).unwrap();
        format!(
            "file {mode:o} size={} links={} sha256={:x}",
            meta.len(),
            meta.nlink(),
            hasher.finalize()
        )
    } else if kind.is_symlink() {
        let target = fs::read_link(path).unwrap();
        format!("symlink -> {:?}", target.as_os_str())
    } else if kind.is_fifo() || kind.is_socket() || kind.is_block_device() || kind.is_char_device()
    {
        format!("special {:?} {mode:o}", kind)
    } else {
        format!("unknown {mode:o}")
    }
}

/// Every path below the store (the root included), byte for byte.
/// Iterative: a hostile tree left behind could be very deep.
fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
        let relative = path
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        out.insert(relative, describe(&path, &meta));
    }
    out
}

/// What differs between two snapshots, readably and briefly.
fn snapshot_diff(before: &BTreeMap<Vec<u8>, String>, after: &BTreeMap<Vec<u8>, String>) -> String {
    let show = |p: &[u8]| {
        String::from_utf8_lossy(p)
            .chars()
            .take(160)
            .collect::<String>()
    };
    let mut lines = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => lines.push(format!("  removed {:?} ({was})", show(path))),
            Some(now) if now != was => {
                lines.push(format!("  changed {:?}: {was} -> {now}", show(path)))
            }
            Some(_) => {}
        }
    }
    for (path, now) in after {
        if !before.contains_key(path) {
            lines.push(format!("  added {:?} ({now})", show(path)));
        }
    }
    let total = lines.len();
    lines.truncate(12);
    if total > lines.len() {
        lines.push(format!("  … and {} more", total - lines.len()));
    }
    lines.join("\n")
}

struct Run {
    status: Option<ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
}

impl Run {
    /// How it ended, for messages.
    fn ending(&self) -> String {
        match self.status {
            None => format!("did not finish in {TIMEOUT:?} and was killed"),
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                _ => format!("{s}"),
            },
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs slicebox with `args` on `store`, feeding `stdin` through a pipe
/// when given; kills it after TIMEOUT.
fn slicebox(store: &Path, args: &[&OsStr], stdin: Option<Vec<u8>>) -> Run {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .env("SLICEBOX_STORE", store)
        .env_remove("SLICEBOX_LIMITS")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The add stops reading when it refuses: the writer then sees EPIPE,
    // which is expected, not an error of the test.
    let feeder = child.stdin.take().zip(stdin).map(|(mut pipe, data)| {
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let readers = [
        child.stdout.take().map(|mut s| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                buf
            })
        }),
        child.stderr.take().map(|mut s| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                buf
            })
        }),
    ];
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if let Some(feeder) = feeder {
        feeder.join().unwrap();
    }
    let [stdout, stderr] = readers.map(|r| r.unwrap().join().unwrap());
    Run {
        status,
        stdout,
        stderr,
        elapsed: started.elapsed(),
    }
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

/// The normal slice every store starts with: files, an executable, an
/// empty file, a symlink, nested dirs.
fn base_tree(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("share/doc")).unwrap();
    fs::write(dir.join("bin/tool"), "#!/bin/sh\necho base\n").unwrap();
    fs::set_permissions(dir.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.join("share/doc/readme"), "the base slice\n").unwrap();
    fs::write(dir.join("share/empty"), "").unwrap();
    std::os::unix::fs::symlink("../bin/tool", dir.join("share/link")).unwrap();
}

/// A fresh store holding the base slice as `base`.
fn fresh_store(work: &Path, base: &Path, label: &str) -> PathBuf {
    let store = work.join(label);
    let run = slicebox(
        &store,
        &[os("slice-add"), os("base"), base.as_os_str()],
        None,
    );
    assert!(
        run.status.is_some_and(|s| s.success()),
        "adding the base slice failed ({}): {}",
        run.ending(),
        run.stderr()
    );
    store
}

/// How a refusal must look, whatever the reason: status 1, nothing on
/// stdout, the documented form, the expected fragment, safe text.
fn check_refusal(case: &Case, source: &str, run: &Run, problems: &mut Vec<String>) {
    if run.status.and_then(|s| s.code()) != Some(1) {
        problems.push(format!(
            "{} (exit status 1 expected); stderr: {}",
            run.ending(),
            run.stderr().trim_end()
        ));
    }
    let stderr = run.stderr();
    if !run.stdout.is_empty() {
        problems.push(format!(
            "printed on stdout: {:?}",
            String::from_utf8_lossy(&run.stdout)
        ));
    }
    if !stderr.contains(&case.expect) {
        problems.push(format!(
            "stderr lacks {:?}; stderr: {}",
            case.expect,
            stderr.trim_end()
        ));
    }
    let form = format!("slice-add: cannot add '{source}': ");
    if !(stderr.starts_with(&form) && stderr.trim_end().ends_with("; nothing was added")) {
        problems.push(format!(
            "stderr is not of the form \"{form}…; nothing was added\": {}",
            stderr.trim_end()
        ));
    }
    if stderr.lines().count() != 1 {
        problems.push(format!(
            "stderr has {} lines, not one",
            stderr.lines().count()
        ));
    }
    if let Some(c) = stderr.chars().find(|c| c.is_control() && *c != '\n') {
        problems.push(format!(
            "stderr holds the raw control character {c:?}: {stderr:?}"
        ));
    }
    if let Some(line) = stderr.lines().find(|l| l.chars().count() > MAX_LINE) {
        problems.push(format!(
            "a stderr line has {} characters, more than {MAX_LINE}",
            line.chars().count()
        ));
    }
}

/// The slice `name` points at, as `slice-show --json` gives it.
fn slice_path(store: &Path, name: &str) -> Result<PathBuf, String> {
    let run = slicebox(store, &[os("slice-show"), os("--json"), os(name)], None);
    if !run.status.is_some_and(|s| s.success()) {
        return Err(format!("slice-show {name} failed: {}", run.stderr()));
    }
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).map_err(|e| e.to_string())?;
    json["path"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| format!("slice-show gave no path: {json}"))
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex in expected.tsv"))
        .collect()
}

/// Checks the property an accepted archive states (see build-corpus.py).
fn check_property(tree: &Path, property: &str, problems: &mut Vec<String>) {
    if let Some(modes) = property.strip_prefix("modes ") {
        for spec in modes.split_whitespace() {
            let (path, octal) = spec.split_once('=').expect("PATH=OCTAL");
            let want = u32::from_str_radix(octal, 8).expect("octal mode");
            match fs::symlink_metadata(tree.join(path)) {
                Ok(meta) if meta.mode() & 0o7777 == want => {}
                Ok(meta) => problems.push(format!(
                    "{path} has mode {:o}, not {want:o}",
                    meta.mode() & 0o7777
                )),
                Err(e) => problems.push(format!("{path} is not in the slice: {e}")),
            }
        }
        for (path, what) in snapshot(tree) {
            let mode = what
                .split_whitespace()
                .nth(1)
                .and_then(|m| u32::from_str_radix(m, 8).ok())
                .unwrap_or(0);
            if !what.starts_with("symlink") && mode & 0o7000 != 0 {
                problems.push(format!(
                    "{} keeps a setuid, setgid or sticky bit: {what}",
                    String::from_utf8_lossy(&path)
                ));
            }
            if what.starts_with("file") && mode != 0o644 && mode != 0o755 {
                problems.push(format!(
                    "{} has mode {mode:o}, not 644 or 755",
                    String::from_utf8_lossy(&path)
                ));
            }
        }
    } else if let Some(hex) = property.strip_prefix("file-hex ") {
        let name = hex_bytes(hex);
        let path = tree.join(OsStr::from_bytes(&name));
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            problems.push(format!(
                "no regular file named {:?} in the slice",
                String::from_utf8_lossy(&name)
            ));
        }
    } else {
        problems.push(format!(
            "expected.tsv states an unknown property {property:?}"
        ));
    }
}

/// Runs one case against a fresh store; returns what went wrong.
fn run_case(work: &Path, corpus: &Path, base: &Path, case: &Case, via_stdin: bool) -> Vec<String> {
    let label = format!(
        "store-{}{}",
        case.file.replace('.', "_"),
        if via_stdin { "-stdin" } else { "" }
    );
    let store = fresh_store(work, base, &label);
    let before = snapshot(&store);
    let archive = corpus.join(&case.file);
    let mut args: Vec<&OsStr> = vec![os("slice-add")];
    for limit in &case.limits {
        args.push(os("--limit"));
        args.push(os(limit));
    }
    args.push(os("victim"));
    let (run, source) = if via_stdin {
        args.push(os("-"));
        let data = fs::read(&archive).unwrap();
        (slicebox(&store, &args, Some(data)), "-".to_string())
    } else {
        args.push(archive.as_os_str());
        let shown = archive.to_str().expect("a UTF-8 temp path").to_string();
        (slicebox(&store, &args, None), shown)
    };
    let mut problems = Vec::new();
    if run.elapsed > Duration::from_secs(30) {
        problems.push(format!("took {:.1?}", run.elapsed));
    }
    match case.outcome {
        Outcome::Reject => {
            check_refusal(case, &source, &run, &mut problems);
            if run.status.is_none() {
                // Killed mid-add: tmp/ may hold its stage; that is the
                // timeout's doing, already reported.
                return problems;
            }
            let after = snapshot(&store);
            if after != before {
                problems.push(format!(
                    "the store changed:\n{}",
                    snapshot_diff(&before, &after)
                ));
            }
        }
        Outcome::Accept => {
            if !run.status.is_some_and(|s| s.success()) {
                problems.push(format!(
                    "{} (exit status 0 expected); stderr: {}",
                    run.ending(),
                    run.stderr().trim_end()
                ));
                return problems;
            }
            match slice_path(&store, "victim") {
                Ok(tree) => check_property(&tree, &case.expect, &mut problems),
                Err(e) => problems.push(e),
            }
            // Adding a slice changes nothing that was stored before, but
            // for the ref index, which every ref change rewrites (and
            // slice-verify below holds to the refs).
            let after = snapshot(&store);
            for (path, was) in &before {
                if after.get(path) != Some(was)
                    && !path.is_empty()
                    && path.as_slice() != b"refs/.index"
                {
                    problems.push(format!(
                        "accepting changed {:?}: {was} -> {:?}",
                        String::from_utf8_lossy(path),
                        after.get(path)
                    ));
                }
            }
            let verify = slicebox(&store, &[os("slice-verify")], None);
            if !verify.status.is_some_and(|s| s.success()) {
                problems.push(format!(
                    "slice-verify fails after the add: {}{}",
                    String::from_utf8_lossy(&verify.stdout),
                    verify.stderr()
                ));
            }
        }
    }
    // Stores are many: keep the disk use of the run small.
    if problems.is_empty() {
        remove_store(&store);
    }
    problems
}

/// Stores hold read-only dirs: make them writable, then remove.
fn remove_store(store: &Path) {
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(store)
        .status();
    let _ = fs::remove_dir_all(store);
}

/// Runs `cases` (all of them, from files or through stdin) and fails
/// with every problem, each under its case's name.
fn run_all(cases: &[Case], corpus: &Path, work: &Path, via_stdin: bool) {
    let base = work.join("base-tree");
    base_tree(&base);
    let mode = if via_stdin { "stdin" } else { "file" };
    let started = Instant::now();
    let mut failures = Vec::new();
    for case in cases {
        let case_started = Instant::now();
        let problems = run_case(work, corpus, &base, case, via_stdin);
        eprintln!(
            "{:<40} {:<6} {:<6} {:>8.2?} {}",
            case.file,
            mode,
            if case.outcome == Outcome::Reject {
                "reject"
            } else {
                "accept"
            },
            case_started.elapsed(),
            if problems.is_empty() { "ok" } else { "FAILED" }
        );
        for problem in problems {
            let limits = if case.limits.is_empty() {
                String::new()
            } else {
                format!(" --limit {}", case.limits.join(" --limit "))
            };
            failures.push(format!(
                "{} ({mode}: slice-add{limits} victim {}): {problem}",
                case.file,
                if via_stdin { "- <archive" } else { "ARCHIVE" }
            ));
        }
    }
    eprintln!(
        "{} cases ({mode}) in {:.2?}",
        cases.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} problems with hostile archives ({mode}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_hostile_archive_is_refused_from_a_file_and_the_store_left_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    let cases = build_corpus(&corpus);
    run_all(&cases, &corpus, tmp.path(), false);
    remove_store(tmp.path());
}

#[test]
fn every_hostile_archive_is_refused_from_stdin_and_the_store_left_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    let cases: Vec<Case> = build_corpus(&corpus)
        .into_iter()
        .filter(|c| c.outcome == Outcome::Reject)
        .collect();
    run_all(&cases, &corpus, tmp.path(), true);
    remove_store(tmp.path());
}
