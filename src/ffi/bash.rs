//! Bash loadable builtins: `enable -f libslicebox.so sandbox slice-add …`.
//!
//! Bash looks up the data symbol `<name>_struct` literally (hence
//! `export_name` for hyphenated names), writes into it (hence `static
//! mut`), and calls `<name>_builtin_load` first, where the help text from
//! the one option table is filled in.

use std::ffi::{c_char, c_int, CStr, CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::ptr::{addr_of_mut, null, null_mut};

use super::guard;
use crate::cli::{self, spec, Context};
use crate::runtime::{CallerSignals, HostSignals};

#[repr(C)]
pub struct WordDesc {
    word: *mut c_char,
    flags: c_int,
}

#[repr(C)]
pub struct WordList {
    next: *mut WordList,
    word: *mut WordDesc,
}

/// `struct builtin` from bash's builtins.h, unchanged since bash 2.0.
#[repr(C)]
pub struct BashBuiltin {
    name: *const c_char,
    function: Option<unsafe extern "C" fn(*mut WordList) -> c_int>,
    flags: c_int,
    long_doc: *const *const c_char,
    short_doc: *const c_char,
    handle: *mut c_char,
}

const BUILTIN_ENABLED: c_int = 0x01;
/// What the builtin returns when slicebox itself panicked.
const INTERNAL_ERROR: c_int = 101;

impl BashBuiltin {
    const fn new(
        name: &'static CStr,
        function: unsafe extern "C" fn(*mut WordList) -> c_int,
    ) -> BashBuiltin {
        BashBuiltin {
            name: name.as_ptr(),
            function: Some(function),
            flags: BUILTIN_ENABLED,
            long_doc: null(),
            short_doc: name.as_ptr(),
            handle: null_mut(),
        }
    }
}

/// The text of bash's `long_doc`: ONE string, as bash's own builtins
/// have. `help NAME` prints it after four spaces, so each later line
/// carries that indent itself; `help -d NAME` prints its first line up to
/// and including the newline (with one string per line there is no
/// newline, and `help -d a b` ran the descriptions together).
fn long_doc(help: &str) -> String {
    let mut lines = help.lines().skip(1); // bash prints short_doc as the first line itself
    let mut doc = lines.next().unwrap_or_default().to_string();
    for line in lines {
        doc.push('\n');
        if !line.is_empty() {
            doc.push_str("    ");
            doc.push_str(line);
        }
    }
    doc
}

/// Fills `short_doc` and `long_doc` from the command's spec. The strings
/// are leaked on purpose: bash keeps pointers to them while loaded.
fn fill_docs(builtin: *mut BashBuiltin, name: &str) -> c_int {
    let Some(spec) = spec::find(name) else {
        return 0;
    };
    let usage = CString::new(spec.usage).expect("usage has no NUL");
    let doc = CString::new(long_doc(&spec.help())).expect("help has no NUL");
    let lines: Vec<*const c_char> = vec![doc.into_raw().cast_const(), null()];
    // SAFETY: bash is single-threaded and calls the load hook before it
    // reads the struct; `builtin` points at one of our statics.
    unsafe {
        (*builtin).short_doc = usage.into_raw();
        (*builtin).long_doc = Box::leak(lines.into_boxed_slice()).as_ptr();
    }
    1
}

/// `char **export_env` and `maybe_make_export_env()` are bash globals
/// (bash links with -rdynamic). Resolved at run time so the library still
/// loads into hosts that are not bash.
fn bash_export_env() -> Option<Vec<OsString>> {
    // SAFETY: dlsym with RTLD_DEFAULT and NUL-terminated names.
    let (make, env) = unsafe {
        (
            libc::dlsym(libc::RTLD_DEFAULT, c"maybe_make_export_env".as_ptr()),
            libc::dlsym(libc::RTLD_DEFAULT, c"export_env".as_ptr()),
        )
    };
    if make.is_null() || env.is_null() {
        return None;
    }
    // SAFETY: in bash these have the types declared here: void (*)(void)
    // and char **; the array is NULL-terminated.
    unsafe {
        let make: extern "C" fn() = std::mem::transmute::<*mut libc::c_void, extern "C" fn()>(make);
        make();
        let mut entry = *(env as *const *const *const c_char);
        let mut out = Vec::new();
        while !entry.is_null() && !(*entry).is_null() {
            out.push(OsStr::from_bytes(CStr::from_ptr(*entry).to_bytes()).to_os_string());
            entry = entry.add(1);
        }
        Some(out)
    }
}

/// Signals the user made the shell ignore (`trap '' SIG`, or ignored when
/// the shell started), which a command the shell runs inherits as
/// ignored. bash's own ignores (SIGQUIT always; SIGINT, SIGTERM and the
/// job control signals when interactive) are not in this set: for those,
/// bash's global `signal_is_ignored` tells. bash tracks only the signals
/// it traps or owns, so one it never touches (SIGPIPE, ignored by a
/// Python parent) counts as ignored when the process ignores it. Empty in
/// hosts that are not bash.
fn bash_ignored_signals() -> Vec<i32> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name.
    let query = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"signal_is_ignored".as_ptr()) };
    if query.is_null() {
        return Vec::new();
    }
    // SAFETY: in bash this is `int signal_is_ignored (int sig)`.
    let query =
        unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn(c_int) -> c_int>(query) };
    const BASH_OWNED: [c_int; 6] = [
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ];
    (1..libc::SIGRTMIN())
        .filter(|&signal| {
            query(signal) != 0 || (!BASH_OWNED.contains(&signal) && crate::os::is_ignored(signal))
        })
        .collect()
}

/// Signals bash's own handlers received while a stage ran. The stage runs
/// in a session of its own, so a ^C typed at a terminal that the stage
/// does not read from reaches only bash; passing it on keeps the stage an
/// ordinary foreground command. Read from bash's globals
/// `interrupt_state` (SIGINT) and `terminating_signal` (SIGHUP, SIGTERM,
/// … in an interactive shell).
struct BashSignals {
    interrupt_state: *mut c_int,
    terminating_signal: *const c_int,
    interrupts: u32,
    terminating_forwarded: bool,
}

impl BashSignals {
    fn find() -> Option<Box<dyn HostSignals>> {
        // SAFETY: dlsym with RTLD_DEFAULT and NUL-terminated names.
        let (interrupt, terminating) = unsafe {
            (
                libc::dlsym(libc::RTLD_DEFAULT, c"interrupt_state".as_ptr()),
                libc::dlsym(libc::RTLD_DEFAULT, c"terminating_signal".as_ptr()),
            )
        };
        if interrupt.is_null() || terminating.is_null() {
            return None;
        }
        Some(Box::new(BashSignals {
            interrupt_state: interrupt.cast(),
            terminating_signal: terminating.cast(),
            interrupts: 0,
            terminating_forwarded: false,
        }))
    }
}

impl HostSignals for BashSignals {
    fn pending(&mut self) -> Option<c_int> {
        // SAFETY: in bash these are `volatile sig_atomic_t` globals; bash
        // is single-threaded and its handlers only store to them.
        unsafe {
            if std::ptr::read_volatile(self.interrupt_state) != 0 {
                // Counted and cleared, so that every ^C is passed on; set
                // again in `finish` so bash abandons the command line as
                // after any interrupted command.
                std::ptr::write_volatile(self.interrupt_state, 0);
                self.interrupts += 1;
                return Some(libc::SIGINT);
            }
            let terminating = std::ptr::read_volatile(self.terminating_signal);
            if terminating != 0 && !self.terminating_forwarded {
                self.terminating_forwarded = true;
                return Some(terminating);
            }
        }
        None
    }

    /// A ^C that bash passed on, or one the user typed at the stage's
    /// relayed terminal (which bash itself would have received without
    /// the relay), leaves bash interrupted, as after any interrupted
    /// command. A typed ^\\ is raised on bash itself: its own disposition
    /// decides (ignored when interactive, a trap, or the default).
    fn finish(&mut self, typed: Option<c_int>) {
        if self.interrupts > 0 || typed == Some(libc::SIGINT) {
            // SAFETY: as above.
            unsafe { std::ptr::write_volatile(self.interrupt_state, 1) };
        }
        if typed == Some(libc::SIGQUIT) {
            // SAFETY: raising a signal on this process; bash's handlers
            // for SIGQUIT only record it.
            unsafe { libc::raise(libc::SIGQUIT) };
        }
    }
}

fn words(list: *mut WordList) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut node = list;
    // SAFETY: bash passes a well-formed, NULL-terminated WORD_LIST.
    unsafe {
        while !node.is_null() {
            let word = (*node).word;
            if !word.is_null() && !(*word).word.is_null() {
                out.push(OsStr::from_bytes(CStr::from_ptr((*word).word).to_bytes()).to_os_string());
            }
            node = (*node).next;
        }
    }
    out
}

/// Runs one builtin; `None` when slicebox panicked in this process (the
/// text is in `LAST_ERROR`). A panic in a helper process is reported by
/// the command itself, with the same status.
fn run_builtin(name: &str, list: *mut WordList) -> Option<c_int> {
    guard(None, || {
        let ctx = Context {
            stdio: [0, 1, 2],
            env: bash_export_env().unwrap_or_else(cli::process_env),
            ignored_signals: bash_ignored_signals(),
            caller_signals: CallerSignals::Changed,
            host_signals: Some(BashSignals::find),
            long_lived: true,
        };
        Some(cli::run(name, &words(list), &ctx).code.max(0))
    })
}

macro_rules! bash_builtins {
    ($( $name:literal => $builtin:ident, $function:ident, $load:ident, $struct_sym:literal, $load_sym:literal; )*) => {
        $(
            unsafe extern "C" fn $function(list: *mut WordList) -> c_int {
                run_builtin($name, list).unwrap_or_else(|| {
                    let text = format!("{}: {}\n", $name, super::LAST_ERROR.with(|e| e.borrow().clone()));
                    cli::write_fd(2, text.as_bytes());
                    INTERNAL_ERROR
                })
            }

            #[export_name = $struct_sym]
            pub static mut $builtin: BashBuiltin = BashBuiltin::new(
                // SAFETY: the literal ends in exactly one NUL.
                unsafe { CStr::from_bytes_with_nul_unchecked(concat!($name, "\0").as_bytes()) },
                $function,
            );

            #[export_name = $load_sym]
            pub extern "C" fn $load(_name: *mut c_char) -> c_int {
                guard(0, || fill_docs(addr_of_mut!($builtin), $name))
            }
        )*

        #[cfg(test)]
        pub const BUILTIN_NAMES: &[&str] = &[$($name),*];
    };
}

bash_builtins! {
    "sandbox" => SANDBOX_STRUCT, sandbox_builtin, sandbox_builtin_load, "sandbox_struct", "sandbox_builtin_load";
    "slice-add" => SLICE_ADD_STRUCT, slice_add_builtin, slice_add_builtin_load, "slice-add_struct", "slice-add_builtin_load";
    "slice-list" => SLICE_LIST_STRUCT, slice_list_builtin, slice_list_builtin_load, "slice-list_struct", "slice-list_builtin_load";
    "slice-show" => SLICE_SHOW_STRUCT, slice_show_builtin, slice_show_builtin_load, "slice-show_struct", "slice-show_builtin_load";
    "slice-rm" => SLICE_RM_STRUCT, slice_rm_builtin, slice_rm_builtin_load, "slice-rm_struct", "slice-rm_builtin_load";
    "slice-tag" => SLICE_TAG_STRUCT, slice_tag_builtin, slice_tag_builtin_load, "slice-tag_struct", "slice-tag_builtin_load";
    "slice-gc" => SLICE_GC_STRUCT, slice_gc_builtin, slice_gc_builtin_load, "slice-gc_struct", "slice-gc_builtin_load";
    "slice-verify" => SLICE_VERIFY_STRUCT, slice_verify_builtin, slice_verify_builtin_load, "slice-verify_struct", "slice-verify_builtin_load";
    "slice-diff" => SLICE_DIFF_STRUCT, slice_diff_builtin, slice_diff_builtin_load, "slice-diff_struct", "slice-diff_builtin_load";
    "store-stats" => STORE_STATS_STRUCT, store_stats_builtin, store_stats_builtin_load, "store-stats_struct", "store-stats_builtin_load";
    "slice-export" => SLICE_EXPORT_STRUCT, slice_export_builtin, slice_export_builtin_load, "slice-export_struct", "slice-export_builtin_load";
    "slice-env" => SLICE_ENV_STRUCT, slice_env_builtin, slice_env_builtin_load, "slice-env_struct", "slice-env_builtin_load";
    "layer-add" => LAYER_ADD_STRUCT, layer_add_builtin, layer_add_builtin_load, "layer-add_struct", "layer-add_builtin_load";
    "layer-list" => LAYER_LIST_STRUCT, layer_list_builtin, layer_list_builtin_load, "layer-list_struct", "layer-list_builtin_load";
    "layer-show" => LAYER_SHOW_STRUCT, layer_show_builtin, layer_show_builtin_load, "layer-show_struct", "layer-show_builtin_load";
    "layer-rm" => LAYER_RM_STRUCT, layer_rm_builtin, layer_rm_builtin_load, "layer-rm_struct", "layer-rm_builtin_load";
    "layer-mount" => LAYER_MOUNT_STRUCT, layer_mount_builtin, layer_mount_builtin_load, "layer-mount_struct", "layer-mount_builtin_load";
    "layer-umount" => LAYER_UMOUNT_STRUCT, layer_umount_builtin, layer_umount_builtin_load, "layer-umount_struct", "layer-umount_builtin_load";
    "slice-push" => SLICE_PUSH_STRUCT, slice_push_builtin, slice_push_builtin_load, "slice-push_struct", "slice-push_builtin_load";
    "slice-pull" => SLICE_PULL_STRUCT, slice_pull_builtin, slice_pull_builtin_load, "slice-pull_struct", "slice-pull_builtin_load";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_doc_is_one_string_whose_first_line_is_the_summary() {
        let doc = long_doc(&spec::SANDBOX.help());
        let (first, rest) = doc.split_once('\n').expect("more than one line");
        assert_eq!(first, spec::SANDBOX.summary);
        assert!(rest.contains("\n      --slice REF"), "{rest}");
        assert!(!doc.contains(" \n"), "no trailing blanks");
    }

    #[test]
    fn every_command_has_a_builtin_and_every_builtin_a_command() {
        let commands: Vec<&str> = spec::COMMANDS.iter().map(|c| c.name).collect();
        assert_eq!(BUILTIN_NAMES, commands.as_slice());
    }
}
