//! `--cache`: a stage whose inputs are all declared runs once. Its inputs
//! are stored first and the stage sees those stored copies; its digest
//! (`digest`) names the output it leaves, which a later run with the same
//! digest reuses without running.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::options::Options;
use super::output::Output;
use super::{setup_failure, store_setup_failure, Context, Exit, Failure};
use crate::cli::messages::ingest_cause;
use crate::digest::Digest;
use crate::runtime::Stage;
use crate::store::{Limits, Pin, Source, Store};
use crate::text::{printable, printable_path};

/// What a `--cache` stage comes to before it runs.
pub(super) enum Prepared {
    /// An earlier run's output is NAME's now; the command does not run.
    Reused,
    /// The command runs, then its output is remembered under `digest`.
    Run(Run),
    /// Storing the inputs was ended by a signal (^C).
    Ended(Exit),
}

/// A `--cache` stage that runs: its digest, and what it holds while it runs.
pub(super) struct Run {
    pub digest: Digest,
    _snapshots: Snapshots,
    /// Its stdin: input it reads must be declared, and stdin is not.
    _null: File,
}

/// Stores the stage's inputs, points the stage at them, and either reuses
/// an earlier output or readies the stage to run.
pub(super) fn prepare(
    ctx: &Context,
    store: &Store,
    stage: &mut Stage,
    mounted: &[(OsString, Digest)],
    output: &Output,
    options: &Options,
) -> Result<Prepared, Failure> {
    // The host name is part of what the command can read: a host's own
    // name is no input, so it is fixed.
    stage
        .hostname
        .get_or_insert_with(|| OsString::from(CACHE_HOSTNAME));
    let snapshots = match snapshot_inputs(ctx, store, stage, options.limits)? {
        Ok(snapshots) => snapshots,
        Err(ended) => return Ok(Prepared::Ended(ended)),
    };
    let digest = super::digest::stage_digest(stage, mounted, &snapshots.trees, &output.dir)?;
    if let Some(reused) = store
        .reuse_output(&digest, &output.name)
        .map_err(store_setup_failure)?
    {
        ctx.err(&format!(
            "sandbox: --cache: '{}' is {reused}, stored by an earlier run of this stage; the command did not run\n",
            printable(output.name.as_bytes())
        ));
        return Ok(Prepared::Reused);
    }
    let null = File::open("/dev/null").map_err(|e| {
        setup_failure(format!(
            "cannot open '/dev/null': {}",
            crate::text::io_cause(&e)
        ))
    })?;
    stage.stdio[0] = null.as_raw_fd();
    Ok(Prepared::Run(Run {
        digest,
        _snapshots: snapshots,
        _null: null,
    }))
}

/// The host name of a `--cache` stage that names none.
const CACHE_HOSTNAME: &str = "localhost";

/// What a `--cache` stage reads from the host, stored before it runs: the
/// stage mounts these snapshots, not the live paths, so what it sees is
/// exactly what its digest covers, whatever writes to the host meanwhile.
struct Snapshots {
    /// Keeps the unnamed snapshot slices from slice-gc while the stage runs.
    _pin: Pin,
    /// (where the stage sees it, its tree digest), for the stage digest.
    trees: Vec<(PathBuf, Digest)>,
}

/// Stores the working directory and each `--ro-bind` source as unnamed
/// slices, through slice-add's ingest (a file bind as a tree of one file,
/// so that its executable bit counts), and points the stage at them.
/// `Err(exit)` inside: a signal (^C) ended the storing.
fn snapshot_inputs(
    ctx: &Context,
    store: &Store,
    stage: &mut Stage,
    limits: Limits,
) -> Result<Result<Snapshots, Exit>, Failure> {
    // Held from the first store to the pin: gc cannot remove a snapshot
    // that no name points at in between.
    let _lock = store.lock_shared().map_err(store_setup_failure)?;
    let mut slices = Vec::new();
    let mut trees = Vec::new();
    if let Some(dir) = stage.workdir.clone() {
        let (slice, tree) = match snapshot(ctx, store, &dir, "the working directory", &dir, limits)?
        {
            Ok(stored) => stored,
            Err(ended) => return Ok(Err(ended)),
        };
        stage.workdir_source = Some(store.slice_tree(&slice));
        slices.push(slice);
        trees.push((dir, tree));
    }
    for bind in stage.binds.iter_mut().filter(|b| !b.is_output) {
        let stored = if bind.is_dir {
            snapshot(ctx, store, &bind.source, "--ro-bind", &bind.target, limits)?
        } else {
            let scratch = store.output_dir().map_err(store_setup_failure)?;
            let copy = scratch.path.join(FILE_SNAPSHOT);
            std::fs::copy(&bind.source, &copy).map_err(|e| {
                setup_failure(format!(
                    "cannot store --ro-bind '{}' for --cache: {}",
                    printable_path(&bind.source),
                    crate::text::io_cause(&e)
                ))
            })?;
            snapshot(ctx, store, &scratch.path, "--ro-bind", &bind.target, limits)?
        };
        let (slice, tree) = match stored {
            Ok(stored) => stored,
            Err(ended) => return Ok(Err(ended)),
        };
        bind.source = store.slice_tree(&slice);
        if !bind.is_dir {
            bind.source.push(FILE_SNAPSHOT);
        }
        slices.push(slice);
        trees.push((bind.target.clone(), tree));
    }
    crate::store::pause_point("sandbox:inputs-stored");
    let pin = store.pin(&slices).map_err(store_setup_failure)?;
    Ok(Ok(Snapshots { _pin: pin, trees }))
}

/// The name of a file `--ro-bind` source in its one-file snapshot tree.
const FILE_SNAPSHOT: &str = "file";

/// One snapshot: the slice digest and its tree digest. `what` and `shown`
/// (the path inside the stage) name it, and a refused entry is named by
/// its path below `shown`.
pub(super) fn snapshot(
    ctx: &Context,
    store: &Store,
    source: &Path,
    what: &str,
    shown: &Path,
    limits: Limits,
) -> Result<Result<(Digest, Digest), Exit>, Failure> {
    let options = crate::store::IngestOptions {
        mount_point: SNAPSHOT_MOUNT_POINT.to_string(),
        env: Vec::new(),
        limits,
        prefix_check: crate::store::PrefixCheck::Off,
        progress: None,
        stat_cache: true,
        from_archive: crate::store::FromArchive::default(),
    };
    // A stranger's content: stored in a helper process.
    let stored = ctx.run_untrusted(None, || {
        store
            .add_unnamed(&Source::Directory(source.to_path_buf()), &options)
            .map(|added| (added.info.digest, added.info.manifest.tree))
            .map_err(|e| {
                setup_failure(format!(
                    "cannot store {what} '{}' for --cache: {}",
                    printable_path(shown),
                    ingest_cause(shown, e)
                ))
            })
    });
    match stored {
        Ok(stored) => stored.map(Ok),
        Err(ended) => ended.outcome().map(Err),
    }
}

/// The mount point recorded for snapshots; the stage mounts them where
/// their source was, and no name points at them.
const SNAPSHOT_MOUNT_POINT: &str = "/slicebox-cache-input";
