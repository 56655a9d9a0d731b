//! The image's JSON documents: config, manifest and index. Every struct
//! declares its fields in name order and serde_json writes no
//! whitespace, so each document is canonical (sorted keys, compact) and
//! the same export always gives the same digests. No `created` time.

use std::collections::BTreeMap;

use serde::Serialize;

use super::layout::Blob;

pub(super) const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation that names an image of a layout (`skopeo oci:DIR:TAG`).
const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Serialize)]
struct Descriptor<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'a str, &'a str>,
    digest: String,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    size: u64,
}

fn descriptor(blob: &Blob, media_type: &'static str) -> Descriptor<'static> {
    Descriptor {
        annotations: BTreeMap::new(),
        digest: blob.digest.to_string(),
        media_type,
        size: blob.size,
    }
}

/// What a runtime needs to start the image as the stage would start.
#[derive(Serialize, Default)]
pub(super) struct RunConfig {
    #[serde(rename = "Cmd", skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Env")]
    pub env: Vec<String>,
    #[serde(rename = "User", skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(rename = "WorkingDir", skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

#[derive(Serialize)]
struct RootFs {
    diff_ids: Vec<String>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Config<'a> {
    architecture: &'a str,
    config: &'a RunConfig,
    os: &'a str,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct Manifest<'a> {
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
}

#[derive(Serialize)]
struct Index<'a> {
    manifests: Vec<Descriptor<'a>>,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
}

fn bytes(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("the image's JSON serialises")
}

/// The config: the host's platform, `run`, and the layers' diff IDs
/// (their blob digests: the layers are uncompressed).
pub(super) fn config(run: &RunConfig, layers: &[Blob]) -> Vec<u8> {
    let platform = crate::store::image::Platform::host();
    bytes(&Config {
        architecture: &platform.architecture,
        config: run,
        os: &platform.os,
        rootfs: RootFs {
            diff_ids: layers.iter().map(|l| l.digest.to_string()).collect(),
            kind: "layers",
        },
    })
}

pub(super) fn manifest(config: &Blob, layers: &[Blob]) -> Vec<u8> {
    bytes(&Manifest {
        config: descriptor(config, CONFIG_TYPE),
        layers: layers.iter().map(|l| descriptor(l, LAYER_TYPE)).collect(),
        media_type: MANIFEST_TYPE,
        schema_version: 2,
    })
}

pub(super) fn index(manifest: &Blob, tag: &str) -> Vec<u8> {
    let mut named = descriptor(manifest, MANIFEST_TYPE);
    named.annotations.insert(REF_NAME, tag);
    bytes(&Index {
        manifests: vec![named],
        media_type: INDEX_TYPE,
        schema_version: 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    /// Canonical: parsed and written again with sorted keys, each
    /// document is the same bytes.
    #[test]
    fn documents_have_sorted_keys_and_no_whitespace() {
        let blob = Blob {
            digest: Digest::of(b"x"),
            size: 1,
        };
        let run = RunConfig {
            cmd: Some(vec!["ls".into()]),
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            env: vec!["PATH=/bin".into()],
            user: Some("0:0".into()),
            working_dir: Some("/".into()),
        };
        for doc in [
            config(&run, &[blob]),
            manifest(&blob, &[blob]),
            index(&blob, "v1"),
        ] {
            let value: serde_json::Value = serde_json::from_slice(&doc).unwrap();
            let sorted = sort(value);
            assert_eq!(serde_json::to_vec(&sorted).unwrap(), doc);
        }
    }

    /// Keys sorted whether or not serde_json keeps insertion order.
    fn sort(value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                let mut pairs: Vec<(String, Value)> = map.into_iter().collect();
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(pairs.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
            other => other,
        }
    }
}
