//! The few raw-syscall helpers every part of slicebox shares: errno and
//! its text, `openat2` under resolve rules, and writing all of a buffer to
//! a descriptor. Async-signal-safe where noted, so the cloned child may
//! use them.

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::c_int;

pub type Errno = i32;
pub type SysResult<T = ()> = Result<T, Errno>;

pub fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

pub(crate) fn check(ret: c_int) -> SysResult {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// openat2 with O_CLOEXEC added, retried on EAGAIN (a racing rename, as
/// the kernel asks) and EINTR: the one way anything here opens a path
/// under resolve rules, the stage's setup and the store's walks alike.
pub fn openat2(dirfd: RawFd, path: &CStr, flags: c_int, resolve: u64) -> SysResult<RawFd> {
    // SAFETY: open_how is plain data; zeroed is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: `how` lives across the call and its size is passed along.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match check_fd(fd) {
            Err(libc::EAGAIN) | Err(libc::EINTR) => continue,
            other => return other,
        }
    }
}

pub(crate) fn check_fd(ret: libc::c_long) -> SysResult<RawFd> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as RawFd)
    }
}

/// The text users know for an errno: "No such file or directory",
/// without the "(os error 2)" that io::Error's Display adds.
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The cause an `io::Error` names, for a message: `strerror` for an
/// errno, else the error's own text.
pub fn io_cause(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(errno) => strerror(errno),
        None => error.to_string(),
    }
}

/// Writes all of `bytes`, retrying on EINTR and short writes; false when
/// the rest could not be written. A closed pipe is no error to report:
/// `slice-list | head -1` must not complain. Async-signal-safe.
pub fn write_all(fd: RawFd, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid buffer; the fd belongs to the caller.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        bytes = &bytes[n as usize..];
    }
    true
}

/// read(2) on a raw descriptor, retried on EINTR.
pub fn read_retrying(fd: RawFd, buffer: &mut [u8]) -> std::io::Result<usize> {
    loop {
        // SAFETY: `buffer` is valid for writes of its length.
        let n = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// The name of `uid` in /etc/passwd. Read directly, not through glibc's
/// getpwuid: the executable is static, and NSS modules cannot be loaded
/// into it (a user known only to LDAP or the like is shown by number).
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// Whether `fd` is an open descriptor of this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
}

/// Runs `start` (which starts threads) with every signal blocked in the
/// calling thread, then restores its mask: a thread inherits the mask it
/// was started with, so the threads never run a handler of the process
/// that loaded us (bash's SIGCHLD or trap handlers run in bash's thread).
pub fn with_signals_blocked<R>(start: impl FnOnce() -> R) -> R {
    // SAFETY: sigfillset initialises `all`; pthread_sigmask reads it and
    // writes the old mask into `old`, which is restored below.
    let old = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    };
    let result = start();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    result
}

/// Whether this process ignores `signal` (its disposition is SIG_IGN).
pub fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: querying a disposition writes into `old` only.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// The signals this process ignores, below SIGRTMIN: one read of
/// /proc/self/status's SigIgn mask rather than a system call per signal
/// (each is about a microsecond of every stage's start), or those calls
/// when /proc is not there.
pub fn ignored_signals() -> Vec<libc::c_int> {
    let below_rt = 1..libc::SIGRTMIN();
    match sig_ign_mask() {
        Some(mask) => below_rt.filter(|&s| mask >> (s - 1) & 1 == 1).collect(),
        None => below_rt.filter(|&s| is_ignored(s)).collect(),
    }
}

fn sig_ign_mask() -> Option<u64> {
    use std::io::Read;
    let mut status = [0u8; 4096];
    let mut len = 0;
    let mut file = std::fs::File::open("/proc/self/status").ok()?;
    // SigIgn comes well within the first 4 KiB.
    while len < status.len() {
        match file.read(&mut status[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        // The line after SigIgn is there: no read to see the end.
        if status[..len].windows(8).any(|w| w == b"\nSigCgt:") {
            break;
        }
    }
    let text = std::str::from_utf8(&status[..len]).ok()?;
    let hex = text.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// `program` in the directories of `search_path` (a PATH value): the
/// first regular file there that someone may execute.
pub fn find_program(search_path: &str, program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(search_path)
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// One line of /proc/self/mountinfo, the fields slicebox reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub id: u64,
    pub mount_point: std::path::PathBuf,
    pub fstype: String,
    pub source: String,
}

/// This process's mount table, in mount order (the last entry at a path
/// is the one on top).
pub fn mount_table() -> std::io::Result<Vec<MountEntry>> {
    let text = std::fs::read("/proc/self/mountinfo")?;
    Ok(text
        .split(|&b| b == b'\n')
        .filter_map(parse_mountinfo_line)
        .collect())
}

/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE
/// SUPER_OPTIONS`; paths have space, tab, newline and backslash as octal
/// escapes (`\040`).
fn parse_mountinfo_line(line: &[u8]) -> Option<MountEntry> {
    use std::os::unix::ffi::OsStringExt;
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let separator = fields.iter().position(|f| *f == b"-")?;
    let text = |f: &[u8]| String::from_utf8_lossy(&unescape_octal(f)).into_owned();
    Some(MountEntry {
        id: std::str::from_utf8(fields.first()?).ok()?.parse().ok()?,
        mount_point: std::ffi::OsString::from_vec(unescape_octal(fields.get(4)?)).into(),
        fstype: text(fields.get(separator + 1)?),
        source: text(fields.get(separator + 2)?),
    })
}

fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let digits = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (field[i], digits) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8) + (b - b'0')));
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    fd >= 0 && unsafe { libc::isatty(fd) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_id_mount_point_type_and_source() {
        let line =
            b"47 27 0:40 / /tmp/a\\040b rw,relatime shared:1 - overlay slicebox ro,lowerdir=x";
        let entry = parse_mountinfo_line(line).unwrap();
        assert_eq!(entry.id, 47);
        assert_eq!(entry.mount_point, std::path::Path::new("/tmp/a b"));
        assert_eq!(
            (entry.fstype.as_str(), entry.source.as_str()),
            ("overlay", "slicebox")
        );
        assert!(parse_mountinfo_line(b"").is_none());
        assert!(mount_table()
            .unwrap()
            .iter()
            .any(|m| m.mount_point == std::path::Path::new("/")));
    }

    fn blocked(signal: libc::c_int) -> bool {
        // SAFETY: queries this thread's mask into a zeroed set.
        unsafe {
            let mut now: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now);
            libc::sigismember(&now, signal) == 1
        }
    }

    #[test]
    fn threads_started_with_signals_blocked_block_them_and_the_caller_does_not() {
        assert!(
            !blocked(libc::SIGINT),
            "the test thread blocks SIGINT already"
        );
        let thread = with_signals_blocked(|| {
            std::thread::spawn(|| blocked(libc::SIGINT) && blocked(libc::SIGCHLD))
        });
        assert!(
            thread.join().unwrap(),
            "the new thread can take SIGINT or SIGCHLD"
        );
        assert!(!blocked(libc::SIGINT), "the caller's mask was not restored");
    }

    #[test]
    fn root_is_named_from_etc_passwd() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(user_name(4_000_000_000), None);
    }

    #[test]
    fn strerror_drops_the_os_error_suffix() {
        assert_eq!(strerror(libc::ENOENT), "No such file or directory");
    }
}
