use std::path::PathBuf;

use super::init::argument_area;
use super::*;
use crate::runtime::parent::spawn_and_wait_with;
use crate::runtime::plan::testing::{plan_of, Input};
use crate::runtime::prepared::{identity_for, Identity, NestedMaps, MAX_FDS};
use crate::runtime::report::{ChildFailure, Outcome, INIT_STEPS, REPORT_INIT};
use crate::runtime::stage::{HostEntry, PlannedBind, PlannedSlice, PlannedTmpfs, Rlimit, Stage};
use crate::runtime::steps::Op;
use crate::runtime::sys::recording::{Quiet, Recorder};
use crate::runtime::sys::{CAP_SETGID, CAP_SETUID};

fn prepared() -> Prepared {
    let plan = plan_of(&Input::of(Stage {
        base: vec![(PathBuf::from("/usr"), HostEntry::Dir)],
        ..Stage::bare()
    }))
    .unwrap();
    Prepared {
        clone_flags: 0,
        plan,
        argv: vec![c"true".to_owned()],
        env: Vec::new(),
        exec_candidates: vec![c"/bin/true".to_owned()],
        stdio: [7, 1, 9],
        terminal_slot: Some(0),
        // 3 moves to 9, stdio 2's source: the copies come first.
        fds: vec![(5, 5), (12, 12), (3, 9)],
        ignored_signals: Vec::new(),
        caller_signals: crate::runtime::CallerSignals::Changed,
        rlimits: vec![Rlimit {
            resource: libc::RLIMIT_NOFILE as i32,
            soft: 64,
            hard: 128,
        }],
        identity: None,
        caller_maps: None,
        timeout: None,
        // One instruction: return ALLOW.
        seccomp: super::super::seccomp::Program::from_bytes(&[0x06, 0, 0, 0, 0, 0, 0xff, 0x7f])
            .unwrap(),
        timed: false,
    }
}

fn init_calls(sys: &Recorder) -> Result<(), ChildFailure> {
    let p = prepared();
    let mut slots = vec![-1; p.plan.slots];
    let mut walk = vec![-1; p.plan.depth];
    prepare_init(sys, &p, &[1, 3, 5, 7, 9, 12, 20], &mut slots, &mut walk)
}

#[test]
fn pid_1_closes_the_callers_fds_first_and_drops_every_privilege_last() {
    // A kernel whose last capability is 40 refuses to drop 41.
    let sys = Recorder::failing_on("capbset_drop 41", libc::EINVAL);
    init_calls(&sys).unwrap();
    let calls = sys.calls.into_inner();
    assert_eq!(
        &calls[..8],
        [
            "close_range 0 0 0x0",
            "close_range 2 2 0x0",
            "close_range 4 4 0x0",
            "close_range 6 6 0x0",
            "close_range 8 8 0x0",
            "close_range 10 11 0x0",
            "close_range 13 19 0x0",
            "close_range 21 4294967295 0x0",
        ]
    );
    assert_eq!(calls[8], "setpgid 0 0");
    assert_eq!(calls[9], "no_new_privs");
    let bounding = calls
        .iter()
        .filter(|c| c.starts_with("capbset_drop"))
        .count();
    assert_eq!(bounding, 42, "caps 0 to 40 dropped, 41 refused");
    assert_eq!(
        &calls[calls.len() - 3..],
        ["ambient clear", "capset 0x0", "dumpable 0"]
    );
}

#[test]
fn payload_moves_stdio_and_fds_without_clobbering_and_marks_the_rest_cloexec() {
    let sys = Recorder::default();
    prepare_payload(&sys, &prepared(), &mut [-1; 6]).unwrap();
    let calls = sys.calls.into_inner();
    assert_eq!(
        calls,
        [
            "setsid",
            "dup 7 >= 13",
            "dup 9 >= 13",
            "dup 3 >= 13",
            "dup2 101 0",
            "inheritable 1",
            "dup2 102 2",
            "inheritable 5",
            "inheritable 12",
            "dup2 103 9",
            "ctty 0",
            &format!("rlimit {} 64 128", libc::RLIMIT_NOFILE),
            "close_range 3 4 0x4",
            "close_range 6 8 0x4",
            "close_range 10 11 0x4",
            "close_range 13 4294967295 0x4",
            "seccomp 1 instructions",
        ]
    );
}

/// `prepared()` with `--uid 0`, rootless.
fn as_uid_0() -> Prepared {
    Prepared {
        identity: Some(identity_for(1000, 1000, (0, 0))),
        ..prepared()
    }
}

#[test]
fn the_seccomp_filter_is_the_last_call_after_the_uid_namespace() {
    let sys = Recorder::default();
    prepare_payload(&sys, &as_uid_0(), &mut [-1; 6]).unwrap();
    let calls = sys.calls.into_inner();
    let at = |line: &str| calls.iter().position(|c| c == line).expect(line);
    assert_eq!(calls.last().unwrap(), "seccomp 1 instructions");
    assert!(at("setsid") < at("seccomp 1 instructions"));
    assert!(at("write /proc/self/gid_map 0 1000 1") < at("seccomp 1 instructions"));
    assert!(at("capset 0x0") < at("seccomp 1 instructions"));
    // pid 1 never installs it: its own setup needs mount, keyctl, unshare.
    let sys = Recorder::default();
    init_calls(&sys).unwrap();
    assert!(!sys
        .calls
        .into_inner()
        .iter()
        .any(|c| c.starts_with("seccomp")));
}

#[test]
fn a_refused_seccomp_filter_ends_the_payload_naming_the_step() {
    let sys = Recorder::failing_on("seccomp 1 instructions", libc::EINVAL);
    let failure = prepare_payload(&sys, &prepared(), &mut [-1; 6]).unwrap_err();
    assert_eq!(failure, ChildFailure::Init(InitStep::Seccomp, libc::EINVAL));
    assert_eq!(InitStep::Seccomp.what(), "install the seccomp filter");
    let [kind, step, errno, _] = failure.record();
    assert_eq!((kind, errno), (REPORT_INIT, libc::EINVAL));
    assert_eq!(INIT_STEPS[step as usize], InitStep::Seccomp);
}

#[test]
fn a_uid_inside_is_a_nested_user_namespace_with_no_capability_left() {
    let sys = Recorder::default();
    let mut p = prepared();
    p.identity = Some(Identity {
        switch_to: None,
        nested: Some(NestedMaps {
            uid_map: b"0 1000 1\n".to_vec(),
            gid_map: b"0 1000 1\n".to_vec(),
            maps_root: false,
        }),
    });
    prepare_payload(&sys, &p, &mut [-1; 6]).unwrap();
    prepare_payload(&sys, &as_uid_0(), &mut [-1; 6]).unwrap();
    let calls = sys.calls.into_inner();
    let at = calls
        .iter()
        .position(|c| c == "dumpable 1")
        .expect("dumpable");
    assert_eq!(
        &calls[at..at + 5],
        [
            "dumpable 1",
            "unshare user",
            "write /proc/self/setgroups deny",
            "write /proc/self/uid_map 0 1000 1",
            "write /proc/self/gid_map 0 1000 1",
        ]
    );
    let bounding = calls
        .iter()
        .filter(|c| c.starts_with("capbset_drop"))
        .count();
    assert!(
        bounding >= 41,
        "the new namespace's bounding set is emptied"
    );
    let last_before_close = calls.iter().rposition(|c| c.starts_with("capset")).unwrap();
    assert_eq!(calls[last_before_close], "capset 0x0");
}

#[test]
fn as_root_a_uid_inside_is_that_real_uid_with_no_group_of_roots() {
    let sys = Recorder::default();
    let mut p = prepared();
    p.identity = Some(identity_for(0, 0, (1000, 100)));
    let keep = p.identity.as_ref().unwrap().capabilities();
    assert_eq!(
        keep,
        1 << CAP_SETUID | 1 << CAP_SETGID,
        "only what the switch needs"
    );
    prepare_payload(&sys, &p, &mut [-1; 6]).unwrap();
    let calls = sys.calls.into_inner();
    assert!(
        calls.contains(&"switch ids 1000 100".to_string()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c == "unshare user"),
        "no nested namespace: {calls:?}"
    );
    // uid 0 as root: the real root's uid, in a nested namespace.
    let root = identity_for(0, 0, (0, 100));
    assert_eq!(root.switch_to, Some((0, 100)));
    let nested = root.nested.expect("nested");
    assert_eq!(nested.uid_map, b"0 0 1\n");
    assert_eq!(nested.gid_map, b"100 100 1\n");
    // Without root: nested maps onto the caller's own ids, no switch.
    let user = identity_for(1001, 1002, (0, 0));
    assert_eq!(user.switch_to, None);
    assert_eq!(user.nested.unwrap().uid_map, b"0 1001 1\n");
}

#[test]
fn every_failing_call_of_pid_1_and_the_payload_ends_the_stage_there() {
    for (name, total) in [
        ("init", {
            let sys = Recorder::default();
            init_calls(&sys).unwrap();
            sys.calls.into_inner().len()
        }),
        ("payload", {
            let sys = Recorder::default();
            prepare_payload(&sys, &prepared(), &mut [-1; 6]).unwrap();
            sys.calls.into_inner().len()
        }),
    ] {
        for call in 0..total {
            let sys = Recorder::failing(call, libc::EMFILE);
            let result = if name == "init" {
                init_calls(&sys)
            } else {
                prepare_payload(&sys, &prepared(), &mut [-1; 6])
            };
            let failure = result.expect_err("fails closed");
            let errno = match failure {
                ChildFailure::Step(s) => s.errno,
                ChildFailure::Init(step, errno) => {
                    assert!(!step.what().is_empty());
                    errno
                }
            };
            assert_eq!(errno, libc::EMFILE);
            assert_eq!(sys.calls.into_inner().len(), call + 1, "{name} call {call}");
        }
    }
}

/// Counts the allocations of the current thread, to show that the
/// code between clone and exec makes none.
struct CountingAllocator;

std::thread_local! {
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_allocation() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from System.alloc with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: as for dealloc.
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static COUNTING: CountingAllocator = CountingAllocator;

/// A stage using most of what setup can do: slices (one below a
/// read-only base dir, which needs a shadow tmpfs), binds, a tmpfs,
/// --dev, a terminal, a host name, no network with Landlock, --uid,
/// limits and --fds.
fn full_featured() -> Prepared {
    let mut input = Input::of(Stage {
        base: vec![
            (PathBuf::from("/usr"), HostEntry::Dir),
            (
                PathBuf::from("/bin"),
                HostEntry::Symlink(PathBuf::from("usr/bin")),
            ),
        ],
        slices: vec![
            PlannedSlice {
                label: "a".into(),
                tree: PathBuf::from("/store/slices/a/tree"),
                mount_point: PathBuf::from("/opt/a"),
            },
            PlannedSlice {
                label: "b".into(),
                tree: PathBuf::from("/store/slices/b/tree"),
                mount_point: PathBuf::from("/usr/share/no-such-dir-here/b"),
            },
        ],
        binds: vec![PlannedBind {
            source: PathBuf::from("/etc"),
            target: PathBuf::from("/srv/etc"),
            writable: true,
            is_dir: true,
            is_output: false,
        }],
        tmpfs: vec![PlannedTmpfs {
            target: PathBuf::from("/scratch"),
            size: Some(1 << 20),
            mode: 0o700,
        }],
        dev: true,
        isolate_net: true,
        hostname: Some("stage".into()),
        ..Stage::bare()
    });
    input.terminal = Some(3);
    input.landlock_abi = 9;
    let mut p = prepared();
    p.plan = plan_of(&input).unwrap();
    p.identity = Some(Identity {
        switch_to: None,
        nested: Some(NestedMaps {
            uid_map: b"0 1000 1\n".to_vec(),
            gid_map: b"0 1000 1\n".to_vec(),
            maps_root: false,
        }),
    });
    p
}

#[test]
fn nothing_allocates_between_clone_and_exec() {
    let p = full_featured();
    assert!(
        p.plan
            .steps
            .iter()
            .any(|s| matches!(s.op, Op::Shadow { .. })),
        "the plan covers a shadow tmpfs"
    );
    let sys = Quiet::default();
    let mut slots = vec![-1; p.plan.slots];
    let mut walk = vec![-1; p.plan.depth];
    let mut copies = [-1; 3 + MAX_FDS];
    let keep = [1u32, 3, 5, 7, 9, 12, 20];
    let probe = ALLOCATIONS.with(|n| n.get());
    std::hint::black_box(Box::new(probe));
    assert_eq!(
        ALLOCATIONS.with(|n| n.get()),
        probe + 1,
        "the counter counts"
    );
    let before = ALLOCATIONS.with(|n| n.get());
    prepare_init(&sys, &p, &keep, &mut slots, &mut walk).unwrap();
    prepare_payload(&sys, &p, &mut copies).unwrap();
    let allocations = ALLOCATIONS.with(|n| n.get()) - before;
    assert!(
        sys.calls.get() > 100,
        "setup ran: {} calls",
        sys.calls.get()
    );
    assert_eq!(allocations, 0, "allocations during setup");
}

#[test]
fn a_panic_in_the_child_ends_it_with_125_and_never_returns_into_the_caller() {
    let p = prepared();
    let calls_of_pid_1 = {
        let sys = Quiet::default();
        let mut slots = vec![-1; p.plan.slots];
        let mut walk = vec![-1; p.plan.depth];
        prepare_init(&sys, &p, &[1, 3], &mut slots, &mut walk).unwrap();
        sys.calls.get()
    };
    let caller = std::process::id();
    // In pid 1's setup, and (past its calls and the ones it makes
    // before forking) in the payload's.
    for panic_at in [0, calls_of_pid_1 - 1, calls_of_pid_1 + 3] {
        let sys = Quiet {
            panic_at: Some(panic_at),
            ..Default::default()
        };
        let (outcome, _) = spawn_and_wait_with(&sys, &p, None, None).unwrap();
        assert_eq!(std::process::id(), caller, "only the caller returns");
        assert_eq!(outcome, Outcome::Exited(125), "panic at call {panic_at}");
    }
}

#[test]
fn init_step_codes_round_trip() {
    for step in INIT_STEPS {
        assert_eq!(INIT_STEPS[step.code() as usize], *step);
    }
}

#[test]
fn the_argument_area_is_found() {
    let (start, end) = argument_area().expect("readable /proc/self/stat");
    assert!(end > start);
}
