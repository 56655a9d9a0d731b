//! The store commands: slice-add, slice-list, slice-show, slice-rm,
//! slice-tag, slice-gc, slice-verify, slice-diff, store-stats.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::messages::{count, human_bytes, slice_label};
use super::{Context, Exit, Failure, Parsed};
use crate::store::{
    Damage, FromArchive, IngestOptions, Limits, PrefixCheck, ProgressSink, Source, Store, Tally,
};
use crate::text::{json_bytes, printable, printable_path};

/// Runs the store command `name` (every command but `sandbox`).
pub fn run(name: &str, parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    match name {
        "slice-add" => add(parsed, ctx),
        "slice-list" => list(parsed, ctx),
        "slice-show" => show(parsed, ctx),
        "slice-rm" => remove(parsed, ctx),
        "slice-tag" => tag(parsed, ctx),
        "slice-gc" => gc(parsed, ctx),
        "slice-verify" => verify(parsed, ctx),
        "slice-diff" => diff(parsed, ctx),
        "store-stats" => stats(parsed, ctx),
        "slice-export" => super::export::run(parsed, ctx),
        "slice-env" => super::slice_env::run(parsed, ctx),
        "layer-add" | "layer-list" | "layer-show" | "layer-rm" => {
            super::layers::run(name, parsed, ctx)
        }
        "layer-mount" | "layer-umount" => super::layer_mount::run(name, parsed, ctx),
        _ => unreachable!("every command in spec::COMMANDS is dispatched"),
    }
}

/// The store, for the store commands: a failure to open it is theirs (1).
pub(super) fn store(ctx: &Context) -> Result<crate::store::Store, Failure> {
    super::open_store_or(ctx, Exit::FAILURE)
}

/// The limits of an add: `SLICEBOX_LIMITS`, then each `--limit`.
pub(super) fn limits(parsed: &Parsed, ctx: &Context) -> Result<Limits, Failure> {
    Limits::from_settings(
        ctx.var("SLICEBOX_LIMITS").as_deref(),
        parsed
            .values("limit")
            .map(|v| v.to_str().unwrap_or("(not UTF-8)")),
    )
    .map_err(|e| Failure::usage(printable(e.as_bytes())))
}

pub(super) fn utf8(value: &std::ffi::OsStr, what: &str) -> Result<String, Failure> {
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
    for entry in &env {
        crate::env::check_slice_entry(entry.as_bytes()).map_err(|why| {
            Failure::usage(format!("--env '{}': {why}", printable(entry.as_bytes())))
        })?;
    }
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
                        printable_path(&path),
                        crate::text::io_cause(&e)
                    ),
                    exit: Exit::FAILURE,
                })
            }
        }
    };
    let limits = limits(parsed, ctx)?;
    let store = store(ctx)?;
    let added = store.add_slice(
        &name,
        &source,
        &IngestOptions {
            mount_point,
            env,
            limits,
            prefix_check: match parsed.has("at") {
                true => PrefixCheck::Report,
                false => PrefixCheck::Default,
            },
            progress: terminal_progress(ctx.stdio[2], format!("adding {name}")),
            stat_cache: false,
            // An exported slice's own mount point and environment, unless given.
            from_archive: FromArchive {
                mount_point: !parsed.has("at"),
                env: !parsed.has("env"),
            },
        },
    )?;
    report_prefixes(ctx, &name, &added);
    let mut repairs = Vec::new();
    if added.healed_objects > 0 {
        repairs.push(format!(
            "replaced {}",
            count(added.healed_objects, "damaged object", "damaged objects")
        ));
    }
    if added.healed_slice {
        repairs.push("replaced the stored slice, whose tree or metadata was damaged".into());
    }
    if added.healed_sharers > 0 {
        repairs.push(format!(
            "rebuilt {} that linked a damaged object",
            count(added.healed_sharers, "other slice", "other slices")
        ));
    }
    if !repairs.is_empty() {
        ctx.err(&format!(
            "slice-add: repaired the store: {}\n",
            repairs.join("; ")
        ));
    }
    ctx.out(&format!("{}\n", added.info.digest));
    Ok(Exit::SUCCESS)
}

/// One line per prefix the tree was built for: where it was mounted, or
/// how to mount it where it works.
fn report_prefixes(ctx: &Context, name: &str, added: &crate::store::Added) {
    let mount_point = &added.info.manifest.mount_point;
    for found in &added.built_for {
        let prefix = printable(found.prefix.as_bytes());
        let why = format!("{}'s {}", printable(found.witness.as_bytes()), found.how);
        let line = if found.prefix == *mount_point {
            format!("'{name}' mounts at {prefix}, the prefix it was built for ({why}); --at picks another")
        } else if let Err(e) = crate::store::validate_mount_point(&found.prefix) {
            format!("'{name}' was built for {prefix} ({why}), which no stage can mount: {e}; rebuild it for {mount_point}")
        } else {
            format!("'{name}' was built for {prefix} ({why}); add it with --at {prefix}, or rebuild it for {mount_point}")
        };
        ctx.err(&format!("slice-add: {line}\n"));
    }
}

pub fn list(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    if !parsed.operands.is_empty() {
        return Err(Failure::usage("slice-list takes no operands"));
    }
    let store = store(ctx)?;
    let named = store.list_named()?;
    let mut damaged = 0;
    let mut readable = Vec::new();
    for (name, digest, manifest) in named {
        match manifest {
            Ok(manifest) => readable.push((name, digest, manifest)),
            Err(e) => {
                damaged += 1;
                ctx.err(&format!(
                    "slice-list: slice '{name}' is damaged: {e} (re-adding its source repairs it)\n"
                ));
            }
        }
    }
    if parsed.has("json") {
        let rows: Vec<_> = readable
            .iter()
            .map(|(name, digest, manifest)| {
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
    } else {
        let mut text = String::new();
        for (name, digest, manifest) in &readable {
            text.push_str(&format!(
                "{name}\t{digest}\t{}\t{} files\t{}\n",
                manifest.mount_point,
                manifest.files,
                human_bytes(manifest.bytes)
            ));
        }
        ctx.out(&text);
    }
    Ok(if damaged > 0 {
        Exit::FAILURE
    } else {
        Exit::SUCCESS
    })
}

pub fn show(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [reference] = parsed.operands.as_slice() else {
        return Err(Failure::usage("expected one REF"));
    };
    let store = store(ctx)?;
    let digest = store.resolve(&reference.to_string_lossy())?;
    let info = store.slice_info(&digest)?;
    let usage = store.usage(&digest)?;
    if parsed.has("json") {
        let mut value = serde_json::to_value(&info).expect("slice info always serialises");
        value["shared_bytes"] = usage.shared_bytes.into();
        value["unique_bytes"] = usage.unique_bytes.into();
        value["distinct_bytes"] = (usage.shared_bytes + usage.unique_bytes).into();
        if let Some(map) = value.as_object_mut() {
            json_bytes(
                map,
                "path",
                store.slice_tree(&digest).as_os_str().as_bytes(),
            );
        }
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
        text.push_str(&format!("env:         {}\n", printable(entry.as_bytes())));
    }
    let distinct = usage.shared_bytes + usage.unique_bytes;
    text.push_str(&format!(
        "distinct:    {} ({}) counting each content once: shared + unique\n\
         shared:      {} ({}) also in other slices\nunique:      {} ({}) only in this slice\n",
        distinct,
        human_bytes(distinct),
        usage.shared_bytes,
        human_bytes(usage.shared_bytes),
        usage.unique_bytes,
        human_bytes(usage.unique_bytes),
    ));
    text.push_str(&format!(
        "path:        {}\n",
        printable_path(&store.slice_tree(&digest))
    ));
    ctx.out(&text);
    Ok(Exit::SUCCESS)
}

pub(super) fn print_json(ctx: &Context, value: &impl serde::Serialize) {
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
    let store = store(ctx)?;
    let removed = store.remove(&reference)?;
    if removed.is_empty() {
        return Err(Failure {
            message: format!(
                "cannot remove '{}': no name points at it (history entries such as NAME@1 go at the next slice-gc)",
                printable(reference.as_bytes())
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
    let store = store(ctx)?;
    ctx.out(&format!("{}\n", store.tag(&reference, &name)?));
    Ok(Exit::SUCCESS)
}

pub fn gc(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [] = operands(parsed, "no operands")?;
    let report = store(ctx)?.gc()?;
    if parsed.has("json") {
        print_json(ctx, &report);
    } else {
        let mut removed = vec![
            count(report.slices_removed, "slice", "slices"),
            count(report.objects_removed, "object", "objects"),
        ];
        if report.cache_entries_removed > 0 {
            removed.push(count(
                report.cache_entries_removed,
                "cache entry",
                "cache entries",
            ));
        }
        if report.leftovers_removed > 0 {
            removed.push(count(report.leftovers_removed, "leftover", "leftovers") + " in tmp/");
        }
        if report.layer_files_removed > 0 {
            removed.push(count(
                report.layer_files_removed,
                "unused layer file",
                "unused layer files",
            ));
        }
        let last = removed.pop().expect("two at least");
        ctx.out(&format!(
            "removed {} and {last}, freed {}\n",
            removed.join(", "),
            human_bytes(report.bytes_freed)
        ));
    }
    Ok(Exit::SUCCESS)
}

pub fn verify(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let store = store(ctx)?;
    let slice = match parsed.operands.as_slice() {
        [] => None,
        [reference] => Some(store.resolve(&reference.to_string_lossy())?),
        _ => return Err(Failure::usage("expected at most one REF")),
    };
    // Each damaged path is printed as it is found: nothing grows with the
    // damage. The JSON array is closed whatever stops the verify.
    let json = parsed.has("json");
    let mut rows = 0u64;
    if json {
        ctx.out("[");
    }
    let verified = store.verify_each(slice.as_ref(), &mut |d| {
        let line = match json {
            true => json_damage_row(&store, &d, rows == 0),
            false => text_damage_line(&store, &d),
        };
        ctx.out(&line);
        rows += 1;
    });
    if json {
        ctx.out(if rows == 0 { "]\n" } else { "\n]\n" });
    }
    match verified? {
        0 => Ok(Exit::SUCCESS),
        damaged => Err(Failure {
            message: count(damaged, "damaged path", "damaged paths"),
            exit: Exit::FAILURE,
        }),
    }
}

/// One damaged path as an element of the pretty-printed JSON array.
fn json_damage_row(store: &Store, d: &Damage, first: bool) -> String {
    let mut row = serde_json::Map::new();
    json_bytes(&mut row, "path", d.path.as_os_str().as_bytes());
    if let Some(slice) = d.slice {
        row.insert("slice".into(), slice.to_string().into());
        let names = store.names_of(&slice).unwrap_or_default();
        row.insert("names".into(), names.into());
    }
    row.insert("problem".into(), d.problem.clone().into());
    let pretty = serde_json::to_string_pretty(&row).expect("rows always serialise");
    let indented = pretty.replace('\n', "\n  ");
    format!("{}\n  {indented}", if first { "" } else { "," })
}

fn text_damage_line(store: &Store, d: &Damage) -> String {
    let slice = d.slice.map(|s| slice_label(store, &s)).unwrap_or_default();
    format!(
        "damaged: {slice}{}: {}\n",
        printable_path(&d.path),
        d.problem
    )
}

pub fn diff(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [a, b] = operands(parsed, "two REFs")?;
    let store = store(ctx)?;
    let changes = store.diff(&store.resolve(&a)?, &store.resolve(&b)?)?;
    if parsed.has("json") {
        let rows: Vec<serde_json::Value> = changes
            .iter()
            .map(|c| {
                let mut row = serde_json::Map::new();
                row.insert("kind".into(), c.kind.into());
                json_bytes(&mut row, "path", &c.path);
                row.into()
            })
            .collect();
        print_json(ctx, &rows);
    } else {
        let text: String = changes
            .iter()
            .map(|c| {
                let mark = match c.kind {
                    "added" => '+',
                    "removed" => '-',
                    _ => 'M',
                };
                format!("{mark} {}\n", printable(&c.path))
            })
            .collect();
        ctx.out(&text);
    }
    Ok(Exit::SUCCESS)
}

pub fn stats(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    let [] = operands(parsed, "no operands")?;
    let stats = store(ctx)?.stats()?;
    if parsed.has("json") {
        print_json(ctx, &stats);
        return Ok(Exit::SUCCESS);
    }
    let ratio = stats.disk_bytes as f64 / (stats.distinct_content_bytes.max(1)) as f64;
    ctx.out(&format!(
        "store:             {}\nslices:            {}\nnames:             {}\nobjects:           {}\n\
         on disk:           {} ({}) of file contents, {} ({}) of metadata\n\
         all slices hold:   {} ({})\n\
         distinct content:  {} ({})\non disk / distinct: {ratio:.3}\n\
         gc would free:     {} ({})\n",
        stats.store,
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

/// A progress line redrawn on `fd` when it is a terminal; nothing otherwise.
pub(super) fn terminal_progress(fd: std::os::fd::RawFd, label: String) -> Option<ProgressSink> {
    if !crate::os::is_terminal(fd) {
        return None;
    }
    Some(ProgressSink(std::sync::Arc::new(move |tally: Tally| {
        let line = if tally.done {
            "\r\x1b[K".to_string()
        } else {
            let mib = tally.bytes as f64 / (1 << 20) as f64;
            let rate = mib / tally.elapsed.as_secs_f64().max(0.001);
            format!(
                "\r\x1b[K{label}: {} files, {mib:.1} MiB ({rate:.0} MiB/s)",
                tally.files
            )
        };
        super::write_fd(fd, line.as_bytes());
    })))
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
