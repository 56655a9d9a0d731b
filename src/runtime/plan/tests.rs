use std::ffi::OsString;

use super::testing::{plan_of, plan_with, Input};
use super::*;
use crate::runtime::exec::execute;
use crate::runtime::exec::WALK;
use crate::runtime::layout::resolve::resolve_destination;
use crate::runtime::report::{StepFailure, SOURCE_FAILED};
use crate::runtime::stage::{workdir_view, PlannedLayer, PlannedSlice, PlannedTmpfs};
use crate::runtime::steps::{ShadowKind, Step};
use crate::runtime::sys::recording::Recorder;

fn input(slices: &[(&str, &str)]) -> Input {
    Input::of(Stage {
        base: vec![
            (
                PathBuf::from("/bin"),
                HostEntry::Symlink(PathBuf::from("usr/bin")),
            ),
            (PathBuf::from("/etc"), HostEntry::Dir),
            (PathBuf::from("/usr"), HostEntry::Dir),
        ],
        slices: slices
            .iter()
            .map(|(label, at)| PlannedSlice {
                label: label.to_string(),
                tree: PathBuf::from(format!("/store/slices/{label}/tree")),
                mount_point: PathBuf::from(at),
            })
            .collect(),
        workdir: Some(PathBuf::from("/home/u/project")),
        start_dir: PathBuf::from("/home/u/project"),
        ..Stage::bare()
    })
}

/// A host of fixed paths: `(path, kind)`; a dir lists the entries
/// right below it.
struct FixedHost(Vec<(&'static str, ShadowKind)>);

impl HostView for FixedHost {
    fn kind(&self, path: &Path) -> Option<ShadowKind> {
        self.0
            .iter()
            .find(|(p, _)| Path::new(p) == path)
            .map(|(_, k)| k.clone())
    }
    fn list(&self, dir: &Path) -> Vec<(OsString, ShadowKind)> {
        self.0
            .iter()
            .filter(|(p, _)| Path::new(p).parent() == Some(dir))
            .map(|(p, k)| (Path::new(p).file_name().unwrap().to_os_string(), k.clone()))
            .collect()
    }
}

#[test]
fn a_mount_point_missing_in_a_read_only_dir_gets_a_tmpfs_showing_the_same_entries() {
    let host = FixedHost(vec![
        ("/usr", ShadowKind::Dir),
        ("/usr/share", ShadowKind::Dir),
        ("/usr/share/doc", ShadowKind::Dir),
        ("/usr/share/misc", ShadowKind::Symlink(c"doc".to_owned())),
        ("/usr/share/file", ShadowKind::File),
    ]);
    let i = input(&[("x", "/usr/share/missing/x")]);
    let plan = plan_with(&i, &host).unwrap();
    let shadow = plan
        .steps
        .iter()
        .position(|s| matches!(s.op, Op::Shadow { .. }))
        .expect("a shadow step");
    let slice = plan
        .steps
        .iter()
        .position(|s| matches!(s.what, What::MountSlice(..)))
        .unwrap();
    let seal = plan
        .steps
        .iter()
        .position(|s| matches!(s.op, Op::SealShadow { .. }))
        .unwrap();
    let usr = plan
        .steps
        .iter()
        .position(|s| matches!(s.what, What::MountBase) && s.what() == "mount /usr read-only")
        .unwrap();
    assert!(
        usr < shadow && shadow < slice && slice < seal,
        "{:?}",
        plan.steps
    );
    assert_eq!(
        plan.steps[shadow].what(),
        "cover '/usr/share' with a tmpfs showing the same entries, to make a mount point below it"
    );
    let sys = Recorder::default();
    let mut slots = vec![-1; plan.slots];
    let mut walk = vec![-1; plan.depth];
    execute(&sys, &plan.steps[..=shadow], &mut slots, &mut walk).unwrap();
    let calls = sys.calls.into_inner();
    let at = calls
        .iter()
        .position(|c| c.starts_with("open_tree") && c.contains("doc"))
        .expect("the entries are cloned first");
    let tail: Vec<&str> = calls[at..].iter().map(String::as_str).collect();
    let tmpfs = tail
        .iter()
        .position(|c| c.starts_with("fsopen tmpfs"))
        .unwrap();
    assert!(tail[..tmpfs].iter().any(|c| c.contains("file")), "{tail:?}");
    let after: Vec<&str> = tail[tmpfs..].to_vec();
    for expected in ["mkdir doc", "create file", "symlink misc -> doc"] {
        assert!(
            after.iter().any(|c| c.contains(expected)),
            "{expected} in {after:?}"
        );
    }
    // Not when the way exists, nor below a source the host lacks.
    let host = FixedHost(vec![
        ("/usr", ShadowKind::Dir),
        ("/usr/share", ShadowKind::Dir),
    ]);
    let i = input(&[("x", "/usr/share")]);
    assert!(!plan_with(&i, &host)
        .unwrap()
        .steps
        .iter()
        .any(|s| matches!(s.op, Op::Shadow { .. })));
    let i = input(&[("a", "/opt/a"), ("b", "/opt/a/b/c")]);
    assert!(!plan_with(&i, &host)
        .unwrap()
        .steps
        .iter()
        .any(|s| matches!(s.op, Op::Shadow { .. })));
}

#[test]
fn a_bind_destination_follows_symlinks_inside_the_stage_only() {
    let host = FixedHost(vec![
        ("/usr", ShadowKind::Dir),
        ("/usr/bin", ShadowKind::Dir),
        ("/store/slices/s/tree", ShadowKind::Dir),
        (
            "/store/slices/s/tree/up",
            ShadowKind::Symlink(c"../..".to_owned()),
        ),
        (
            "/store/slices/s/tree/far",
            ShadowKind::Symlink(c"../../../../..".to_owned()),
        ),
        (
            "/store/slices/s/tree/etc",
            ShadowKind::Symlink(c"/etc/x".to_owned()),
        ),
    ]);
    let i = input(&[("s", "/opt/s")]);
    let resolve = |d: &str| resolve_destination(Path::new(d), &i.stage, &host);
    // /bin is the stage's own symlink to usr/bin.
    assert_eq!(resolve("/bin/tool").unwrap(), Path::new("/usr/bin/tool"));
    // ".." never climbs above the stage's root.
    assert_eq!(resolve("/opt/s/up/tmp/b").unwrap(), Path::new("/tmp/b"));
    assert_eq!(resolve("/opt/s/far/tmp/b").unwrap(), Path::new("/tmp/b"));
    assert_eq!(resolve("/opt/s/etc").unwrap(), Path::new("/etc/x"));
    assert_eq!(resolve("/opt/s/plain").unwrap(), Path::new("/opt/s/plain"));
}

fn run(plan: &Plan, sys: &Recorder) -> Result<(), StepFailure> {
    let mut slots = vec![-1; plan.slots];
    let mut walk = vec![-1; plan.depth];
    execute(sys, &plan.steps, &mut slots, &mut walk)
}

fn recorded(input: &Input) -> Vec<String> {
    let plan = plan_of(input).unwrap();
    let sys = Recorder::default();
    run(&plan, &sys).unwrap();
    sys.calls.into_inner()
}

fn position(calls: &[String], line: &str) -> usize {
    calls
        .iter()
        .position(|c| c == line)
        .unwrap_or_else(|| panic!("{line:?} not in {calls:#?}"))
}

/// The index of the move_mount that attaches slice `label`.
fn slice_mounted(calls: &[String], label: &str) -> usize {
    position(calls, &format!("open_tree_at {label}/tree")) + 1
}

#[test]
fn maps_first_then_every_host_source_before_the_root_exists() {
    let calls = recorded(&input(&[("py", "/opt/python")]));
    assert_eq!(calls[0], "write /proc/self/setgroups deny");
    assert_eq!(calls[1], "write /proc/self/uid_map 1000 1000 1");
    assert_eq!(calls[2], "write /proc/self/gid_map 1000 1000 1");
    assert_eq!(calls[3], "new session keyring");
    let root = position(&calls, "mount tmpfs /tmp mode=0755");
    for source in [
        "open_tree /dev/null",
        "open_tree /usr",
        "open_tree /etc",
        "open_tree /home/u/project",
        "open_tree /store/slices",
        "open_dir /store/slices",
    ] {
        assert!(position(&calls, source) < root, "{source} before the root");
    }
    // After the root exists, nothing is opened by a host path again.
    assert!(!calls[root + 2..]
        .iter()
        .any(|c| c.starts_with("open_tree /") || c.starts_with("open_dir")));
    assert_eq!(
        &calls[calls.len() - 7..],
        [
            "setattr 0x1 propagation 0x0",
            "setattr 0x0 propagation 0x40000 recursive",
            "fchdir",
            "pivot_root . .",
            "umount .",
            "open /home/u/project resolve 0x12",
            "fchdir",
        ]
    );
}

#[test]
fn every_walk_refuses_symlinks_and_stays_beneath_its_dir() {
    let calls = recorded(&input(&[("a", "/opt/a"), ("b", "/opt/a/b/c")]));
    let walks: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("open ") && !c.starts_with("open /"))
        .collect();
    assert!(walks.len() > 10);
    for walk in walks {
        assert!(walk.ends_with(&format!("resolve {WALK:#x}")), "{walk}");
    }
}

#[test]
fn slices_are_mounted_parent_before_child_whatever_the_order_given() {
    let calls = recorded(&input(&[("inner", "/opt/a/b"), ("outer", "/opt/a")]));
    let outer = slice_mounted(&calls, "outer");
    let inner = slice_mounted(&calls, "inner");
    assert!(outer < inner);
    // Inside the outer slice nothing is known: the mount point is
    // looked up, never through a symlink, and mounted on by its fd.
    assert_eq!(calls[inner - 2], format!("open b resolve {WALK:#x}"));
    assert_eq!(calls[inner], "move_mount");
    // The child's walk re-opens /opt/a after the mount, so it goes
    // into the slice, not the dir it covers.
    assert!(calls[outer..inner].contains(&format!("open a resolve {WALK:#x}")));
}

#[test]
fn parents_are_walked_once_for_siblings() {
    let calls = recorded(&input(&[("a", "/opt/a"), ("b", "/opt/b"), ("c", "/opt/c")]));
    let opt_walks = calls
        .iter()
        .filter(|c| **c == format!("open opt resolve {WALK:#x}"))
        .count();
    assert_eq!(opt_walks, 1, "{calls:#?}");
}

#[test]
fn slices_come_from_one_read_only_clone_of_the_store() {
    let calls = recorded(&input(&[("py", "/opt/python")]));
    let store = position(&calls, "open_tree /store/slices");
    assert_eq!(calls[store + 1], "setattr 0x7 propagation 0x0 recursive");
    let mv = slice_mounted(&calls, "py");
    // /opt/python is new in the stage's own tmpfs: made, then mounted
    // on by name, with no lookup in between.
    assert_eq!(calls[mv], "move_mount_at python");
    assert_eq!(calls[mv - 2], "mkdir python");
}

#[test]
fn base_dirs_and_the_workdir_are_read_only_nosuid_nodev() {
    let calls = recorded(&input(&[]));
    for source in [
        "open_tree /usr",
        "open_tree /etc",
        "open_tree /home/u/project",
    ] {
        let at = position(&calls, source);
        assert_eq!(calls[at + 1], "setattr 0x7 propagation 0x0 recursive");
    }
}

#[test]
fn merged_usr_symlinks_are_recreated_not_bound() {
    let calls = recorded(&input(&[]));
    assert!(calls.contains(&"symlink bin -> usr/bin".to_string()));
    assert!(!calls.iter().any(|c| c == "open_tree /bin"));
}

#[test]
fn workdir_rules() {
    let base = input(&[]).stage.base;
    for (dir, view) in [
        ("/", "Hidden"),
        ("/proc", "Hidden"),
        ("/proc/self", "Hidden"),
        ("/dev", "Hidden"),
        ("/dev/shm", "Hidden"),
        ("/sys/kernel", "Hidden"),
        ("/tmp", "Hidden"),
        ("/tmp/work", "Shown"),
        ("/usr/src", "InsideBase"),
        ("/home/u", "Shown"),
        ("/procfoo", "Shown"),
    ] {
        let got = format!("{:?}", workdir_view(Path::new(dir), &base));
        assert!(got.starts_with(view), "{dir}: {got}");
    }
}

#[test]
fn workdir_under_tmp_is_bound_after_the_fresh_tmp() {
    let mut i = input(&[]);
    i.workdir = Some(PathBuf::from("/tmp/work"));
    let calls = recorded(&i);
    let tmp = calls
        .iter()
        .rposition(|c| c == "fsopen tmpfs")
        .expect("tmpfs for /tmp");
    let work = position(&calls, &format!("open work resolve {WALK:#x}"));
    assert!(tmp < work);
    assert_eq!(calls[work + 1], "move_mount");
}

#[test]
fn mount_points_over_the_stages_own_dirs_are_refused() {
    for at in ["/proc", "/proc/x", "/dev", "/dev/shm/x", "/tmp"] {
        assert!(
            matches!(plan_of(&input(&[("a", at)])), Err(PlanError::Reserved(..))),
            "{at}"
        );
    }
    for at in ["/", "/opt/../etc", "relative"] {
        assert!(
            matches!(plan_of(&input(&[("a", at)])), Err(PlanError::NotNormal(_))),
            "{at}"
        );
    }
}

#[test]
fn two_explicit_mounts_at_one_mount_point_are_refused() {
    let taken = |first: &str, second: &str| PlanError::MountPointTaken {
        path: "/opt/x".into(),
        first: first.into(),
        second: second.into(),
    };
    assert_eq!(
        plan_of(&input(&[("a", "/opt/x"), ("b", "/opt/x")])).unwrap_err(),
        taken("slice 'a'", "slice 'b'")
    );
    let mut i = input(&[("a", "/opt/x")]);
    i.binds = vec![bind("/host/x", "/opt/x", true)];
    assert_eq!(
        plan_of(&i).unwrap_err(),
        taken("slice 'a'", "--bind '/host/x'")
    );
    i.binds[0].is_output = true;
    assert_eq!(plan_of(&i).unwrap_err(), taken("slice 'a'", "--out"));
    let mut i = input(&[]);
    i.binds = vec![bind("/host/x", "/opt/x", false)];
    i.tmpfs = vec![PlannedTmpfs {
        target: PathBuf::from("/opt/x"),
        size: None,
        mode: 0o755,
    }];
    assert_eq!(
        plan_of(&i).unwrap_err(),
        taken("--ro-bind '/host/x'", "--tmpfs")
    );
    // A base dir is there to be covered.
    let mut i = input(&[]);
    i.binds = vec![bind("/host/etc", "/etc", false)];
    assert!(plan_of(&i).is_ok());
}

#[test]
fn loopback_comes_up_only_with_an_isolated_network() {
    assert!(!recorded(&input(&[])).contains(&"loopback up".to_string()));
    let mut i = input(&[]);
    i.isolate_net = true;
    assert!(recorded(&i).contains(&"loopback up".to_string()));
}

#[test]
fn a_failure_at_any_call_stops_setup_there_and_names_its_step() {
    let mut i = input(&[("a", "/opt/a"), ("b", "/opt/a/b")]);
    i.isolate_net = true;
    let plan = plan_of(&i).unwrap();
    let total = recorded(&i).len();
    for call in 0..total {
        let sys = Recorder::failing(call, libc::EPERM);
        let failure = run(&plan, &sys).expect_err("the injected failure ends setup");
        assert_eq!(failure.errno, libc::EPERM);
        assert!(failure.step < plan.steps.len());
        let calls = sys.calls.into_inner();
        // Nothing runs after the failing call.
        assert_eq!(calls.len(), call + 1, "{calls:#?}");
        assert!(calls[call].ends_with("-> FAIL"));
    }
}

fn bind(source: &str, target: &str, writable: bool) -> PlannedBind {
    PlannedBind {
        source: PathBuf::from(source),
        target: PathBuf::from(target),
        writable,
        is_dir: true,
        is_output: false,
    }
}

#[test]
fn nothing_is_made_inside_a_writable_bind() {
    let mut i = input(&[("s", "/w/sub/x")]);
    i.binds = vec![bind("/host/rw", "/w", true)];
    let planned = plan_of(&i).unwrap();
    // /w/sub is missing: inside the writable bind that is an error,
    // not a mkdir on the host.
    let sys = Recorder::failing_on(&format!("open sub resolve {WALK:#x}"), libc::ENOENT);
    let failure = run(&planned, &sys).unwrap_err();
    assert_eq!(failure.errno, libc::ENOENT);
    assert!(!sys.calls.into_inner().iter().any(|c| c == "mkdir sub"));
    // Below a read-only bind a missing dir is made (and the kernel
    // refuses with EROFS); in the stage's own tmpfs it is made.
    let mut i = input(&[("s", "/r/sub/x")]);
    i.binds = vec![bind("/host/ro", "/r", false)];
    let planned = plan_of(&i).unwrap();
    let sys = Recorder::failing_on(&format!("open sub resolve {WALK:#x}"), libc::ENOENT);
    let _ = run(&planned, &sys);
    assert!(sys.calls.into_inner().iter().any(|c| c == "mkdir sub"));
}

#[test]
fn nothing_is_made_inside_a_writable_working_directory() {
    // --rw-cwd: the working directory is a writable host dir too.
    let mut i = input(&[("s", "/home/u/project/sub/x")]);
    i.rw_workdir = true;
    i.tmpfs = vec![PlannedTmpfs {
        target: PathBuf::from("/home/u/project/t/mnt"),
        size: None,
        mode: 0o755,
    }];
    i.binds = vec![bind("/host/file", "/home/u/project/f", false)];
    i.binds[0].is_dir = false;
    let planned = plan_of(&i).unwrap();
    for missing in ["sub", "t", "f"] {
        let sys = Recorder::failing_on(&format!("open {missing} resolve {WALK:#x}"), libc::ENOENT);
        let failure = run(&planned, &sys).unwrap_err();
        assert_eq!(failure.errno, libc::ENOENT, "{missing}");
        let calls = sys.calls.into_inner();
        let workdir = position(&calls, "move_mount_at project");
        assert!(
            !calls[workdir..]
                .iter()
                .any(|c| c.starts_with("mkdir") || c.starts_with("create")),
            "{missing}: {calls:?}"
        );
    }
    // Read-only, the same mounts are planned as before (made in a
    // shadow or refused by the kernel, never on the host).
    i.rw_workdir = false;
    let planned = plan_of(&i).unwrap();
    let sys = Recorder::failing_on(&format!("open t resolve {WALK:#x}"), libc::ENOENT);
    let _ = run(&planned, &sys);
    assert!(sys.calls.into_inner().iter().any(|c| c == "mkdir t"));
}

#[test]
fn a_slice_tree_the_store_lost_is_named_as_the_source() {
    let planned = plan_of(&input(&[("py", "/opt/python")])).unwrap();
    let sys = Recorder::failing_on("open_tree_at py/tree", libc::ENOENT);
    let failure = run(&planned, &sys).unwrap_err();
    assert_eq!(
        (failure.errno, failure.component),
        (libc::ENOENT, SOURCE_FAILED)
    );
    let step = &planned.steps[failure.step];
    assert_eq!(step.source(), Some(Path::new("/store/slices/py/tree")));
    assert_eq!(step.what(), "mount slice 'py' at '/opt/python'");
}

#[test]
fn binds_are_cloned_before_the_root_and_may_replace_tmp() {
    let mut i = input(&[]);
    i.binds = vec![
        bind("/host/t", "/tmp", true),
        bind("/dev/log", "/dev/log", false),
    ];
    assert!(matches!(plan_of(&i), Err(PlanError::Reserved(..))));
    i.binds.pop();
    let calls = recorded(&i);
    let root = position(&calls, "mount tmpfs /tmp mode=0755");
    let source = position(&calls, "open_tree /host/t");
    assert!(source < root);
    assert_eq!(calls[source + 1], "setattr 0x6 propagation 0x0 recursive");
}

#[test]
fn unix_sockets_are_restricted_only_with_no_network_and_landlock_9() {
    let mut i = input(&[]);
    i.binds = vec![bind("/host/log", "/dev-log", false)];
    i.landlock_abi = 9;
    assert!(!recorded(&i).iter().any(|c| c.starts_with("landlock")));
    i.isolate_net = true;
    i.landlock_abi = 8;
    assert!(!recorded(&i).iter().any(|c| c.starts_with("landlock")));
    i.landlock_abi = 9;
    let calls = recorded(&i);
    let landlock: Vec<&String> = calls.iter().filter(|c| c.starts_with("landlock")).collect();
    assert_eq!(
        landlock,
        [
            "landlock ruleset 0x12000",
            "landlock allow 0x2000",
            "landlock allow 0x10000",
            "landlock restrict"
        ]
    );
    assert!(position(&calls, "pivot_root . .") < position(&calls, "landlock restrict"));
}

#[test]
fn every_step_says_what_it_does() {
    let mut i = input(&[("py", "/opt/python")]);
    i.binds = vec![bind("/host/log", "/dev-log", false)];
    i.isolate_net = true;
    i.landlock_abi = 9;
    i.terminal = Some(4);
    i.slices.push(PlannedSlice {
        label: "loose".into(),
        tree: PathBuf::from("/elsewhere"),
        mount_point: PathBuf::from("/opt/loose"),
    });
    for step in plan_of(&i).unwrap().steps {
        let what = step.what();
        assert!(what != "set up the stage" && !what.is_empty(), "{step:?}");
    }
    let steps = plan_of(&i).unwrap().steps;
    let words: Vec<String> = steps.iter().map(Step::what).collect();
    for expected in [
        "open '/usr' on the host",
        "open the slice store '/store/slices' read-only",
        "open slice 'loose'",
        "mount tmpfs on /dev",
        "bind /dev/null",
        "bind the stage's terminal /dev/pts/4",
        "create symlink '/dev/fd'",
        "mount /usr read-only",
        "mount the working directory '/home/u/project' read-only",
        "mount slice 'py' at '/opt/python'",
        "bind '/host/log' at '/dev-log'",
        "change directory to '/home/u/project'",
    ] {
        assert!(
            words.iter().any(|w| w == expected),
            "{expected} in {words:#?}"
        );
    }
}

#[test]
fn with_its_own_devpts_the_stage_sees_its_terminal_at_dev_console() {
    let mut i = input(&[]);
    i.terminal = Some(4);
    i.dev = true;
    let words: Vec<String> = plan_of(&i).unwrap().steps.iter().map(Step::what).collect();
    let position = |wanted: &str| {
        words
            .iter()
            .position(|w| w == wanted)
            .unwrap_or_else(|| panic!("{wanted} in {words:#?}"))
    };
    position("open '/dev/pts/4' on the host");
    // After the devpts mount, which would cover /dev/pts/4.
    assert!(position("bind the stage's terminal /dev/console") > 0);
    assert!(!words.iter().any(|w| w.contains("terminal /dev/pts/")));
}

#[test]
fn a_symlink_on_the_way_is_reported_with_its_component() {
    let i = input(&[("x", "/opt/a/b/c")]);
    let plan = plan_of(&i).unwrap();
    let mut slots = vec![-1; plan.slots];
    let mut walk = vec![-1; plan.depth];
    let sys = Recorder::failing_on(&format!("open b resolve {WALK:#x}"), libc::ELOOP);
    let failure = execute(&sys, &plan.steps, &mut slots, &mut walk).unwrap_err();
    assert_eq!(failure.errno, libc::ELOOP);
    let target = plan.steps[failure.step].op.target().unwrap();
    assert_eq!(
        target.prefix(failure.component as usize),
        Path::new("/opt/a/b")
    );
}

fn layered(count: usize) -> Input {
    Input::of(Stage {
        layers: (0..count)
            .map(|n| PlannedLayer {
                label: format!("l{n}"),
                tree: PathBuf::from(format!("/store/layers/l{n}/tree")),
            })
            .collect(),
        slices: vec![PlannedSlice {
            label: "py".into(),
            tree: PathBuf::from("/store/slices/py/tree"),
            mount_point: PathBuf::from("/opt/python"),
        }],
        ..Stage::bare()
    })
}

#[test]
fn layers_become_an_overlay_root_topmost_first_that_stays_writable() {
    let plan = plan_of(&layered(3)).unwrap();
    let opened: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.op, Op::OpenHostDir { .. }))
        .map(|s| s.what())
        .collect();
    assert_eq!(
        opened,
        [
            "open layer 'l2' ('/store/layers/l2/tree')",
            "open layer 'l1' ('/store/layers/l1/tree')",
            "open layer 'l0' ('/store/layers/l0/tree')"
        ]
    );
    assert!(!plan.steps.iter().any(|s| s.op == Op::MountRoot));
    let sys = Recorder::default();
    let mut slots = vec![-1; plan.slots];
    let mut walk = vec![-1; plan.depth];
    execute(&sys, &plan.steps, &mut slots, &mut walk).unwrap();
    let calls = sys.calls.into_inner();
    let overlay = calls.iter().position(|c| c == "fsopen overlay").unwrap();
    let config: Vec<&str> = calls[overlay..]
        .iter()
        .map(String::as_str)
        .take_while(|c| !c.starts_with("fsmount"))
        .collect();
    // The layers' fds in the order opened (topmost first), then the upper
    // on the stage's own tmpfs, made just before.
    let lowers: Vec<&&str> = config.iter().filter(|c| c.contains("lowerdir+")).collect();
    assert_eq!(lowers.len(), 3, "{config:?}");
    let fds: Vec<i32> = lowers
        .iter()
        .map(|c| c.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(fds.windows(2).all(|w| w[0] < w[1]), "{config:?}");
    for expected in ["fsconfig userxattr", "fsconfig create"] {
        assert!(config.contains(&expected), "{expected} in {config:?}");
    }
    assert!(calls[..overlay].contains(&"mkdir upper".to_string()));
    // The slice's mount point is looked up in the layers, not assumed new.
    assert!(
        calls.iter().any(|c| c.starts_with("open opt ")),
        "{calls:?}"
    );
    let enter = plan
        .steps
        .iter()
        .find(|s| matches!(s.op, Op::EnterRoot { .. }))
        .unwrap();
    assert_eq!(enter.op, Op::EnterRoot { read_only: false });
    let plain = plan_of(&input(&[])).unwrap();
    assert!(plain
        .steps
        .iter()
        .any(|s| s.op == Op::EnterRoot { read_only: true }));
}

#[test]
fn an_older_kernel_gets_the_layers_by_their_proc_paths() {
    let plan = plan_of(&layered(1)).unwrap();
    let run = |sys: &Recorder| {
        let mut slots = vec![-1; plan.slots];
        let mut walk = vec![-1; plan.depth];
        execute(sys, &plan.steps, &mut slots, &mut walk).unwrap();
    };
    let sys = Recorder::default();
    run(&sys);
    let calls = sys.calls.into_inner();
    let by_fd = calls.iter().find(|c| c.contains("lowerdir+=fd")).unwrap();
    let fd = by_fd.rsplit(' ').next().unwrap();
    let sys = Recorder::failing_on(by_fd, libc::EINVAL);
    run(&sys);
    let calls = sys.calls.into_inner();
    let by_path = format!("fsconfig lowerdir+=/proc/self/fd/{fd}");
    assert!(calls.contains(&by_path), "{calls:?}");
}

#[test]
fn more_layers_than_overlayfs_stacks_is_an_error_that_says_so() {
    assert!(plan_of(&layered(MAX_LAYERS)).is_ok());
    let error = plan_of(&layered(MAX_LAYERS + 1)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "501 layers is more than the kernel stacks in one OverlayFS (500)"
    );
}

#[test]
fn an_upper_on_the_host_replaces_the_stages_own_tmpfs() {
    let mut input = layered(2);
    input.stage.upper = Some((
        PathBuf::from("/home/u/up"),
        PathBuf::from("/home/u/up.work"),
    ));
    let plan = plan_of(&input).unwrap();
    let opened: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.op, Op::OpenHostDir { .. }))
        .map(|s| s.what())
        .collect();
    assert_eq!(
        opened[2..],
        [
            "open the overlay's upper or work dir '/home/u/up'",
            "open the overlay's upper or work dir '/home/u/up.work'"
        ]
    );
    let sys = Recorder::default();
    let mut slots = vec![-1; plan.slots];
    let mut walk = vec![-1; plan.depth];
    execute(&sys, &plan.steps, &mut slots, &mut walk).unwrap();
    let calls = sys.calls.into_inner();
    let overlay = calls.iter().position(|c| c == "fsopen overlay").unwrap();
    let before = &calls[..overlay];
    assert!(
        !before
            .iter()
            .any(|c| c == "fsopen tmpfs" || c == "mkdir upper"),
        "{calls:?}"
    );
    let set: Vec<&String> = calls[overlay..]
        .iter()
        .filter(|c| c.contains("upperdir") || c.contains("workdir"))
        .collect();
    assert_eq!(set.len(), 2, "{calls:?}");
}
