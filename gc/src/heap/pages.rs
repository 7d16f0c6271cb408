//! The page heap: 64 MiB arenas reserved from the OS, handed out as runs of
//! 8 KiB pages, with a page-to-span table at the start of each arena.
//!
//! All mmap/madvise/munmap calls of the collector live here. The free runs
//! are `Heap::pages`; the page-to-span tables live in the arenas themselves.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use super::class::{PAGE_SHIFT, PAGE_SIZE};
use super::span::Span;
use super::HEAP;

/// Arenas are this large and aligned to their size.
pub(crate) const ARENA_SHIFT: usize = 26;
pub(crate) const ARENA_SIZE: usize = 1 << ARENA_SHIFT;
const PAGES_PER_ARENA: usize = ARENA_SIZE / PAGE_SIZE;
/// Pages at the start of each arena that hold its `ArenaHeader`.
const META_PAGES: usize = (PAGES_PER_ARENA * std::mem::size_of::<usize>()).div_ceil(PAGE_SIZE);
/// Free runs at least this long are returned to the OS by `scavenge`.
const RELEASE_PAGES: usize = 16;

/// The start of every arena: which span owns each page.
#[repr(C)]
struct ArenaHeader {
    spans: [AtomicPtr<Span>; PAGES_PER_ARENA],
}

/// A free run of pages.
#[derive(Clone, Copy)]
struct FreeRun {
    pages: usize,
    /// Whether some of its pages may be resident (not yet returned).
    dirty: bool,
}

/// Free page runs and the arenas they come from (`Heap::pages`).
pub(crate) struct PageHeap {
    /// Free runs by start address.
    free: BTreeMap<usize, FreeRun>,
    /// Mappings made for single huge objects: start -> bytes.
    huge: BTreeMap<usize, usize>,
    /// Arenas reserved so far.
    arenas: usize,
}

impl PageHeap {
    pub(crate) const fn new() -> PageHeap {
        PageHeap {
            free: BTreeMap::new(),
            huge: BTreeMap::new(),
            arenas: 0,
        }
    }

    /// Lists a new arena's pages as one free run.
    fn add_arena(&mut self, base: usize) {
        self.arenas += 1;
        self.free.insert(
            base + META_PAGES * PAGE_SIZE,
            FreeRun {
                pages: PAGES_PER_ARENA - META_PAGES,
                dirty: false,
            },
        );
    }
}

/// Set-up steps an allocation had to take itself because nothing had
/// taken them before: the first arena here, the collector's configuration
/// (`collector::warm_up`). Stays 0 in a process whose first allocation
/// comes after a runtime started (the runtime's start warms the heap up).
pub(crate) static SETUPS_ON_ALLOCATION: AtomicU64 = AtomicU64::new(0);

/// Reserves the first arena, unless there is one, so that the first
/// allocation finds pages ready (a runtime's start calls it). Never
/// panics: should the reservation fail, the first allocation tries again
/// and reports the error.
pub(crate) fn reserve_first_arena() {
    let mut heap = HEAP.pages.lock();
    if heap.arenas == 0 {
        if let Ok(base) = try_reserve_aligned(ARENA_SIZE) {
            heap.add_arena(base);
        }
    }
}

/// Allocates a run of `npages` pages; returns its address.
pub(crate) fn alloc_pages(npages: usize) -> usize {
    let mut heap = HEAP.pages.lock();
    if npages > PAGES_PER_ARENA - META_PAGES {
        let bytes = (META_PAGES + npages) * PAGE_SIZE;
        let bytes = bytes.div_ceil(ARENA_SIZE) * ARENA_SIZE;
        let base = reserve_aligned(bytes);
        heap.huge.insert(base, bytes);
        return base + META_PAGES * PAGE_SIZE;
    }
    loop {
        // First fit, preferring resident (dirty) memory.
        let found = heap
            .free
            .iter()
            .find(|(_, r)| r.pages >= npages && r.dirty)
            .or_else(|| heap.free.iter().find(|(_, r)| r.pages >= npages))
            .map(|(&a, &r)| (a, r));
        if let Some((addr, run)) = found {
            heap.free.remove(&addr);
            if run.pages > npages {
                heap.free.insert(
                    addr + npages * PAGE_SIZE,
                    FreeRun {
                        pages: run.pages - npages,
                        dirty: run.dirty,
                    },
                );
            }
            return addr;
        }
        if heap.arenas == 0 {
            SETUPS_ON_ALLOCATION.fetch_add(1, Ordering::Relaxed);
        }
        let base = reserve_aligned(ARENA_SIZE);
        heap.add_arena(base);
    }
}

/// Returns a run to the heap, merging it with free neighbours.
pub(crate) fn free_pages(addr: usize, npages: usize) {
    let mut heap = HEAP.pages.lock();
    let base = addr - META_PAGES * PAGE_SIZE;
    if let Some(bytes) = heap.huge.remove(&base) {
        // SAFETY: the mapping was made by `reserve_aligned` and holds only
        // this (dead) object.
        unsafe { libc::munmap(base as *mut libc::c_void, bytes) };
        return;
    }
    let (mut start, mut n) = (addr, npages);
    if let Some((&a, &r)) = heap.free.range(..addr).next_back() {
        if a + r.pages * PAGE_SIZE == addr {
            heap.free.remove(&a);
            start = a;
            n += r.pages;
        }
    }
    if let Some(r) = heap.free.remove(&(addr + npages * PAGE_SIZE)) {
        n += r.pages;
    }
    heap.free.insert(
        start,
        FreeRun {
            pages: n,
            dirty: true,
        },
    );
}

/// Returns the memory of long free runs to the OS (after each cycle's
/// sweep) until at most `keep` bytes of free memory stay resident (the
/// heap will grow into them before the next cycle). Their pages read as
/// zero when used again. Returns the bytes released.
pub(crate) fn scavenge(keep: usize) -> usize {
    // Pick the runs under the lock, return them to the OS outside it:
    // madvise over hundreds of MiB takes milliseconds, and an allocation
    // needing pages must not wait for it. Picked runs are out of the free
    // map meanwhile, so nobody allocates from them.
    let picked: Vec<(usize, usize)> = {
        let mut heap = HEAP.pages.lock();
        let mut resident: usize = heap
            .free
            .values()
            .filter(|r| r.dirty)
            .map(|r| r.pages * PAGE_SIZE)
            .sum();
        let mut picked = Vec::new();
        for (&addr, run) in heap.free.iter() {
            if resident <= keep {
                break;
            }
            if run.dirty && run.pages >= RELEASE_PAGES {
                resident -= run.pages * PAGE_SIZE;
                picked.push((addr, run.pages));
            }
        }
        for (addr, _) in &picked {
            heap.free.remove(addr);
        }
        picked
    };
    let mut released = 0;
    for &(addr, pages) in &picked {
        // SAFETY: the run belongs to the heap, holds no object, and is out
        // of the free map until it is put back below.
        unsafe {
            libc::madvise(
                addr as *mut libc::c_void,
                pages * PAGE_SIZE,
                libc::MADV_DONTNEED,
            )
        };
        released += pages * PAGE_SIZE;
    }
    let mut heap = HEAP.pages.lock();
    for (addr, pages) in picked {
        insert_clean(&mut heap, addr, pages);
    }
    released
}

/// Puts a returned (clean) run back, merged with clean neighbours (a dirty
/// neighbour stays apart, so that the run's pages are not counted as
/// resident again).
fn insert_clean(heap: &mut PageHeap, addr: usize, pages: usize) {
    let (mut start, mut n) = (addr, pages);
    if let Some((&a, &r)) = heap.free.range(..addr).next_back() {
        if !r.dirty && a + r.pages * PAGE_SIZE == addr {
            heap.free.remove(&a);
            start = a;
            n += r.pages;
        }
    }
    let after = addr + pages * PAGE_SIZE;
    if let Some(&r) = heap.free.get(&after) {
        if !r.dirty {
            heap.free.remove(&after);
            n += r.pages;
        }
    }
    heap.free.insert(
        start,
        FreeRun {
            pages: n,
            dirty: false,
        },
    );
}

/// Records `span` as the owner of its pages (or clears them with null).
pub(crate) fn set_span(base: usize, npages: usize, span: *const Span) {
    let header = arena_header(base);
    let first = (base & (ARENA_SIZE - 1)) >> PAGE_SHIFT;
    // Huge spans only need their first page: objects start there.
    let last = (first + npages).min(PAGES_PER_ARENA);
    for page in &header.spans[first..last] {
        page.store(span as *mut Span, Ordering::Release);
    }
}

/// The span holding the object at `addr` (which must be an object start).
#[inline]
pub(crate) fn span_of(addr: usize) -> &'static Span {
    let header = arena_header(addr);
    let page = (addr & (ARENA_SIZE - 1)) >> PAGE_SHIFT;
    let span = header.spans[page].load(Ordering::Acquire);
    debug_assert!(!span.is_null(), "fibra_gc: no span at {addr:#x}");
    // SAFETY: `addr` is an object in the heap, so its page belongs to a live
    // span (spans are freed only when no object in them is reachable).
    unsafe { &*span }
}

#[inline]
fn arena_header(addr: usize) -> &'static ArenaHeader {
    let base = addr & !(ARENA_SIZE - 1);
    // SAFETY: every heap address lies in an arena or huge mapping whose
    // first pages hold an `ArenaHeader` (zeroed by mmap, i.e. null spans).
    unsafe { &*std::ptr::with_exposed_provenance::<ArenaHeader>(base) }
}

/// The heap cannot grow: a panic (an allocation error) that names the heap
/// size and the memory limit. It unwinds out of `Gc::new` leaving no state
/// behind: the page heap's lock is released by its guard, and pages are
/// only ever taken outside mutator regions.
#[cold]
fn out_of_memory(bytes: usize, err: std::io::Error) -> ! {
    let heap = HEAP.heap_bytes.load(Ordering::Relaxed);
    let limit = match crate::config::config().memory_limit {
        Some(l) => format!("FIBRA_GC_MEMORY_LIMIT {l} bytes"),
        None => "no FIBRA_GC_MEMORY_LIMIT".to_string(),
    };
    panic!("fibra_gc: allocation failed: cannot reserve {bytes} more bytes for a heap of {heap} bytes ({limit}): {err}");
}

/// Reserves `bytes` (a multiple of `ARENA_SIZE`) aligned to `ARENA_SIZE`;
/// panics (an allocation error) if the OS refuses.
fn reserve_aligned(bytes: usize) -> usize {
    try_reserve_aligned(bytes).unwrap_or_else(|e| out_of_memory(bytes, e))
}

/// Reserves `bytes` (a multiple of `ARENA_SIZE`) aligned to `ARENA_SIZE`.
fn try_reserve_aligned(bytes: usize) -> std::io::Result<usize> {
    let len = bytes + ARENA_SIZE;
    // SAFETY: an anonymous private mapping; no existing memory is touched.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let start = raw as usize;
    let aligned = (start + ARENA_SIZE - 1) & !(ARENA_SIZE - 1);
    // SAFETY: trimming the unaligned head and tail of our own mapping.
    unsafe {
        if aligned > start {
            libc::munmap(raw, aligned - start);
        }
        let end = start + len;
        if end > aligned + bytes {
            libc::munmap(
                (aligned + bytes) as *mut libc::c_void,
                end - aligned - bytes,
            );
        }
    }
    // Expose so `span_of` may rebuild pointers from plain addresses.
    let _ = (raw as *mut u8).expose_provenance();
    Ok(aligned)
}
