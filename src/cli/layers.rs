//! The layer commands: layer-add, layer-list, layer-show, layer-rm.

use std::path::PathBuf;

use super::messages::{count, human_bytes};
use super::slices::{print_json, store, terminal_progress, utf8};
use super::{Context, Exit, Failure, Parsed};
use crate::store::image;
use crate::store::layer::listing::{LayerEntry, LayerKind};
use crate::store::layer::{ImageConfig, LayerInput, LayerSource};
use crate::text::{printable, printable_path};

/// The layers the stack `name` points at, bottom first, each with its
/// tree (OverlayFS's lower dir); the error says why they cannot be used.
pub(super) fn stack_trees(
    store: &crate::store::Store,
    name: &str,
) -> Result<Vec<(crate::digest::Digest, PathBuf)>, String> {
    let stack = store.resolve_layers(name).map_err(|e| e.to_string())?;
    let layers = store.layer_stack(&stack).map_err(|e| e.to_string())?.layers;
    layers
        .into_iter()
        .map(|layer| {
            let tree = store.layer_tree(&layer);
            match tree.is_dir() {
                true => Ok((layer, tree)),
                false => Err(format!(
                    "its layer {layer} has no tree at '{}' (layer-add NAME SOURCE again makes it)",
                    printable_path(&tree)
                )),
            }
        })
        .collect()
}

pub fn run(name: &str, parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    match name {
        "layer-add" => add(parsed, ctx),
        "layer-list" => list(parsed, ctx),
        "layer-show" => show(parsed, ctx),
        _ => remove(parsed, ctx),
    }
}

/// SOURCE as a layer input: `-` (stdin), a tarball, or with
/// `--from-upper` a directory.
fn input(parsed: &Parsed, ctx: &Context, source: &std::ffi::OsStr) -> Result<LayerInput, Failure> {
    let path = PathBuf::from(source);
    let failure = |message: String| Failure {
        message,
        exit: Exit::FAILURE,
    };
    if parsed.has("from-upper") {
        return match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => Ok(LayerInput::Upper(path)),
            Ok(_) => Err(failure(format!(
                "cannot read the upper dir '{}': it is not a directory",
                printable_path(&path)
            ))),
            Err(e) => Err(failure(format!(
                "cannot read the upper dir '{}': {}",
                printable_path(&path),
                crate::text::io_cause(&e)
            ))),
        };
    }
    if source == "-" {
        if !super::is_open(ctx.stdio[0]) {
            return Err(failure(
                "cannot read a layer from stdin: it is closed".into(),
            ));
        }
        return Ok(LayerInput::Stream(ctx.stdio[0]));
    }
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Err(failure(format!(
            "cannot read '{}' as a layer tarball: it is a directory (--from-upper takes an \
             OverlayFS upper dir)",
            printable_path(&path)
        ))),
        Ok(_) => Ok(LayerInput::Archive(path)),
        Err(e) => Err(failure(format!(
            "cannot read '{}': {}",
            printable_path(&path),
            crate::text::io_cause(&e)
        ))),
    }
}

/// The layers of a stack to add, bottom first, and an image's config.
type StackToAdd = (Vec<LayerSource>, Option<ImageConfig>);

/// SOURCE's layers and config where it is an image (not with
/// `--from-upper` or `-`); `None` for a layer tarball.
fn image_source(parsed: &Parsed, source: &std::ffi::OsStr) -> Result<Option<StackToAdd>, Failure> {
    let path = std::path::Path::new(source);
    let platform = match parsed.last("platform") {
        Some(text) => Some(
            utf8(text, "--platform")?
                .parse::<image::Platform>()
                .map_err(|e| Failure::usage(format!("--platform: {e}")))?,
        ),
        None => None,
    };
    if parsed.has("from-upper") || source == "-" || !image::is_image(path) {
        return match platform {
            Some(_) => Err(Failure::usage("--platform is for an image SOURCE")),
            None => Ok(None),
        };
    }
    let opened = image::open_image(path, platform.as_ref()).map_err(|e| Failure {
        message: e.to_string(),
        exit: Exit::FAILURE,
    })?;
    let sources = opened
        .layers
        .into_iter()
        .map(|blob| LayerSource {
            name: format!("{} ({})", printable_path(path), blob.name),
            known_digests: vec![blob.digest],
            input: LayerInput::Blob(blob),
        })
        .collect();
    let c = opened.config;
    let config = ImageConfig {
        env: c.env,
        working_dir: c.working_dir,
        user: c.user,
        entrypoint: c.entrypoint,
        cmd: c.cmd,
    };
    Ok(Some((sources, Some(config))))
}

fn add(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let (name, source) = match (parsed.operands.as_slice(), parsed.last("from-upper")) {
        ([name], Some(dir)) => (name, dir),
        ([name, source], None) => (name, source.as_os_str()),
        _ => {
            return Err(Failure::usage(
                "expected NAME and SOURCE (or --from-upper DIR NAME)",
            ))
        }
    };
    let name = utf8(name, "NAME")?;
    let limits = super::slices::limits(parsed, ctx)?;
    let (sources, config) = match image_source(parsed, source)? {
        Some(image) => image,
        None => {
            let source = LayerSource {
                input: input(parsed, ctx, source)?,
                name: printable(source.as_encoded_bytes()),
                known_digests: Vec::new(),
            };
            (vec![source], None)
        }
    };
    let store = store(ctx)?;
    let progress = terminal_progress(ctx.stdio[2], format!("adding layer {name}"));
    let added = store.add_layer_stack(&name, &sources, config, limits, progress)?;
    for layer in &added.layers {
        if layer.devices_skipped > 0 {
            ctx.err(&format!(
                "layer-add: {name}: skipped {} under /dev (every stage gets its own /dev)\n",
                count(layer.devices_skipped, "device node", "device nodes")
            ));
        }
    }
    let stack = added.stack.expect("an added stack has a digest");
    ctx.out(&format!("{stack}\n"));
    Ok(Exit::SUCCESS)
}

fn list(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    if !parsed.operands.is_empty() {
        return Err(Failure::usage("layer-list takes no operands"));
    }
    let store = store(ctx)?;
    let mut rows = Vec::new();
    for (name, digest) in store.layer_names()? {
        let stack = store.layer_stack(&digest)?;
        rows.push((name, digest, stack.layers.len()));
    }
    if parsed.has("json") {
        let rows: Vec<_> = rows
            .iter()
            .map(|(name, digest, layers)| {
                serde_json::json!({ "name": name, "digest": digest, "layers": layers })
            })
            .collect();
        print_json(ctx, &rows);
        return Ok(Exit::SUCCESS);
    }
    let mut text = String::new();
    for (name, digest, layers) in rows {
        text.push_str(&format!(
            "{name}\t{digest}\t{}\n",
            count(layers as u64, "layer", "layers")
        ));
    }
    ctx.out(&text);
    Ok(Exit::SUCCESS)
}

/// `ls -l`'s type and permission letters of an entry.
fn mode_text(entry: &LayerEntry) -> String {
    let kind = match entry.kind {
        LayerKind::Dir | LayerKind::OpaqueDir => 'd',
        LayerKind::Symlink(_) => 'l',
        LayerKind::Whiteout => 'w',
        LayerKind::File { .. } | LayerKind::Hardlink { .. } => '-',
    };
    let m = entry.mode;
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let special = |x: u32, s: u32, set: char| match (m & x != 0, m & s != 0) {
        (true, true) => set,
        (false, true) => set.to_ascii_uppercase(),
        (true, false) => 'x',
        (false, false) => '-',
    };
    format!(
        "{kind}{}{}{}{}{}{}{}{}{}",
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(0o100, 0o4000, 's'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(0o010, 0o2000, 's'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(0o001, 0o1000, 't'),
    )
}

/// One entry as `layer-show --files` prints it: mode, owner, size, path
/// and what a link points at, as `tar -tv --numeric-owner` has them.
fn entry_line(entry: &LayerEntry) -> String {
    let mut line = format!(
        "{} {}/{} {} {}",
        mode_text(entry),
        entry.uid,
        entry.gid,
        entry.size(),
        printable(&entry.path)
    );
    match &entry.kind {
        LayerKind::Symlink(target) => line.push_str(&format!(" -> {}", printable(target))),
        LayerKind::Hardlink { target, .. } => {
            line.push_str(&format!(" link to {}", printable(target)))
        }
        LayerKind::OpaqueDir => line.push_str(" (opaque)"),
        _ => {}
    }
    line.push('\n');
    line
}

/// An image's config as `layer-show` prints it: one line per field it
/// has, command lines as JSON arrays (an empty one is not a missing one).
fn config_lines(config: &ImageConfig) -> String {
    let mut text = String::new();
    for entry in &config.env {
        text.push_str(&format!("env: {}\n", printable(entry.as_bytes())));
    }
    let fields = [("workdir", &config.working_dir), ("user", &config.user)];
    for (label, value) in fields {
        if let Some(value) = value {
            text.push_str(&format!("{label}: {}\n", printable(value.as_bytes())));
        }
    }
    for (label, argv) in [("entrypoint", &config.entrypoint), ("cmd", &config.cmd)] {
        if let Some(argv) = argv {
            let json = serde_json::to_string(argv).expect("strings serialise");
            text.push_str(&format!("{label}: {}\n", printable(json.as_bytes())));
        }
    }
    text
}

fn show(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [reference] = parsed.operands.as_slice() else {
        return Err(Failure::usage("expected one REF"));
    };
    let reference = utf8(reference, "REF")?;
    let store = store(ctx)?;
    let digest = store.resolve_layers(&reference)?;
    let stack = store.layer_stack(&digest)?;
    let mut layers = Vec::new();
    for layer in &stack.layers {
        layers.push((layer, store.layer_listing(layer)?));
    }
    if parsed.has("json") {
        let rows: Vec<_> = layers
            .iter()
            .map(|(digest, entries)| {
                let count =
                    |f: fn(&LayerKind) -> bool| entries.iter().filter(|e| f(&e.kind)).count();
                serde_json::json!({
                    "digest": digest,
                    "entries": entries.len(),
                    "whiteouts": count(|k| matches!(k, LayerKind::Whiteout)),
                    "opaque_dirs": count(|k| matches!(k, LayerKind::OpaqueDir)),
                    "bytes": entries.iter().map(LayerEntry::size).sum::<u64>(),
                })
            })
            .collect();
        let value = serde_json::json!({ "digest": digest, "layers": rows, "config": stack.config });
        print_json(ctx, &value);
        return Ok(Exit::SUCCESS);
    }
    let mut text = format!("stack: {digest}\n");
    if let Some(config) = &stack.config {
        text.push_str(&config_lines(config));
    }
    for (i, (layer, entries)) in layers.iter().enumerate() {
        let bytes = entries.iter().map(LayerEntry::size).sum::<u64>();
        let whiteouts = entries
            .iter()
            .filter(|e| e.kind == LayerKind::Whiteout)
            .count();
        let opaque = entries
            .iter()
            .filter(|e| e.kind == LayerKind::OpaqueDir)
            .count();
        text.push_str(&format!(
            "layer {i}: {layer}\t{}\t{}\t{}\t{}\n",
            count(entries.len() as u64, "entry", "entries"),
            human_bytes(bytes),
            count(whiteouts as u64, "whiteout", "whiteouts"),
            count(opaque as u64, "opaque dir", "opaque dirs"),
        ));
        if parsed.has("files") {
            for entry in entries {
                text.push_str(&entry_line(entry));
            }
        }
    }
    ctx.out(&text);
    Ok(Exit::SUCCESS)
}

fn remove(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [name] = parsed.operands.as_slice() else {
        return Err(Failure::usage("expected one NAME"));
    };
    let name = utf8(name, "NAME")?;
    let store = store(ctx)?;
    if !store.remove_layer_name(&name)? {
        return Err(store
            .resolve_layers(&name)
            .err()
            .map_or_else(|| Failure::usage("layer-rm takes a name"), Failure::from));
    }
    Ok(Exit::SUCCESS)
}
