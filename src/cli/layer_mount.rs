//! `layer-mount REF… DIR` and `layer-umount DIR`: the composed view of
//! stored layers at DIR for the script's next commands, read-only, or
//! writable over `--upper DIR`. The mount itself is runtime/view.rs; here
//! are the refs, the record that keeps gc off the layers while the view
//! is mounted (store/layer/mounts.rs), and the words.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::slices::{print_json, store, utf8};
use super::{Context, Exit, Failure, Parsed};
use crate::os::{mount_table, MountEntry};
use crate::runtime::strerror;
use crate::runtime::view::{self, FuseTools, View};
use crate::store::layer::mounts::{LayerMount, MountKind, MountRecord};
use crate::store::Store;
use crate::text::{printable, printable_path};

pub fn run(name: &str, parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    match name {
        "layer-mount" if parsed.operands.is_empty() => list(parsed, ctx),
        "layer-mount" => mount(parsed, ctx),
        _ => unmount(parsed, ctx),
    }
}

fn failure(message: String) -> Failure {
    Failure {
        message,
        exit: Exit::FAILURE,
    }
}

fn mount(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let Some((dir, refs)) = parsed
        .operands
        .split_last()
        .filter(|(_, refs)| !refs.is_empty())
    else {
        return Err(Failure::usage("expected REF… DIR"));
    };
    let store = store(ctx)?;
    let dir = mount_point(dir, &store, "mount layers at")?;
    let upper = match parsed.last("upper") {
        Some(upper) => Some(super::sandbox::upper_and_work_dirs(upper, Some(&store))?),
        None => None,
    };
    let table = read_mount_table()?;
    if let Some(record) = mounted_at(&store, &table, &dir)? {
        return Err(failure(format!(
            "cannot mount layers at '{}': the layers {} are mounted there already (layer-umount it first)",
            printable_path(&dir),
            record.mount.refs.join(" ")
        )));
    }
    // Held until the record has its mount id: gc never sees a half-made one.
    let _lock = store.lock_shared()?;
    let ViewLayers {
        refs,
        layers,
        trees,
    } = resolve(&store, refs)?;
    if trees.len() > crate::runtime::plan::MAX_LAYERS {
        return Err(failure(format!(
            "cannot mount layers at '{}': {} layers is more than the kernel stacks in one \
             OverlayFS ({})",
            printable_path(&dir),
            trees.len(),
            crate::runtime::plan::MAX_LAYERS
        )));
    }
    let mut record = store.begin_layer_mount(&LayerMount {
        dir: dir.clone(),
        mount_id: None,
        kind: MountKind::Overlay,
        refs,
        layers,
        upper: upper.as_ref().map(|(u, _)| u.clone()),
    })?;
    let empty_lower = store.empty_lower()?;
    let view = View {
        lowers: &trees,
        upper: upper.as_ref().map(|(u, w)| (u.as_path(), w.as_path())),
        empty_lower: &empty_lower,
    };
    let made = mount_view(&view, &dir, ctx).and_then(|kind| {
        let id = top_mount(&read_mount_table()?, &dir)
            .map(|m| m.id)
            .ok_or_else(|| {
                failure(format!(
                    "mounted layers at '{}', but the mount table does not show them there",
                    printable_path(&dir)
                ))
            })?;
        Ok((kind, id))
    });
    match made {
        Ok((kind, id)) => store.finish_layer_mount(&mut record, kind, id)?,
        Err(failed) => {
            store.remove_layer_mount(&record)?;
            return Err(failed);
        }
    }
    Ok(Exit::SUCCESS)
}

/// The kernel's OverlayFS where this process may mount one here (root),
/// else fuse-overlayfs.
fn mount_view(view: &View, dir: &Path, ctx: &Context) -> Result<MountKind, Failure> {
    let cannot = |why: String| {
        failure(format!(
            "cannot mount layers at '{}': {why}",
            printable_path(dir)
        ))
    };
    match view::mount_kernel(view, dir) {
        Ok(()) => return Ok(MountKind::Overlay),
        Err(f) if f.errno == libc::EPERM => {}
        Err(f) => return Err(cannot(format!("{}: {}", f.step, strerror(f.errno)))),
    }
    let tools = FuseTools::find(&ctx.var("PATH").unwrap_or_default()).map_err(|missing| {
        cannot(format!(
            "the kernel's OverlayFS needs mount power here (root), and {missing} is not \
             in PATH; fix: apt-get install fuse-overlayfs fuse3"
        ))
    })?;
    tools.mount(view, dir).map_err(cannot)?;
    Ok(MountKind::FuseOverlayfs)
}

/// The layers of a view, bottom first.
struct ViewLayers {
    /// The refs as given.
    refs: Vec<String>,
    layers: Vec<crate::digest::Digest>,
    trees: Vec<PathBuf>,
}

/// Each REF's layers, bottom first.
fn resolve(store: &Store, refs: &[std::ffi::OsString]) -> Result<ViewLayers, Failure> {
    let mut view = ViewLayers {
        refs: Vec::new(),
        layers: Vec::new(),
        trees: Vec::new(),
    };
    for reference in refs {
        let name = utf8(reference, "REF")?;
        let stack = super::layers::stack_trees(store, &name).map_err(|why| {
            failure(format!(
                "cannot use layer '{}': {why}",
                printable(name.as_bytes())
            ))
        })?;
        for (layer, tree) in stack {
            view.layers.push(layer);
            view.trees.push(tree);
        }
        view.refs.push(name);
    }
    Ok(view)
}

fn unmount(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [dir] = parsed.operands.as_slice() else {
        return Err(Failure::usage("expected one DIR"));
    };
    let store = store(ctx)?;
    let dir = mount_point(dir, &store, "unmount")?;
    let cannot = |why: String| failure(format!("cannot unmount '{}': {why}", printable_path(&dir)));
    let table = read_mount_table()?;
    let Some(record) = mounted_at(&store, &table, &dir)? else {
        return Err(cannot(match top_mount(&table, &dir) {
            None => "it is not a layer-mount: nothing is mounted there".into(),
            Some(m) => format!(
                "it is not a layer-mount: a {} mount of '{}' is there",
                printable(m.fstype.as_bytes()),
                printable(m.source.as_bytes())
            ),
        }));
    };
    if top_mount(&table, &dir).map(|m| m.id) != record.mount.mount_id {
        return Err(cannot(
            "another mount is on top of the layer-mount there; unmount that first".into(),
        ));
    }
    match record.mount.kind {
        MountKind::Overlay => view::unmount_kernel(&dir).map_err(|errno| {
            cannot(match errno {
                libc::EBUSY => {
                    "it is busy: a process has a file or its working directory there".into()
                }
                errno => strerror(errno),
            })
        })?,
        MountKind::FuseOverlayfs => {
            let tools = FuseTools::find(&ctx.var("PATH").unwrap_or_default())
                .map_err(|missing| cannot(format!("{missing} is not in PATH")))?;
            tools.unmount(&dir).map_err(cannot)?;
        }
    }
    store.remove_layer_mount(&record)?;
    Ok(Exit::SUCCESS)
}

/// `layer-mount` alone: the views mounted now, as `mount` alone lists mounts.
fn list(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let store = store(ctx)?;
    let table = read_mount_table()?;
    let mounted: Vec<LayerMount> = store
        .layer_mounts()?
        .into_iter()
        .map(|r| r.mount)
        .filter(|m| m.is_mounted(&table))
        .collect();
    if parsed.has("json") {
        print_json(ctx, &mounted);
        return Ok(Exit::SUCCESS);
    }
    let mut text = String::new();
    for m in &mounted {
        let how = match m.kind {
            MountKind::Overlay => "overlay",
            MountKind::FuseOverlayfs => "fuse-overlayfs",
        };
        let access = match &m.upper {
            Some(upper) => format!("rw, upper {}", printable_path(upper)),
            None => "ro".into(),
        };
        text.push_str(&format!(
            "{}\t{}\t{how}\t{access}\n",
            printable_path(&m.dir),
            printable(m.refs.join(" ").as_bytes())
        ));
    }
    ctx.out(&text);
    Ok(Exit::SUCCESS)
}

/// DIR as the mount table names it: absolute, symlinks resolved, a
/// directory, and not in the store.
fn mount_point(dir: &OsStr, store: &Store, doing: &str) -> Result<PathBuf, Failure> {
    let shown = printable_path(Path::new(dir));
    let real = std::fs::canonicalize(dir).map_err(|e| {
        failure(format!(
            "cannot {doing} '{shown}': {}",
            crate::text::io_cause(&e)
        ))
    })?;
    if !real.is_dir() {
        return Err(failure(format!(
            "cannot {doing} '{shown}': it is not a directory"
        )));
    }
    let in_store = store
        .root()
        .canonicalize()
        .is_ok_and(|root| real.starts_with(root));
    if in_store {
        return Err(failure(format!(
            "cannot {doing} '{shown}': it is inside the store"
        )));
    }
    Ok(real)
}

fn read_mount_table() -> Result<Vec<MountEntry>, Failure> {
    mount_table().map_err(|e| {
        failure(format!(
            "cannot read the mount table /proc/self/mountinfo: {}",
            crate::text::io_cause(&e)
        ))
    })
}

/// The mount on top at `dir`: the last one the table lists there.
fn top_mount<'a>(table: &'a [MountEntry], dir: &Path) -> Option<&'a MountEntry> {
    table.iter().rev().find(|m| m.mount_point == dir)
}

/// The record of the layer-mount at `dir` that is mounted now.
fn mounted_at(
    store: &Store,
    table: &[MountEntry],
    dir: &Path,
) -> Result<Option<MountRecord>, Failure> {
    Ok(store
        .layer_mounts()?
        .into_iter()
        .rev()
        .find(|r| r.mount.dir == dir && r.mount.is_mounted(table)))
}
