//! What a stage is made of, without running it: for `export-oci`, which
//! writes it as an image. The same resolution, environment and `--image`
//! defaults as `sandbox` (slices.rs, env.rs, image.rs), so an exported
//! image holds what the stage would see.

use std::ffi::OsString;
use std::path::PathBuf;

use super::slices::{resolve, Resolved};
use super::{env, image, options, Context, Failure, Parsed};
use crate::digest::Digest;
use crate::store::Store;

/// One `--slice`, resolved.
pub(in crate::cli) struct ComposedSlice {
    pub label: String,
    pub digest: Digest,
    pub mount_point: PathBuf,
    /// The slice's tree in the store.
    pub tree: PathBuf,
}

/// A stage's parts and the config a runtime would need to start it as
/// `sandbox` would.
pub(in crate::cli) struct Composition {
    /// Every stored layer, bottom first: the `--image`'s, then each
    /// `--layer`'s.
    pub layers: Vec<Digest>,
    /// In `--slice` order.
    pub slices: Vec<ComposedSlice>,
    pub env: Vec<OsString>,
    pub entrypoint: Option<Vec<OsString>>,
    pub cmd: Option<Vec<OsString>>,
    pub working_dir: Option<PathBuf>,
    pub user: Option<String>,
    /// Holds the stage's pin: slice-gc keeps what is being read.
    _resolved: Resolved,
}

/// Resolves `parsed`'s `--slice`, `--layer` and `--image` in `store` and
/// pins them; `command` is what follows DIR (the image's Cmd).
pub(in crate::cli) fn compose(
    parsed: &Parsed,
    ctx: &Context,
    store: &Store,
    command: &[OsString],
) -> Result<Composition, Failure> {
    // What `slicebox ps` shows while the export runs: the command, not DIR.
    let as_stage = Parsed {
        options: parsed.options.clone(),
        operands: command.to_vec(),
    };
    let resolved = resolve(Some(store), &as_stage)?;
    let env = env::image_env(&as_stage, ctx, &resolved)?;
    let mut working_dir = options::chdir(parsed)?;
    let (entrypoint, cmd, user) = match &resolved.image {
        Some(config) => {
            if working_dir.is_none() {
                working_dir = image::start_dir(config)?;
            }
            let entrypoint = config
                .entrypoint
                .as_ref()
                .map(|e| e.iter().map(OsString::from).collect());
            let cmd = image::arguments(config, command);
            (entrypoint, cmd, config.user.clone())
        }
        None => (None, (!command.is_empty()).then(|| command.to_vec()), None),
    };
    let slices = resolved
        .slices
        .iter()
        .zip(&resolved.mounted)
        .map(|(slice, (_, digest))| ComposedSlice {
            label: slice.label.clone(),
            digest: *digest,
            mount_point: slice.mount_point.clone(),
            tree: slice.tree.clone(),
        })
        .collect();
    Ok(Composition {
        layers: resolved.layer_digests.clone(),
        slices,
        env,
        entrypoint,
        cmd,
        working_dir,
        user,
        _resolved: resolved,
    })
}
