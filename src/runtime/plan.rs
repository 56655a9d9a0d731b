//! Turns a stage into the ordered list of setup steps the cloned child
//! executes. Planning happens in the parent, where allocation is allowed;
//! the child only walks the list. Each step carries the words of its error
//! message, so a failure in the child is reported as an index and an errno.

use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::syscall::{Errno, Syscall};

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// Where the host's root is reachable between pivot_root and its detach.
const OLD_ROOT: &str = "/oldroot";
/// The host's system dirs a stage sees read-only when it names no layer.
pub const BASE_DIRS: &[&str] = &[
    "/bin", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/sbin", "/usr",
];
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    WriteFile {
        path: CString,
        data: Vec<u8>,
    },
    MakeMountsSlave,
    MountTmpfs {
        target: CString,
        options: CString,
    },
    MountProc {
        target: CString,
    },
    Bind {
        source: CString,
        target: CString,
        attr: u64,
        recursive: bool,
    },
    /// Clones `path` once as a detached read-only mount kept in `slot`, so
    /// each slice below it is cloned from there: no per-slice
    /// mount_setattr and a two-component path lookup.
    OpenSource {
        path: CString,
        slot: usize,
    },
    /// A read-only bind of `relative` below the source in `slot`; kernels
    /// that refuse to clone from a detached mount get `fallback` (the full
    /// path) bound the classic way.
    BindFromSource {
        slot: usize,
        relative: CString,
        fallback: CString,
        target: CString,
    },
    CloseSource {
        slot: usize,
    },
    RemountReadOnly {
        target: CString,
    },
    Mkdir {
        path: CString,
    },
    CreateFile {
        path: CString,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    Chdir {
        path: CString,
    },
    PivotRoot {
        new_root: CString,
        put_old: CString,
    },
    Detach {
        target: CString,
    },
    Rmdir {
        path: CString,
    },
    LoopbackUp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    /// Completes "cannot …" in the error message.
    pub what: String,
}

/// How a host base path looks, read by the parent before cloning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEntry {
    Dir,
    Symlink(PathBuf),
}

#[derive(Debug, Clone)]
pub struct PlannedSlice {
    pub label: String,
    pub tree: PathBuf,
    pub mount_point: PathBuf,
}

#[derive(Debug, Clone)]
pub struct PlanInput {
    pub outer_uid: u32,
    pub outer_gid: u32,
    pub base: Vec<(PathBuf, HostEntry)>,
    pub slices: Vec<PlannedSlice>,
    /// The caller's working directory, shown read-only at its own path.
    pub workdir: PathBuf,
    /// Where the payload starts; the workdir unless `--chdir` says otherwise.
    pub start_dir: PathBuf,
    pub isolate_net: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("two slices want the same mount point '{0}'")]
    MountPointTaken(String),
    #[error("path '{0}' contains a NUL byte")]
    Nul(String),
}

fn c(path: impl AsRef<OsStr>) -> Result<CString, PlanError> {
    let bytes = path.as_ref().as_bytes();
    CString::new(bytes).map_err(|_| PlanError::Nul(String::from_utf8_lossy(bytes).into_owned()))
}

fn on_host(path: &Path) -> PathBuf {
    Path::new(OLD_ROOT).join(path.strip_prefix("/").unwrap_or(path))
}

/// One mount of the new root, before it is expanded into steps.
enum Mount<'a> {
    Base(&'a Path),
    Tmp,
    Proc,
    Dev,
    Workdir(&'a Path),
    Slice(&'a PlannedSlice),
}

impl Mount<'_> {
    fn target(&self) -> &Path {
        match self {
            Mount::Base(p) | Mount::Workdir(p) => p,
            Mount::Tmp => Path::new("/tmp"),
            Mount::Proc => Path::new("/proc"),
            Mount::Dev => Path::new("/dev"),
            Mount::Slice(s) => &s.mount_point,
        }
    }
}

struct Planner {
    steps: Vec<Step>,
    made_dirs: HashSet<PathBuf>,
}

/// How many source dirs (stores) one stage can clone slices from at once.
pub const MAX_SOURCES: usize = 4;

/// The dir a slice tree is cloned from, and the tree's path below it:
/// `<store>/slices` and `<hex>/tree`.
fn source_of(tree: &Path) -> Option<(&Path, &Path)> {
    let dir = tree.parent()?.parent()?;
    Some((dir, tree.strip_prefix(dir).ok()?))
}

impl Planner {
    fn push(&mut self, op: Op, what: impl Into<String>) {
        self.steps.push(Step {
            op,
            what: what.into(),
        });
    }

    /// mkdir -p, one step per missing component, parents first.
    fn make_dirs(&mut self, path: &Path) -> Result<(), PlanError> {
        let mut missing: Vec<&Path> = path
            .ancestors()
            .filter(|p| *p != Path::new("/") && !self.made_dirs.contains(*p))
            .collect();
        missing.reverse();
        for dir in missing {
            self.made_dirs.insert(dir.to_path_buf());
            self.push(
                Op::Mkdir { path: c(dir)? },
                format!("create mount point '{}'", dir.display()),
            );
        }
        Ok(())
    }

    fn bind(
        &mut self,
        source: &Path,
        target: &Path,
        attr: u64,
        what: String,
    ) -> Result<(), PlanError> {
        self.make_dirs(target)?;
        self.push(
            Op::Bind {
                source: c(source)?,
                target: c(target)?,
                attr,
                recursive: true,
            },
            what,
        );
        Ok(())
    }
}

const READ_ONLY: u64 = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

pub fn plan(input: &PlanInput) -> Result<Vec<Step>, PlanError> {
    let mut p = Planner {
        steps: Vec::new(),
        made_dirs: HashSet::new(),
    };
    // The payload keeps the caller's uid and gid: a non-zero uid loses
    // every capability at exec, and root's are dropped explicitly, so the
    // payload never holds CAP_SYS_ADMIN over its mounts.
    p.push(
        Op::WriteFile {
            path: c("/proc/self/setgroups")?,
            data: b"deny".to_vec(),
        },
        "write /proc/self/setgroups",
    );
    p.push(
        Op::WriteFile {
            path: c("/proc/self/uid_map")?,
            data: format!("{0} {0} 1\n", input.outer_uid).into_bytes(),
        },
        "write /proc/self/uid_map",
    );
    p.push(
        Op::WriteFile {
            path: c("/proc/self/gid_map")?,
            data: format!("{0} {0} 1\n", input.outer_gid).into_bytes(),
        },
        "write /proc/self/gid_map",
    );
    p.push(Op::MakeMountsSlave, "make the mount namespace private");
    // The new root is a tmpfs on /tmp; after pivot_root the host's root
    // stays reachable at /oldroot until every bind has been made.
    p.push(
        Op::MountTmpfs {
            target: c("/tmp")?,
            options: c("mode=0755")?,
        },
        "mount the root tmpfs on /tmp",
    );
    p.push(
        Op::Mkdir {
            path: c("/tmp/oldroot")?,
        },
        "create /tmp/oldroot",
    );
    p.push(
        Op::PivotRoot {
            new_root: c("/tmp")?,
            put_old: c("/tmp/oldroot")?,
        },
        "pivot_root into the new root",
    );
    p.push(
        Op::Chdir { path: c("/")? },
        "change directory to the new root",
    );

    let mut sources: Vec<&Path> = Vec::new();
    for slice in &input.slices {
        if let Some((dir, _)) = source_of(&slice.tree) {
            if !sources.contains(&dir) && sources.len() < MAX_SOURCES {
                sources.push(dir);
            }
        }
    }
    for (slot, dir) in sources.iter().enumerate() {
        p.push(
            Op::OpenSource {
                path: c(on_host(dir))?,
                slot,
            },
            format!("open the slice store '{}' read-only", dir.display()),
        );
    }

    let mut mounts: Vec<Mount<'_>> = vec![Mount::Tmp, Mount::Proc, Mount::Dev];
    for (path, entry) in &input.base {
        match entry {
            HostEntry::Dir => mounts.push(Mount::Base(path)),
            HostEntry::Symlink(target) => p.push(
                Op::Symlink {
                    target: c(target)?,
                    link: c(path)?,
                },
                format!("create symlink '{}'", path.display()),
            ),
        }
    }
    let base_covers = |dir: &Path| {
        input
            .base
            .iter()
            .any(|(b, e)| *e == HostEntry::Dir && dir.starts_with(b))
    };
    if input.workdir != Path::new("/") && !base_covers(&input.workdir) {
        mounts.push(Mount::Workdir(&input.workdir));
    }
    let mut taken = HashSet::new();
    for slice in &input.slices {
        if !taken.insert(&slice.mount_point) {
            return Err(PlanError::MountPointTaken(
                slice.mount_point.display().to_string(),
            ));
        }
        mounts.push(Mount::Slice(slice));
    }
    // Parents before children: a parent's path is a byte prefix of its
    // children's, so byte order suffices (and is cheaper than comparing
    // components). At equal paths the order above (base, then workdir,
    // then slices) decides, since the sort is stable.
    mounts.sort_by(|a, b| {
        a.target()
            .as_os_str()
            .as_bytes()
            .cmp(b.target().as_os_str().as_bytes())
    });

    for mount in &mounts {
        match mount {
            Mount::Base(path) => p.bind(
                &on_host(path),
                path,
                READ_ONLY,
                format!("mount {} read-only", path.display()),
            )?,
            Mount::Workdir(path) => p.bind(
                &on_host(path),
                path,
                READ_ONLY,
                format!("mount the working directory '{}' read-only", path.display()),
            )?,
            Mount::Slice(slice) => {
                let what = format!(
                    "mount slice '{}' at '{}'",
                    slice.label,
                    slice.mount_point.display()
                );
                let slot = source_of(&slice.tree).and_then(|(dir, relative)| {
                    Some((sources.iter().position(|s| *s == dir)?, relative))
                });
                match slot {
                    Some((slot, relative)) => {
                        p.make_dirs(&slice.mount_point)?;
                        p.push(
                            Op::BindFromSource {
                                slot,
                                relative: c(relative)?,
                                fallback: c(on_host(&slice.tree))?,
                                target: c(&slice.mount_point)?,
                            },
                            what,
                        );
                    }
                    None => p.bind(&on_host(&slice.tree), &slice.mount_point, READ_ONLY, what)?,
                }
            }
            Mount::Tmp => {
                p.make_dirs(Path::new("/tmp"))?;
                p.push(
                    Op::MountTmpfs {
                        target: c("/tmp")?,
                        options: c("mode=1777")?,
                    },
                    "mount a fresh tmpfs on /tmp",
                );
            }
            Mount::Proc => {
                p.make_dirs(Path::new("/proc"))?;
                p.push(
                    Op::MountProc {
                        target: c("/proc")?,
                    },
                    "mount proc on /proc",
                );
                p.push(
                    Op::Bind {
                        source: c("/proc/sys")?,
                        target: c("/proc/sys")?,
                        attr: READ_ONLY,
                        recursive: true,
                    },
                    "make /proc/sys read-only",
                );
            }
            Mount::Dev => plan_dev(&mut p)?,
        }
    }
    if input.isolate_net {
        p.push(Op::LoopbackUp, "bring up the loopback interface");
    }
    for slot in 0..sources.len() {
        p.push(Op::CloseSource { slot }, "close the slice store");
    }
    p.push(
        Op::Detach {
            target: c(OLD_ROOT)?,
        },
        "detach the host's root",
    );
    p.push(Op::Rmdir { path: c(OLD_ROOT)? }, "remove /oldroot");
    p.push(
        Op::RemountReadOnly { target: c("/")? },
        "make the root read-only",
    );
    p.push(
        Op::Chdir {
            path: c(&input.start_dir)?,
        },
        format!("change directory to '{}'", input.start_dir.display()),
    );
    Ok(p.steps)
}

/// A minimal /dev: a tmpfs holding binds of the harmless host nodes.
fn plan_dev(p: &mut Planner) -> Result<(), PlanError> {
    p.make_dirs(Path::new("/dev"))?;
    p.push(
        Op::MountTmpfs {
            target: c("/dev")?,
            options: c("mode=0755")?,
        },
        "mount a tmpfs on /dev",
    );
    for node in DEV_NODES {
        let path = Path::new("/dev").join(node);
        p.push(
            Op::CreateFile { path: c(&path)? },
            format!("create {}", path.display()),
        );
        p.push(
            Op::Bind {
                source: c(on_host(&path))?,
                target: c(&path)?,
                attr: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                recursive: false,
            },
            format!("bind {}", path.display()),
        );
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        p.push(
            Op::Symlink {
                target: c(target)?,
                link: c(link)?,
            },
            format!("create symlink '{link}'"),
        );
    }
    p.make_dirs(Path::new("/dev/shm"))?;
    p.push(
        Op::MountTmpfs {
            target: c("/dev/shm")?,
            options: c("mode=1777")?,
        },
        "mount a tmpfs on /dev/shm",
    );
    Ok(())
}

/// Runs the steps in order. Async-signal-safe: it allocates nothing, so it
/// may run in the child between clone and exec.
pub fn execute(sys: &dyn Syscall, steps: &[Step]) -> Result<(), (usize, Errno)> {
    let mut sources = [-1; MAX_SOURCES];
    for (index, step) in steps.iter().enumerate() {
        run_op(sys, &step.op, &mut sources).map_err(|errno| (index, errno))?;
    }
    Ok(())
}

/// open_tree + mount_setattr + move_mount: a bind with mount flags.
fn bind(
    sys: &dyn Syscall,
    source: &CStr,
    target: &CStr,
    attr: u64,
    recursive: bool,
) -> Result<(), Errno> {
    let recursive_flag = if recursive { AT_RECURSIVE } else { 0 };
    let fd = sys.open_tree(
        libc::AT_FDCWD,
        source,
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | recursive_flag,
    )?;
    let result = sys
        .mount_setattr(
            fd,
            c"",
            libc::AT_EMPTY_PATH as libc::c_uint | recursive_flag,
            attr,
        )
        .and_then(|()| sys.move_mount(fd, target));
    sys.close(fd);
    result
}

fn run_op(sys: &dyn Syscall, op: &Op, sources: &mut [RawFd; MAX_SOURCES]) -> Result<(), Errno> {
    match op {
        Op::WriteFile { path, data } => sys.write_file(path, data),
        Op::MakeMountsSlave => sys.set_propagation(c"/", libc::MS_REC | libc::MS_SLAVE),
        Op::MountTmpfs { target, options } => sys.mount(
            c"tmpfs",
            target,
            c"tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            options,
        ),
        Op::MountProc { target } => sys.mount(
            c"proc",
            target,
            c"proc",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"",
        ),
        Op::Bind {
            source,
            target,
            attr,
            recursive,
        } => bind(sys, source, target, *attr, *recursive),
        Op::OpenSource { path, slot } => {
            let fd = sys.open_tree(
                libc::AT_FDCWD,
                path,
                OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE,
            )?;
            sources[*slot] = fd;
            sys.mount_setattr(
                fd,
                c"",
                libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
                READ_ONLY,
            )
        }
        Op::BindFromSource {
            slot,
            relative,
            fallback,
            target,
        } => {
            match sys.open_tree(
                sources[*slot],
                relative,
                OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
            ) {
                Ok(fd) => {
                    let result = sys.move_mount(fd, target);
                    sys.close(fd);
                    result
                }
                Err(libc::EINVAL) => bind(sys, fallback, target, READ_ONLY, true),
                Err(errno) => Err(errno),
            }
        }
        Op::CloseSource { slot } => {
            sys.close(sources[*slot]);
            sources[*slot] = -1;
            Ok(())
        }
        Op::RemountReadOnly { target } => {
            sys.mount_setattr(libc::AT_FDCWD, target, 0, MOUNT_ATTR_RDONLY)
        }
        Op::Mkdir { path } => match sys.mkdir(path, 0o755) {
            Err(libc::EEXIST) => Ok(()),
            other => other,
        },
        Op::CreateFile { path } => sys.create_file(path),
        Op::Symlink { target, link } => sys.symlink(target, link),
        Op::Chdir { path } => sys.chdir(path),
        Op::PivotRoot { new_root, put_old } => sys.pivot_root(new_root, put_old),
        Op::Detach { target } => sys.umount_detach(target),
        Op::Rmdir { path } => sys.rmdir(path),
        Op::LoopbackUp => sys.loopback_up(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::syscall::recording::Recorder;
    use super::*;

    fn input(slices: &[(&str, &str)]) -> PlanInput {
        PlanInput {
            outer_uid: 1000,
            outer_gid: 1000,
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
            workdir: PathBuf::from("/home/u/project"),
            start_dir: PathBuf::from("/home/u/project"),
            isolate_net: false,
        }
    }

    fn recorded(input: &PlanInput) -> Vec<String> {
        let steps = plan(input).unwrap();
        let sys = Recorder::default();
        execute(&sys, &steps).unwrap();
        sys.calls.into_inner()
    }

    fn position(calls: &[String], line: &str) -> usize {
        calls
            .iter()
            .position(|c| c == line)
            .unwrap_or_else(|| panic!("{line:?} not in {calls:#?}"))
    }

    #[test]
    fn maps_are_written_before_any_mount_and_pivot_precedes_binds() {
        let calls = recorded(&input(&[("py", "/opt/python")]));
        assert_eq!(calls[0], "write /proc/self/setgroups deny");
        assert_eq!(calls[1], "write /proc/self/uid_map 1000 1000 1");
        assert_eq!(calls[2], "write /proc/self/gid_map 1000 1000 1");
        let pivot = position(&calls, "pivot_root /tmp /tmp/oldroot");
        let slice = position(&calls, "move_mount /opt/python");
        assert!(pivot < slice);
        assert!(position(&calls, "open_tree /oldroot/store/slices") < pivot + 3);
        assert!(position(&calls, "open_tree_at py/tree") < slice);
        assert!(slice < position(&calls, "umount /oldroot"));
        assert_eq!(calls.last().unwrap(), "chdir /home/u/project");
    }

    #[test]
    fn slices_are_mounted_parent_before_child_whatever_the_order_given() {
        let calls = recorded(&input(&[("inner", "/opt/a/b"), ("outer", "/opt/a")]));
        assert!(position(&calls, "move_mount /opt/a") < position(&calls, "mkdir /opt/a/b"));
        assert!(position(&calls, "mkdir /opt/a/b") < position(&calls, "move_mount /opt/a/b"));
    }

    #[test]
    fn every_slice_and_base_dir_is_read_only_nosuid_nodev() {
        let calls = recorded(&input(&[("py", "/opt/python")]));
        // Slices are cloned from one read-only, nosuid, nodev clone of the store.
        let store = position(&calls, "open_tree /oldroot/store/slices");
        assert_eq!(calls[store + 1], "setattr  0x7");
        assert_eq!(
            calls[position(&calls, "move_mount /opt/python") - 1],
            "open_tree_at py/tree"
        );
        for target in ["/usr", "/etc", "/home/u/project"] {
            let mv = position(&calls, &format!("move_mount {target}"));
            assert_eq!(calls[mv - 1], "setattr  0x7", "before mounting {target}");
        }
    }

    #[test]
    fn merged_usr_symlinks_are_recreated_not_bound() {
        let calls = recorded(&input(&[]));
        assert!(calls.contains(&"symlink /bin -> usr/bin".to_string()));
        assert!(!calls.iter().any(|c| c == "move_mount /bin"));
    }

    #[test]
    fn workdir_inside_a_base_dir_is_not_bound_twice() {
        let mut i = input(&[]);
        i.workdir = PathBuf::from("/usr/src");
        let calls = recorded(&i);
        assert!(!calls.iter().any(|c| c == "move_mount /usr/src"));
    }

    #[test]
    fn workdir_under_tmp_is_bound_after_the_fresh_tmp() {
        let mut i = input(&[]);
        i.workdir = PathBuf::from("/tmp/work");
        let calls = recorded(&i);
        assert!(
            position(&calls, "mount tmpfs tmpfs /tmp mode=1777")
                < position(&calls, "move_mount /tmp/work")
        );
    }

    #[test]
    fn two_slices_at_one_mount_point_are_refused() {
        assert_eq!(
            plan(&input(&[("a", "/opt/x"), ("b", "/opt/x")])).unwrap_err(),
            PlanError::MountPointTaken("/opt/x".into())
        );
    }

    #[test]
    fn loopback_comes_up_only_with_an_isolated_network() {
        assert!(!recorded(&input(&[])).contains(&"loopback up".to_string()));
        let mut i = input(&[]);
        i.isolate_net = true;
        assert!(recorded(&i).contains(&"loopback up".to_string()));
    }
}
