//! `slicebox ps`: the running stages, from the pins they hold in the
//! store, with or without slices (docs/formats.md, "Locking, pins and gc").

use super::{Context, Exit, Failure, Parsed};
use crate::store::StageNote;
use crate::text::printable;

/// The host pid of the stage's pid 1: the child of `holder` that is pid 1
/// of a pid namespace of its own (`NSpid:` ends in 1). `None` when it is
/// gone or not ours to see.
fn stage_pid(holder: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{holder}/task/{holder}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .find(|child| {
            let status =
                std::fs::read_to_string(format!("/proc/{child}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .is_some_and(|ids| {
                    let ids: Vec<&str> = ids.split_whitespace().collect();
                    ids.len() > 1 && ids.last() == Some(&"1")
                })
        })
}

/// `5s`, `3m07s`, `2h05m`, `3d04h`.
fn age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// One argument as a shell would need it: quoted when it holds anything
/// but plain characters; control characters escaped.
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&b));
    let shown = printable(arg.as_bytes());
    if plain {
        shown
    } else {
        format!("'{}'", shown.replace('\'', r"'\''"))
    }
}

fn command_line(note: &StageNote) -> String {
    if note.command.is_empty() {
        return "(a shell)".into();
    }
    note.command
        .iter()
        .map(|a| shell_word(a))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn run(parsed: &Parsed, ctx: &Context) -> Result<Exit, Failure> {
    if !parsed.operands.is_empty() {
        return Err(Failure::usage("ps takes no operands"));
    }
    let root = crate::store::Store::default_root(&ctx.env_pairs())
        .ok_or_else(|| Failure::usage("cannot find the store: set SLICEBOX_STORE or HOME"))?;
    // No store, no stage that uses one: do not make it just to say so.
    let stages = if root.is_dir() {
        super::open_store_or(ctx, Exit::FAILURE)?.running_stages()?
    } else {
        Vec::new()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if parsed.has("json") {
        let rows: Vec<serde_json::Value> = stages
            .iter()
            .map(|(digests, note)| {
                serde_json::json!({
                    "pid": stage_pid(note.holder),
                    "holder": note.holder,
                    "started": note.started,
                    "age_seconds": now.saturating_sub(note.started),
                    "slices": note.slices,
                    "digests": digests.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "command": note.command,
                })
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&rows).expect("rows serialise");
        text.push('\n');
        ctx.out(&text);
        return Ok(Exit::SUCCESS);
    }
    let mut text = format!(
        "{:<8} {:<8} {:<7} {:<24} COMMAND\n",
        "PID", "HOLDER", "AGE", "SLICES"
    );
    for (_, note) in &stages {
        let pid = stage_pid(note.holder).map_or("-".to_string(), |p| p.to_string());
        let mut slices: Vec<String> = note
            .slices
            .iter()
            .map(|s| printable(s.as_bytes()))
            .collect();
        if slices.is_empty() {
            slices.push("-".into());
        }
        text.push_str(&format!(
            "{pid:<8} {:<8} {:<7} {:<24} {}\n",
            note.holder,
            age(now.saturating_sub(note.started)),
            slices.join(","),
            command_line(note)
        ));
    }
    ctx.out(&text);
    Ok(Exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_words() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(187), "3m07s");
        assert_eq!(age(7500), "2h05m");
        assert_eq!(shell_word("sleep"), "sleep");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("\x1b[2J"), r"'\u{1b}[2J'");
    }
}
