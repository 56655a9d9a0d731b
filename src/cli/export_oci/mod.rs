//! `slicebox export-oci [OPTIONS] DIR [-- COMMAND...]`: what a stage is
//! made of, written as an OCI image layout. The stage is resolved as
//! `sandbox` resolves it (sandbox/composition.rs); `layers` writes each
//! stored layer and each slice as a layer tar, `json` the config,
//! manifest and index, `layout` the staging directory that becomes DIR.

mod json;
mod layers;
mod layout;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::sandbox::{compose, ComposedSlice, Composition};
use super::{Context, Exit, Failure, Parsed};
use crate::text::{printable, printable_path};
use layout::{Blob, Staging};

/// The name index.json gives the image without `--tag`.
const DEFAULT_TAG: &str = "latest";

fn failure(message: String) -> Failure {
    Failure {
        message,
        exit: Exit::FAILURE,
    }
}

/// `cannot OP 'PATH': CAUSE`.
fn io_failure(op: &str, path: &Path, e: &std::io::Error) -> Failure {
    failure(format!(
        "cannot {op} '{}': {}",
        printable_path(path),
        crate::text::io_cause(e)
    ))
}

pub fn run(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let (dir, command) = operands(parsed)?;
    let tag = tag(parsed)?;
    layout::check_target(&dir)?;
    let store = super::slices::store(ctx)?;
    // Nothing is set up here: what fails is the export's (1), not 125.
    let composition = compose(parsed, ctx, &store, &command).map_err(|f| match f.exit {
        Exit::USAGE => f,
        _ => failure(f.message),
    })?;
    if composition.layers.is_empty() && composition.slices.is_empty() {
        return Err(Failure::usage(
            "nothing to export: give --image, --layer or --slice",
        ));
    }
    let slices = slices_in_mount_order(&composition.slices)?;
    if composition.layers.is_empty() {
        ctx.err(
            "export-oci: note: no --layer or --image: the image holds only the slices, \
             not the host's /usr, /bin, /lib* and /etc that a stage would see\n",
        );
    }
    let run = run_config(&composition)?;
    let staging = Staging::create(&dir)?;
    let mut written: HashMap<crate::digest::Digest, Blob> = HashMap::new();
    let mut layers = Vec::new();
    for layer in &composition.layers {
        // One blob per stored layer, however many stacks hold it.
        let blob = match written.get(layer) {
            Some(blob) => *blob,
            None => layers::stored_layer(&store, &staging, layer)?,
        };
        written.insert(*layer, blob);
        layers.push(blob);
    }
    for slice in slices {
        layers.push(layers::slice_layer(&store, &staging, slice)?);
    }
    let config = staging.small_blob(&json::config(&run, &layers))?;
    let manifest = staging.small_blob(&json::manifest(&config, &layers))?;
    staging.write_file("index.json", &json::index(&manifest, &tag))?;
    staging.publish()?;
    ctx.out(&format!("{}\n", manifest.digest));
    Ok(Exit::SUCCESS)
}

/// DIR, then nothing or `--` and the image's Cmd.
fn operands(parsed: &Parsed) -> Result<(PathBuf, Vec<OsString>), Failure> {
    match parsed.operands.as_slice() {
        [] => Err(Failure::usage("expected DIR, the image layout to write")),
        [dir] => Ok((PathBuf::from(dir), Vec::new())),
        [dir, dashes, command @ ..] if dashes == "--" => Ok((PathBuf::from(dir), command.to_vec())),
        [_, extra, ..] => Err(Failure::usage(format!(
            "unexpected '{}' after DIR: options go before DIR, and the command after DIR --",
            printable(extra.as_bytes())
        ))),
    }
}

/// `--tag NAME`: a reference name as OCI defines one: components of
/// letters and digits joined by `-._:@+` (or `--`), separated by `/`.
fn tag(parsed: &Parsed) -> Result<String, Failure> {
    let Some(value) = parsed.last("tag") else {
        return Ok(DEFAULT_TAG.to_string());
    };
    let bad = || {
        Failure::usage(format!(
            "--tag needs a name of letters and digits, joined by '-', '.', '_', ':', '@', '+' or '/', not '{}'",
            printable(value.as_bytes())
        ))
    };
    let text = value.to_str().ok_or_else(bad)?;
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        let edge = |x: Option<&u8>| x.is_some_and(|x| x.is_ascii_alphanumeric());
        edge(b.first())
            && edge(b.last())
            && b.iter()
                .all(|x| x.is_ascii_alphanumeric() || b"-._:@+".contains(x))
    };
    if text.len() > 255 || !text.split('/').all(component_ok) {
        return Err(bad());
    }
    Ok(text.to_string())
}

/// The slices with parents' mount points before their children's (as a
/// stage mounts them), otherwise in `--slice` order; two at one mount
/// point are refused, as `sandbox` refuses them.
fn slices_in_mount_order(slices: &[ComposedSlice]) -> Result<Vec<&ComposedSlice>, Failure> {
    let mut ordered: Vec<&ComposedSlice> = slices.iter().collect();
    ordered.sort_by_key(|s| s.mount_point.components().count());
    for (i, a) in ordered.iter().enumerate() {
        if let Some(b) = ordered[i + 1..]
            .iter()
            .find(|b| b.mount_point == a.mount_point)
        {
            return Err(Failure::usage(format!(
                "--slice {} and --slice {} are both at '{}'",
                printable(a.label.as_bytes()),
                printable(b.label.as_bytes()),
                printable_path(&a.mount_point)
            )));
        }
    }
    Ok(ordered)
}

/// The image config's run part, as strings: JSON holds UTF-8 only.
fn run_config(c: &Composition) -> Result<json::RunConfig, Failure> {
    let text = |value: &OsStr, what: &str| {
        value.to_str().map(str::to_string).ok_or_else(|| {
            Failure::usage(format!(
                "{what} '{}' is not UTF-8, which an image config cannot hold",
                printable(value.as_bytes())
            ))
        })
    };
    let list = |values: &Option<Vec<OsString>>, what: &str| {
        values
            .as_ref()
            .map(|v| {
                v.iter()
                    .map(|a| text(a, what))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
    };
    Ok(json::RunConfig {
        cmd: list(&c.cmd, "the command's argument")?,
        entrypoint: list(&c.entrypoint, "the Entrypoint's argument")?,
        env: c
            .env
            .iter()
            .map(|e| text(e, "the variable"))
            .collect::<Result<_, _>>()?,
        user: c.user.clone(),
        working_dir: c
            .working_dir
            .as_ref()
            .map(|d| text(d.as_os_str(), "the working directory"))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(operands: &[&str], tag: Option<&str>) -> Parsed {
        Parsed {
            options: tag
                .map(|t| ("tag", Some(OsString::from(t))))
                .into_iter()
                .collect(),
            operands: operands.iter().map(OsString::from).collect(),
        }
    }

    #[test]
    fn the_command_follows_dir_and_dashes() {
        let (dir, cmd) = operands(&parsed(&["out", "--", "ls", "-l"], None)).unwrap();
        assert_eq!(
            (dir, cmd),
            (PathBuf::from("out"), vec!["ls".into(), "-l".into()])
        );
        let err = operands(&parsed(&["out", "--tag", "x"], None)).unwrap_err();
        assert!(err.message.contains("'--tag' after DIR"), "{}", err.message);
        assert!(operands(&parsed(&[], None)).is_err());
    }

    #[test]
    fn tags_are_reference_names() {
        let t = |v: &str| tag(&parsed(&["d"], Some(v))).map_err(|f| f.message);
        assert_eq!(tag(&parsed(&["d"], None)).unwrap(), "latest");
        assert_eq!(t("v1.2-rc_3").unwrap(), "v1.2-rc_3");
        assert_eq!(t("example.com/app:1").unwrap(), "example.com/app:1");
        for bad in ["", "-x", "a b", "x/", "é"] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parents_come_first_and_one_mount_point_takes_one_slice() {
        let slice = |label: &str, at: &str| ComposedSlice {
            label: label.into(),
            digest: crate::digest::Digest::of(label.as_bytes()),
            mount_point: PathBuf::from(at),
            tree: PathBuf::new(),
        };
        let slices = [
            slice("c", "/opt/a/b"),
            slice("a", "/opt/a"),
            slice("z", "/srv"),
        ];
        let order: Vec<&str> = slices_in_mount_order(&slices)
            .unwrap()
            .iter()
            .map(|s| s.label.as_str())
            .collect();
        assert_eq!(order, ["z", "a", "c"]);
        let twice = [slice("x", "/opt/x"), slice("y", "/opt/x")];
        let err = slices_in_mount_order(&twice).err().unwrap().message;
        assert!(err.contains("--slice x and --slice y"), "{err}");
    }
}
