//! Loads the built libslicebox.so the way a host shell would and drives
//! its C API and bash loadable symbols.

use std::ffi::{c_char, c_int, CStr, CString};
use std::os::fd::AsRawFd;

use libloading::{Library, Symbol};

type RunFn =
    unsafe extern "C" fn(*const *const c_char, usize, c_int, c_int, c_int, *mut c_int) -> u32;
type LastErrorFn = unsafe extern "C" fn(*mut c_char, usize, *mut usize) -> u32;
type VersionFn = unsafe extern "C" fn() -> *const c_char;
type LoadFn = unsafe extern "C" fn(*mut c_char) -> c_int;

const OK: u32 = 0;
const INVALID_ARGUMENT: u32 = 1;
const BUFFER_TOO_SMALL: u32 = 3;

/// The cdylib cargo built next to this test binary.
fn library() -> Library {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("libslicebox.so");
    // SAFETY: loading our own library; its initialisers are Rust's defaults.
    unsafe { Library::new(&path) }.unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
}

fn run(lib: &Library, args: &[&str], out: &std::fs::File, err: &std::fs::File) -> (u32, c_int) {
    let owned: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
    let ptrs: Vec<*const c_char> = owned.iter().map(|a| a.as_ptr()).collect();
    let mut status = -1;
    // SAFETY: the symbol has the documented signature; argv holds argc valid strings.
    let result = unsafe {
        let f: Symbol<RunFn> = lib.get(b"slicebox_run\0").unwrap();
        f(
            ptrs.as_ptr(),
            ptrs.len(),
            0,
            out.as_raw_fd(),
            err.as_raw_fd(),
            &mut status,
        )
    };
    (result, status)
}

fn temp_file() -> std::fs::File {
    tempfile::tempfile().unwrap()
}

fn read_all(mut file: &std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut text = String::new();
    file.rewind().unwrap();
    file.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn run_writes_help_to_the_given_stdout_and_reports_status() {
    let lib = library();
    let (out, err) = (temp_file(), temp_file());
    assert_eq!(run(&lib, &["sandbox", "--help"], &out, &err), (OK, 0));
    assert!(read_all(&out).starts_with("Usage: sandbox [OPTIONS]"));
    assert_eq!(read_all(&err), "");
}

#[test]
fn usage_errors_give_status_2_and_a_message_on_the_given_stderr() {
    let lib = library();
    let (out, err) = (temp_file(), temp_file());
    assert_eq!(run(&lib, &["sandbox", "--bogus"], &out, &err), (OK, 2));
    assert!(read_all(&err).starts_with("sandbox: unknown option '--bogus'\n"));
    assert_eq!(run(&lib, &["no-such-command"], &out, &err), (OK, 2));
}

#[test]
fn store_commands_run_through_the_c_api() {
    let lib = library();
    let store = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("hello"), "hi\n").unwrap();
    // slicebox_run uses the process environment, as documented.
    std::env::set_var("SLICEBOX_STORE", store.path());
    let (out, err) = (temp_file(), temp_file());
    let src = source.path().to_str().unwrap();
    assert_eq!(
        run(
            &lib,
            &["slice-add", "abi-test", src, "--at", "/opt/abi"],
            &out,
            &err
        ),
        (OK, 0)
    );
    let digest = read_all(&out);
    assert!(
        digest.starts_with("sha256:") && digest.len() == 72,
        "{digest:?}"
    );
    let (out2, _) = (temp_file(), temp_file());
    assert_eq!(run(&lib, &["slice-list"], &out2, &err), (OK, 0));
    assert!(read_all(&out2).starts_with(&format!("abi-test\t{}", digest.trim())));
}

#[test]
fn null_arguments_are_refused_with_an_error_text() {
    let lib = library();
    let mut status = 7;
    // SAFETY: documented signatures; NULL argv is what is being tested.
    unsafe {
        let f: Symbol<RunFn> = lib.get(b"slicebox_run\0").unwrap();
        assert_eq!(
            f(std::ptr::null(), 1, 0, 1, 2, &mut status),
            INVALID_ARGUMENT
        );
        assert_eq!(status, 7, "outputs are written only on success");
        let last: Symbol<LastErrorFn> = lib.get(b"slicebox_last_error\0").unwrap();
        let mut needed = 0usize;
        let mut tiny = [0 as c_char; 4];
        assert_eq!(
            last(tiny.as_mut_ptr(), tiny.len(), &mut needed),
            BUFFER_TOO_SMALL
        );
        let mut buf = vec![0 as c_char; needed];
        assert_eq!(last(buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()), OK);
        let text = CStr::from_ptr(buf.as_ptr()).to_str().unwrap();
        assert!(text.contains("must not be NULL"), "{text}");
    }
}

#[test]
fn version_matches_the_crate() {
    let lib = library();
    // SAFETY: returns a static NUL-terminated string.
    let version = unsafe {
        let f: Symbol<VersionFn> = lib.get(b"slicebox_version\0").unwrap();
        CStr::from_ptr(f())
    };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

/// Mirror of bash's `struct builtin`.
#[repr(C)]
struct BashBuiltin {
    name: *const c_char,
    function: Option<unsafe extern "C" fn(*mut std::ffi::c_void) -> c_int>,
    flags: c_int,
    long_doc: *const *const c_char,
    short_doc: *const c_char,
    handle: *mut c_char,
}

#[test]
fn every_builtin_exports_a_writable_struct_and_a_load_hook_that_fills_help() {
    let lib = library();
    for command in slicebox::cli::spec::COMMANDS {
        let name = command.name;
        // SAFETY: the symbols have the layout and signature bash expects.
        unsafe {
            let builtin: Symbol<*mut BashBuiltin> =
                lib.get(format!("{name}_struct\0").as_bytes()).unwrap();
            let builtin = *builtin;
            assert_eq!(CStr::from_ptr((*builtin).name).to_str().unwrap(), name);
            assert_eq!((*builtin).flags & 1, 1, "{name} is enabled");
            assert!((*builtin).function.is_some());
            // bash writes into the struct: this must not fault.
            (*builtin).handle = std::ptr::null_mut();
            let load: Symbol<LoadFn> = lib
                .get(format!("{name}_builtin_load\0").as_bytes())
                .unwrap();
            let arg = CString::new(name).unwrap();
            assert_eq!(
                load(arg.as_ptr().cast_mut()),
                1,
                "load hook of {name} succeeds"
            );
            let short = CStr::from_ptr((*builtin).short_doc).to_str().unwrap();
            assert!(short.starts_with(name), "{short}");
            let first_line = CStr::from_ptr(*(*builtin).long_doc).to_str().unwrap();
            assert!(!first_line.is_empty());
        }
    }
}

/// Regression: under a low descriptor limit, moving a caller's stdout
/// onto the payload's fd 1 once failed unnoticed, and the payload wrote
/// to the host's own fd 1. Run in a child process, so the limit and the
/// descriptors touch nothing else of the test binary.
#[test]
fn remapped_stdout_under_a_low_fd_limit_reaches_the_given_file() {
    if std::env::var_os("SLICEBOX_ABI_LOWFD_CHILD").is_some() {
        return low_fd_child();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "remapped_stdout_under_a_low_fd_limit_reaches_the_given_file",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SLICEBOX_ABI_LOWFD_CHILD", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    assert!(
        stdout.contains("slicebox_run: 0, exit 0"),
        "the stage ran: {stdout}"
    );
    assert!(
        !stdout.contains("into-the-file"),
        "the payload wrote to the host's fd 1: {stdout}"
    );
    let file = std::fs::read_to_string(dir.path().join("payload.out")).unwrap();
    assert_eq!(file, "into-the-file\n");
}

fn low_fd_child() {
    let dir = std::path::PathBuf::from(std::env::var_os("SLICEBOX_ABI_LOWFD_CHILD").unwrap());
    let file = std::fs::File::create(dir.join("payload.out")).unwrap();
    let lib = library();
    // SAFETY: setrlimit with a valid struct; this process is the test's own child.
    unsafe {
        let limit = libc::rlimit {
            rlim_cur: 64,
            rlim_max: 64,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    let args: Vec<CString> = ["sandbox", "--", "sh", "-c", "echo into-the-file"]
        .iter()
        .map(|a| CString::new(*a).unwrap())
        .collect();
    let ptrs: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    let mut status = -1;
    // SAFETY: the documented signature; argv holds argc valid strings.
    let result = unsafe {
        let f: Symbol<RunFn> = lib.get(b"slicebox_run\0").unwrap();
        f(
            ptrs.as_ptr(),
            ptrs.len(),
            0,
            file.as_raw_fd(),
            2,
            &mut status,
        )
    };
    println!("slicebox_run: {result}, exit {status}");
}

#[test]
fn descriptors_that_are_not_open_are_invalid_arguments() {
    let lib = library();
    let args = [c"sandbox".as_ptr(), c"--".as_ptr(), c"true".as_ptr()];
    for (stdin, stdout, stderr) in [(-1, 1, 2), (0, 987, 2), (0, 1, -5)] {
        let mut status = 7;
        // SAFETY: the documented signature; bad fds are what is being tested.
        let result = unsafe {
            let f: Symbol<RunFn> = lib.get(b"slicebox_run\0").unwrap();
            f(
                args.as_ptr(),
                args.len(),
                stdin,
                stdout,
                stderr,
                &mut status,
            )
        };
        assert_eq!(result, INVALID_ARGUMENT, "{stdin} {stdout} {stderr}");
        assert_eq!(status, 7, "outputs are written only on success");
    }
}
