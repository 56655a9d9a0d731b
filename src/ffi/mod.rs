//! The C boundary. Every exported function runs inside [`guard`], so a
//! panic becomes a status code and never unwinds into the host (a panic
//! escaping `extern "C"` would abort the user's shell).
//!
//! The C API (`include/slicebox.h`) is for any host program; the bash
//! loadable builtins in [`bash`] are thin shims over the same [`cli::run`].

/// cbindgen:ignore
mod bash;

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::cli::{self, Context};
use crate::runtime::CallerSignals;

/// Result of a `slicebox_*` call. Values are never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceboxStatus {
    /// The call did what it was asked; for `slicebox_run` the command ran
    /// (its own exit status may still be non-zero).
    SliceboxOk = 0,
    /// A pointer was NULL, argc was 0, or a descriptor was not open.
    SliceboxInvalidArgument = 1,
    /// slicebox hit an internal error (a panic); see `slicebox_last_error`.
    SliceboxInternalError = 2,
    /// The output buffer is too small; nothing was written.
    SliceboxBufferTooSmall = 3,
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(text: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

/// Runs `body`, turning a panic into `on_panic` and a last-error text.
pub(crate) fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            set_last_error(format!(
                "internal error: {}",
                cli::helper::panic_text(&*payload)
            ));
            on_panic
        }
    }
}

/// Runs one slicebox command, e.g. `{"sandbox", "--", "true"}`, with the
/// given descriptors as its stdin, stdout and stderr, and the process
/// environment. On `SLICEBOX_OK`, `*exit_status` receives the command's
/// exit status (0–255, as a shell would report it). Error messages go to
/// `stderr_fd`, as a command's would.
///
/// # Safety
/// `argv` must point to `argc` pointers to NUL-terminated strings;
/// `exit_status` must be a valid pointer to an int.
#[no_mangle]
pub unsafe extern "C" fn slicebox_run(
    argv: *const *const c_char,
    argc: usize,
    stdin_fd: c_int,
    stdout_fd: c_int,
    stderr_fd: c_int,
    exit_status: *mut c_int,
) -> SliceboxStatus {
    guard(SliceboxStatus::SliceboxInternalError, || {
        if argv.is_null() || exit_status.is_null() || argc == 0 {
            set_last_error(
                "argv and exit_status must not be NULL, and argc must be at least 1".into(),
            );
            return SliceboxStatus::SliceboxInvalidArgument;
        }
        // SAFETY: the caller promises `argc` valid pointers at `argv`.
        let raw = unsafe { std::slice::from_raw_parts(argv, argc) };
        let mut args = Vec::with_capacity(argc);
        for &arg in raw {
            if arg.is_null() {
                set_last_error("argv contains a NULL pointer".into());
                return SliceboxStatus::SliceboxInvalidArgument;
            }
            // SAFETY: the caller promises NUL-terminated strings.
            args.push(OsString::from(std::ffi::OsStr::from_bytes(
                unsafe { CStr::from_ptr(arg) }.to_bytes(),
            )));
        }
        for (what, fd) in [
            ("stdin_fd", stdin_fd),
            ("stdout_fd", stdout_fd),
            ("stderr_fd", stderr_fd),
        ] {
            if !cli::is_open(fd) {
                set_last_error(format!("{what} {fd} is not an open descriptor"));
                return SliceboxStatus::SliceboxInvalidArgument;
            }
        }
        let name = args.remove(0);
        let ctx = Context {
            stdio: [stdin_fd, stdout_fd, stderr_fd],
            env: cli::process_env(),
            ignored_signals: Vec::new(),
            caller_signals: CallerSignals::Changed,
            host_signals: None,
            long_lived: true,
        };
        let exit = cli::run(&name.to_string_lossy(), &args, &ctx);
        // SAFETY: checked non-NULL above; written only on success.
        unsafe { *exit_status = exit.code };
        SliceboxStatus::SliceboxOk
    })
}

/// Copies this thread's last error text (NUL-terminated) into `buf`.
/// Writes the needed size including the NUL to `*needed` when it is not
/// NULL, so a caller can retry with a larger buffer.
///
/// # Safety
/// `buf` must be valid for `len` bytes; `needed` must be NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn slicebox_last_error(
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> SliceboxStatus {
    guard(SliceboxStatus::SliceboxInternalError, || {
        let text = LAST_ERROR.with(|e| e.borrow().clone());
        let size = text.len() + 1;
        if !needed.is_null() {
            // SAFETY: checked non-NULL; the caller promises validity.
            unsafe { *needed = size };
        }
        if buf.is_null() {
            return SliceboxStatus::SliceboxInvalidArgument;
        }
        if len < size {
            return SliceboxStatus::SliceboxBufferTooSmall;
        }
        // SAFETY: `buf` holds at least `size` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast(), text.len());
            *buf.add(text.len()) = 0;
        }
        SliceboxStatus::SliceboxOk
    })
}

/// The library version as a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn slicebox_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("version has no interior NUL"),
        };
    VERSION.as_ptr()
}
