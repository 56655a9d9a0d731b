//! Image sources against real images built here by Debian's tools
//! (shell-tests/fetch-images.sh: mmdebstrap, umoci, skopeo), each result
//! checked against what `skopeo inspect` says of the same image; then
//! hostile images made by hand, each refused with the file and the cause.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};
use slicebox::digest::Digest;
use slicebox::store::image::{open_image, Error, Image, Platform, MAX_LAYERS};

/// The cache of real images, built (or found warm) once per test run.
fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let top = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut command = Command::new("bash");
        command.arg(top.join("shell-tests/fetch-images.sh"));
        // As `make test` sets it: the machine-wide cache as root.
        if std::env::var_os("SLICEBOX_TOOLCHAIN_CACHE").is_none() && is_root() {
            command.env("SLICEBOX_TOOLCHAIN_CACHE", "/var/cache/slicebox-toolchains");
        }
        let out = command.output().expect("run shell-tests/fetch-images.sh");
        assert!(
            out.status.success(),
            "fetch-images.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

fn skopeo(args: &[&str]) -> Value {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn digests(
    image: &Image,
    which: impl Fn(&slicebox::store::image::LayerBlob) -> Digest,
) -> Vec<String> {
    image.layers.iter().map(|l| which(l).to_string()).collect()
}

/// Checks an opened image against skopeo's view of `reference`: the layer
/// digests, the diff IDs, the config's digest and the kept config fields. `skopeo_args` go before the reference.
fn check_against_skopeo(image: &Image, reference: &str, skopeo_args: &[&str]) {
    let mut args = skopeo_args.to_vec();
    args.extend(["inspect", "--config", reference]);
    let config = skopeo(&args);
    assert_eq!(
        digests(image, |l| l.diff_id),
        strings(&config["rootfs"]["diff_ids"])
    );
    let run = &config["config"];
    assert_eq!(image.config.env, strings(&run["Env"]));
    assert_eq!(image.config.cmd, Some(strings(&run["Cmd"])));
    assert_eq!(image.config.entrypoint, Some(strings(&run["Entrypoint"])));
    assert_eq!(
        image.config.working_dir.as_deref(),
        run["WorkingDir"].as_str()
    );
    assert_eq!(image.config.user.as_deref(), run["User"].as_str());
    assert_eq!(
        image.platform.architecture,
        config["architecture"].as_str().unwrap()
    );
    let mut args = skopeo_args.to_vec();
    args.extend(["inspect", reference]);
    assert_eq!(
        digests(image, |l| l.digest),
        strings(&skopeo(&args)["Layers"])
    );
    // The raw manifest, where the reference names one (not an index).
    let mut args = skopeo_args.to_vec();
    args.extend(["inspect", "--raw", reference]);
    let raw = skopeo(&args);
    if let Some(config) = raw["config"]["digest"].as_str() {
        assert_eq!(image.config_digest.to_string(), config);
    }
}

/// Every layer read as a tar to its end: both digests check out, and the
/// tar has entries.
fn read_all_layers(image: &Image) -> u64 {
    let mut total = 0;
    for layer in &image.layers {
        let mut tar = layer.open_tar().unwrap();
        let mut bytes = Vec::new();
        tar.read_to_end(&mut bytes).unwrap();
        tar.finish().unwrap();
        assert_eq!(Digest::of(&bytes), layer.diff_id, "{}", layer.name);
        assert!(bytes.len() >= 1024, "{}: {} bytes", layer.name, bytes.len());
        total += bytes.len() as u64;
    }
    total
}

#[test]
fn an_mmdebstrap_minbase_layout_reads_as_skopeo_sees_it() {
    let dir = images().join("debian-oci");
    let image = open_image(&dir, None).unwrap();
    check_against_skopeo(&image, &format!("oci:{}", dir.display()), &[]);
    assert_eq!(image.layers.len(), 1);
    assert_eq!(
        image.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    // The layer is mmdebstrap's tarball, byte for byte, once gunzipped.
    let tarball = fs::read(images().join("bookworm-minbase.tar")).unwrap();
    assert_eq!(image.layers[0].diff_id, Digest::of(&tarball));
    let mut raw = Vec::new();
    image.layers[0]
        .open_verified()
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(raw.len() as u64, image.layers[0].size);
    assert_eq!(read_all_layers(&image), tarball.len() as u64);
}

#[test]
fn a_layered_image_reads_alike_as_a_layout_an_oci_archive_and_a_docker_archive() {
    let layout = images().join("layered-oci");
    let archive = images().join("layered-oci-archive.tar");
    let docker = images().join("layered-docker.tar");
    let from_layout = open_image(&layout, None).unwrap();
    let from_archive = open_image(&archive, None).unwrap();
    let from_docker = open_image(&docker, None).unwrap();
    assert_eq!(from_layout.layers.len(), 4);
    check_against_skopeo(&from_layout, &format!("oci:{}", layout.display()), &[]);
    check_against_skopeo(
        &from_archive,
        &format!("oci-archive:{}", archive.display()),
        &[],
    );
    // skopeo reports a docker archive's layers as the tars it holds: their
    // digests are the diff IDs, which is what slicebox reports too.
    check_against_skopeo(
        &from_docker,
        &format!("docker-archive:{}", docker.display()),
        &[],
    );
    assert_eq!(
        digests(&from_docker, |l| l.digest),
        digests(&from_docker, |l| l.diff_id)
    );
    for other in [&from_archive, &from_docker] {
        assert_eq!(
            digests(other, |l| l.diff_id),
            digests(&from_layout, |l| l.diff_id)
        );
        assert_eq!(other.config, from_layout.config);
    }
    let sizes: Vec<u64> = [&from_layout, &from_archive, &from_docker]
        .iter()
        .map(|i| read_all_layers(i))
        .collect();
    assert!(sizes.iter().all(|s| *s == sizes[0]), "{sizes:?}");
    assert_eq!(from_layout.config.cmd, Some(vec!["echo hello".to_string()]));
    assert_eq!(from_layout.config.working_dir.as_deref(), Some("/root"));
}

#[test]
fn a_two_platform_index_picks_the_host_or_the_platform_asked_for() {
    let dir = images().join("multi-oci");
    let reference = format!("oci:{}", dir.display());
    let host = open_image(&dir, None).unwrap();
    assert_eq!(host.platform.architecture, Platform::host().architecture);
    check_against_skopeo(&host, &reference, &[]);
    let arm64: Platform = "linux/arm64/v8".parse().unwrap();
    let arm = open_image(&dir, Some(&arm64)).unwrap();
    assert_eq!(arm.platform.architecture, "arm64");
    check_against_skopeo(
        &arm,
        &reference,
        &["--override-arch", "arm64", "--override-variant", "v8"],
    );
    assert_ne!(arm.config_digest, host.config_digest);
    // No variant asked: any arm64 variant will do.
    let any_arm = open_image(&dir, Some(&"linux/arm64".parse().unwrap())).unwrap();
    assert_eq!(any_arm.config_digest, arm.config_digest);
    let err = open_image(&dir, Some(&"linux/s390x".parse().unwrap())).unwrap_err();
    assert_eq!(err.file, "index.json");
    assert!(
        err.to_string().ends_with(
            "it has no image for the platform linux/s390x; it has: linux/amd64, linux/arm64/v8"
        ),
        "{err}"
    );
    let err = open_image(&images().join("layered-docker.tar"), Some(&arm64)).unwrap_err();
    assert!(
        err.cause
            .contains("is for linux/amd64, not for the platform linux/arm64/v8"),
        "{err}"
    );
}

// ---- hostile images, made by hand ----

/// An OCI layout under construction in a temporary directory.
struct Layout {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Layout {
    fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("image");
        fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { _dir: dir, root }
    }

    /// Stores `bytes` as a blob; its descriptor with `media_type`.
    fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = Digest::of(bytes);
        fs::write(self.root.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    }

    fn json_blob(&self, media_type: &str, value: &Value) -> Value {
        self.blob(media_type, &serde_json::to_vec(value).unwrap())
    }

    fn index(&self, manifests: Vec<Value>) {
        let index = json!({"schemaVersion": 2, "manifests": manifests});
        fs::write(
            self.root.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// A one-file gzip layer tar and its diff ID.
    fn gzip_layer(&self) -> (Value, Digest) {
        let tar = one_file_tar("hello", b"hi\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        (self.blob(GZIP_LAYER, &gz), Digest::of(&tar))
    }

    /// A manifest of `layers` (descriptors with their diff IDs), with a
    /// config, listed by index.json; returns the manifest's descriptor.
    fn image(&self, layers: Vec<(Value, Digest)>) -> Value {
        let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.to_string()).collect();
        let config = json!({"architecture": Platform::host().architecture, "os": "linux",
            "config": {"Env": ["A=1"], "Cmd": ["true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let config = self.json_blob("application/vnd.oci.image.config.v1+json", &config);
        let layers: Vec<Value> = layers.into_iter().map(|(l, _)| l).collect();
        let manifest = json!({"schemaVersion": 2, "config": config, "layers": layers});
        let manifest = self.json_blob(MANIFEST, &manifest);
        self.index(vec![manifest.clone()]);
        manifest
    }

    /// A layout of one image with one gzip layer: the layout, the layer's
    /// blob path and the manifest's descriptor.
    fn with_one_layer() -> (Layout, PathBuf, Value) {
        let layout = Layout::new();
        let (layer, diff_id) = layout.gzip_layer();
        let path = layout.path_of(&layer);
        let manifest = layout.image(vec![(layer, diff_id)]);
        (layout, path, manifest)
    }

    fn path_of(&self, descriptor: &Value) -> PathBuf {
        let digest = descriptor["digest"].as_str().unwrap();
        self.root.join("blobs/sha256").join(&digest[7..])
    }

    fn open(&self) -> Result<Image, Error> {
        open_image(&self.root, None)
    }
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, data).unwrap();
    builder.into_inner().unwrap()
}

fn expect_error(result: Result<Image, Error>, file: &str, cause: &str) -> Error {
    let err = result.expect_err("a hostile image was accepted");
    assert_eq!(err.file, file, "{err}");
    assert!(err.cause.contains(cause), "expected '{cause}' in: {err}");
    assert!(
        err.to_string().starts_with("cannot read the image '"),
        "{err}"
    );
    err
}

#[test]
fn a_hand_made_layout_reads_as_a_control_for_the_hostile_cases() {
    let (layout, _, _) = Layout::with_one_layer();
    let image = layout.open().unwrap();
    assert_eq!(image.config.env, vec!["A=1"]);
    assert_eq!(
        read_all_layers(&image),
        one_file_tar("hello", b"hi\n").len() as u64
    );
}

#[test]
fn a_layer_blob_with_other_bytes_fails_its_verified_read_naming_the_blob() {
    let (layout, path, _) = Layout::with_one_layer();
    let mut bytes = fs::read(&path).unwrap();
    // The gzip header's mtime: still a valid stream, same size, other digest.
    bytes[4] ^= 0x55;
    fs::write(&path, &bytes).unwrap();
    let image = layout.open().unwrap();
    let blob = &image.layers[0];
    let mut sink = Vec::new();
    let mut reader = blob.open_verified().unwrap();
    let err = reader.read_to_end(&mut sink).unwrap_err();
    // The verdict stays: a read after it fails again, never an empty Ok.
    let again = reader.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(again.to_string(), err.to_string());
    let text = err.to_string();
    assert!(
        text.contains(&blob.name) && text.contains("has the digest"),
        "{text}"
    );
    assert_eq!(
        sink.len(),
        bytes.len(),
        "the whole blob was read before the verdict"
    );
    let mut tar = blob.open_tar().unwrap();
    let err = std::io::copy(&mut tar, &mut std::io::sink()).unwrap_err();
    assert!(err.to_string().contains("tampered"), "{err}");
    // Unverified, the same bytes read without complaint.
    blob.open().unwrap().read_to_end(&mut Vec::new()).unwrap();
}

#[test]
fn a_layer_whose_diff_id_is_wrong_fails_at_the_end_of_its_tar() {
    let layout = Layout::new();
    let (layer, _) = layout.gzip_layer();
    layout.image(vec![(layer, Digest::of(b"another tar"))]);
    let image = layout.open().unwrap();
    let tar = image.layers[0].open_tar().unwrap();
    let err = tar.finish().unwrap_err().to_string();
    assert!(
        err.contains("the uncompressed tar of the blob blobs/sha256/"),
        "{err}"
    );
}

#[test]
fn a_blob_of_the_wrong_size_or_digest_is_refused_naming_it() {
    let (layout, layer_path, manifest) = Layout::with_one_layer();
    let manifest_name = format!(
        "blobs/sha256/{}",
        &manifest["digest"].as_str().unwrap()[7..]
    );
    let saved = fs::read(&layer_path).unwrap();
    fs::write(&layer_path, &saved[..saved.len() - 1]).unwrap();
    let name = layer_path
        .strip_prefix(&layout.root)
        .unwrap()
        .to_str()
        .unwrap();
    expect_error(layout.open(), name, "bytes, but the manifest");
    fs::write(&layer_path, &saved).unwrap();
    // A manifest edited in place: its digest no longer names it.
    let path = layout.path_of(&manifest);
    let text = fs::read_to_string(&path).unwrap();
    let text = text.replace("\"schemaVersion\":2", "\"schemaVersion\":3");
    fs::write(&path, &text).unwrap();
    assert_eq!(text.len() as u64, manifest["size"].as_u64().unwrap());
    expect_error(layout.open(), &manifest_name, "has the digest");
}

#[test]
fn oversized_json_is_refused_before_it_is_parsed() {
    let (layout, _, _) = Layout::with_one_layer();
    let big = format!(
        "{{\"schemaVersion\":2,\"pad\":\"{}\"}}",
        "x".repeat(5 << 20)
    );
    fs::write(layout.root.join("index.json"), big).unwrap();
    expect_error(layout.open(), "index.json", "may have at most 4194304");
}

#[test]
fn more_layers_than_overlayfs_stacks_are_refused_saying_why() {
    let layout = Layout::new();
    let (layer, diff_id) = layout.gzip_layer();
    let manifest = layout.image(vec![(layer, diff_id); MAX_LAYERS + 1]);
    let name = format!(
        "blobs/sha256/{}",
        &manifest["digest"].as_str().unwrap()[7..]
    );
    let err = expect_error(layout.open(), &name, "it has 501 layers");
    assert!(err.cause.contains("at most 500"), "{err}");
    // The limit itself is fine.
    let (layer, diff_id) = layout.gzip_layer();
    layout.image(vec![(layer, diff_id); MAX_LAYERS]);
    assert_eq!(layout.open().unwrap().layers.len(), MAX_LAYERS);
}

#[test]
fn an_unknown_layer_media_type_is_refused_naming_it() {
    let layout = Layout::new();
    let (mut layer, diff_id) = layout.gzip_layer();
    layer["mediaType"] = json!("application/vnd.example.squashfs");
    let manifest = layout.image(vec![(layer, diff_id)]);
    let name = format!(
        "blobs/sha256/{}",
        &manifest["digest"].as_str().unwrap()[7..]
    );
    expect_error(
        layout.open(),
        &name,
        "'application/vnd.example.squashfs', which is not",
    );
}

#[test]
fn digests_that_are_not_sha256_never_become_paths() {
    let layout = Layout::new();
    for digest in [
        "sha256:../../../../etc/passwd",
        "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    ] {
        layout.index(vec![json!({"mediaType": MANIFEST, "digest": digest, "size": 2})]);
        expect_error(layout.open(), "index.json", "is not a sha256 digest");
    }
}

#[test]
fn indexes_nested_too_deep_are_refused() {
    let layout = Layout::new();
    let (layer, diff_id) = layout.gzip_layer();
    let mut top = layout.image(vec![(layer, diff_id)]);
    for _ in 0..6 {
        top = layout.json_blob(INDEX, &json!({"schemaVersion": 2, "manifests": [top]}));
    }
    layout.index(vec![top]);
    let err = layout.open().unwrap_err();
    assert!(err.cause.contains("indexes nest more than 4 deep"), "{err}");
}

#[test]
fn a_layout_with_a_blob_symlinked_outside_is_refused() {
    let (layout, path, _) = Layout::with_one_layer();
    let outside = layout.root.parent().unwrap().join("outside");
    fs::rename(&path, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    let err = layout.open().unwrap_err();
    assert!(err.file.starts_with("blobs/sha256/"), "{err}");
    assert!(
        err.cause.contains("Too many levels of symbolic links"),
        "{err}"
    );
}

/// A docker archive whose manifest.json names `layers`, with `extra`
/// members (name, symlink target) added.
fn docker_archive(dir: &Path, layers: &[&str], links: &[(&str, &str)]) -> PathBuf {
    let tar_bytes = one_file_tar("hello", b"hi\n");
    let diff_id = Digest::of(&tar_bytes);
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": vec![diff_id.to_string(); layers.len()]}});
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let manifest = json!([{"Config": config_name, "Layers": layers}]);
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, data).unwrap();
    };
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    add(&config_name, &config);
    add("layer.tar", &tar_bytes);
    for (name, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        // Set raw: the tar crate's setters refuse '..' in names.
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        header.set_cksum();
        builder.append(&header, &[][..]).unwrap();
    }
    let path = dir.join("image.tar");
    fs::write(&path, builder.into_inner().unwrap()).unwrap();
    path
}

#[test]
fn docker_archive_layer_paths_resolve_inside_the_archive_only() {
    let dir = tempfile::tempdir().unwrap();
    // The control: a plain layer, and one reached through a symlink member.
    let ok = docker_archive(
        dir.path(),
        &["layer.tar", "id/layer.tar"],
        &[("id/layer.tar", "../layer.tar")],
    );
    let image = open_image(&ok, None).unwrap();
    assert_eq!(
        read_all_layers(&image),
        2 * one_file_tar("hello", b"hi\n").len() as u64
    );
    for (layers, links, file, cause) in [
        (
            ["../../etc/passwd"],
            vec![],
            "../../etc/passwd",
            "not a plain relative path",
        ),
        (
            ["/etc/passwd"],
            vec![],
            "/etc/passwd",
            "not a plain relative path",
        ),
        (
            ["id/layer.tar"],
            vec![("id/layer.tar", "../../../etc/passwd")],
            "id/layer.tar",
            "outside the archive",
        ),
        (
            ["id/layer.tar"],
            vec![("id/layer.tar", "/etc/passwd")],
            "id/layer.tar",
            "no such member",
        ),
        (
            ["a"],
            vec![("a", "b"), ("b", "a")],
            "a",
            "more than 8 symlinks",
        ),
    ] {
        let path = docker_archive(dir.path(), &layers, &links);
        expect_error(open_image(&path, None), file, cause);
    }
}

#[test]
fn a_docker_config_whose_name_is_another_digest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = docker_archive(dir.path(), &["layer.tar"], &[]);
    let mut bytes = fs::read(&path).unwrap();
    // Change one byte of the config's content ("amd64" → "amd65").
    let at = bytes.windows(5).position(|w| w == b"amd64").unwrap();
    bytes[at + 4] = b'5';
    // The tar header checksum does not cover data: the archive stays valid.
    fs::write(&path, &bytes).unwrap();
    let err = open_image(&path, None).unwrap_err();
    assert!(err.cause.contains("but its name says sha256:"), "{err}");
}

#[test]
fn what_is_not_an_image_is_refused_saying_what_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    expect_error(
        open_image(dir.path(), None),
        ".",
        "neither an OCI image layout",
    );
    let gz = dir.path().join("image.tar.gz");
    fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).unwrap();
    expect_error(open_image(&gz, None), ".", "compressed archive");
    let err = "linux".parse::<Platform>().unwrap_err();
    assert!(err.contains("expected OS/ARCH"), "{err}");
}

/// The fuzz target's way in (src/fuzzing.rs, `image`) reaches the layers
/// of its valid seeds and is refused by the hostile ones: the fuzzer
/// starts past the digest checks.
#[test]
fn the_fuzz_targets_seeds_open_as_images() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/image_json");
    for (seed, layers) in [
        ("plain-layer", Some(1)),
        ("gzip-layer", Some(1)),
        ("two-platforms", Some(1)),
        ("bad-digest", None),
        ("unknown-media-type", None),
    ] {
        let data = fs::read(corpus.join(seed)).unwrap();
        assert_eq!(slicebox::fuzzing::image(&data), layers, "{seed}");
    }
}

/// An index entry without a platform is asked its config's, and a config
/// names no variant: `linux/arm64/v8` takes an arm64 config.
#[test]
fn a_platform_from_the_config_matches_without_a_variant() {
    let layout = Layout::new();
    let (layer, diff_id) = layout.gzip_layer();
    let manifest = layout.image(vec![(layer, diff_id)]);
    let config_path = {
        let text = fs::read(layout.path_of(&manifest)).unwrap();
        let parsed: Value = serde_json::from_slice(&text).unwrap();
        layout.path_of(&parsed["config"])
    };
    let config = fs::read_to_string(&config_path).unwrap();
    let arm_config: Value = serde_json::from_str(&config.replace(
        &format!("\"{}\"", Platform::host().architecture),
        "\"arm64\"",
    ))
    .unwrap();
    let arm_config = layout.json_blob("application/vnd.oci.image.config.v1+json", &arm_config);
    let mut arm_manifest: Value =
        serde_json::from_slice(&fs::read(layout.path_of(&manifest)).unwrap()).unwrap();
    arm_manifest["config"] = arm_config;
    let arm_manifest = layout.json_blob(MANIFEST, &arm_manifest);
    layout.index(vec![manifest, arm_manifest]);
    let v8: Platform = "linux/arm64/v8".parse().unwrap();
    let image = open_image(&layout.root, Some(&v8)).unwrap();
    assert_eq!(image.platform.to_string(), "linux/arm64");
    let host = open_image(&layout.root, None).unwrap();
    assert_eq!(host.platform.architecture, Platform::host().architecture);
}
