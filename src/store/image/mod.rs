//! Container images as layer sources: an OCI image layout directory, an
//! oci-archive tar, or a `docker save` / `podman save` archive, read into
//! the ordered layers of one platform's image and the config fields a
//! stage uses (Env, WorkingDir, User, Entrypoint, Cmd).
//!
//! Images come from strangers. Every JSON document is bounded
//! ([`MAX_JSON_BYTES`]) and checked against the digest and size its
//! descriptor names; a digest is validated before it becomes a path; a
//! docker archive's member names resolve inside the archive only; and the
//! layer count, index nesting and platform choices are bounded. Layer
//! blobs are too large to hash up front: [`LayerBlob::open_verified`]
//! checks them as they are read.

mod blob;
mod container;
mod docker;
mod oci;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use blob::{Compression, LayerBlob, LayerTar, VerifiedRead};
use container::Container;

use crate::digest::Digest;
use crate::text::printable_path;

/// The largest index, manifest or config read, in bytes. Real ones are a
/// few kilobytes; a config with a long history stays far below this.
pub const MAX_JSON_BYTES: u64 = 4 << 20;

/// The most layers an image may have: OverlayFS stacks at most 500 lower
/// layers (`OVL_MAX_STACK`), so a deeper image could never be mounted.
pub const MAX_LAYERS: usize = 500;

/// How deep indexes may nest below `index.json` (an index of indexes is
/// common; real images never go deeper than two or three).
pub const MAX_INDEX_DEPTH: usize = 4;

/// The most images (manifests) an image's indexes may list in all.
pub const MAX_CANDIDATES: usize = 256;

/// Why an image cannot be read: the image, the file in it, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the image '{}': {file}: {cause}", printable_path(.image))]
pub struct Error {
    pub image: PathBuf,
    /// The file in the image (`index.json`, `blobs/sha256/…`,
    /// `manifest.json`), or `.` for the image itself.
    pub file: String,
    pub cause: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An operating system, architecture and optional variant, written
/// `os/arch[/variant]` as `--platform` takes it (`linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this program runs on, in OCI's names.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Whether an image built for `self` is what `wanted` asks for: the
    /// same os and architecture, and the same variant when `wanted` names
    /// one (`linux/arm64` takes `linux/arm64/v8`).
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || self.variant == wanted.variant)
    }
}

impl std::str::FromStr for Platform {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| valid(p)) {
            return Err(format!(
                "invalid platform '{}': expected OS/ARCH or OS/ARCH/VARIANT, as linux/amd64 or \
                 linux/arm64/v8",
                crate::text::printable(text.as_bytes())
            ));
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// The parts of an image's config a stage uses. Absent fields are `None`
/// (an empty list is kept as empty: `Cmd: []` differs from no `Cmd`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `NAME=value` entries, in the config's order.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
}

/// One platform's image: its layers bottom to top, and its config.
#[derive(Debug)]
pub struct Image {
    pub layers: Vec<LayerBlob>,
    pub config: ImageConfig,
    /// The platform the config says the image is for.
    pub platform: Platform,
    pub config_digest: Digest,
}

/// Opens the image at `path`: an OCI image layout directory, an
/// oci-archive tar, or a `docker save` / `podman save` archive. Where an
/// index lists several platforms, `platform` chooses (by default the
/// host's); the error then lists the platforms there are. Layer blobs are
/// not read here, only found and their sizes checked.
pub fn open_image(path: &Path, platform: Option<&Platform>) -> Result<Image> {
    let container = Container::open(path)?;
    if container.has("oci-layout") {
        oci::open(&container, platform)
    } else if container.has("manifest.json") {
        docker::open(&container, platform)
    } else {
        Err(container.error(
            ".",
            "it is neither an OCI image layout (no oci-layout file) nor a docker archive \
             (no manifest.json)",
        ))
    }
}

/// Whether `path` holds an image rather than one layer: a directory or
/// an uncompressed tar with an `oci-layout` file or a `manifest.json`.
pub fn is_image(path: &Path) -> bool {
    Container::open(path).is_ok_and(|c| c.has("oci-layout") || c.has("manifest.json"))
}

/// The config as OCI and Docker write it: only what is kept, plus the
/// diff IDs that name each layer's uncompressed tar.
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<RunConfig>,
    rootfs: RootFs,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: String,
    diff_ids: Vec<String>,
}

/// A parsed config: where it was, its digest, what is kept, the platform,
/// and the diff IDs.
struct Config {
    file: String,
    digest: Digest,
    kept: ImageConfig,
    platform: Platform,
    diff_ids: Vec<Digest>,
}

/// Parses and checks a config read from `file` in `container`.
fn parse_config(container: &Container, file: &str, bytes: &[u8]) -> Result<Config> {
    let parsed: ConfigFile = serde_json::from_slice(bytes)
        .map_err(|e| container.error(file, format!("it is not an image config: {e}")))?;
    if parsed.rootfs.kind != "layers" {
        return Err(container.error(
            file,
            format!(
                "its rootfs type is '{}', not 'layers'",
                crate::text::printable(parsed.rootfs.kind.as_bytes())
            ),
        ));
    }
    check_layer_count(container, file, parsed.rootfs.diff_ids.len())?;
    let diff_ids = parsed
        .rootfs
        .diff_ids
        .iter()
        .map(|text| parse_digest(container, file, "diff ID", text))
        .collect::<Result<Vec<_>>>()?;
    let run = parsed.config.unwrap_or_default();
    let kept = ImageConfig {
        env: run.env.unwrap_or_default(),
        working_dir: run.working_dir.filter(|d| !d.is_empty()),
        user: run.user.filter(|u| !u.is_empty()),
        entrypoint: run.entrypoint,
        cmd: run.cmd,
    };
    check_kept(container, file, &kept)?;
    Ok(Config {
        file: file.to_string(),
        digest: Digest::of(bytes),
        kept,
        platform: Platform {
            os: parsed.os,
            architecture: parsed.architecture,
            variant: parsed.variant,
        },
        diff_ids,
    })
}

/// Refuses what no exec could carry: a NUL in a kept string, or an Env
/// entry that is not `NAME=value`.
fn check_kept(container: &Container, file: &str, kept: &ImageConfig) -> Result<()> {
    for entry in &kept.env {
        let name = entry.split('=').next().unwrap_or("");
        if !entry.contains('=') || name.is_empty() {
            return Err(container.error(
                file,
                format!(
                    "its Env entry '{}' is not NAME=value",
                    crate::text::printable(entry.as_bytes())
                ),
            ));
        }
    }
    let strings = kept
        .env
        .iter()
        .chain(&kept.working_dir)
        .chain(&kept.user)
        .chain(kept.entrypoint.iter().flatten())
        .chain(kept.cmd.iter().flatten());
    for text in strings {
        if text.contains('\0') {
            return Err(container.error(
                file,
                format!(
                    "its config has a NUL byte in '{}'",
                    crate::text::printable(text.as_bytes())
                ),
            ));
        }
    }
    Ok(())
}

/// The image from its config and the layers `listing_file` lists, each
/// found by `layer` with its diff ID: checks that the config is for the
/// platform asked for (os and architecture: the variant is the index's to
/// say, configs seldom carry one) and has a diff ID for every layer.
fn assemble<T>(
    container: &Container,
    listing_file: &str,
    config: Config,
    wanted: Option<&Platform>,
    listed: &[T],
    layer: impl Fn(&T, Digest) -> Result<LayerBlob>,
) -> Result<Image> {
    let same_machine = |w: &&Platform| {
        config.platform.os == w.os && config.platform.architecture == w.architecture
    };
    if let Some(wanted) = wanted.filter(|w| !same_machine(w)) {
        return Err(container.error(
            &config.file,
            format!(
                "the image is for {}, not for the platform {wanted} asked for",
                config.platform
            ),
        ));
    }
    if listed.len() != config.diff_ids.len() {
        return Err(container.error(
            listing_file,
            format!(
                "it lists {} layers, but its config {} has {} diff IDs",
                listed.len(),
                config.file,
                config.diff_ids.len()
            ),
        ));
    }
    let layers = listed
        .iter()
        .zip(&config.diff_ids)
        .map(|(item, diff_id)| layer(item, *diff_id))
        .collect::<Result<Vec<_>>>()?;
    Ok(Image {
        layers,
        config: config.kept,
        platform: config.platform,
        config_digest: config.digest,
    })
}

fn check_layer_count(container: &Container, file: &str, count: usize) -> Result<()> {
    if count > MAX_LAYERS {
        return Err(container.error(
            file,
            format!(
                "it has {count} layers; OverlayFS stacks at most {MAX_LAYERS} (the kernel's \
                 limit), so this image could never be mounted"
            ),
        ));
    }
    Ok(())
}

/// A digest from an image's JSON, checked before it names anything:
/// `sha256:` and 64 lowercase hex digits, nothing else.
fn parse_digest(container: &Container, file: &str, what: &str, text: &str) -> Result<Digest> {
    text.parse().map_err(|_| {
        container.error(
            file,
            format!(
                "its {what} '{}' is not a sha256 digest (sha256: and 64 lowercase hex digits; \
                 no other algorithm is taken)",
                crate::text::printable(text.as_bytes())
            ),
        )
    })
}
