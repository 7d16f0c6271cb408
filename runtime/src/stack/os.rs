//! The operating-system side of stacks: `mmap`, `mprotect`, `madvise`,
//! `munmap`. Every `unsafe` call on stack memory lives here.

use std::io;
use std::sync::OnceLock;

/// The system page size, read once.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page <= 0 {
            4096
        } else {
            page as usize
        }
    })
}

/// The kernel's limit on memory mappings per process, if readable.
pub(crate) fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Reserves `len` bytes of address space and opens all but the lowest
/// `guard` bytes for reading and writing. Returns the mapping's lowest
/// address.
pub(crate) fn map_guarded(len: usize, guard: usize) -> io::Result<usize> {
    // SAFETY: an anonymous private mapping at a kernel-chosen address touches
    // no existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(explain(io::Error::last_os_error()));
    }
    let bottom = ptr as usize;
    // SAFETY: the range lies inside the mapping just created and owned here.
    let rc = unsafe {
        libc::mprotect(
            (bottom + guard) as *mut libc::c_void,
            len - guard,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
    if rc != 0 {
        let err = explain(io::Error::last_os_error());
        unmap(bottom, len);
        return Err(err);
    }
    Ok(bottom)
}

/// Gives the pages in `[addr, addr+len)` back to the kernel; they read as
/// zero when touched again.
pub(crate) fn release(addr: usize, len: usize) {
    // SAFETY: callers pass a page-aligned range inside a stack mapping they
    // own and that no live frame uses (it is below the saved stack pointer
    // or the stack is idle).
    unsafe {
        libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}

/// Unmaps a mapping made by [`map_guarded`].
pub(crate) fn unmap(addr: usize, len: usize) {
    // SAFETY: `addr`/`len` describe a whole mapping made by `map_guarded`,
    // owned by the caller, which never touches it again.
    unsafe {
        libc::munmap(addr as *mut libc::c_void, len);
    }
}

/// Turns an `ENOMEM` from `mmap`/`mprotect` into an error that says what to
/// do: it is almost always the per-process mapping limit.
fn explain(err: io::Error) -> io::Error {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        return err;
    }
    let limit = max_map_count()
        .map(|n| n.to_string())
        .unwrap_or_else(|| "unknown".into());
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "fibra: cannot map a green-thread stack: the process hit the kernel's memory-mapping \
             limit (vm.max_map_count = {limit}; each green-thread stack uses 2 mappings, so about \
             {} stacks fit). Raise it, e.g. `sudo sysctl -w vm.max_map_count=2200000` for 1M \
             green threads, or run fewer tasks at once ({err})",
            max_map_count().map(|n| n / 2).unwrap_or(0)
        ),
    )
}
