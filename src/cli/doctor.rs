//! `slicebox doctor`: what this machine lets a stage do, one line per
//! check, with the fix for what does not work. Every kernel check really
//! runs: a forked child unshares and tries, as a stage would.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Context, Exit, Failure, Parsed};
use crate::os::{strerror, Errno};
use crate::runtime::sys::{Linux, MountAttr, Syscall};
use crate::text::printable_path;

/// How a check came out. A stage cannot start without the `Required` ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Required,
    Optional,
}

struct Line {
    verdict: Verdict,
    what: &'static str,
    text: String,
}

impl Line {
    fn ok(what: &'static str, text: impl Into<String>) -> Line {
        Line {
            verdict: Verdict::Ok,
            what,
            text: text.into(),
        }
    }

    fn fails(verdict: Verdict, what: &'static str, text: impl Into<String>) -> Line {
        Line {
            verdict,
            what,
            text: text.into(),
        }
    }

    fn render(&self) -> String {
        let mark = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Required => "FAIL",
            Verdict::Optional => "note",
        };
        format!("{mark} {}: {}\n", self.what, self.text)
    }
}

/// Which step of a probe failed, and with what errno.
type StepResult = Result<(), (&'static str, Errno)>;

/// Runs `probe` in a forked child and returns what it reported. The
/// child only makes system calls on data prepared before the fork.
fn in_child(steps: &'static [&'static str], probe: impl FnOnce() -> StepResult) -> StepResult {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(("pipe2", crate::os::errno()));
    }
    // SAFETY: the child runs only `probe` (system calls on prepared data),
    // writes two bytes and calls _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let report = match probe() {
            Ok(()) => [0u8, 0],
            Err((step, errno)) => [
                steps
                    .iter()
                    .position(|s| *s == step)
                    .map_or(255, |i| i as u8),
                errno.clamp(0, 255) as u8,
            ],
        };
        // SAFETY: writing a stack buffer to our pipe, then leaving
        // without running the parent's atexit handlers or destructors.
        unsafe {
            libc::write(fds[1], report.as_ptr().cast(), 2);
            libc::_exit(0);
        }
    }
    // SAFETY: closing the write end, which this process no longer needs.
    unsafe { libc::close(fds[1]) };
    let mut report = [0u8; 2];
    // SAFETY: reading at most two bytes into a stack buffer.
    let got = unsafe { libc::read(fds[0], report.as_mut_ptr().cast(), 2) };
    // SAFETY: closing our read end; reaping the child we forked.
    unsafe {
        libc::close(fds[0]);
        if pid > 0 {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    if pid < 0 {
        return Err(("fork", crate::os::errno()));
    }
    match (got, report) {
        (2, [0, 0]) => Ok(()),
        (2, [step, errno]) => Err((
            steps.get(step as usize).copied().unwrap_or("?"),
            errno.into(),
        )),
        _ => Err(("the probe process (it died)", libc::EIO)),
    }
}

/// The uid and gid maps a probe writes: our own ids, as a stage maps them.
struct Maps {
    uid: CString,
    gid: CString,
}

impl Maps {
    fn own() -> Maps {
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Maps {
            uid: CString::new(format!("{uid} {uid} 1")).expect("no NUL"),
            gid: CString::new(format!("{gid} {gid} 1")).expect("no NUL"),
        }
    }

    /// New user and mount namespaces with our ids mapped.
    fn enter(&self, sys: &Linux) -> StepResult {
        sys.new_user_namespace()
            .map_err(|e| ("unshare(CLONE_NEWUSER)", e))?;
        sys.write_file(c"/proc/self/setgroups", b"deny")
            .map_err(|e| ("write /proc/self/setgroups", e))?;
        sys.write_file(c"/proc/self/uid_map", self.uid.as_bytes())
            .map_err(|e| ("write /proc/self/uid_map", e))?;
        sys.write_file(c"/proc/self/gid_map", self.gid.as_bytes())
            .map_err(|e| ("write /proc/self/gid_map", e))?;
        // SAFETY: unshare takes only flags.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return Err(("unshare(CLONE_NEWNS)", crate::os::errno()));
        }
        Ok(())
    }
}

const NAMESPACE_STEPS: [&str; 5] = [
    "unshare(CLONE_NEWUSER)",
    "write /proc/self/setgroups",
    "write /proc/self/uid_map",
    "write /proc/self/gid_map",
    "unshare(CLONE_NEWNS)",
];

/// A probe's steps: entering the namespaces ([`NAMESPACE_STEPS`]), then
/// `rest`. `M` must be `N` + 5 (checked when the constant is evaluated).
const fn after_namespaces<const N: usize, const M: usize>(
    rest: [&'static str; N],
) -> [&'static str; M] {
    assert!(M == N + NAMESPACE_STEPS.len());
    let mut out = [""; M];
    let mut i = 0;
    while i < M {
        out[i] = match i < NAMESPACE_STEPS.len() {
            true => NAMESPACE_STEPS[i],
            false => rest[i - NAMESPACE_STEPS.len()],
        };
        i += 1;
    }
    out
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Why user namespaces may be refused here, as a fix to apply.
fn userns_fix() -> String {
    if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1")
    {
        return "AppArmor restricts them: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 \
                (or an AppArmor profile that allows userns for slicebox)"
            .into();
    }
    if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return "sysctl -w kernel.unprivileged_userns_clone=1".into();
    }
    if read_sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return "sysctl -w user.max_user_namespaces=15000".into();
    }
    "allow unprivileged user namespaces (a container runtime may forbid them: \
     run with --security-opt seccomp=unconfined, or on the host)"
        .into()
}

fn failed((step, errno): (&str, Errno)) -> String {
    format!("{step} failed: {}", strerror(errno))
}

fn check_user_namespaces(maps: &Maps) -> Line {
    const WHAT: &str = "user namespaces";
    match in_child(&NAMESPACE_STEPS, || maps.enter(&Linux)) {
        Ok(()) => Line::ok(
            WHAT,
            "a child made user and mount namespaces and mapped its ids",
        ),
        // SAFETY: getuid cannot fail.
        Err(e @ ("write /proc/self/uid_map", libc::EPERM)) if unsafe { libc::getuid() } == 0 => {
            Line::fails(
                Verdict::Required,
                WHAT,
                format!(
                    "{}; fix: mapping uid 0 needs CAP_SETFCAP (Linux 5.12+): run as root with \
                     capabilities, or as another user",
                    failed(e)
                ),
            )
        }
        Err(e) => Line::fails(
            Verdict::Required,
            WHAT,
            format!("{}; fix: {}", failed(e), userns_fix()),
        ),
    }
}

fn check_mount_api(maps: &Maps) -> Line {
    const WHAT: &str = "new mount API";
    const STEPS: [&str; 10] = after_namespaces([
        "fsopen(tmpfs)",
        "fsconfig(FSCONFIG_CMD_CREATE)",
        "fsmount",
        "open_tree(OPEN_TREE_CLONE|AT_RECURSIVE)",
        "mount_setattr(MOUNT_ATTR_RDONLY)",
    ]);
    let probe = || {
        let sys = Linux;
        maps.enter(&sys)?;
        let fs = sys.fsopen(c"tmpfs").map_err(|e| (STEPS[5], e))?;
        sys.fsconfig_create(fs).map_err(|e| (STEPS[6], e))?;
        sys.fsmount(fs, 0).map_err(|e| (STEPS[7], e))?;
        let tree = sys
            .open_tree(
                libc::AT_FDCWD,
                c"/",
                libc::OPEN_TREE_CLONE | libc::AT_RECURSIVE as u32,
            )
            .map_err(|e| (STEPS[8], e))?;
        sys.mount_setattr(
            tree,
            libc::AT_RECURSIVE as u32,
            MountAttr::set(libc::MOUNT_ATTR_RDONLY),
        )
        .map_err(|e| (STEPS[9], e))
    };
    match in_child(&STEPS, probe) {
        Ok(()) => Line::ok(
            WHAT,
            "fsopen, fsconfig, fsmount, open_tree and mount_setattr work in a user namespace",
        ),
        Err(e) if e.0.starts_with("unshare") || e.0.starts_with("write") => Line::fails(
            Verdict::Required,
            WHAT,
            format!("not tried: {} (user namespaces, above)", failed(e)),
        ),
        Err(e) => Line::fails(
            Verdict::Required,
            WHAT,
            format!("{}; fix: Linux 5.12 or later", failed(e)),
        ),
    }
}

/// Two empty lower dirs for the overlay probe, removed on drop.
struct Scratch {
    path: PathBuf,
    made: std::io::Result<()>,
}

impl Scratch {
    /// `tag` tells apart the scratch dirs of the checks of one run.
    fn new(tag: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("slicebox-doctor.{}.{tag}", std::process::id()));
        let made = std::fs::create_dir(&path)
            .and_then(|()| std::fs::create_dir(path.join("lower1")))
            .and_then(|()| std::fs::create_dir(path.join("lower2")));
        Scratch { path, made }
    }
}

impl Scratch {
    /// A `note` line for `what` when the scratch dir could not be made.
    fn usable(&self, what: &'static str) -> Result<(), Line> {
        match &self.made {
            Ok(()) => Ok(()),
            Err(e) => Err(Line::fails(
                Verdict::Optional,
                what,
                format!(
                    "not tried: cannot make '{}': {}",
                    printable_path(&self.path),
                    crate::text::io_cause(e)
                ),
            )),
        }
    }

    /// A path below the scratch dir, for a probe's system calls.
    fn c_path(&self, relative: &str) -> CString {
        let path = self.path.join(relative);
        CString::new(path.into_os_string().into_encoded_bytes()).expect("no NUL in a temp path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn check_overlay(maps: &Maps) -> Line {
    const WHAT: &str = "OverlayFS in a user namespace";
    const STEPS: [&str; 9] = after_namespaces([
        "fsopen(overlay)",
        "fsconfig(lowerdir+)",
        "fsconfig(FSCONFIG_CMD_CREATE)",
        "fsmount",
    ]);
    let scratch = Scratch::new("overlay");
    if let Err(line) = scratch.usable(WHAT) {
        return line;
    }
    let lowers = [scratch.c_path("lower1"), scratch.c_path("lower2")];
    let probe = || {
        let sys = Linux;
        maps.enter(&sys)?;
        let fs = sys.fsopen(c"overlay").map_err(|e| (STEPS[5], e))?;
        for lower in &lowers {
            sys.fsconfig_set(fs, c"lowerdir+", lower)
                .map_err(|e| (STEPS[6], e))?;
        }
        sys.fsconfig_create(fs).map_err(|e| (STEPS[7], e))?;
        sys.fsmount(fs, 0).map(drop).map_err(|e| (STEPS[8], e))
    };
    match in_child(&STEPS, probe) {
        Ok(()) => Line::ok(
            WHAT,
            "a child mounted two lower dirs given with fsconfig lowerdir+",
        ),
        Err(e) => {
            let fix = match e {
                ("fsopen(overlay)", libc::ENODEV) => "modprobe overlay",
                ("fsconfig(lowerdir+)", _) => "Linux 6.8 or later (lowerdir+)",
                _ => "Linux 5.11 or later (OverlayFS in user namespaces)",
            };
            Line::fails(
                Verdict::Optional,
                WHAT,
                format!("{}; fix: {fix} (layers need it; slices do not)", failed(e)),
            )
        }
    }
}

/// `fsconfig(FSCONFIG_SET_FLAG)`: overlay's `userxattr` is a flag, which
/// the string form refuses.
fn fsconfig_flag(fs: RawFd, key: &std::ffi::CStr) -> Result<(), Errno> {
    const FSCONFIG_SET_FLAG: libc::c_uint = 0;
    // SAFETY: a valid C string for the key; a flag takes no value.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs,
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    match ret {
        0 => Ok(()),
        _ => Err(crate::os::errno()),
    }
}

/// A libc call's result as a probe step.
fn step(ok: bool, name: &'static str) -> StepResult {
    match ok {
        true => Ok(()),
        false => Err((name, crate::os::errno())),
    }
}

/// Whether an entry is gone from the view below `dir`: the probe's check
/// that the overlay honoured a whiteout or an opaque dir.
fn hidden(dir: RawFd, path: &std::ffi::CStr, name: &'static str) -> StepResult {
    // SAFETY: stat is plain data written by fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd, C string and out-pointer.
    let found = unsafe { libc::fstatat(dir, path.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    match found {
        0 => Err((name, libc::EEXIST)),
        _ => Ok(()),
    }
}

/// What rootless layers need: the layer format slicebox stores (a 0/0
/// character device as a whiteout, `user.overlay.opaque` on an opaque
/// dir), made by this user, and honoured by an overlay mounted with
/// `userxattr` in a user namespace.
fn check_layer_whiteouts(maps: &Maps) -> Line {
    const WHAT: &str = "layer whiteouts";
    const STEPS: [&str; 16] = after_namespaces([
        "making the lower files",
        "mknod of a 0/0 character device (a whiteout)",
        "mkdir",
        "setxattr(user.overlay.opaque)",
        "fsopen(overlay)",
        "fsconfig(userxattr)",
        "fsconfig(lowerdir+)",
        "fsconfig(FSCONFIG_CMD_CREATE)",
        "fsmount",
        "hiding a file under a whiteout (it stayed visible)",
        "hiding a dir's lower entries under user.overlay.opaque (they stayed visible)",
    ]);
    let scratch = Scratch::new("layers");
    if let Err(line) = scratch.usable(WHAT) {
        return line;
    }
    let (top, bottom) = (scratch.c_path("lower2"), scratch.c_path("lower1"));
    let bottom_files = [scratch.c_path("lower1/gone"), scratch.c_path("lower1/opq")];
    let bottom_old = scratch.c_path("lower1/opq/old");
    let (whiteout, opaque) = (scratch.c_path("lower2/gone"), scratch.c_path("lower2/opq"));
    let probe = || {
        // SAFETY: system calls on C strings prepared before the fork.
        unsafe {
            step(
                libc::mknod(bottom_files[0].as_ptr(), libc::S_IFREG | 0o644, 0) == 0,
                STEPS[5],
            )?;
            step(libc::mkdir(bottom_files[1].as_ptr(), 0o755) == 0, STEPS[5])?;
            step(
                libc::mknod(bottom_old.as_ptr(), libc::S_IFREG | 0o644, 0) == 0,
                STEPS[5],
            )?;
            let device = libc::makedev(0, 0);
            step(
                libc::mknod(whiteout.as_ptr(), libc::S_IFCHR, device) == 0,
                STEPS[6],
            )?;
            step(libc::mkdir(opaque.as_ptr(), 0o755) == 0, STEPS[7])?;
            let (name, value) = (c"user.overlay.opaque", b"y");
            let set = libc::setxattr(opaque.as_ptr(), name.as_ptr(), value.as_ptr().cast(), 1, 0);
            step(set == 0, STEPS[8])?;
        }
        let sys = Linux;
        maps.enter(&sys)?;
        let fs = sys.fsopen(c"overlay").map_err(|e| (STEPS[9], e))?;
        fsconfig_flag(fs, c"userxattr").map_err(|e| (STEPS[10], e))?;
        for lower in [&top, &bottom] {
            sys.fsconfig_set(fs, c"lowerdir+", lower)
                .map_err(|e| (STEPS[11], e))?;
        }
        sys.fsconfig_create(fs).map_err(|e| (STEPS[12], e))?;
        let view = sys.fsmount(fs, 0).map_err(|e| (STEPS[13], e))?;
        hidden(view, c"gone", STEPS[14])?;
        hidden(view, c"opq/old", STEPS[15])
    };
    match in_child(&STEPS, probe) {
        Ok(()) => Line::ok(
            WHAT,
            "a child made a 0/0 character device and a user.overlay.opaque dir, and an overlay \
             mounted with userxattr hid what they cover",
        ),
        Err(e) => {
            let fix = match e.0 {
                s if s == STEPS[6] => "Linux 5.8 or later (whiteouts made without privilege)",
                s if s == STEPS[8] => {
                    "a filesystem with user xattrs for the temporary dir (tmpfs from Linux 6.6)"
                }
                s if s == STEPS[10] => "Linux 5.11 or later (userxattr)",
                _ => "Linux 6.8 or later (OverlayFS with userxattr and lowerdir+)",
            };
            Line::fails(
                Verdict::Optional,
                WHAT,
                format!("{}; fix: {fix} (layers need it; slices do not)", failed(e)),
            )
        }
    }
}

/// fuse-overlayfs and fusermount3: how `layer-mount` composes layers
/// rootless where the caller's mount namespace is out of the kernel
/// overlay's reach.
fn check_fuse_overlayfs(ctx: &Context) -> Line {
    const WHAT: &str = "fuse-overlayfs";
    let path = ctx.var("PATH").unwrap_or_default();
    match crate::runtime::view::FuseTools::find(&path) {
        Ok(tools) => Line::ok(
            WHAT,
            format!(
                "{} (with {})",
                printable_path(&tools.fuse_overlayfs),
                printable_path(&tools.fusermount)
            ),
        ),
        Err(missing) => Line::fails(
            Verdict::Optional,
            WHAT,
            format!(
                "{missing} is not in PATH; fix: apt-get install fuse-overlayfs fuse3 \
                     (layer-mount uses it rootless where kernel OverlayFS cannot reach the \
                     caller's mounts; stages do not need it)"
            ),
        ),
    }
}

fn check_landlock() -> Line {
    const WHAT: &str = "Landlock";
    // The version query is itself the probe: a real landlock_create_ruleset call.
    match crate::runtime::sys::landlock_abi() {
        0 => Line::fails(
            Verdict::Optional,
            WHAT,
            "not available; fix: a kernel with CONFIG_SECURITY_LANDLOCK and landlock in its lsm= \
             boot parameter (--net none stages then also confine unix sockets, from ABI 9)",
        ),
        abi if abi < 9 => Line::ok(
            WHAT,
            format!("ABI {abi} (from ABI 9, --net none stages also confine unix sockets)"),
        ),
        abi => Line::ok(
            WHAT,
            format!("ABI {abi}: --net none stages confine unix sockets"),
        ),
    }
}

fn check_seccomp() -> Line {
    const WHAT: &str = "seccomp";
    const STEPS: [&str; 2] = [
        "prctl(PR_SET_NO_NEW_PRIVS)",
        "seccomp(SECCOMP_SET_MODE_FILTER)",
    ];
    // One instruction: return SECCOMP_RET_ALLOW.
    let allow = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }];
    let probe = || {
        let sys = Linux;
        sys.set_no_new_privs().map_err(|e| (STEPS[0], e))?;
        sys.set_seccomp_filter(&allow).map_err(|e| (STEPS[1], e))
    };
    match in_child(&STEPS, probe) {
        Ok(()) => Line::ok(WHAT, "a child installed a filter"),
        Err(e) => Line::fails(
            Verdict::Required,
            WHAT,
            format!("{}; fix: a kernel with CONFIG_SECCOMP_FILTER", failed(e)),
        ),
    }
}

fn check_fuse() -> Line {
    const WHAT: &str = "/dev/fuse";
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => Line::ok(WHAT, "opens for reading and writing"),
        Err(e) => {
            let fix = match e.kind() {
                std::io::ErrorKind::NotFound => "modprobe fuse",
                std::io::ErrorKind::PermissionDenied => "chmod 0666 /dev/fuse",
                _ => "load the fuse module (modprobe fuse)",
            };
            Line::fails(
                Verdict::Optional,
                WHAT,
                format!(
                    "cannot open: {}; fix: {fix} (stages do not need it)",
                    crate::text::io_cause(&e)
                ),
            )
        }
    }
}

/// `start+count` ranges of `file` (/etc/subuid or /etc/subgid) for us.
fn subordinate_ranges(file: &str, name: Option<&str>, id: u32) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let id = id.to_string();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
            (Some(owner) == name || owner == id).then(|| format!("{start}+{count}"))
        })
        .collect()
}

fn check_subordinate_ids() -> Line {
    const WHAT: &str = "subordinate ids";
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let name = crate::os::user_name(uid);
    let uids = subordinate_ranges("/etc/subuid", name.as_deref(), uid);
    let gids = subordinate_ranges("/etc/subgid", name.as_deref(), uid);
    let who = name.clone().unwrap_or_else(|| uid.to_string());
    if uids.is_empty() || gids.is_empty() {
        return Line::fails(
            Verdict::Optional,
            WHAT,
            format!(
                "none for '{who}' in /etc/subuid and /etc/subgid; fix: usermod --add-subuids \
                 100000-165535 --add-subgids 100000-165535 {who} (stages do not need them: \
                 they map your one id)"
            ),
        );
    }
    Line::ok(
        WHAT,
        format!(
            "uids {} and gids {} for '{who}' (stages map only your own id)",
            uids.join(","),
            gids.join(",")
        ),
    )
}

/// The store's owner and a cheap health check: every name's manifest
/// reads and its tree is there (slice-verify re-hashes every file).
fn check_store(ctx: &Context) -> Line {
    const WHAT: &str = "store";
    let Some(root) = crate::store::Store::default_root(&ctx.env_pairs()) else {
        return Line::fails(Verdict::Required, WHAT, "none: set SLICEBOX_STORE or HOME");
    };
    let shown = printable_path(&root);
    let meta = match std::fs::metadata(&root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Line::ok(
                WHAT,
                format!("'{shown}' does not exist yet; the first slice-add makes it"),
            )
        }
        Err(e) => {
            return Line::fails(
                Verdict::Required,
                WHAT,
                format!("cannot read '{shown}': {}", crate::text::io_cause(&e)),
            )
        }
    };
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let owner = describe(meta.uid());
    if meta.uid() != me {
        return Line::fails(
            Verdict::Required,
            WHAT,
            format!(
                "'{shown}' belongs to {owner}, not to you ({}); fix: set SLICEBOX_STORE to a \
                 directory of yours, or run as {owner}",
                describe(me)
            ),
        );
    }
    store_health(&root, &shown, &owner)
}

fn describe(uid: u32) -> String {
    match crate::os::user_name(uid) {
        Some(name) => format!("'{name}' (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

fn store_health(root: &Path, shown: &str, owner: &str) -> Line {
    const WHAT: &str = "store";
    let store = match crate::store::Store::open(root) {
        Ok(store) => store,
        Err(e) => return Line::fails(Verdict::Required, WHAT, e.to_string()),
    };
    let named = match store.list_named() {
        Ok(named) => named,
        Err(e) => return Line::fails(Verdict::Required, WHAT, e.to_string()),
    };
    let damaged: Vec<&str> = named
        .iter()
        .filter(|(_, digest, manifest)| manifest.is_err() || !store.slice_tree(digest).is_dir())
        .map(|(name, _, _)| name.as_str())
        .collect();
    if damaged.is_empty() {
        Line::ok(
            WHAT,
            format!(
                "'{shown}' is yours ({owner}); {} named slice{}, every manifest and tree there \
                 (slice-verify re-hashes every file)",
                named.len(),
                if named.len() == 1 { "" } else { "s" }
            ),
        )
    } else {
        Line::fails(
            Verdict::Required,
            WHAT,
            format!(
                "'{shown}' is yours ({owner}); damaged: {}; fix: re-add their sources \
                 (slice-verify names every damaged file)",
                damaged.join(", ")
            ),
        )
    }
}

pub fn run(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    if !parsed.operands.is_empty() {
        return Err(Failure::usage("doctor takes no operands"));
    }
    let maps = Maps::own();
    let lines = [
        check_user_namespaces(&maps),
        check_mount_api(&maps),
        check_overlay(&maps),
        check_landlock(),
        check_seccomp(),
        check_layer_whiteouts(&maps),
        check_fuse(),
        check_fuse_overlayfs(ctx),
        check_subordinate_ids(),
        check_store(ctx),
    ];
    let text: String = lines.iter().map(Line::render).collect();
    ctx.out(&text);
    Ok(if lines.iter().any(|l| l.verdict == Verdict::Required) {
        Exit::FAILURE
    } else {
        Exit::SUCCESS
    })
}
