//! The operating-system side of stacks: `mmap`, `madvise`, `mincore`,
//! `munmap`, and the process-wide knobs read from the environment. Every
//! `unsafe` call on stack memory lives here.
//!
//! # Guard pages and the mapping limit
//!
//! A stack's lowest page must fault when touched. Two ways exist:
//!
//! - [`GuardMode::Regions`] (Linux 6.13+): map the whole stack read-write
//!   and install a *guard region* on its lowest page with
//!   `madvise(MADV_GUARD_INSTALL)`. The guard lives in the page tables, not
//!   in a separate kernel mapping, so neighbouring stacks merge into one
//!   mapping and `vm.max_map_count` stops limiting the number of stacks.
//! - [`GuardMode::Pages`] (any kernel): map it `PROT_NONE` and open all but
//!   the lowest page with `mprotect`. Each stack is then two mappings.
//!
//! The mode is probed once; `FIBRA_STACK_GUARD=pages` forces the second.

use std::io;
use std::sync::OnceLock;

/// `madvise` advice installing a guard region (Linux 6.13, not yet in libc).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// The system page size, read once (a plain load afterwards: the segment
/// fast path and the overflow handler call this).
#[inline]
pub(crate) fn page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let page = PAGE.load(Relaxed);
    if page != 0 {
        return page;
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p <= 0 => 4096,
        p => p as usize,
    };
    PAGE.store(page, Relaxed);
    page
}

/// How stacks get their guard page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuardMode {
    /// `MADV_GUARD_INSTALL`: a stack costs at most one mapping, and
    /// adjacent stacks share one.
    Regions,
    /// `PROT_NONE` page: a stack costs two mappings.
    Pages,
}

impl GuardMode {
    /// Kernel mappings one stack costs at worst.
    pub(crate) fn mappings_per_stack(self) -> usize {
        match self {
            GuardMode::Regions => 1,
            GuardMode::Pages => 2,
        }
    }
}

/// The guard mode of this process: `FIBRA_STACK_GUARD=pages` forces
/// [`GuardMode::Pages`]; otherwise guard regions when the kernel has them.
pub(crate) fn guard_mode() -> GuardMode {
    static MODE: OnceLock<GuardMode> = OnceLock::new();
    *MODE.get_or_init(|| {
        match std::env::var("FIBRA_STACK_GUARD").as_deref().map(str::trim) {
            Ok("pages") => return GuardMode::Pages,
            Ok("regions") | Ok("auto") | Ok("") | Err(_) => {}
            Ok(other) => crate::config::report_bad_env(
                "FIBRA_STACK_GUARD",
                other,
                "expected \"pages\", \"regions\" or \"auto\"; ignored",
            ),
        }
        if guard_regions_work() {
            GuardMode::Regions
        } else {
            GuardMode::Pages
        }
    })
}

/// Maps two pages, installs a guard region on the lower one, unmaps them.
fn guard_regions_work() -> bool {
    let page = page_size();
    let Ok(addr) = map_rw(2 * page) else {
        return false;
    };
    // SAFETY: the range is the lower page of the mapping just made.
    let rc = unsafe { libc::madvise(addr as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
    unmap(addr, 2 * page);
    rc == 0
}

/// The limit on memory mappings this process must respect, and where it
/// comes from: `FIBRA_MAX_MAP_COUNT` (to run below the kernel's limit, e.g.
/// when other code in the process needs many mappings), else
/// `/proc/sys/vm/max_map_count`.
pub(crate) fn max_map_count() -> Option<(usize, &'static str)> {
    static LIMIT: OnceLock<Option<(usize, &'static str)>> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        if let Ok(v) = std::env::var("FIBRA_MAX_MAP_COUNT") {
            match v.trim().parse() {
                Ok(n) => return Some((n, "FIBRA_MAX_MAP_COUNT")),
                Err(_) => crate::config::report_bad_env(
                    "FIBRA_MAX_MAP_COUNT",
                    &v,
                    "not a number; ignored",
                ),
            }
        }
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(|n| (n, "vm.max_map_count"))
    })
}

/// Number of memory mappings the process has now (lines of
/// `/proc/self/maps`), if readable.
pub(crate) fn mapping_count() -> Option<usize> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count())
}

/// Maps `len` bytes of address space whose lowest `guard` bytes fault when
/// touched and whose rest is readable and writable, committed by the kernel
/// page by page on first touch. Returns the mapping's lowest address.
pub(crate) fn map_guarded(len: usize, guard: usize) -> io::Result<usize> {
    map_stacks(len, 1, guard)
}

/// Maps one reservation of `count` stacks of `stride` bytes each, laid out
/// back to back; the lowest `guard` bytes of each stack fault when touched
/// and the rest is readable and writable, committed on first touch.
/// Returns the reservation's lowest address.
///
/// System calls: with guard regions one `mmap` and one `process_madvise`
/// for up to 1,024 guards (one `madvise` per guard on kernels whose
/// `process_madvise` refuses them), plus one `madvise(MADV_NOHUGEPAGE)`
/// when transparent huge pages are `always` on; with guard pages one
/// `mmap` and one `mprotect` per stack (each stack then is two mappings).
pub(crate) fn map_stacks(stride: usize, count: usize, guard: usize) -> io::Result<usize> {
    let len = stride * count;
    match guard_mode() {
        GuardMode::Regions => {
            let bottom = map_rw(len).map_err(explain)?;
            // Adjacent stacks merge into one large mapping, which would be
            // eligible for transparent huge pages under THP "always": one
            // touched stack page would then commit 2 MiB.
            if thp_always() {
                // SAFETY: advice on the whole mapping just made and owned
                // here.
                unsafe { libc::madvise(bottom as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) };
            }
            if let Err(err) = install_guards(bottom, stride, count, guard) {
                unmap(bottom, len);
                return Err(explain(err));
            }
            Ok(bottom)
        }
        GuardMode::Pages => {
            // SAFETY: an anonymous private mapping at a kernel-chosen
            // address touches no existing memory.
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
            for i in 0..count {
                let start = bottom + i * stride + guard;
                // SAFETY: the range lies inside the mapping just created
                // and owned here.
                let rc = unsafe {
                    libc::mprotect(
                        start as *mut libc::c_void,
                        stride - guard,
                        libc::PROT_READ | libc::PROT_WRITE,
                    )
                };
                if rc != 0 {
                    let err = explain(io::Error::last_os_error());
                    unmap(bottom, len);
                    return Err(err);
                }
            }
            Ok(bottom)
        }
    }
}

/// Whether transparent huge pages are on for every anonymous mapping
/// (`always`), not only for those that ask (`madvise`) or for none; read
/// once, and assumed on when unreadable.
fn thp_always() -> bool {
    static ALWAYS: OnceLock<bool> = OnceLock::new();
    *ALWAYS.get_or_init(|| {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .map_or(true, |s| s.contains("[always]"))
    })
}

/// `process_madvise` takes at most this many ranges per call (`UIO_MAXIOV`).
const IOV_MAX: usize = 1024;

/// `PIDFD_SELF`: the calling thread, as a pidfd (Linux 6.14+), so
/// `process_madvise` needs no `pidfd_open` (and a forked child never acts
/// on its parent through an inherited descriptor).
const PIDFD_SELF: libc::c_int = -10000;

/// Whether `process_madvise` installs guard regions here: 0 unknown, 1 yes,
/// 2 no (then one `madvise` per guard).
static BATCHED_GUARDS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// `madvise` advice committing pages as if written (Linux 5.14).
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// Whether `process_madvise` pre-faults pages here: 0 unknown, 1 yes, 2 no.
static BATCHED_POPULATE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Commits the pages at the page-aligned addresses `pages` (each one page,
/// at most [`IOV_MAX`]) with one `process_madvise(MADV_POPULATE_WRITE)`,
/// so that touching them later takes no page fault. Contents are not
/// changed. Returns false if the kernel does not do it (the pages are then
/// committed on first touch, as usual).
///
/// # Safety
///
/// Every page must lie in a stack mapping the caller owns.
pub(crate) unsafe fn populate(pages: &[usize]) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    if pages.is_empty() || BATCHED_POPULATE.load(Relaxed) == 2 {
        return false;
    }
    let page = page_size();
    let iov: Vec<libc::iovec> = pages
        .iter()
        .take(IOV_MAX)
        .map(|&p| libc::iovec {
            iov_base: p as *mut libc::c_void,
            iov_len: page,
        })
        .collect();
    // SAFETY: every range is one page of a stack mapping the caller owns
    // (caller); populating commits it without changing its contents.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            PIDFD_SELF,
            iov.as_ptr(),
            iov.len(),
            MADV_POPULATE_WRITE,
            0,
        )
    };
    if rc <= 0 {
        if BATCHED_POPULATE.load(Relaxed) == 0 {
            BATCHED_POPULATE.store(2, Relaxed);
        }
        return false;
    }
    BATCHED_POPULATE.store(1, Relaxed);
    true
}

/// Whether [`populate`] has worked in this process.
#[cfg(test)]
pub(crate) fn populate_works() -> bool {
    BATCHED_POPULATE.load(std::sync::atomic::Ordering::Relaxed) == 1
}

/// Installs a guard region on the lowest `guard` bytes of each of the
/// `count` stacks of `stride` bytes from `bottom`: in batches of up to
/// [`IOV_MAX`] with `process_madvise` where the kernel allows it (Linux
/// 6.15+), else one `madvise` each.
fn install_guards(bottom: usize, stride: usize, count: usize, guard: usize) -> io::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut done = 0;
    if BATCHED_GUARDS.load(Relaxed) != 2 {
        let mut iov: Vec<libc::iovec> = Vec::with_capacity(count.min(IOV_MAX));
        while done < count {
            let n = (count - done).min(IOV_MAX);
            iov.clear();
            iov.extend((done..done + n).map(|i| libc::iovec {
                iov_base: (bottom + i * stride) as *mut libc::c_void,
                iov_len: guard,
            }));
            // SAFETY: every range is the guard page of a stack in the
            // mapping the caller just made and owns; nothing touched it.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_process_madvise,
                    PIDFD_SELF,
                    iov.as_ptr(),
                    n,
                    MADV_GUARD_INSTALL,
                    0,
                )
            };
            if rc <= 0 {
                // Refused: on an older kernel (or under seccomp) fall back
                // for good; after it worked once, for this reservation only.
                if BATCHED_GUARDS.load(Relaxed) == 0 {
                    BATCHED_GUARDS.store(2, Relaxed);
                }
                break;
            }
            BATCHED_GUARDS.store(1, Relaxed);
            // Ranges are advised in order; a short count means the rest
            // are retried (whole guards only).
            done += (rc as usize / guard).min(n);
        }
    }
    for i in done..count {
        let start = bottom + i * stride;
        // SAFETY: as above, one guard page of the caller's new mapping.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, guard, MADV_GUARD_INSTALL) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// An anonymous read-write mapping, committed lazily.
fn map_rw(len: usize) -> io::Result<usize> {
    // SAFETY: an anonymous private mapping at a kernel-chosen address
    // touches no existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(ptr as usize)
}

/// Gives the pages in `[addr, addr+len)` back to the kernel; they read as
/// zero when touched again.
///
/// # Safety
///
/// The range must be page-aligned, inside a stack mapping the caller owns,
/// and hold no live data: it lies below the saved stack pointer of a
/// suspended task (minus a margin for the switch frames), or the stack is
/// idle.
pub(crate) unsafe fn release(addr: usize, len: usize) {
    // SAFETY: forwarded to the caller. MADV_DONTNEED on private anonymous
    // memory only drops page contents; it cannot fail on a valid range.
    unsafe {
        libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}

/// Fills `out` with one byte per page of `[start, end)` (bit 0: resident),
/// with one `mincore` call. Asking maps nothing. Returns false if the
/// kernel refused (then `out` reads as not resident).
///
/// # Safety
///
/// The range must be page-aligned and mapped for the duration of the call.
pub(crate) unsafe fn residency(start: usize, end: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    out.resize((end - start) / page_size(), 0);
    // SAFETY: the range is mapped (caller) and `out` has one byte per page.
    let rc = unsafe { libc::mincore(start as *mut libc::c_void, end - start, out.as_mut_ptr()) };
    rc == 0
}

/// Counts the resident pages of the mapped ranges `[start, end)` (sorted by
/// address, adjacent ones merged by the caller) with `mincore`.
///
/// # Safety
///
/// Every range must be mapped for the duration of the call.
pub(crate) unsafe fn resident_pages(ranges: &[(usize, usize)], buf: &mut Vec<u8>) -> usize {
    let page = page_size();
    let mut resident = 0;
    for &(start, end) in ranges {
        let pages = (end - start) / page;
        buf.clear();
        buf.resize(pages, 0);
        // SAFETY: the range is mapped (caller) and `buf` has one byte per
        // page.
        let rc =
            unsafe { libc::mincore(start as *mut libc::c_void, end - start, buf.as_mut_ptr()) };
        if rc == 0 {
            resident += buf.iter().filter(|&&b| b & 1 != 0).count();
        }
    }
    resident
}

/// Unmaps a mapping made by [`map_guarded`].
pub(crate) fn unmap(addr: usize, len: usize) {
    // SAFETY: `addr`/`len` describe a whole mapping made here, owned by the
    // caller, which never touches it again.
    unsafe {
        libc::munmap(addr as *mut libc::c_void, len);
    }
}

/// The calling OS thread's stack as `(lowest usable address, highest
/// address)`, from `pthread_getattr_np`.
pub(crate) fn thread_stack_bounds() -> Option<(usize, usize)> {
    // SAFETY: `attr` is initialised by pthread_getattr_np before use and
    // destroyed after; the out-pointers point to live locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let mut guard: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_getguardsize(&attr, &mut guard);
        libc::pthread_attr_destroy(&mut attr);
        if !ok || addr.is_null() {
            return None;
        }
        let bottom = addr as usize;
        // glibc counts the guard inside the reported stack for threads it
        // created; stay clear of it either way.
        Some((bottom + guard, bottom + size))
    }
}

/// Turns an `ENOMEM` from `mmap`/`mprotect`/`madvise` into an error that says
/// what to do: it is almost always the per-process mapping limit.
fn explain(err: io::Error) -> io::Error {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        return err;
    }
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!("{} ({err})", super::budget::limit_message()),
    )
}
