//! OCI image layouts (a directory, or an oci-archive tar of one):
//! `index.json`, nested indexes, one manifest per platform, its config and
//! its layers, all under `blobs/sha256/`.

use serde::Deserialize;

use super::blob::{Compression, LayerBlob};
use super::container::{blob_name, Container};
use super::{
    assemble, check_layer_count, parse_config, parse_digest, Image, Platform, Result,
    MAX_CANDIDATES, MAX_INDEX_DEPTH,
};
use crate::digest::Digest;
use crate::text::printable;

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A content descriptor: what a blob is, its digest and size.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

/// An index or a manifest: which one it is shows in its media type, or
/// where there is none, in its shape (`manifests`, or `config` and
/// `layers`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// A manifest an index lists, with the platform the index gives it.
struct Candidate {
    digest: Digest,
    size: u64,
    platform: Option<Platform>,
}

pub(super) fn open(container: &Container, wanted: Option<&Platform>) -> Result<Image> {
    let bytes = container.read_json("index.json", None)?;
    let index = parse_document(container, "index.json", &bytes)?;
    let mut candidates = Vec::new();
    collect(container, "index.json", index, 0, &mut candidates)?;
    let chosen = choose(container, &candidates, wanted)?;
    open_manifest(container, chosen, wanted)
}

fn parse_document(container: &Container, file: &str, bytes: &[u8]) -> Result<Document> {
    serde_json::from_slice(bytes)
        .map_err(|e| container.error(file, format!("it is not an OCI index or manifest: {e}")))
}

/// The media type a descriptor gives, or failing that the document's own.
fn media_type<'a>(descriptor: Option<&'a str>, document: &'a Document) -> Option<&'a str> {
    descriptor.or(document.media_type.as_deref())
}

/// Adds the manifests that `index` (read from `file`) lists, through
/// nested indexes, to `out`. Entries of other media types (attestations,
/// artifacts) are not images and are passed over.
fn collect(
    container: &Container,
    file: &str,
    index: Document,
    depth: usize,
    out: &mut Vec<Candidate>,
) -> Result<()> {
    let Some(manifests) = index.manifests else {
        return Err(container.error(file, "it is not an index: it has no 'manifests'"));
    };
    for entry in manifests {
        let digest = parse_digest(container, file, "manifest digest", &entry.digest)?;
        let declared = entry.media_type.as_deref();
        let is_index = declared.is_some_and(|t| INDEX_TYPES.contains(&t));
        let is_manifest = declared.is_some_and(|t| MANIFEST_TYPES.contains(&t));
        if declared.is_some() && !is_index && !is_manifest {
            continue;
        }
        if is_manifest {
            out.push(Candidate {
                digest,
                size: entry.size,
                platform: entry.platform,
            });
        } else {
            // An index, or a descriptor that does not say: read it.
            let name = blob_name(&digest);
            let bytes = container.read_json(&name, Some((&digest, entry.size)))?;
            let document = parse_document(container, &name, &bytes)?;
            if document.manifests.is_none() && !is_index {
                out.push(Candidate {
                    digest,
                    size: entry.size,
                    platform: entry.platform,
                });
            } else if depth + 1 > MAX_INDEX_DEPTH {
                return Err(container.error(
                    &name,
                    format!("indexes nest more than {MAX_INDEX_DEPTH} deep below index.json"),
                ));
            } else {
                collect(container, &name, document, depth + 1, out)?;
            }
        }
        if out.len() > MAX_CANDIDATES {
            return Err(container.error(
                file,
                format!("its indexes list more than {MAX_CANDIDATES} images"),
            ));
        }
    }
    Ok(())
}

/// The manifest for `wanted`, else for the host, else the only one. A
/// manifest the index gives no platform for is asked its config's.
fn choose<'a>(
    container: &Container,
    candidates: &'a [Candidate],
    wanted: Option<&Platform>,
) -> Result<&'a Candidate> {
    match candidates {
        [] => return Err(container.error("index.json", "it lists no image manifest")),
        [only] if wanted.is_none() => return Ok(only),
        _ => {}
    }
    let host = Platform::host();
    let target = wanted.unwrap_or(&host);
    let mut platforms = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let (platform, from_config) = match &candidate.platform {
            Some(p) => (p.clone(), false),
            None => (config_platform(container, candidate)?, true),
        };
        // A config seldom names a variant: without one, its os and
        // architecture decide.
        let loosely = from_config
            && platform.variant.is_none()
            && platform.os == target.os
            && platform.architecture == target.architecture;
        if platform.satisfies(target) || loosely {
            return Ok(candidate);
        }
        platforms.push(platform.to_string());
    }
    let how = match wanted {
        Some(_) => "",
        None => " (by default the host's; choose one with --platform)",
    };
    Err(container.error(
        "index.json",
        format!(
            "it has no image for the platform {target}{how}; it has: {}",
            printable(platforms.join(", ").as_bytes())
        ),
    ))
}

/// The platform a manifest's config names.
fn config_platform(container: &Container, candidate: &Candidate) -> Result<Platform> {
    let (manifest_name, manifest) = read_manifest(container, candidate)?;
    let (config_name, digest, size) = config_descriptor(container, &manifest_name, &manifest)?;
    let bytes = container.read_json(&config_name, Some((&digest, size)))?;
    Ok(parse_config(container, &config_name, &bytes)?.platform)
}

fn read_manifest(container: &Container, candidate: &Candidate) -> Result<(String, Document)> {
    let name = blob_name(&candidate.digest);
    let bytes = container.read_json(&name, Some((&candidate.digest, candidate.size)))?;
    let document = parse_document(container, &name, &bytes)?;
    if let Some(kind) = media_type(None, &document).filter(|t| !MANIFEST_TYPES.contains(t)) {
        return Err(container.error(
            &name,
            format!(
                "its media type is '{}', not an image manifest's",
                printable(kind.as_bytes())
            ),
        ));
    }
    Ok((name, document))
}

fn config_descriptor(
    container: &Container,
    manifest_name: &str,
    manifest: &Document,
) -> Result<(String, Digest, u64)> {
    let config = manifest
        .config
        .as_ref()
        .ok_or_else(|| container.error(manifest_name, "the manifest has no config"))?;
    let digest = parse_digest(container, manifest_name, "config digest", &config.digest)?;
    Ok((blob_name(&digest), digest, config.size))
}

fn open_manifest(
    container: &Container,
    candidate: &Candidate,
    wanted: Option<&Platform>,
) -> Result<Image> {
    let (manifest_name, manifest) = read_manifest(container, candidate)?;
    let descriptors = manifest.layers.as_deref().unwrap_or_default();
    check_layer_count(container, &manifest_name, descriptors.len())?;
    let (config_name, config_digest, size) =
        config_descriptor(container, &manifest_name, &manifest)?;
    let bytes = container.read_json(&config_name, Some((&config_digest, size)))?;
    let config = parse_config(container, &config_name, &bytes)?;
    assemble(
        container,
        &manifest_name,
        config,
        wanted,
        descriptors,
        |descriptor, diff_id| layer(container, &manifest_name, descriptor, diff_id),
    )
}

/// A layer a manifest lists: a known media type, a valid digest, and a
/// blob of the declared size.
fn layer(
    container: &Container,
    manifest_name: &str,
    descriptor: &Descriptor,
    diff_id: Digest,
) -> Result<LayerBlob> {
    let digest = parse_digest(container, manifest_name, "layer digest", &descriptor.digest)?;
    let media_type = descriptor.media_type.clone().unwrap_or_default();
    let compression = Compression::of_media_type(&media_type).ok_or_else(|| {
        container.error(
            manifest_name,
            format!(
                "the layer {digest} has the media type '{}', which is not a layer tar \
                 (plain, gzip or zstd) that slicebox can read",
                printable(media_type.as_bytes())
            ),
        )
    })?;
    let (name, location) = container.blob(&digest);
    let location = location?;
    let (_, size) = location
        .open()
        .map_err(|e| container.error(&name, crate::os::io_cause(&e)))?;
    if size != descriptor.size {
        return Err(container.error(
            &name,
            format!(
                "it is {size} bytes, but the manifest {manifest_name} says {}",
                descriptor.size
            ),
        ));
    }
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        media_type,
        compression,
        name,
        location,
    })
}
