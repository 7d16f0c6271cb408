//! The heap (Go's `mheap_`): central per-class span lists over the page
//! heap, sweeping, the finalizer thread that runs what sweeps find dead
//! (`cleanup`), and the marking primitives on spans (`mark`). All of its
//! process-wide state is in [`HEAP`] and `mark::MARK`. The thread caches
//! that allocate from the central lists belong to each thread's mutator
//! state (`mutator::cache`).
//!
//! # Allocator
//!
//! * 64 MiB arenas reserved from the OS, split into 8 KiB pages; each arena
//!   starts with a page-to-span table, so the span of any object is two loads
//!   away.
//! * 67 size classes up to 32 KiB (Go's), each served by spans of one or more
//!   pages; spans are *scan* or *noscan* (types whose `Trace::NEEDS_TRACE` is
//!   false are never scanned). Larger objects get a span of their own:
//!   they count toward the pacer and poll for a safepoint like a cache
//!   refill, and their value is copied into the span outside the mutator
//!   region (the span stays *pending*, invisible to sweeps and marking,
//!   until a short region publishes it), so a stop-the-world never waits
//!   for a large copy.
//! * Each thread has a cache (`mutator::cache`) with one span per span
//!   class and a 64-bit window of free slots: the fast path is a `trailing_zeros`, a store and the
//!   header write, without locks or read-modify-write atomics.
//! * Per-class central lists (`in_use`, `partial`, `unswept`) behind a mutex
//!   serve the caches; a new generation turns `in_use` into `unswept` lazily,
//!   in O(1) per class.
//! * Side bitmaps per span: `mark` and `alloc`. Slots below the span's
//!   `freeindex` were allocated since the last sweep. Allocating black costs
//!   no atomic read-modify-write: a span records the first slot its cache
//!   allocated during the current marking epoch (`black_from`), and free
//!   slots from there up to `freeindex` count as marked. A span whose objects
//!   have no destructor (`Trace::HEAP_DROP_IS_NOOP`, e.g. nodes made of
//!   `Gc`s and numbers) is swept by bitmap operations alone.
//! * Free page runs beyond what the next heap goal needs are returned to the
//!   OS after each cycle (`madvise(MADV_DONTNEED)`).
//!
//! # Central lists (per span class, behind a mutex)
//!
//! * `in_use`: every span of the class that holds or may hold objects
//!   (swept for `gen`, cached, full or partial);
//! * `partial`: spans swept for `gen` with free slots, owned by no cache;
//! * `unswept`: spans still to be swept for `gen`.
//!
//! `gen` trails `Heap::sweep_gen` by at most one: the first access
//! after a new generation may sweep moves `in_use` into `unswept` ("roll
//! over", O(1) per class). Sweeping is allowed for generation `g` once the
//! grace period after mark termination has ended (`sweep_gen = g`); until
//! then a cache that needs a span takes a fresh one.
//!
//! # Sweep claims
//!
//! Whoever pops a span from `unswept` counts it in `Heap::sweeping` (under
//! the class lock) and then claims the span's `sweeping` flag; `sweep_all`
//! waits for it to reach zero. Sweeps run no user code:
//! destructors of dead objects are handed to the finalizer thread after
//! the claim is released (see `cleanup`), so no claim is ever held across
//! a destructor, a lock a program holds, or a green thread's park.

pub(crate) mod class;
pub(crate) mod cleanup;
pub(crate) mod mark;
pub(crate) mod object;
pub(crate) mod pages;
pub(crate) mod span;
pub(crate) mod weak;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use class::{pages_of, SpanClass, CLASS_SIZES, NUM_SPAN_CLASSES, PAGE_SIZE};
use span::Span;

use crate::epoch::Epoch;

/// The process's heap (Go's `mheap_`): the page heap, the central span
/// lists, the sweep generation and the allocator's counters. One `static`,
/// [`HEAP`]; the counters are atomics read on allocation slow paths without
/// a lock.
pub(crate) struct Heap {
    /// Free page runs and huge mappings (see `pages`).
    pages: Mutex<pages::PageHeap>,
    /// The central lists of each span class (class 0 = large objects).
    central: [Mutex<Lists>; NUM_SPAN_CLASSES],
    /// Generation for which sweeping is allowed.
    pub(crate) sweep_gen: AtomicU64,
    /// Spans being swept right now (see "Sweep claims").
    sweeping: AtomicUsize,
    /// Bytes in spans.
    pub(crate) heap_bytes: AtomicU64,
    /// Bytes handed to caches and large objects since the last mark
    /// termination (the pacer's allocation count).
    pub(crate) allocated: AtomicU64,
    /// Bytes of objects found live by sweeps of generation `sweep_gen`.
    pub(crate) swept_live: AtomicU64,
    /// Objects freed by sweeping, ever.
    pub(crate) freed_objects: AtomicU64,
    /// Whether freed objects are overwritten (torture mode).
    pub(crate) poison: AtomicBool,
}

/// The heap.
pub(crate) static HEAP: Heap = Heap {
    pages: Mutex::new(pages::PageHeap::new()),
    central: [const { Mutex::new(Lists::new()) }; NUM_SPAN_CLASSES],
    sweep_gen: AtomicU64::new(1),
    sweeping: AtomicUsize::new(0),
    heap_bytes: AtomicU64::new(0),
    allocated: AtomicU64::new(0),
    swept_live: AtomicU64::new(0),
    freed_objects: AtomicU64::new(0),
    poison: AtomicBool::new(false),
};

/// A span pointer in a list.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanRef(*const Span);

// SAFETY: spans are shared between threads by design; all their mutable
// state is atomic.
unsafe impl Send for SpanRef {}
// SAFETY: as above.
unsafe impl Sync for SpanRef {}

impl SpanRef {
    pub(crate) fn get(self) -> &'static Span {
        // SAFETY: spans listed centrally are live until freed by a sweep,
        // which first removes them from every list.
        unsafe { &*self.0 }
    }
}

/// The central lists of one span class.
struct Lists {
    gen: u64,
    in_use: Vec<SpanRef>,
    partial: Vec<SpanRef>,
    unswept: Vec<SpanRef>,
}

impl Lists {
    const fn new() -> Lists {
        Lists {
            gen: 1,
            in_use: Vec::new(),
            partial: Vec::new(),
            unswept: Vec::new(),
        }
    }

    fn roll_over(&mut self) {
        let sweep_gen = HEAP.sweep_gen.load(Ordering::Acquire);
        if sweep_gen > self.gen {
            let mut in_use = std::mem::take(&mut self.in_use);
            self.unswept.append(&mut in_use);
            self.partial.clear();
            self.gen = sweep_gen;
        }
    }
}

/// A span of `sc` with free slots, owned by the caller's cache for `gen`.
pub(crate) fn take_span(sc: SpanClass, gen: u64) -> &'static Span {
    let mut swept = 0;
    loop {
        let mut lists = HEAP.central[sc.index()].lock();
        lists.roll_over();
        if lists.gen == gen {
            if let Some(s) = lists.partial.pop() {
                // Under the lock, before any roll-over could list it for a
                // later sweep.
                s.get().taking.store(true, Ordering::Release);
                s.get().cache_gen.store(gen, Ordering::Release);
                return s.get();
            }
            if swept < SWEEP_BUDGET {
                if let Some(s) = lists.unswept.pop() {
                    // Counted under the lock: see `sweep_all`.
                    HEAP.sweeping.fetch_add(1, Ordering::AcqRel);
                    drop(lists);
                    swept += 1;
                    if let Some(span) = sweep_span(s, gen, true) {
                        return span;
                    }
                    continue;
                }
            }
        }
        drop(lists);
        let class = sc.class();
        let size = CLASS_SIZES[class] as usize;
        let span = new_span(sc, pages_of(class), size, gen, false, true);
        span.cache_gen.store(gen, Ordering::Release);
        return span;
    }
}

/// Makes a span of `npages` for `sc`, registers it and lists it `in_use`
/// (`pending`: see `alloc_large`).
fn new_span(
    sc: SpanClass,
    npages: usize,
    elem_size: usize,
    gen: u64,
    pending: bool,
    taking: bool,
) -> &'static Span {
    let base = pages::alloc_pages(npages);
    let span = Span::new(base, npages, sc, elem_size, gen);
    span.pending.store(pending, Ordering::Relaxed);
    span.taking.store(taking, Ordering::Relaxed);
    let span: &'static Span = Box::leak(Box::new(span));
    pages::set_span(base, npages, span);
    HEAP.heap_bytes
        .fetch_add((npages * PAGE_SIZE) as u64, Ordering::Relaxed);
    let mut lists = HEAP.central[sc.index()].lock();
    lists.roll_over();
    lists.in_use.push(SpanRef(span));
    span
}

/// Allocates a span for one large object of `size` bytes (header
/// included), called outside any mutator region. The span is listed but
/// *pending*: sweeps leave it alone until `publish_large`, so the caller
/// may initialise slot 0 outside a region (the pacer counted the bytes in
/// `collector::before_large_alloc`).
pub(crate) fn alloc_large(noscan: bool, size: usize) -> &'static Span {
    let npages = size.div_ceil(PAGE_SIZE);
    let gen = HEAP.sweep_gen.load(Ordering::Acquire);
    new_span(
        SpanClass::new(0, noscan),
        npages,
        npages * PAGE_SIZE,
        gen,
        true,
        false,
    )
}

/// Dropped (on unwinding) when a span from `alloc_large` will never be
/// published: it stops being pending with no object in it, so a sweep of
/// a later generation frees it (whatever was written there is leaked).
pub(crate) struct AbandonLarge(pub(crate) &'static Span);

impl Drop for AbandonLarge {
    fn drop(&mut self) {
        self.0.pending.store(false, Ordering::Release);
    }
}

/// The bytes a large object of `size` bytes occupies (whole pages).
pub(crate) fn large_bytes(size: usize) -> usize {
    size.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// Publishes the initialised object of a span from `alloc_large`, inside
/// the caller's region (whose epoch is `epoch`). From here on the span is
/// an ordinary large-object span, swept for `epoch`'s generation.
///
/// Why a sweep never frees a pending span's object: a sweep for generation
/// `g` runs only after the grace period that followed the flip to `g`, so
/// this region either ended before that sweep starts (and the sweep sees
/// `pending` false, the object published and `sweepgen` at most `g`), or
/// began after the flip (its epoch is `g` or later, so the `sweepgen` stored
/// here makes the span fresh for `g`). A sweep that saw `pending` set only
/// re-lists the span.
pub(crate) fn publish_large(span: &Span, epoch: Epoch, drops: bool) {
    span.sweepgen.store(epoch.gen(), Ordering::Relaxed);
    span.publish(0, epoch.marking().then(|| epoch.raw()), drops);
    span.pending.store(false, Ordering::Release);
}

/// Unswept spans an allocation sweeps looking for free slots before it
/// takes fresh pages instead. After a cycle most spans of a large live heap
/// are full: sweeping them all on one allocation took milliseconds (the
/// background sweep files the rest), as Go's `mcentral.cacheSpan` bounds its
/// own search.
const SWEEP_BUDGET: usize = 16;

/// Sweeps `s` for `gen` (if it is not swept yet) and files it. With
/// `for_alloc`, a span with free slots is returned owned by the caller
/// instead of going to `partial`. The caller popped `s` from `unswept` and
/// incremented `HEAP.sweeping` while holding the class lock.
fn sweep_span(s: SpanRef, gen: u64, for_alloc: bool) -> Option<&'static Span> {
    let span = s.get();
    while span
        .sweeping
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
    // A pending large span (see `alloc_large`) counts as swept for `gen`.
    let fresh =
        span.pending.load(Ordering::Acquire) || span.sweepgen.load(Ordering::Acquire) == gen;
    let mut live = 0;
    let mut finalize = Vec::new();
    let mut cleanups = Vec::new();
    if !fresh {
        let swept = span.sweep(
            HEAP.poison.load(Ordering::Relaxed),
            mark::MARK.epoch.load(Ordering::Acquire),
        );
        // Zombies occupy slots like live objects (see `Span::sweep`).
        live = swept.live + swept.zombies;
        (finalize, cleanups) = (swept.finalize, swept.cleanups);
        HEAP.swept_live
            .fetch_add((swept.live * span.elem_size) as u64, Ordering::Relaxed);
        HEAP.freed_objects
            .fetch_add(swept.freed as u64, Ordering::Relaxed);
        span.sweepgen.store(gen, Ordering::Release);
    }
    span.sweeping.store(false, Ordering::Release);
    let owned = span.cache_gen.load(Ordering::Acquire) == gen;
    // A small-object span found empty by an allocation serves it as it
    // is, instead of going back to the page heap and coming out again.
    let reuse = for_alloc && span.class.class() != 0;
    let taken = span.taking.load(Ordering::Acquire);
    let result = if !fresh && !owned && !taken && live == 0 && !reuse {
        free_span(span);
        None
    } else {
        let mut lists = HEAP.central[span.class.index()].lock();
        lists.roll_over();
        lists.in_use.push(s);
        // Only a just-swept span has its free slots in `alloc` form.
        // A span a cache owns or a refill is taking is never handed out
        // again (two caches would allocate the same slots).
        if fresh || owned || taken || live == span.nelems || span.class.class() == 0 {
            None
        } else if for_alloc {
            span.taking.store(true, Ordering::Release);
            span.cache_gen.store(gen, Ordering::Release);
            Some(span)
        } else {
            lists.partial.push(s);
            None
        }
    };
    HEAP.sweeping.fetch_sub(1, Ordering::AcqRel);
    // After the span is released: the finalizer thread takes it from here.
    cleanup::submit(finalize, cleanups);
    result
}

fn free_span(span: &'static Span) {
    pages::set_span(span.base, span.npages, std::ptr::null());
    pages::free_pages(span.base, span.npages);
    HEAP.heap_bytes
        .fetch_sub((span.npages * PAGE_SIZE) as u64, Ordering::Relaxed);
    // SAFETY: the span was leaked from a Box in `new_span`, is in no list
    // and no page points to it; no cache owns it (checked by the caller)
    // and stale caches never dereference it.
    drop(unsafe { Box::from_raw(span as *const Span as *mut Span) });
}

/// Sweeps every span not yet swept for `gen` (the collector's background
/// sweep and sweep termination), then waits for sweeps other threads are
/// running. Whoever pops a span from `unswept` counts it in `HEAP.sweeping`
/// before releasing the class lock, so when this returns no sweep of `gen`
/// is pending or running anywhere (the next mark may start).
pub(crate) fn sweep_all(gen: u64) {
    for class_lists in HEAP.central.iter() {
        loop {
            let next = {
                let mut lists = class_lists.lock();
                lists.roll_over();
                let next = lists.unswept.pop();
                if next.is_some() {
                    HEAP.sweeping.fetch_add(1, Ordering::AcqRel);
                }
                next
            };
            match next {
                Some(s) => {
                    sweep_span(s, gen, false);
                }
                None => break,
            }
        }
    }
    while HEAP.sweeping.load(Ordering::Acquire) != 0 {
        std::thread::yield_now();
    }
}

/// Every span in use (after sweep termination this is every span).
pub(crate) fn spans_in_use() -> Vec<SpanRef> {
    let mut all = Vec::new();
    for lists in HEAP.central.iter() {
        let lists = lists.lock();
        all.extend_from_slice(&lists.in_use);
        all.extend_from_slice(&lists.unswept);
    }
    all
}
