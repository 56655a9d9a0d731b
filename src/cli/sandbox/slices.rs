//! The stage's slices and layers: each `--slice REF[:MOUNTPOINT]` and
//! `--layer NAME` resolved in the store and pinned until the stage ends. Every stage that reaches a store
//! holds a pin, with no slices if it has none: it is what `slicebox ps`
//! lists.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use super::{setup_failure, store_setup_failure, Failure, Parsed};
use crate::digest::Digest;
use crate::runtime::{PlannedLayer, PlannedSlice};
use crate::store::layer::ImageConfig;
use crate::store::{Found, Manifest, Pin, StageNote, Store};
use crate::text::printable;

/// The slices of a stage, in `--slice` order.
pub(super) struct Resolved {
    pub slices: Vec<PlannedSlice>,
    /// (mount point, slice digest) of each, for a `--cache` digest.
    pub mounted: Vec<(OsString, Digest)>,
    /// Each slice's manifest, for its environment.
    pub manifests: Vec<Manifest>,
    /// Whether each slice's tree has a top-level `bin/`, for `PATH`.
    pub has_bin: Vec<bool>,
    /// The root's layers, bottom first (every `--layer`'s in order).
    pub layers: Vec<PlannedLayer>,
    /// Each layer's digest, in `layers`' order, for a `--cache` digest.
    pub layer_digests: Vec<Digest>,
    /// `--image`'s config (its layers are the bottom of `layers`).
    pub image: Option<ImageConfig>,
    /// Held until the stage ends, so slice-gc keeps what it mounts.
    _pin: Option<Pin>,
}

/// Resolves and pins every `--slice` under the store's shared lock: gc
/// cannot run between. A stage without slices pins none, for `ps` only:
/// where that pin cannot be made, the stage runs unlisted.
pub(super) fn resolve(store: Option<&Store>, parsed: &Parsed) -> Result<Resolved, Failure> {
    let mut resolved = Resolved {
        slices: Vec::new(),
        mounted: Vec::new(),
        manifests: Vec::new(),
        has_bin: Vec::new(),
        layers: Vec::new(),
        layer_digests: Vec::new(),
        image: None,
        _pin: None,
    };
    let refs: Vec<(String, Option<String>)> = parsed.values("slice").map(split_reference).collect();
    let Some(store) = store else {
        return Ok(resolved);
    };
    // The image's stack first: it is the bottom, --layer ones go on top.
    let image = parsed
        .last("image")
        .map(|n| n.to_string_lossy().into_owned());
    let layer_names: Vec<String> = image
        .iter()
        .cloned()
        .chain(
            parsed
                .values("layer")
                .map(|n| n.to_string_lossy().into_owned()),
        )
        .collect();
    if refs.is_empty() && layer_names.is_empty() {
        // Under the shared lock, as every pin: slice-gc (exclusive) never
        // sees a pin file before it is flock'ed, and so never removes it.
        resolved._pin = store
            .lock_shared()
            .and_then(|_lock| store.pin_stage(&[], &note(parsed, &refs)))
            .ok();
        return Ok(resolved);
    }
    let lock = store.lock_shared().map_err(store_setup_failure)?;
    let names: Vec<&str> = refs.iter().map(|(name, _)| name.as_str()).collect();
    let mut digests = Vec::new();
    for ((name, at), found) in refs.iter().zip(store.resolve_slices(&names)) {
        let Found {
            digest,
            manifest,
            has_bin,
        } = found.map_err(|e| {
            setup_failure(format!(
                "cannot use slice '{}': {e}",
                printable(name.as_bytes())
            ))
        })?;
        let mount_point = match at {
            Some(at) => {
                crate::store::validate_mount_point(at).map_err(|e| Failure::usage(e.to_string()))?
            }
            None => manifest.mount_point.clone(),
        };
        digests.push(digest);
        resolved
            .mounted
            .push((OsString::from(&mount_point), digest));
        resolved.slices.push(PlannedSlice {
            label: name.clone(),
            tree: store.slice_tree(&digest),
            mount_point: PathBuf::from(mount_point),
        });
        resolved.manifests.push(manifest);
        resolved.has_bin.push(has_bin);
    }
    resolve_layers(store, &layer_names, &mut resolved)?;
    if let Some(name) = &image {
        resolved.image = Some(image_config(store, name)?);
    }
    digests.extend(&resolved.layer_digests);
    resolved._pin = Some(
        store
            .pin_stage(&digests, &note(parsed, &refs))
            .map_err(store_setup_failure)?,
    );
    drop(lock);
    Ok(resolved)
}

/// Each `--layer NAME`'s layers, bottom first, under the caller's
/// shared lock.
fn resolve_layers(store: &Store, names: &[String], resolved: &mut Resolved) -> Result<(), Failure> {
    for name in names {
        let layers = super::super::layers::stack_trees(store, name).map_err(|why| {
            setup_failure(format!(
                "cannot use layer '{}': {why}",
                printable(name.as_bytes())
            ))
        })?;
        for (index, (layer, tree)) in layers.into_iter().enumerate() {
            resolved.layers.push(PlannedLayer {
                label: format!("{name}#{index}"),
                tree,
            });
            resolved.layer_digests.push(layer);
        }
    }
    Ok(())
}

/// The config `layer-add` kept for the image `name`; a stack made of
/// tarballs has none.
fn image_config(store: &Store, name: &str) -> Result<ImageConfig, Failure> {
    let cannot = |why: String| {
        setup_failure(format!(
            "cannot use image '{}': {why}",
            printable(name.as_bytes())
        ))
    };
    let stack = store
        .resolve_layers(name)
        .map_err(|e| cannot(e.to_string()))?;
    let stack = store
        .layer_stack(&stack)
        .map_err(|e| cannot(e.to_string()))?;
    stack.config.ok_or_else(|| {
        cannot("it has no image config (it was added from a layer tarball: use --layer)".into())
    })
}

/// What `slicebox ps` shows of this stage.
fn note(parsed: &Parsed, refs: &[(String, Option<String>)]) -> StageNote {
    StageNote {
        holder: std::process::id(),
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        slices: refs.iter().map(|(name, _)| name.clone()).collect(),
        command: parsed
            .operands
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    }
}

/// `REF[:MOUNTPOINT]`; `sha256:…` is a digest, not NAME:MOUNTPOINT.
pub(super) fn split_reference(reference: &OsStr) -> (String, Option<String>) {
    let text = reference.to_string_lossy();
    match text.split_once(':') {
        Some((n, rest)) if n != "sha256" => (n.to_string(), Some(rest.to_string())),
        Some(("sha256", rest)) if rest.contains(':') => {
            let (hex, at) = rest.split_once(':').expect("checked above");
            (format!("sha256:{hex}"), Some(at.to_string()))
        }
        _ => (text.to_string(), None),
    }
}
