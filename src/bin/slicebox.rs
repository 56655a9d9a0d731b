//! The `slicebox` executable: `slicebox COMMAND …`, or invoked through a
//! link named after a command (`sandbox …`, `slice-add …`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use slicebox::cli::{self, spec, Context, Exit};
use slicebox::runtime::{forward_signals_to_stage, CallerSignals};

fn usage() -> String {
    let mut text = String::from("Usage: slicebox COMMAND [ARG...]\n\nCommands:\n");
    for command in spec::COMMANDS.iter().chain(spec::TOOLS) {
        text.push_str(&format!("  {:12} {}\n", command.name, command.summary));
    }
    text.push_str("\n`slicebox COMMAND --help` describes one command. A link to slicebox\nnamed after a command runs that command.\n");
    text
}

/// Signals ignored by whoever started us stay ignored in the payload, as
/// for any command a shell runs. SIGPIPE is the exception: Rust's runtime
/// ignores it before `main`, so its inherited disposition is unknowable;
/// the payload gets the default, as pipeline stages expect.
fn inherited_ignored_signals() -> Vec<i32> {
    let mut ignored = slicebox::os::ignored_signals();
    ignored.retain(|&signal| signal != libc::SIGPIPE);
    ignored
}

fn main() {
    let ignored_signals = inherited_ignored_signals();
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    args.remove(0);
    let ctx = Context {
        stdio: [0, 1, 2],
        env: cli::process_env(),
        ignored_signals,
        caller_signals: CallerSignals::Inherited,
        host_signals: None,
        // Its memory dies with it: no helper processes.
        long_lived: false,
    };
    // Only the builtins' names act through a link (`slicebox doctor` has none).
    let command = if spec::COMMANDS.iter().any(|c| c.name == invoked) {
        invoked
    } else {
        match args.first().map(|a| a.as_bytes()) {
            None | Some(b"--help") | Some(b"-h") | Some(b"help") => {
                ctx.out(&usage());
                std::process::exit(if args.is_empty() { 2 } else { 0 });
            }
            // One command name per line, for scripts that install links.
            Some(b"--commands") => {
                let names: String = spec::COMMANDS
                    .iter()
                    .map(|c| format!("{}\n", c.name))
                    .collect();
                ctx.out(&names);
                std::process::exit(0);
            }
            // Hidden: what share/ holds, made from the option table.
            Some(b"--generate") => generate(&ctx, &args[1..]),
            Some(b"--version") => {
                ctx.out(&format!("slicebox {}\n", env!("CARGO_PKG_VERSION")));
                std::process::exit(0);
            }
            Some(_) => args.remove(0).to_string_lossy().into_owned(),
        }
    };
    if command == "sandbox" {
        // Signals sent to us reach the stage while it runs, and end us as
        // they would any command before it starts.
        forward_signals_to_stage();
    }
    let exit = cli::run(&command, &args, &ctx);
    die_like(exit);
}

/// `--generate man [COMMAND] | complete-bash | complete-zsh`.
fn generate(ctx: &Context, what: &[OsString]) -> ! {
    use slicebox::cli::generate;
    let what: Vec<&str> = what.iter().map(|w| w.to_str().unwrap_or("")).collect();
    let text = match what.as_slice() {
        ["man"] | ["man", "slicebox"] => generate::man_overview(),
        ["man", name] => match spec::find(name) {
            Some(command) => generate::man_page(command),
            None => {
                ctx.err(&format!(
                    "slicebox: --generate man: unknown command '{name}'\n"
                ));
                std::process::exit(2);
            }
        },
        ["complete-bash"] => generate::bash_completion(),
        ["complete-zsh"] => generate::zsh_completion(),
        _ => {
            ctx.err("Usage: slicebox --generate man [COMMAND] | complete-bash | complete-zsh\n");
            std::process::exit(2);
        }
    };
    ctx.out(&text);
    std::process::exit(0);
}

/// Exits with the payload's status; if it died of a signal, dies of the
/// same signal so the calling shell sees exactly what happened.
fn die_like(exit: Exit) -> ! {
    if let Some(signal) = exit.signal {
        // SAFETY: restoring the default action and raising are plain calls.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            // A core dump of the payload's signal would be of us, not it.
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::raise(signal);
        }
    }
    std::process::exit(exit.code);
}
