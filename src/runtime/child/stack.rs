//! The payload's stack. pid 1 starts the payload with a vfork-style clone
//! (`CLONE_VM | CLONE_VFORK`): the payload runs in pid 1's memory, on a
//! stack of its own, until it execs, and pid 1 waits meanwhile. No copy of
//! the caller's address space (bash's, for the builtin) is made for a
//! process that replaces it at once, as glibc's posix_spawn does. The
//! stack is mapped by the caller before the first clone: the child
//! allocates nothing.

/// Room for the payload's frames between clone and exec (the fd moves,
/// the identity, the seccomp install and the exec attempts).
const SIZE: usize = 256 << 10;
/// An inaccessible page below the stack: an overflow faults, it never
/// writes over other memory.
const GUARD: usize = 4096;

pub(crate) struct PayloadStack {
    base: *mut libc::c_void,
}

impl PayloadStack {
    pub(crate) fn map() -> std::io::Result<PayloadStack> {
        // SAFETY: a fresh private anonymous mapping, unmapped in Drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                GUARD + SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the first page of the mapping made above.
        if unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) } != 0 {
            let err = std::io::Error::last_os_error();
            // SAFETY: the mapping made above.
            unsafe { libc::munmap(base, GUARD + SIZE) };
            return Err(err);
        }
        Ok(PayloadStack { base })
    }

    /// The stack's top, where a clone's stack pointer starts (it grows
    /// down), 16-byte aligned as the ABI wants.
    pub(crate) fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, which is page-aligned.
        unsafe { self.base.cast::<u8>().add(GUARD + SIZE).cast() }
    }
}

impl Drop for PayloadStack {
    fn drop(&mut self) {
        // SAFETY: mapped in `map` with this length.
        unsafe { libc::munmap(self.base, GUARD + SIZE) };
    }
}
