//! What a file asks the kernel to run it with: the interpreter of a `#!`
//! line, and an ELF file's headers (its PT_INTERP loader, and what the
//! store's prefix check reads of its dynamic section). Everything here
//! reads hostile bytes with every offset checked, and the part the stage's
//! child uses after clone (`interpreter`) allocates nothing.

/// Most program headers read: more is no file a loader would take.
pub const MOST_PROGRAM_HEADERS: usize = 256;

/// The interpreter a `#!` line names, as the kernel reads it.
pub fn shebang(head: &[u8]) -> Option<&[u8]> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|c| *c == b'\n')?];
    let start = line.iter().position(|c| *c != b' ' && *c != b'\t')?;
    let line = &line[start..];
    let end = line
        .iter()
        .position(|c| matches!(c, b' ' | b'\t' | b'\r'))
        .unwrap_or(line.len());
    Some(&line[..end])
}

/// The parts of an ELF file's header this reads.
pub struct Elf {
    pub wide: bool,
    pub big: bool,
    pub phoff: u64,
    pub phentsize: u64,
    pub phnum: u64,
}

/// One program header: type, file offset, virtual address, size in file.
pub struct Segment {
    pub kind: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
}

pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_INTERP: u32 = 3;
pub const DT_NULL: u64 = 0;
pub const DT_STRTAB: u64 = 5;
pub const DT_RPATH: u64 = 15;
pub const DT_RUNPATH: u64 = 29;

impl Elf {
    pub fn parse(head: &[u8]) -> Option<Elf> {
        if head.get(..4)? != b"\x7fELF" {
            return None;
        }
        let wide = match head.get(4)? {
            1 => false,
            2 => true,
            _ => return None,
        };
        let big = match head.get(5)? {
            1 => false,
            2 => true,
            _ => return None,
        };
        let mut elf = Elf {
            wide,
            big,
            phoff: 0,
            phentsize: 0,
            phnum: 0,
        };
        (elf.phoff, elf.phentsize, elf.phnum) = if wide {
            (
                elf.int(head, 32, 8)?,
                elf.int(head, 54, 2)?,
                elf.int(head, 56, 2)?,
            )
        } else {
            (
                elf.int(head, 28, 4)?,
                elf.int(head, 42, 2)?,
                elf.int(head, 44, 2)?,
            )
        };
        let least = if wide { 56 } else { 32 };
        if elf.phentsize < least || elf.phnum as usize > MOST_PROGRAM_HEADERS {
            return None;
        }
        Some(elf)
    }

    /// An unsigned integer of `len` bytes at `at`, in the file's order.
    pub fn int(&self, bytes: &[u8], at: usize, len: usize) -> Option<u64> {
        let field = bytes.get(at..at.checked_add(len)?)?;
        let mut value = 0u64;
        for i in 0..len {
            let byte = if self.big {
                field[i]
            } else {
                field[len - 1 - i]
            };
            value = (value << 8) | u64::from(byte);
        }
        Some(value)
    }

    /// An address-sized field (`wide`: 8 bytes, else 4).
    pub fn word(&self, bytes: &[u8], at64: usize, at32: usize) -> Option<u64> {
        match self.wide {
            true => self.int(bytes, at64, 8),
            false => self.int(bytes, at32, 4),
        }
    }
}

/// Longest interpreter path `interpreter` returns.
pub const MOST_INTERPRETER_BYTES: usize = 256;

/// What kind of file names an interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Script,
    Elf,
}

/// The interpreter `fd` asks for: its `#!` line's, or its PT_INTERP
/// loader's, copied into `out`. Async-signal-safe: no allocation, only
/// pread(2). `None`: it names none, or not one that fits.
pub fn interpreter(fd: i32, out: &mut [u8; MOST_INTERPRETER_BYTES]) -> Option<(Kind, usize)> {
    let mut head = [0u8; MOST_INTERPRETER_BYTES];
    let n = pread(fd, &mut head, 0)?;
    let head = &head[..n];
    if let Some(path) = shebang(head) {
        out[..path.len()].copy_from_slice(path);
        return Some((Kind::Script, path.len()));
    }
    let elf = Elf::parse(head)?;
    let mut entry = [0u8; 64];
    for i in 0..elf.phnum {
        let at = elf.phoff.checked_add(i.checked_mul(elf.phentsize)?)?;
        let size = (elf.phentsize as usize).min(entry.len());
        if pread(fd, &mut entry[..size], at)? < size {
            return None;
        }
        let entry = &entry[..size];
        if elf.int(entry, 0, 4)? as u32 != PT_INTERP {
            continue;
        }
        let (offset, filesz) = (elf.word(entry, 8, 4)?, elf.word(entry, 32, 16)?);
        let len = usize::try_from(filesz).ok().filter(|l| *l <= out.len())?;
        let got = pread(fd, &mut out[..len], offset)?;
        let path = &out[..got];
        return Some((Kind::Elf, path.iter().position(|c| *c == 0).unwrap_or(got)));
    }
    None
}

fn pread(fd: i32, buf: &mut [u8], offset: u64) -> Option<usize> {
    let offset = libc::off_t::try_from(offset).ok()?;
    // SAFETY: writes at most buf.len() bytes into buf.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset) };
    usize::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_line_is_read_as_the_kernel_reads_it() {
        assert_eq!(
            shebang(b"#!/usr/bin/env python3\n"),
            Some(&b"/usr/bin/env"[..])
        );
        assert_eq!(
            shebang(b"#! \t/opt/p/bin/python3.10 -E\r\n"),
            Some(&b"/opt/p/bin/python3.10"[..])
        );
        assert_eq!(shebang(b"#!/no/newline/within/the/head"), None);
        assert_eq!(shebang(b"#!   \n"), None);
        assert_eq!(shebang(b"\x7fELF"), None);
    }

    #[test]
    fn the_interpreter_of_a_script_and_of_this_test_program() {
        let mut out = [0u8; MOST_INTERPRETER_BYTES];
        let script = std::env::temp_dir().join(format!("slicebox-interp-{}", std::process::id()));
        std::fs::write(&script, b"#!/usr/bin/python9 -u\nprint()\n").unwrap();
        let file = std::fs::File::open(&script).unwrap();
        let found = interpreter(std::os::fd::AsRawFd::as_raw_fd(&file), &mut out);
        std::fs::remove_file(&script).unwrap();
        let (kind, len) = found.unwrap();
        assert_eq!(
            (kind, &out[..len]),
            (Kind::Script, &b"/usr/bin/python9"[..])
        );
        // This test program is a dynamically linked ELF file: its loader.
        let me = std::fs::File::open("/proc/self/exe").unwrap();
        let (kind, len) = interpreter(std::os::fd::AsRawFd::as_raw_fd(&me), &mut out).unwrap();
        assert_eq!(kind, Kind::Elf);
        assert!(
            out[..len].starts_with(b"/lib"),
            "{:?}",
            String::from_utf8_lossy(&out[..len])
        );
    }
}
