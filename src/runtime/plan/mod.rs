//! Turns a stage into the ordered list of setup steps the cloned child
//! executes. Planning happens in the parent, where allocation is allowed;
//! the child only walks the list. Each step carries the words of its error
//! message, so a failure in the child is reported as an index and an errno.
//!
//! Two rules keep setup inside the stage:
//! - Every host path (base dirs, the working directory, the store, the dev
//!   nodes) is opened *before* the stage's root exists, as a detached
//!   mount or an fd. After that, nothing is looked up in the host's tree:
//!   the host's root is never a path inside the new root.
//! - Every target inside the new root is reached by a walk from the root's
//!   fd, one component at a time, with `openat2(RESOLVE_NO_SYMLINKS |
//!   RESOLVE_BENEATH)`. A symlink on the way is an error that names it;
//!   slices and other foreign content can therefore never redirect a mount.
//!
//! The plan is made in phases, in the order the child runs them:
//! `identities`, `host_sources`, `own_dirs`, `foreign_mounts`, `finish`.

mod fresh;
mod mounts;
mod planner;

use std::path::{Path, PathBuf};

use super::error::PlanError;
use super::layout::shadow::HostView;
use super::layout::{self, Mount, SliceSource};
use super::stage::{Facts, HostEntry, PlannedBind, Stage, WorkdirView};
use super::steps::{
    Kind, Op, Plan, Target, What, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, READ_ONLY,
};
pub use planner::c;
use planner::Planner;

const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// The Landlock ABI that can restrict connecting to Unix sockets by path.
pub const LANDLOCK_ABI_UNIX_SOCKETS: u32 = 9;

/// The stage's plan; `host` is what the planner may read of host paths
/// (`RealHost`, or a fixed one in tests).
pub fn plan(stage: &Stage, facts: &Facts, host: &dyn HostView) -> Result<Plan, PlanError> {
    let mut p = Planner::new();
    identities(&mut p, stage, facts)?;
    let binds = layout::resolve::bind_destinations(stage, host)?;
    let sources = host_sources(&mut p, stage, facts, &binds)?;
    layout::refuse_shared_mount_points(&sources.mounts)?;
    own_dirs(&mut p, stage, &sources)?;
    mounts::foreign_mounts(&mut p, stage, facts, sources.mounts, host)?;
    finish(&mut p, stage, facts, &binds, sources.first)?;
    Ok(p.into_plan())
}

/// The stage's own id maps, uid_map and gid_map: the caller's uid and gid
/// as themselves. As root with `--uid`/`--gid`, those ids are mapped too
/// (the payload switches to them). A map of more than one id can only be
/// written from outside the namespace, by the caller: see
/// `caller_writes_id_maps`.
pub fn stage_id_maps(stage: &Stage, facts: &Facts) -> (Vec<u8>, Vec<u8>) {
    let map = |own: u32, asked: Option<u32>| {
        let mut text = format!("{own} {own} 1\n");
        if let Some(id) = asked.filter(|id| *id != own) {
            text.push_str(&format!("{id} {id} 1\n"));
        }
        text.into_bytes()
    };
    let (uid, gid) = match stage.identity {
        Some((uid, gid)) if caller_writes_id_maps(stage, facts) => (Some(uid), Some(gid)),
        _ => (None, None),
    };
    (map(facts.outer_uid, uid), map(facts.outer_gid, gid))
}

/// Root with `--uid`/`--gid`: the caller writes the stage's id maps (the
/// child cannot map ids other than its own), and leaves setgroups allowed
/// so that the payload can drop root's supplementary groups.
pub fn caller_writes_id_maps(stage: &Stage, facts: &Facts) -> bool {
    facts.outer_uid == 0 && stage.identity.is_some()
}

/// The id maps, a keyring of the stage's own, and mounts that no longer
/// propagate back to the host.
fn identities(p: &mut Planner, stage: &Stage, facts: &Facts) -> Result<(), PlanError> {
    // The payload keeps the caller's uid and gid: a non-zero uid loses
    // every capability at exec, and pid 1 drops them all before it forks
    // the payload, so nothing in the stage holds CAP_SYS_ADMIN over its mounts.
    if !caller_writes_id_maps(stage, facts) {
        let (uid_map, gid_map) = stage_id_maps(stage, facts);
        for (path, data, what) in [
            (
                "/proc/self/setgroups",
                b"deny".to_vec(),
                "write /proc/self/setgroups",
            ),
            ("/proc/self/uid_map", uid_map, "write /proc/self/uid_map"),
            ("/proc/self/gid_map", gid_map, "write /proc/self/gid_map"),
        ] {
            let path = c(path)?;
            p.push(Op::WriteFile { path, data }, What::Text(what));
        }
    }
    p.push(
        Op::NewSessionKeyring,
        What::Text("create the stage's session keyring"),
    );
    p.push(
        Op::MakeMountsSlave,
        What::Text("make the mount namespace private"),
    );
    Ok(())
}

/// Host sources of the stage, opened while the host's tree is still the
/// one the child sees, and the mounts they become.
struct Sources<'a> {
    mounts: Vec<Mount<'a>>,
    dev_nodes: Vec<(&'static str, usize)>,
    /// Where the stage's terminal is shown, and its clone.
    terminal: Option<(PathBuf, usize)>,
    /// The layers' trees, topmost first, when the root is their overlay.
    layers: Vec<usize>,
    /// The overlay's upper and work dirs, when the host keeps them.
    upper: Option<(usize, usize)>,
    /// The first slot of a host source: all are closed before the root is
    /// entered.
    first: usize,
}

fn host_sources<'a>(
    p: &mut Planner,
    stage: &'a Stage,
    facts: &Facts,
    binds: &'a [PlannedBind],
) -> Result<Sources<'a>, PlanError> {
    let first = p.slots;
    let node_attr = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
    let dev_nodes = DEV_NODES
        .iter()
        .map(|node| {
            Ok((
                *node,
                p.clone_host(&Path::new("/dev").join(node), node_attr, false)?,
            ))
        })
        .collect::<Result<_, PlanError>>()?;
    // The stage's pty is shown where ttyname() finds it: at its host path,
    // or with --dev (whose devpts covers /dev/pts) at /dev/console, as
    // container runtimes show a container's terminal.
    let terminal = match facts.terminal {
        Some(number) => {
            let host_path = PathBuf::from(format!("/dev/pts/{number}"));
            let slot = p.clone_host(&host_path, node_attr, false)?;
            let shown_at = if stage.dev {
                PathBuf::from("/dev/console")
            } else {
                host_path
            };
            Some((shown_at, slot))
        }
        None => None,
    };
    let layers = layer_sources(p, stage)?;
    let upper = match &stage.upper {
        Some((upper, work)) => Some((open_upper(p, upper)?, open_upper(p, work)?)),
        None => None,
    };
    let mut mounts = Vec::new();
    for (path, entry) in &stage.base {
        if *entry == HostEntry::Dir {
            let slot = p.clone_host(path, READ_ONLY, true)?;
            mounts.push(Mount::Base { path, slot });
        }
    }
    if let Some(workdir) = shown_workdir(stage) {
        layout::check_foreign_target(workdir, false)?;
        let attr = if stage.rw_workdir {
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
        } else {
            READ_ONLY
        };
        let source = stage.workdir_source.as_deref().unwrap_or(workdir);
        let slot = p.clone_host(source, attr, true)?;
        mounts.push(Mount::Workdir {
            path: workdir,
            source,
            slot,
        });
    }
    slice_sources(p, stage, &mut mounts)?;
    for bind in binds {
        Target::new(&bind.target)?;
        layout::check_foreign_target(&bind.target, true)?;
        let attr = if bind.writable {
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
        } else {
            READ_ONLY
        };
        let slot = p.clone_host(&bind.source, attr, true)?;
        mounts.push(Mount::Bind { bind, slot });
    }
    for tmpfs in &stage.tmpfs {
        Target::new(&tmpfs.target)?;
        layout::check_foreign_target(&tmpfs.target, true)?;
        mounts.push(Mount::Tmpfs(tmpfs));
    }
    Ok(Sources {
        mounts,
        dev_nodes,
        terminal,
        layers,
        upper,
        first,
    })
}

/// The kernel's limit on an overlay's lower layers (OVL_MAX_STACK).
pub const MAX_LAYERS: usize = 500;

/// Each layer's tree opened as a host dir, topmost first as OverlayFS
/// takes them.
fn layer_sources(p: &mut Planner, stage: &Stage) -> Result<Vec<usize>, PlanError> {
    if stage.layers.len() > MAX_LAYERS {
        return Err(PlanError::TooManyLayers(stage.layers.len()));
    }
    stage
        .layers
        .iter()
        .rev()
        .map(|layer| {
            let slot = p.slot();
            let path = c(&layer.tree)?;
            p.push(
                Op::OpenHostDir { path, slot },
                What::OpenLayer(layer.label.clone(), layer.tree.clone()),
            );
            Ok(slot)
        })
        .collect()
}

/// The overlay's upper or work dir opened on the host.
fn open_upper(p: &mut Planner, dir: &Path) -> Result<usize, PlanError> {
    let slot = p.slot();
    let path = c(dir)?;
    p.push(
        Op::OpenHostDir { path, slot },
        What::OpenUpper(dir.to_path_buf()),
    );
    Ok(slot)
}

/// The working directory when it is mounted of its own (not hidden, not
/// already inside a base dir).
fn shown_workdir(stage: &Stage) -> Option<&Path> {
    let workdir = stage.workdir.as_deref()?;
    matches!(
        super::stage::workdir_view(workdir, &stage.base),
        WorkdirView::Shown
    )
    .then_some(workdir)
}

/// Each slice's source: the store's `slices/` dir is opened once (a
/// read-only clone and a plain fd) and every slice of it is cloned from
/// there by its relative path; a tree outside any store layout is cloned
/// from the host like a base dir.
fn slice_sources<'a>(
    p: &mut Planner,
    stage: &'a Stage,
    mounts: &mut Vec<Mount<'a>>,
) -> Result<(), PlanError> {
    let mut stores: Vec<(&Path, usize, usize)> = Vec::new();
    for slice in &stage.slices {
        Target::new(&slice.mount_point)?;
        layout::check_foreign_target(&slice.mount_point, false)?;
        let from = match layout::store_of(&slice.tree) {
            Some((dir, relative)) => {
                let (clone_slot, path_slot) = match stores.iter().find(|s| s.0 == dir) {
                    Some((_, clone_slot, path_slot)) => (*clone_slot, *path_slot),
                    None => {
                        let (clone_slot, path_slot) = (p.slot(), p.slot());
                        let path = c(dir)?;
                        p.push(
                            Op::OpenStore {
                                path,
                                clone_slot,
                                path_slot,
                            },
                            What::OpenStore,
                        );
                        stores.push((dir, clone_slot, path_slot));
                        (clone_slot, path_slot)
                    }
                };
                SliceSource::Store {
                    clone_slot,
                    path_slot,
                    relative: c(relative)?,
                }
            }
            None => SliceSource::Host {
                slot: p.clone_host_as(&slice.tree, READ_ONLY, slice)?,
            },
        };
        mounts.push(Mount::Slice { slice, from });
    }
    Ok(())
}

/// The stage's own dirs, into a root nothing foreign has touched yet: a
/// minimal /dev, /proc (with /proc/sys read-only), /tmp, and the base's
/// symlinks.
fn own_dirs(p: &mut Planner, stage: &Stage, sources: &Sources<'_>) -> Result<(), PlanError> {
    if sources.layers.is_empty() {
        p.push(Op::MountRoot, What::Text("mount the stage's root tmpfs"));
    } else {
        let lowers = sources.layers.clone();
        p.push(
            Op::MountOverlayRoot {
                lowers,
                upper: sources.upper,
            },
            What::Text("mount the stage's root, an OverlayFS of its layers"),
        );
    }
    let fresh = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    p.mount_fs(c"tmpfs", &[(c"mode", c"0755")], fresh, Path::new("/dev"))?;
    for (node, slot) in &sources.dev_nodes {
        let target = Target::new(&Path::new("/dev").join(node))?;
        p.push(
            Op::Attach {
                slot: *slot,
                kind: Kind::File,
                target,
            },
            What::BindNode,
        );
    }
    if let Some((path, slot)) = &sources.terminal {
        let target = Target::new(path)?;
        p.push(
            Op::Attach {
                slot: *slot,
                kind: Kind::File,
                target,
            },
            What::BindTerminal,
        );
    }
    for (link, text) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        p.symlink(Path::new(text), Path::new(link))?;
    }
    p.mount_fs(
        c"tmpfs",
        &[(c"mode", c"1777")],
        fresh,
        Path::new("/dev/shm"),
    )?;
    if stage.dev {
        // A devpts of the stage's own (every devpts mount in a user
        // namespace is a new instance): ptys made inside stay inside.
        let options = [(c"ptmxmode", c"0666"), (c"mode", c"0620")];
        p.mount_fs(
            c"devpts",
            &options,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            Path::new("/dev/pts"),
        )?;
        p.symlink(Path::new("pts/ptmx"), Path::new("/dev/ptmx"))?;
    }
    p.mount_fs(c"proc", &[], fresh | MOUNT_ATTR_NOEXEC, Path::new("/proc"))?;
    let target = Target::new(Path::new("/proc/sys"))?;
    p.push(
        Op::MakeReadOnly { target },
        What::Text("make /proc/sys read-only"),
    );
    p.mount_fs(c"tmpfs", &[(c"mode", c"1777")], fresh, Path::new("/tmp"))?;
    for (path, entry) in &stage.base {
        if let HostEntry::Symlink(text) = entry {
            p.symlink(text, path)?;
        }
    }
    Ok(())
}

/// The last steps: host name, loopback, no more host sources, into the
/// root, Landlock, and the start dir.
fn finish(
    p: &mut Planner,
    stage: &Stage,
    facts: &Facts,
    binds: &[PlannedBind],
    first_source: usize,
) -> Result<(), PlanError> {
    if let Some(name) = &stage.hostname {
        p.push(
            Op::SetHostname { name: c(name)? },
            What::Text("set the host name"),
        );
    }
    if stage.isolate_net {
        p.push(
            Op::LoopbackUp,
            What::Text("bring up the loopback interface"),
        );
    }
    p.push(
        Op::CloseSources {
            first: first_source,
        },
        What::Text("close the host sources"),
    );
    let read_only = stage.layers.is_empty();
    p.push(
        Op::EnterRoot { read_only },
        What::Text("enter the stage's root"),
    );
    if stage.isolate_net && facts.landlock_abi >= LANDLOCK_ABI_UNIX_SOCKETS {
        let allowed = binds
            .iter()
            .map(|b| Target::existing(&b.target))
            .collect::<Result<_, PlanError>>()?;
        p.push(
            Op::RestrictUnixSockets { allowed },
            What::Text("restrict Unix sockets to --bind paths (Landlock)"),
        );
    }
    p.push(
        Op::Chdir {
            path: c(&stage.start_dir)?,
        },
        What::Chdir,
    );
    Ok(())
}

#[cfg(test)]
mod tests;

/// A stage and the facts of a uid 1000 caller in one value, so that tests
/// set either by name (`input.binds`, `input.landlock_abi`).
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::runtime::layout::shadow::RealHost;

    pub(crate) struct Input {
        pub stage: Stage,
        pub landlock_abi: u32,
        pub terminal: Option<u32>,
    }

    impl Input {
        pub(crate) fn bare() -> Input {
            Input::of(Stage::bare())
        }

        pub(crate) fn of(stage: Stage) -> Input {
            Input {
                stage,
                landlock_abi: 0,
                terminal: None,
            }
        }

        pub(crate) fn facts(&self) -> Facts {
            Facts {
                landlock_abi: self.landlock_abi,
                terminal: self.terminal,
                ..Facts::user()
            }
        }
    }

    impl std::ops::Deref for Input {
        type Target = Stage;
        fn deref(&self) -> &Stage {
            &self.stage
        }
    }

    impl std::ops::DerefMut for Input {
        fn deref_mut(&mut self) -> &mut Stage {
            &mut self.stage
        }
    }

    pub(crate) fn plan_with(input: &Input, host: &dyn HostView) -> Result<Plan, PlanError> {
        super::plan(&input.stage, &input.facts(), host)
    }

    pub(crate) fn plan_of(input: &Input) -> Result<Plan, PlanError> {
        plan_with(input, &RealHost)
    }
}
