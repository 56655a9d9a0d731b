//! Killing `slice-add` or `slice-gc` at any instant leaves the old state
//! or the new one: after each kill, slice-verify finds nothing wrong and
//! every name resolves to a complete slice; a later gc removes leftovers.
//! Kill points are randomised over the command's own progress (objects
//! staged by an add, objects removed by gc), watched in the store, so every
//! kill lands in a running command; the seed is printed so a failure
//! replays with SLICEBOX_CRASH_SEED.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_slicebox");

struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        // xorshift64*: plenty for picking kill points.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound.max(1)
    }
}

fn seed() -> u64 {
    let seed = std::env::var("SLICEBOX_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: SLICEBOX_CRASH_SEED={seed}");
    seed
}

/// Every slice here mounts at one place, so equal trees are equal slices.
const AT: &str = "/opt/crash-test";

fn slicebox(store: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("SLICEBOX_STORE", store)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(store: &Path, args: &[&str]) -> String {
    let out = slicebox(store, args);
    assert!(
        out.status.success(),
        "slicebox {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A tree big enough that an add takes a while: many small files, some
/// shared with the other variant, a few large ones.
fn make_tree(dir: &Path, variant: u32) {
    for i in 0..1500u32 {
        let sub = dir.join(format!("d{}", i % 37));
        fs::create_dir_all(&sub).unwrap();
        let text = if i % 3 == 0 {
            format!("shared {i}\n")
        } else {
            format!("v{variant} {i}\n")
        };
        fs::write(sub.join(format!("f{i}")), text).unwrap();
    }
    for i in 0..3u32 {
        fs::write(
            dir.join(format!("big{i}")),
            vec![(variant * 7 + i) as u8; 6 << 20],
        )
        .unwrap();
    }
}

/// Objects in the store's fan-out dirs.
fn stored_objects(store: &Path) -> usize {
    fs::read_dir(store.join("objects"))
        .map(|fans| {
            fans.flatten()
                .filter_map(|fan| fs::read_dir(fan.path()).ok())
                .map(|objects| objects.count())
                .sum()
        })
        .unwrap_or(0)
}

/// Objects the running add has staged so far (in `tmp/stage-*/objects`).
fn staged_objects(store: &Path) -> usize {
    let Ok(entries) = fs::read_dir(store.join("tmp")) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| fs::read_dir(e.path().join("objects")).ok())
        .map(|objects| objects.count())
        .sum()
}

/// Starts `args`, waits until `progress` says it has got far enough (a
/// handshake on its progress, not a guess at timing), then kills it.
/// Returns whether it was still running when killed.
fn run_and_kill_when(store: &Path, args: &[&str], progress: impl Fn() -> bool) -> bool {
    let mut child = Command::new(BIN)
        .args(args)
        .env("SLICEBOX_STORE", store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !progress() {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let was_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap_or(());
    child.wait().unwrap();
    was_running
}

fn assert_consistent(store: &Path, allowed: &[String]) {
    let verify = slicebox(store, &["slice-verify"]);
    assert!(
        verify.status.success(),
        "slice-verify after a kill: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    for line in ok(store, &["slice-list"]).lines() {
        let digest = line.split('\t').nth(1).unwrap().to_string();
        assert!(
            allowed.contains(&digest),
            "a name points at {digest}, which is neither old nor new"
        );
        ok(store, &["slice-verify", &digest]);
    }
}

/// Two versions of the test tree, as paths for the command line.
fn two_trees(tmp: &Path) -> (String, String) {
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    make_tree(&a, 1);
    make_tree(&b, 2);
    (a.to_str().unwrap().into(), b.to_str().unwrap().into())
}

#[test]
fn killing_slice_add_at_random_points_leaves_old_or_new_state() {
    let mut rng = Rng(seed());
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (a, b) = two_trees(tmp.path());
    let (a, b) = (a.as_str(), b.as_str());
    // Learn both digests and how long an add takes, then start clean.
    let digest_a = ok(&store, &["slice-add", "--at", AT, "probe", a])
        .trim()
        .to_string();
    let digest_b = ok(&store, &["slice-add", "--at", AT, "probe", b])
        .trim()
        .to_string();
    ok(&store, &["slice-rm", "probe"]);
    ok(&store, &["slice-gc"]);
    // Kills land while files are hashed and written, after a random
    // number of staged objects (the commit steps are covered by the crash
    // points of the test below).
    ok(&store, &["slice-add", "--at", AT, "victim", a]);
    let objects_a = stored_objects(&store);
    ok(&store, &["slice-rm", "victim"]);
    ok(&store, &["slice-gc"]);
    let allowed = vec![digest_a.clone(), digest_b.clone()];
    let mut interrupted = 0;
    for round in 0..40 {
        // gc first, so the other tree's own files must be written again:
        // every round is a real add, not a fast re-add of stored content.
        ok(&store, &["slice-gc"]);
        let source = if round % 2 == 0 { a } else { b };
        // The store keeps what both trees share, so fewer than half of a
        // tree's objects are certain to be written anew.
        let after = rng.below(objects_a as u64 / 2) as usize;
        let args = ["slice-add", "--at", AT, "victim", source];
        if run_and_kill_when(&store, &args, || staged_objects(&store) >= after) {
            interrupted += 1;
        }
        assert_consistent(&store, &allowed);
    }
    eprintln!("{interrupted} of 40 kills hit a running slice-add");
    assert_eq!(
        interrupted, 40,
        "every kill waits until the add has staged objects, so each must hit it"
    );
    // A complete add and gc leave exactly one slice and no garbage.
    ok(&store, &["slice-add", "--at", AT, "victim", a]);
    ok(&store, &["slice-gc"]);
    assert_consistent(&store, &allowed);
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&store, &["store-stats", "--json"])).unwrap();
    assert_eq!(stats["slices"], 1);
    assert_eq!(stats["reclaimable_bytes"], 0);
    assert!(
        fs::read_dir(store.join("tmp")).unwrap().next().is_none(),
        "gc removes staging leftovers"
    );
}

#[test]
fn killing_slice_gc_at_random_points_keeps_every_named_slice() {
    let mut rng = Rng(seed());
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (a, b) = two_trees(tmp.path());
    let (a, b) = (a.as_str(), b.as_str());
    let keep = ok(&store, &["slice-add", "--at", AT, "keep", a])
        .trim()
        .to_string();
    let keep_objects = stored_objects(&store);
    let mut interrupted = 0;
    for _ in 0..12 {
        // Garbage to collect: a second slice, unnamed again.
        ok(&store, &["slice-add", "--at", AT, "garbage", b]);
        ok(&store, &["slice-rm", "garbage"]);
        // Kill once gc has removed a random number of the garbage's
        // objects (those it shares with `keep` stay).
        let before = stored_objects(&store);
        let garbage = before - keep_objects;
        let removed = rng.below(garbage as u64 / 2) as usize;
        if run_and_kill_when(&store, &["slice-gc"], || {
            stored_objects(&store) <= before - removed
        }) {
            interrupted += 1;
        }
        assert_consistent(&store, std::slice::from_ref(&keep));
        assert!(ok(&store, &["slice-show", "--json", "keep"]).contains(&keep));
    }
    eprintln!("{interrupted} of 12 kills hit a running slice-gc");
    assert_eq!(
        interrupted, 12,
        "every kill waits until gc has removed objects, so each must hit it"
    );
    ok(&store, &["slice-gc"]);
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&store, &["store-stats", "--json"])).unwrap();
    assert_eq!(stats["slices"], 1);
    assert_eq!(stats["reclaimable_bytes"], 0);
}

/// Runs a command that must die of SIGKILL at crash point `at`.
fn crash_at(store: &Path, at: &str, args: &[&str]) {
    let status = Command::new(BIN)
        .args(args)
        .env("SLICEBOX_STORE", store)
        .env("SLICEBOX_CRASH_AT", at)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "{args:?} did not reach crash point {at}"
    );
}

#[test]
fn a_crash_between_any_two_durable_steps_leaves_old_or_new_state() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_trees(tmp.path());
    let (a, b) = (a.as_str(), b.as_str());
    for point in [
        "add:staged",
        "add:synced",
        "add:one-object-published",
        "add:objects-published",
        "add:slice-published",
        "refs:index-removed",
        "refs:before-index-written",
        "add:ref-written",
    ] {
        let store = tmp.path().join(point.replace(':', "-"));
        let old = ok(&store, &["slice-add", "--at", AT, "victim", a])
            .trim()
            .to_string();
        let new = {
            let probe = tmp.path().join("probe");
            let _ = Command::new("chmod")
                .args(["-R", "u+w"])
                .arg(&probe)
                .stderr(Stdio::null())
                .status();
            let _ = fs::remove_dir_all(&probe);
            ok(&probe, &["slice-add", "--at", AT, "victim", b])
                .trim()
                .to_string()
        };
        crash_at(&store, point, &["slice-add", "--at", AT, "victim", b]);
        assert_consistent(&store, &[old.clone(), new.clone()]);
        ok(&store, &["slice-gc"]);
        assert_consistent(&store, &[old.clone(), new.clone()]);
        let stats: serde_json::Value =
            serde_json::from_str(&ok(&store, &["store-stats", "--json"])).unwrap();
        assert_eq!(
            stats["reclaimable_bytes"], 0,
            "gc left garbage after a crash at {point}"
        );
    }
    // slice-rm changes a ref too: the index goes first, so a crash leaves
    // none rather than one that still lists the removed name.
    for point in ["refs:index-removed", "refs:before-index-written"] {
        let store = tmp.path().join(format!("rm-{}", point.replace(':', "-")));
        let keep = ok(&store, &["slice-add", "--at", AT, "keep", a])
            .trim()
            .to_string();
        let victim = ok(&store, &["slice-add", "--at", AT, "victim", b])
            .trim()
            .to_string();
        crash_at(&store, point, &["slice-rm", "victim"]);
        assert!(
            !store.join("refs/.index").exists(),
            "a crash after the index was removed leaves none"
        );
        assert_consistent(&store, &[keep.clone(), victim.clone()]);
        ok(&store, &["slice-gc"]);
        assert!(
            store.join("refs/.index").exists(),
            "slice-gc writes the index a crash removed"
        );
        assert_consistent(&store, &[keep.clone(), victim]);
    }
    for point in [
        "gc:history-pruned",
        "gc:one-slice-trashed",
        "gc:one-object-removed",
        "gc:objects-swept",
    ] {
        let store = tmp.path().join(point.replace(':', "-"));
        let keep = ok(&store, &["slice-add", "--at", AT, "keep", a])
            .trim()
            .to_string();
        ok(&store, &["slice-add", "--at", AT, "garbage", b]);
        ok(&store, &["slice-add", "--at", AT, "garbage", a]);
        ok(&store, &["slice-rm", "garbage"]);
        crash_at(&store, point, &["slice-gc"]);
        assert_consistent(&store, std::slice::from_ref(&keep));
        ok(&store, &["slice-gc"]);
        assert_consistent(&store, std::slice::from_ref(&keep));
        let stats: serde_json::Value =
            serde_json::from_str(&ok(&store, &["store-stats", "--json"])).unwrap();
        assert_eq!(stats["slices"], 1);
        assert_eq!(stats["reclaimable_bytes"], 0);
    }
}

/// `layer-show --files NAME`: the stack and layer digests and every
/// entry; it fails unless the stack and its layers read back whole.
fn layer_files(store: &Path, name: &str) -> String {
    ok(store, &["layer-show", "--files", name])
}

/// A layer-add killed between any two of its durable steps, or a gc
/// between two removals of layer files, leaves the name on the old stack
/// or the new one, complete, and a store slice-verify passes.
#[test]
fn a_crash_in_layer_add_or_its_gc_leaves_old_or_new_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_trees(tmp.path());
    let tar = |dir: &str, out: &str| {
        let out = tmp.path().join(out).display().to_string();
        let status = Command::new("tar")
            .args(["-cf", &out, "-C", dir, "."])
            .status()
            .unwrap();
        assert!(status.success());
        out
    };
    let (a, b) = (tar(&a, "a.tar"), tar(&b, "b.tar"));
    for (i, point) in [
        "layer-add:staged",
        "layer-add:objects-published",
        "layer-add:tree-published",
        "layer-add:layer-written",
        "layer-add:stack-written",
        "layer-add:ref-written",
    ]
    .into_iter()
    .enumerate()
    {
        let store = tmp.path().join(format!("store-{i}"));
        ok(&store, &["layer-add", "lay", &a]);
        let old = layer_files(&store, "lay");
        crash_at(&store, point, &["layer-add", "lay", &b]);
        let after = layer_files(&store, "lay");
        ok(&store, &["slice-verify"]);
        ok(&store, &["layer-add", "lay", &b]);
        let new = layer_files(&store, "lay");
        assert!(old != new, "the two layers differ");
        let expected = match point {
            "layer-add:ref-written" => &new,
            _ => &old,
        };
        assert!(&after == expected, "after a crash at {point}: {after:.200}");
        ok(&store, &["slice-gc"]);
        ok(&store, &["slice-verify"]);
        assert!(layer_files(&store, "lay") == new);
        // gc killed after its first layer file: the named layer stays whole.
        ok(&store, &["layer-add", "other", &a]);
        ok(&store, &["layer-rm", "other"]);
        crash_at(&store, "gc:one-layer-file-removed", &["slice-gc"]);
        ok(&store, &["slice-verify"]);
        assert!(layer_files(&store, "lay") == new);
        ok(&store, &["slice-gc"]);
        ok(&store, &["slice-verify"]);
        assert!(layer_files(&store, "lay") == new);
        // gc killed between moving a tree out and removing it: the next
        // gc removes what is left, and only the named layer's tree stays.
        ok(&store, &["layer-add", "other", &a]);
        ok(&store, &["layer-rm", "other"]);
        crash_at(&store, "gc:layer-tree-moved", &["slice-gc"]);
        ok(&store, &["slice-gc"]);
        ok(&store, &["slice-verify"]);
        assert!(layer_files(&store, "lay") == new);
        let trees: Vec<_> = std::fs::read_dir(store.join("layer-trees"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let shown = ok(&store, &["layer-show", "lay"]);
        assert_eq!(trees.len(), 1, "{trees:?}");
        let tree = trees[0].to_str().unwrap();
        assert!(shown.contains(tree), "{tree} is not lay's layer: {shown}");
        let leftovers = std::fs::read_dir(store.join("tmp")).unwrap().count();
        assert_eq!(leftovers, 0, "gc left files in tmp/");
    }
}
