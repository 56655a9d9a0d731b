//! slice-add, slice-list, slice-show.

use std::path::PathBuf;

use super::{open_store, Context, Exit, Failure, Parsed};
use crate::store::{IngestOptions, Source};

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn utf8(value: &std::ffi::OsStr, what: &str) -> Result<String, Failure> {
    value
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| Failure::usage(format!("{what} must be valid UTF-8")))
}

pub fn add(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [name, source] = parsed.operands.as_slice() else {
        return Err(Failure::usage("expected NAME and SOURCE"));
    };
    let name = utf8(name, "NAME")?;
    let mount_point = match parsed.last("at") {
        Some(at) => utf8(at, "MOUNTPOINT")?,
        None => format!("/opt/{name}"),
    };
    let env = parsed
        .values("env")
        .map(|e| utf8(e, "--env"))
        .collect::<Result<Vec<_>, _>>()?;
    let source = if source == "-" {
        Source::Stream(ctx.stdio[0])
    } else {
        let path = PathBuf::from(source);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => Source::Directory(path),
            Ok(_) => Source::Archive(path),
            Err(e) => {
                return Err(Failure {
                    message: format!(
                        "cannot read '{}': {}",
                        path.display(),
                        crate::runtime::strerror(e.raw_os_error().unwrap_or(libc::EIO))
                    ),
                    exit: Exit::FAILURE,
                })
            }
        }
    };
    let store = open_store(ctx)?;
    let info = store.add_slice(
        &name,
        &source,
        &IngestOptions {
            mount_point,
            env,
            max_file_size: crate::store::DEFAULT_MAX_FILE_SIZE,
        },
    )?;
    ctx.out(&format!("{}\n", info.digest));
    Ok(Exit::SUCCESS)
}

pub fn list(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    if !parsed.operands.is_empty() {
        return Err(Failure::usage("slice-list takes no operands"));
    }
    let store = open_store(ctx)?;
    let named = store.list_named()?;
    if parsed.has("json") {
        let rows: Vec<_> = named
            .iter()
            .map(|(name, manifest, digest)| {
                serde_json::json!({
                    "name": name,
                    "digest": digest,
                    "mount_point": manifest.mount_point,
                    "files": manifest.files,
                    "bytes": manifest.bytes,
                })
            })
            .collect();
        ctx.out(&format!("{}\n", serde_json::Value::Array(rows)));
        return Ok(Exit::SUCCESS);
    }
    let mut text = String::new();
    for (name, manifest, digest) in &named {
        text.push_str(&format!(
            "{name}\t{digest}\t{}\t{} files\t{}\n",
            manifest.mount_point,
            manifest.files,
            human_bytes(manifest.bytes)
        ));
    }
    ctx.out(&text);
    Ok(Exit::SUCCESS)
}

pub fn show(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [reference] = parsed.operands.as_slice() else {
        return Err(Failure::usage("expected one REF"));
    };
    let store = open_store(ctx)?;
    let digest = store.resolve(&reference.to_string_lossy())?;
    let info = store.slice_info(&digest)?;
    if parsed.has("json") {
        ctx.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&info).expect("slice info always serialises")
        ));
        return Ok(Exit::SUCCESS);
    }
    let m = &info.manifest;
    let mut text = format!(
        "digest:      {}\nnames:       {}\ntree:        {}\nmount point: {}\nfiles:       {}\nbytes:       {} ({})\n",
        info.digest,
        if info.names.is_empty() { "-".to_string() } else { info.names.join(" ") },
        m.tree,
        m.mount_point,
        m.files,
        m.bytes,
        human_bytes(m.bytes),
    );
    for entry in &m.env {
        text.push_str(&format!("env:         {entry}\n"));
    }
    text.push_str(&format!(
        "path:        {}\n",
        store.slice_tree(&digest).display()
    ));
    ctx.out(&text);
    Ok(Exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_like_du_h() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
