//! The payload's system call filter: the default one, built from rules
//! with rust-vmm's `seccompiler` in the caller before the clone, or a
//! compiled program the user hands over (`--seccomp-fd`). The payload only
//! installs it, last before exec (`Syscall::set_seccomp_filter`).
//!
//! The default refuses what Docker's default profile and Flatpak refuse
//! and a one-program stage never needs: the kernel keyrings (the caller's
//! keyrings are found by serial in /proc/keys and could be linked in),
//! TIOCSTI/TIOCLINUX, kernel modules, kexec, bpf, perf events,
//! userfaultfd, io_uring, acct, quotactl, syslog, the unsafe personality
//! flags, and new user namespaces (`--allow-userns` keeps those). A
//! refused call fails with EPERM; `clone3` and io_uring fail with ENOSYS,
//! as on a kernel without them, so that libc falls back to `clone` (whose
//! flags the filter can read, clone3's struct it cannot) and runtimes such
//! as libuv and Tokio fall back to epoll without a word. Nothing is killed
//! except a call of a foreign ABI (i386 `int 0x80` on x86_64, arm32 on
//! aarch64), which the rules' syscall numbers do not describe; x32 calls
//! on x86_64 fail with EPERM.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

/// A compiled classic BPF program, as `seccomp(SECCOMP_SET_MODE_FILTER)`
/// takes it; shared, so that the default one is built once per process.
#[derive(Clone)]
pub struct Program(Arc<[libc::sock_filter]>);

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Program({} instructions)", self.0.len())
    }
}

/// The most instructions one program may have (linux/bpf_common.h).
pub const MAX_INSTRUCTIONS: usize = 4096;
/// The size of one `struct sock_filter`.
pub const INSTRUCTION_SIZE: usize = 8;

/// Why a user's program was refused before any stage started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("the program is empty")]
    Empty,
    #[error(
        "{0} bytes is not a whole number of {INSTRUCTION_SIZE}-byte instructions (struct sock_filter)"
    )]
    Partial(usize),
    #[error("the program has more than {MAX_INSTRUCTIONS} instructions")]
    TooLong,
}

impl Program {
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.0
    }

    /// A program as bubblewrap's `--seccomp` reads it: an array of
    /// `struct sock_filter` in the machine's byte order. The kernel checks
    /// the instructions themselves when the payload installs it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, ProgramError> {
        if bytes.is_empty() {
            return Err(ProgramError::Empty);
        }
        if bytes.len() > MAX_INSTRUCTIONS * INSTRUCTION_SIZE {
            return Err(ProgramError::TooLong);
        }
        if bytes.len() % INSTRUCTION_SIZE != 0 {
            return Err(ProgramError::Partial(bytes.len()));
        }
        Ok(Program(
            bytes
                .chunks_exact(INSTRUCTION_SIZE)
                .map(|i| libc::sock_filter {
                    code: u16::from_ne_bytes([i[0], i[1]]),
                    jt: i[2],
                    jf: i[3],
                    k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
                })
                .collect(),
        ))
    }

    /// The program's bytes, as `from_bytes` reads them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.0.len() * INSTRUCTION_SIZE);
        for i in self.0.iter() {
            bytes.extend_from_slice(&i.code.to_ne_bytes());
            bytes.extend_from_slice(&[i.jt, i.jf]);
            bytes.extend_from_slice(&i.k.to_ne_bytes());
        }
        bytes
    }
}

/// Which filter a stage's payload gets.
#[derive(Debug, Clone)]
pub enum Filter {
    /// The default rules; `allow_userns` leaves out the user-namespace ones.
    Default { allow_userns: bool },
    /// The user's own program (`--seccomp-fd`), in place of the default.
    Program(Program),
}

impl Filter {
    /// The program to install: the default one is compiled on first use
    /// and kept for the life of the process (the bash that loaded the
    /// builtin runs many stages).
    pub fn program(&self) -> Result<Program, seccompiler::BackendError> {
        static DEFAULT: OnceLock<Program> = OnceLock::new();
        static ALLOW_USERNS: OnceLock<Program> = OnceLock::new();
        let (cell, allow_userns) = match self {
            Filter::Program(program) => return Ok(program.clone()),
            Filter::Default {
                allow_userns: false,
            } => (&DEFAULT, false),
            Filter::Default { allow_userns: true } => (&ALLOW_USERNS, true),
        };
        if let Some(program) = cell.get() {
            return Ok(program.clone());
        }
        let built = default_program(allow_userns)?;
        Ok(cell.get_or_init(|| built).clone())
    }
}

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// `personality` values that change nothing a sandbox cares about:
/// PER_LINUX, PER_LINUX32 (for multiarch tools), their UNAME26 forms and
/// the query. ADDR_NO_RANDOMIZE and READ_IMPLIES_EXEC are refused.
const HARMLESS_PERSONAS: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// asm-generic/ioctls.h, the same on x86_64 and aarch64.
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;

/// Bit 30 of the system call number marks the x32 ABI on x86_64.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn condition(
    arg: u8,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, seccompiler::BackendError> {
    // Dword: the low 32 bits, all the kernel reads of an int argument; a
    // request with high bits set is TIOCSTI to the tty driver all the same
    // (CVE-2019-10063).
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
}

fn with_newuser(arg: u8) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    let flag = libc::CLONE_NEWUSER as u64;
    Ok(vec![SeccompRule::new(vec![condition(
        arg,
        SeccompCmpOp::MaskedEq(flag),
        flag,
    )?])?])
}

/// Refused with EPERM whatever their arguments.
const REFUSED_WHATEVER_THE_ARGUMENTS: [i64; 15] = [
    libc::SYS_add_key,
    libc::SYS_keyctl,
    libc::SYS_request_key,
    libc::SYS_perf_event_open,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_bpf,
    libc::SYS_userfaultfd,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_quotactl_fd,
    libc::SYS_syslog,
];

/// The calls answered with EPERM.
fn refused(
    allow_userns: bool,
) -> Result<BTreeMap<i64, Vec<SeccompRule>>, seccompiler::BackendError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = REFUSED_WHATEVER_THE_ARGUMENTS
        .into_iter()
        .map(|call| (call, Vec::new()))
        .collect();
    let ioctl = [TIOCSTI, TIOCLINUX]
        .into_iter()
        .map(|request| SeccompRule::new(vec![condition(1, SeccompCmpOp::Eq, request)?]))
        .collect::<Result<_, _>>()?;
    rules.insert(libc::SYS_ioctl, ioctl);
    let persona = HARMLESS_PERSONAS
        .into_iter()
        .map(|value| condition(0, SeccompCmpOp::Ne, value))
        .collect::<Result<_, _>>()?;
    rules.insert(libc::SYS_personality, vec![SeccompRule::new(persona)?]);
    if !allow_userns {
        rules.insert(libc::SYS_unshare, with_newuser(0)?);
        // The flags are clone's first argument on x86_64 and aarch64.
        rules.insert(libc::SYS_clone, with_newuser(0)?);
    }
    Ok(rules)
}

/// The calls answered with ENOSYS.
fn missing(allow_userns: bool) -> BTreeMap<i64, Vec<SeccompRule>> {
    let mut calls = vec![
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ];
    if !allow_userns {
        calls.push(libc::SYS_clone3);
    }
    calls.into_iter().map(|call| (call, Vec::new())).collect()
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
) -> Result<Vec<libc::sock_filter>, seccompiler::BackendError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        ARCH,
    )?;
    let program: seccompiler::BpfProgram = filter.try_into()?;
    Ok(program
        .into_iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

/// One program that runs `first`, and where `first` would allow the call,
/// `second`: each `return ALLOW` of `first` becomes a jump past its end.
/// Jumps are relative and only forward, so both keep their meaning.
fn then(first: Vec<libc::sock_filter>, second: Vec<libc::sock_filter>) -> Vec<libc::sock_filter> {
    let len = first.len();
    let mut program: Vec<libc::sock_filter> = first
        .into_iter()
        .enumerate()
        .map(|(at, i)| {
            if i.code == BPF_RET_K && i.k == libc::SECCOMP_RET_ALLOW {
                libc::sock_filter {
                    code: BPF_JA,
                    jt: 0,
                    jf: 0,
                    k: (len - at - 1) as u32,
                }
            } else {
                i
            }
        })
        .collect();
    program.extend(second);
    program
}

/// First of all (the rules check the architecture themselves, but not
/// this): an x32 call, whose number the rules do not know, is refused.
#[cfg(target_arch = "x86_64")]
fn abi_guard() -> Vec<libc::sock_filter> {
    vec![
        // seccomp_data.nr is at offset 0.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jump(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            X32_SYSCALL_BIT,
            0,
            1,
        ),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
    ]
}

#[cfg(not(target_arch = "x86_64"))]
fn abi_guard() -> Vec<libc::sock_filter> {
    Vec::new()
}

/// AUDIT_ARCH_* of linux/audit.h: the ELF machine, 64-bit, little-endian.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 62 | 0x8000_0000 | 0x4000_0000;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 183 | 0x8000_0000 | 0x4000_0000;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// A way out for the calls no rule names: on the native architecture, a
/// binary search on the call number answers ALLOW in a few instructions
/// where the rules would compare it with every number they name. The
/// kernel runs a new filter over every call number when it is installed
/// (to cache the ones it always allows), so this cuts a quarter off the install's
/// cost. Every other call, and every call of a foreign architecture,
/// jumps to the rules, which follow. `named` is sorted.
fn shortcut(named: &[u32]) -> Vec<libc::sock_filter> {
    let mut code = vec![
        // seccomp_data.arch is at offset 4, .nr at 0.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
        jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            AUDIT_ARCH,
            1,
            0,
        ),
        stmt(libc::BPF_JMP | libc::BPF_JA, 0),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
    ];
    search(named, &mut code);
    // Every JA of the shortcut goes to the rules, right after it.
    let end = code.len();
    for (at, i) in code.iter_mut().enumerate() {
        if i.code == BPF_JA {
            i.k = (end - at - 1) as u32;
        }
    }
    code
}

/// The search over `named` (sorted), the number loaded: a named call
/// reaches a JA (to the rules), any other `return ALLOW`.
fn search(named: &[u32], code: &mut Vec<libc::sock_filter>) {
    const LEAF: usize = 4;
    if named.len() <= LEAF {
        for (i, nr) in named.iter().enumerate() {
            // Past the other comparisons and the ALLOW, to the JA.
            let to_rules = (named.len() - i) as u8;
            code.push(jump(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                *nr,
                to_rules,
                0,
            ));
        }
        code.push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW));
        code.push(stmt(libc::BPF_JMP | libc::BPF_JA, 0));
        return;
    }
    let (low, high) = named.split_at(named.len() / 2);
    let at = code.len();
    code.push(jump(
        libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
        high[0],
        0,
        0,
    ));
    search(low, code);
    code[at].jt = u8::try_from(code.len() - at - 1)
        .expect("a few dozen named calls make a branch far shorter than 255 instructions");
    search(high, code);
}

/// The rules, EPERM's then ENOSYS's, and the call numbers they name.
fn rules(
    allow_userns: bool,
) -> Result<(Vec<u32>, Vec<libc::sock_filter>), seccompiler::BackendError> {
    let refused = refused(allow_userns)?;
    let missing = missing(allow_userns);
    let mut named: Vec<u32> = refused
        .keys()
        .chain(missing.keys())
        .map(|nr| *nr as u32)
        .collect();
    named.sort_unstable();
    let program = then(
        compile(refused, libc::EPERM)?,
        compile(missing, libc::ENOSYS)?,
    );
    Ok((named, program))
}

fn default_program(allow_userns: bool) -> Result<Program, seccompiler::BackendError> {
    let (named, rules) = rules(allow_userns)?;
    let mut program = abi_guard();
    program.extend(shortcut(&named));
    program.extend(rules);
    Ok(Program(program.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NATIVE: u32 = AUDIT_ARCH;
    /// i386, the ABI of `int 0x80` on x86_64.
    #[cfg(target_arch = "x86_64")]
    const FOREIGN: u32 = 3 | 0x4000_0000;
    /// arm, the compat ABI of aarch64.
    #[cfg(target_arch = "aarch64")]
    const FOREIGN: u32 = 40 | 0x4000_0000;

    /// Runs a classic BPF program over one `struct seccomp_data` the way
    /// the kernel does, for the instructions seccompiler and `then` emit.
    fn run(program: &Program, nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend_from_slice(&nr.to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0u64.to_ne_bytes());
        for arg in args {
            data.extend_from_slice(&arg.to_ne_bytes());
        }
        let word = |at: usize| u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
        let (mut pc, mut a) = (0usize, 0u32);
        let code = program.instructions();
        loop {
            let i = code[pc];
            pc += 1;
            let op = i.code as u32;
            match op {
                x if x == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => a = word(i.k as usize),
                x if x == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => a &= i.k,
                x if x == libc::BPF_RET | libc::BPF_K => return i.k,
                x if x == libc::BPF_JMP | libc::BPF_JA => pc += i.k as usize,
                _ => {
                    let taken = match op & !(libc::BPF_JMP | libc::BPF_K) {
                        libc::BPF_JEQ => a == i.k,
                        libc::BPF_JGT => a > i.k,
                        libc::BPF_JGE => a >= i.k,
                        libc::BPF_JSET => a & i.k != 0,
                        _ => panic!("instruction {op:#x} at {}", pc - 1),
                    };
                    pc += if taken { i.jt } else { i.jf } as usize;
                }
            }
        }
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    fn call(program: &Program, nr: i64, args: [u64; 6]) -> u32 {
        run(program, nr as u32, NATIVE, args)
    }

    fn default(allow_userns: bool) -> Program {
        Filter::Default { allow_userns }.program().unwrap()
    }

    #[test]
    fn every_listed_call_is_refused_with_eperm_and_others_pass() {
        let p = default(false);
        for nr in REFUSED_WHATEVER_THE_ARGUMENTS {
            assert_eq!(call(&p, nr, [0; 6]), EPERM, "call {nr}");
        }
        for nr in [
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
            libc::SYS_clone3,
        ] {
            assert_eq!(call(&p, nr, [0; 6]), ENOSYS, "call {nr}");
        }
        for nr in [libc::SYS_getpid, libc::SYS_execve, libc::SYS_read] {
            assert_eq!(call(&p, nr, [0; 6]), ALLOW, "call {nr}");
        }
    }

    #[test]
    fn ioctl_requests_are_compared_on_their_low_32_bits() {
        let p = default(false);
        let ioctl = |request: u64| call(&p, libc::SYS_ioctl, [0, request, 0, 0, 0, 0]);
        assert_eq!(ioctl(TIOCSTI), EPERM);
        assert_eq!(ioctl(TIOCLINUX), EPERM);
        assert_eq!(ioctl(0xdead_0000_0000 | TIOCSTI), EPERM);
        assert_eq!(ioctl(0x5413) /* TIOCGWINSZ */, ALLOW);
        assert_eq!(ioctl(0x541B) /* FIONREAD */, ALLOW);
    }

    #[test]
    fn only_harmless_personalities_pass() {
        let p = default(false);
        let persona = |value: u64| call(&p, libc::SYS_personality, [value, 0, 0, 0, 0, 0]);
        for value in HARMLESS_PERSONAS {
            assert_eq!(persona(value), ALLOW, "{value:#x}");
        }
        // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, PER_BSD.
        for value in [0x0004_0000, 0x0040_0000, 0x6] {
            assert_eq!(persona(value), EPERM, "{value:#x}");
        }
    }

    #[test]
    fn new_user_namespaces_are_refused_unless_allowed() {
        let newuser = libc::CLONE_NEWUSER as u64;
        let fork = libc::SIGCHLD as u64;
        let p = default(false);
        let with = |p: &Program, nr, flags| call(p, nr, [flags, 0, 0, 0, 0, 0]);
        assert_eq!(with(&p, libc::SYS_unshare, newuser | 0x2_0000), EPERM);
        assert_eq!(with(&p, libc::SYS_unshare, 0x2_0000), ALLOW);
        assert_eq!(with(&p, libc::SYS_clone, newuser | fork), EPERM);
        assert_eq!(with(&p, libc::SYS_clone, fork), ALLOW);
        let allowed = default(true);
        assert_eq!(with(&allowed, libc::SYS_unshare, newuser), ALLOW);
        assert_eq!(with(&allowed, libc::SYS_clone, newuser | fork), ALLOW);
        assert_eq!(with(&allowed, libc::SYS_clone3, 0), ALLOW);
        assert_eq!(with(&allowed, libc::SYS_keyctl, 0), EPERM);
    }

    #[test]
    fn a_foreign_abi_is_killed_and_x32_refused() {
        let p = default(false);
        assert_eq!(
            run(&p, libc::SYS_getpid as u32, FOREIGN, [0; 6]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        #[cfg(target_arch = "x86_64")]
        for nr in [libc::SYS_keyctl, libc::SYS_getpid] {
            assert_eq!(run(&p, nr as u32 | X32_SYSCALL_BIT, NATIVE, [0; 6]), EPERM);
        }
    }

    #[test]
    fn the_shortcut_changes_no_answer() {
        let requests = [0, TIOCSTI, TIOCLINUX, 0x1_0000_0000 | TIOCSTI];
        let flags = [0, libc::CLONE_NEWUSER as u64, 0x4_0000, 0xffff_ffff];
        for allow_userns in [false, true] {
            let with = default(allow_userns);
            let (_, rules) = rules(allow_userns).unwrap();
            let mut plain = abi_guard();
            plain.extend(rules);
            let without = Program(plain.into());
            assert!(with.instructions().len() > without.instructions().len());
            for arch in [NATIVE, FOREIGN] {
                for nr in (0..1024).chain(0x4000_0000..0x4000_0400) {
                    for (request, flag) in requests.into_iter().zip(flags) {
                        let args = [flag, request, 0, 0, 0, 0];
                        assert_eq!(
                            run(&with, nr, arch, args),
                            run(&without, nr, arch, args),
                            "call {nr:#x} arch {arch:#x} args {args:x?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_default_program_is_built_once() {
        let a = default(false);
        let b = default(false);
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert!(a.instructions().len() < MAX_INSTRUCTIONS);
    }

    #[test]
    fn a_users_program_is_whole_instructions_and_round_trips() {
        assert_eq!(Program::from_bytes(&[]).unwrap_err(), ProgramError::Empty);
        assert_eq!(
            Program::from_bytes(&[0; 12]).unwrap_err(),
            ProgramError::Partial(12)
        );
        assert_eq!(
            Program::from_bytes(&vec![0; 8 * 4097]).unwrap_err(),
            ProgramError::TooLong
        );
        let bytes = default(false).to_bytes();
        let read = Program::from_bytes(&bytes).unwrap();
        assert_eq!(read.to_bytes(), bytes);
        assert_eq!(call(&read, libc::SYS_keyctl, [0; 6]), EPERM);
    }
}
