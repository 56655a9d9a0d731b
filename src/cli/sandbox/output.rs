//! `--out DIR=NAME`: a fresh dir of the store's, writable at DIR inside
//! the stage, and stored as slice NAME after the command exits 0.

use std::path::{Path, PathBuf};

use super::{setup_failure, store_setup_failure, Context, Failure, TIMED_OUT};
use crate::cli::helper::HelperError;
use crate::cli::Exit;
use crate::digest::Digest;
use crate::runtime::PlannedBind;
use crate::store::{Limits, OutputDir, Store};
use crate::text::{printable, printable_path};

/// An `--out` dir of a stage that has not ended yet.
pub(super) struct Output {
    /// DIR, where the stage sees it.
    pub dir: PathBuf,
    /// NAME, the slice it becomes.
    pub name: String,
    made: OutputDir,
}

impl Output {
    /// Makes the dir. As root with `--uid`/`--gid` the command is that
    /// real user: the dir is its own, as a rootless caller's is.
    pub(super) fn prepare(
        store: &Store,
        (dir, name): &(PathBuf, String),
        identity: Option<(u32, u32)>,
    ) -> Result<Output, Failure> {
        let made = store.output_dir().map_err(store_setup_failure)?;
        if let (Some((uid, gid)), true) = (identity, nix::unistd::geteuid().is_root()) {
            std::os::unix::fs::chown(&made.path, Some(uid), Some(gid)).map_err(|e| {
                setup_failure(format!(
                    "cannot give the --out dir to uid {uid}: {}",
                    crate::text::io_cause(&e)
                ))
            })?;
        }
        Ok(Output {
            dir: dir.clone(),
            name: name.clone(),
            made,
        })
    }

    /// The writable bind the stage gets.
    pub(super) fn bind(&self) -> PlannedBind {
        PlannedBind {
            source: self.made.path.clone(),
            target: self.dir.clone(),
            writable: true,
            is_dir: true,
            is_output: true,
        }
    }

    /// What the user is told once the dir is stored.
    pub(super) fn stored_message(&self, stored: &Digest) -> String {
        format!(
            "stored --out '{}' as slice '{}' ({stored})",
            printable_path(&self.dir),
            printable(self.name.as_bytes())
        )
    }

    /// Stores the dir as slice NAME, in a helper process (a stranger's
    /// content), within what is left of `--timeout`. `Err(exit)` inside:
    /// the helper died of a signal (^C), and the command ends so.
    pub(super) fn store(
        &self,
        ctx: &Context,
        store: &Store,
        limits: &Limits,
        deadline: Option<std::time::Instant>,
    ) -> Result<Result<Digest, Exit>, Failure> {
        let stored = ctx.run_untrusted(deadline, || {
            store_output(store, &self.made, &self.dir, &self.name, limits)
        });
        match stored {
            Ok(stored) => stored.map(Ok),
            Err(HelperError::TimedOut) => Err(Failure {
                message: format!(
                    "--timeout passed while storing --out '{}' as slice '{}'; nothing was stored",
                    printable_path(&self.dir),
                    printable(self.name.as_bytes())
                ),
                exit: Exit::code(TIMED_OUT),
            }),
            Err(ended) => ended.outcome().map(Err),
        }
    }
}

/// Stores what the stage left in its `--out` dir as slice `name`, through
/// the same ingest as `slice-add`.
pub(super) fn store_output(
    store: &crate::store::Store,
    made: &crate::store::OutputDir,
    dir: &Path,
    name: &str,
    limits: &crate::store::Limits,
) -> Result<crate::digest::Digest, Failure> {
    let mount_point = dir.to_str().expect("checked UTF-8").to_string();
    store
        .add_slice(
            name,
            &crate::store::Source::Directory(made.path.clone()),
            &crate::store::IngestOptions {
                mount_point,
                env: Vec::new(),
                limits: *limits,
                prefix_check: crate::store::PrefixCheck::Off,
                progress: None,
                stat_cache: false,
                from_archive: crate::store::FromArchive::default(),
            },
        )
        .map_err(|e| {
            let cause = crate::cli::messages::ingest_cause(dir, e);
            Failure {
                message: format!(
                    "cannot store --out '{}' as slice '{}': {cause}; nothing was stored",
                    printable_path(dir),
                    printable(name.as_bytes())
                ),
                exit: Exit::FAILURE,
            }
        })
        .map(|added| added.info.digest)
}
