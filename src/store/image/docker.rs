//! `docker save` / `podman save` archives: `manifest.json` names the
//! config and the layer tars by their paths in the archive. Those paths
//! come from a stranger: they resolve inside the archive or not at all.

use serde::Deserialize;

use super::blob::{Compression, LayerBlob};
use super::container::Container;
use super::{assemble, check_layer_count, parse_config, Image, Platform, Result};
use crate::digest::Digest;
use crate::text::printable;

const MANIFEST: &str = "manifest.json";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub(super) fn open(container: &Container, wanted: Option<&Platform>) -> Result<Image> {
    let bytes = container.read_json(MANIFEST, None)?;
    let mut entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|e| {
        container.error(
            MANIFEST,
            format!("it is not a docker archive manifest: {e}"),
        )
    })?;
    let entry = match entries.len() {
        1 => entries.remove(0),
        0 => return Err(container.error(MANIFEST, "it lists no image")),
        n => {
            let tags: Vec<String> = entries
                .iter()
                .flat_map(|e| e.repo_tags.iter().flatten())
                .map(|t| printable(t.as_bytes()))
                .collect();
            return Err(container.error(
                MANIFEST,
                format!(
                    "it lists {n} images ({}); slicebox reads an archive of one image (save \
                     one image per archive)",
                    tags.join(", ")
                ),
            ));
        }
    };
    check_layer_count(container, MANIFEST, entry.layers.len())?;
    let config_bytes = container.read_json(&entry.config, None)?;
    let config = parse_config(container, &entry.config, &config_bytes)?;
    check_named_digest(container, &entry.config, &config.digest)?;
    assemble(
        container,
        MANIFEST,
        config,
        wanted,
        &entry.layers,
        |path, diff_id| layer(container, path, diff_id),
    )
}

/// The digest a file's name carries (`<hex>.json`, `<hex>.tar`,
/// `blobs/sha256/<hex>`), if it carries one.
fn named_digest(path: &str) -> Option<Digest> {
    let last = path.rsplit('/').next()?;
    let stem = last.split('.').next()?;
    Digest::from_hex(stem)
}

/// A file named by a digest must have it: a config or layer renamed to
/// another's digest is damage or a trick.
fn check_named_digest(container: &Container, path: &str, actual: &Digest) -> Result<()> {
    match named_digest(path) {
        Some(named) if named != *actual => Err(container.error(
            path,
            format!("its content has the digest {actual}, but its name says {named}"),
        )),
        _ => Ok(()),
    }
}

/// A layer tar `manifest.json` names. Docker and podman write plain tars,
/// whose blob digest is their DiffID; a compressed one is read only where
/// its name gives the digest to check it by.
fn layer(container: &Container, path: &str, diff_id: Digest) -> Result<LayerBlob> {
    let location = container.locate(path)?;
    let (mut reader, size) = location
        .open()
        .map_err(|e| container.error(path, crate::os::io_cause(&e)))?;
    let mut magic = [0u8; 4];
    let got = std::io::Read::read(&mut reader, &mut magic)
        .map_err(|e| container.error(path, crate::os::io_cause(&e)))?;
    let compressed = magic[..got].starts_with(&[0x1f, 0x8b])
        || magic[..got].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let digest = match (compressed, named_digest(path)) {
        (false, _) => diff_id,
        (true, Some(named)) => named,
        (true, None) => {
            return Err(container.error(
                path,
                "it is a compressed layer whose name gives no digest to check it by",
            ))
        }
    };
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        media_type: String::new(),
        compression: Compression::Sniffed,
        name: printable(path.as_bytes()),
        location,
    })
}
