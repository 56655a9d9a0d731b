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
        if !super::is_open(ctx.stdio[0]) {
            return Err(Failure {
                message: "cannot read an archive from stdin: it is closed".into(),
                exit: Exit::FAILURE,
            });
        }
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
    let added = store.add_slice(
        &name,
        &source,
        &IngestOptions {
            mount_point,
            env,
            max_file_size: crate::store::DEFAULT_MAX_FILE_SIZE,
            progress_fd: Some(ctx.stdio[2]),
        },
    )?;
    ctx.out(&format!("{}\n", added.info.digest));
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
        print_json(ctx, &serde_json::Value::Array(rows));
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
    let usage = store.usage(&digest)?;
    if parsed.has("json") {
        let mut value = serde_json::to_value(&info).expect("slice info always serialises");
        value["shared_bytes"] = usage.shared_bytes.into();
        value["unique_bytes"] = usage.unique_bytes.into();
        value["path"] = store.slice_tree(&digest).display().to_string().into();
        print_json(ctx, &value);
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
        "shared:      {} ({}) also in other slices\nunique:      {} ({}) only in this slice\n",
        usage.shared_bytes,
        human_bytes(usage.shared_bytes),
        usage.unique_bytes,
        human_bytes(usage.unique_bytes),
    ));
    text.push_str(&format!(
        "path:        {}\n",
        store.slice_tree(&digest).display()
    ));
    ctx.out(&text);
    Ok(Exit::SUCCESS)
}

fn print_json(ctx: &Context, value: &impl serde::Serialize) {
    ctx.out(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).expect("reports always serialise")
    ));
}

fn operands<const N: usize>(parsed: &Parsed, what: &str) -> Result<[String; N], Failure> {
    let strings: Vec<String> = parsed
        .operands
        .iter()
        .map(|o| o.to_string_lossy().into_owned())
        .collect();
    strings
        .try_into()
        .map_err(|_| Failure::usage(format!("expected {what}")))
}

pub fn remove(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [reference] = operands(parsed, "one REF")?;
    let store = open_store(ctx)?;
    let removed = store.remove(&reference)?;
    if removed.is_empty() {
        return Err(Failure {
            message: format!(
                "cannot remove '{reference}': no name points at it (history entries such as NAME@1 go at the next slice-gc)"
            ),
            exit: Exit::FAILURE,
        });
    }
    for name in removed {
        ctx.out(&format!("removed {name}\n"));
    }
    Ok(Exit::SUCCESS)
}

pub fn tag(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [reference, name] = operands(parsed, "REF and NAME")?;
    let store = open_store(ctx)?;
    ctx.out(&format!("{}\n", store.tag(&reference, &name)?));
    Ok(Exit::SUCCESS)
}

pub fn gc(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [] = operands(parsed, "no operands")?;
    let report = open_store(ctx)?.gc()?;
    if parsed.has("json") {
        print_json(ctx, &report);
    } else {
        ctx.out(&format!(
            "removed {} slices and {} objects, freed {}\n",
            report.slices_removed,
            report.objects_removed,
            human_bytes(report.bytes_freed)
        ));
    }
    Ok(Exit::SUCCESS)
}

pub fn verify(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let store = open_store(ctx)?;
    let slice = match parsed.operands.as_slice() {
        [] => None,
        [reference] => Some(store.resolve(&reference.to_string_lossy())?),
        _ => return Err(Failure::usage("expected at most one REF")),
    };
    let damage = store.verify(slice.as_ref())?;
    if parsed.has("json") {
        print_json(ctx, &damage);
    } else {
        let text: String = damage
            .iter()
            .map(|d| format!("damaged: {}: {}\n", d.path, d.problem))
            .collect();
        ctx.out(&text);
    }
    if damage.is_empty() {
        Ok(Exit::SUCCESS)
    } else {
        Err(Failure {
            message: format!("{} damaged paths", damage.len()),
            exit: Exit::FAILURE,
        })
    }
}

pub fn diff(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [a, b] = operands(parsed, "two REFs")?;
    let store = open_store(ctx)?;
    let changes = store.diff(&store.resolve(&a)?, &store.resolve(&b)?)?;
    if parsed.has("json") {
        print_json(ctx, &changes);
    } else {
        let text: String = changes
            .iter()
            .map(|c| {
                let mark = match c.kind {
                    "added" => '+',
                    "removed" => '-',
                    _ => 'M',
                };
                format!("{mark} {}\n", c.path)
            })
            .collect();
        ctx.out(&text);
    }
    Ok(Exit::SUCCESS)
}

pub fn stats(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [] = operands(parsed, "no operands")?;
    let stats = open_store(ctx)?.stats()?;
    if parsed.has("json") {
        print_json(ctx, &stats);
        return Ok(Exit::SUCCESS);
    }
    let ratio = stats.disk_bytes as f64 / (stats.distinct_content_bytes.max(1)) as f64;
    ctx.out(&format!(
        "slices:            {}\nnames:             {}\nobjects:           {}\n\
         on disk:           {} ({}) of file contents, {} ({}) of metadata\n\
         all slices hold:   {} ({})\n\
         distinct content:  {} ({})\non disk / distinct: {ratio:.3}\n\
         gc would free:     {} ({})\n",
        stats.slices,
        stats.names,
        stats.objects,
        stats.disk_bytes,
        human_bytes(stats.disk_bytes),
        stats.metadata_bytes,
        human_bytes(stats.metadata_bytes),
        stats.logical_bytes,
        human_bytes(stats.logical_bytes),
        stats.distinct_content_bytes,
        human_bytes(stats.distinct_content_bytes),
        stats.reclaimable_bytes,
        human_bytes(stats.reclaimable_bytes),
    ));
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
