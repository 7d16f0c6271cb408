//! The allocator: thread caches over central per-class span lists over the
//! page heap, plus marking and sweeping primitives on spans.
//!
//! # Central lists (per span class, behind a mutex)
//!
//! * `in_use`: every span of the class that holds or may hold objects
//!   (swept for `gen`, cached, full or partial);
//! * `partial`: spans swept for `gen` with free slots, owned by no cache;
//! * `unswept`: spans still to be swept for `gen`.
//!
//! `gen` trails the global `SWEEP_GEN` by at most one: the first access
//! after a new generation may sweep moves `in_use` into `unswept` ("roll
//! over", O(1) per class). Sweeping is allowed for generation `g` once the
//! grace period after mark termination has ended (`SWEEP_GEN = g`); until
//! then a cache that needs a span takes a fresh one.
//!
//! # Sweep claims
//!
//! Whoever pops a span from `unswept` counts it in `SWEEPING` (under the
//! class lock) and then claims the span's `sweeping` flag; `sweep_all`
//! waits for `SWEEPING` to reach zero. Sweeps run no user code:
//! destructors of dead objects are handed to the finalizer thread after
//! the claim is released (see `cleanup`), so no claim is ever held across
//! a destructor, a lock a program holds, or a green thread's park.

pub(crate) mod class;
pub(crate) mod object;
pub(crate) mod pages;
pub(crate) mod span;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use class::{pages_of, SpanClass, CLASS_SIZES, NUM_SPAN_CLASSES, PAGE_SIZE};
use object::Header;
use span::Span;

use crate::mutator::Local;

/// Generation for which sweeping is allowed.
pub(crate) static SWEEP_GEN: AtomicU64 = AtomicU64::new(1);
/// Bytes in spans.
pub(crate) static HEAP_BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes handed to caches and large objects since the last mark
/// termination (the pacer's allocation count).
pub(crate) static ALLOCATED: AtomicU64 = AtomicU64::new(0);
/// Bytes of objects found live by sweeps of generation `SWEEP_GEN`.
pub(crate) static SWEPT_LIVE: AtomicU64 = AtomicU64::new(0);
/// Objects freed by sweeping, ever.
pub(crate) static FREED_OBJECTS: AtomicU64 = AtomicU64::new(0);
/// Spans being swept right now.
static SWEEPING: AtomicUsize = AtomicUsize::new(0);
/// The raw epoch of the current (or last) marking phase, stored by the
/// collector before it starts: objects allocated during it are black
/// without a mark bit (see `Span::black_from`). Sweeps of the following
/// generation read it to know those objects survived.
pub(crate) static MARK_EPOCH: AtomicU64 = AtomicU64::new(0);
/// Whether freed objects are overwritten (torture mode).
pub(crate) static POISON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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
        let sweep_gen = SWEEP_GEN.load(Ordering::Acquire);
        if sweep_gen > self.gen {
            let mut in_use = std::mem::take(&mut self.in_use);
            self.unswept.append(&mut in_use);
            self.partial.clear();
            self.gen = sweep_gen;
        }
    }
}

/// Per span class (class 0 = large objects).
static CENTRAL: [Mutex<Lists>; NUM_SPAN_CLASSES] =
    [const { Mutex::new(Lists::new()) }; NUM_SPAN_CLASSES];

/// One span class's slot of a thread cache.
#[derive(Clone, Copy)]
struct Entry {
    /// The owned span, or null.
    span: *const Span,
    /// Free slots of the current window (bit i = slot `window + i`).
    bits: u64,
    /// First slot of the window.
    window: usize,
    /// Generation the entry is valid for.
    gen: u64,
}

/// A thread's allocation cache: one span per span class.
pub(crate) struct Cache {
    entries: [Entry; NUM_SPAN_CLASSES],
}

impl Cache {
    pub(crate) const fn new() -> Cache {
        Cache {
            entries: [Entry {
                span: std::ptr::null(),
                bits: 0,
                window: 0,
                gen: 0,
            }; NUM_SPAN_CLASSES],
        }
    }
}

/// The allocation fast path: a free slot of span class `sc` from the cache,
/// if its span is valid for `gen`. The caller initialises the object and
/// then calls `Span::publish`.
#[inline(always)]
pub(crate) fn try_alloc(
    cache: &mut Cache,
    sc: SpanClass,
    gen: u64,
) -> Option<(&'static Span, usize)> {
    let e = &mut cache.entries[sc.index()];
    if e.bits == 0 || e.gen != gen {
        return None;
    }
    let i = e.bits.trailing_zeros() as usize;
    e.bits &= e.bits - 1;
    // SAFETY: an entry with free bits for the current generation holds a
    // span owned by this cache (see `span` ownership).
    let span = unsafe { &*e.span };
    Some((span, e.window + i))
}

/// The slow path: gives the cache of `local` a window of free slots for
/// `sc`. May sweep spans and take pages (locks), so the caller must be
/// outside any mutator region and must not hold a borrow of the cache.
///
/// The cache is only read and changed inside short regions, each acting on
/// the generation it read on entry: a span a cache owns for generation `g`
/// (`cache_gen == g`) is freed only by a sweep for a later generation, and
/// such sweeps start after the grace period that ends every region that
/// read `g`. Between taking a new span (outside a region: it locks and
/// sweeps) and installing it, the span is held by its `taking` flag, which
/// sweeps respect; if the generation moved on meanwhile the span is left
/// to the next sweep and the caller retries.
pub(crate) fn refill(local: &Local, sc: SpanClass) {
    // 1. Drop stale entries; try the next window of the current span.
    let gen = {
        let region = local.region();
        let gen = region.epoch().gen();
        // SAFETY: this thread's cache; no other borrow of it is live (the
        // caller's contract, and nothing below calls out).
        let c = unsafe { &mut *local.cache() };
        if c.entries[sc.index()].gen != gen {
            for e in c.entries.iter_mut() {
                *e = Entry {
                    span: std::ptr::null(),
                    bits: 0,
                    window: 0,
                    gen,
                };
            }
        }
        let e = &mut c.entries[sc.index()];
        if e.bits != 0 {
            return;
        }
        if !e.span.is_null() {
            // SAFETY: a span this cache owns for `gen`, the generation
            // of this region: no sweep may free it before the region ends.
            let span = unsafe { &*e.span };
            let mut w = e.window / 64 + 1;
            while w < span.words() {
                let free = span.free_word(w);
                if free != 0 {
                    e.window = w * 64;
                    e.bits = free;
                    return;
                }
                w += 1;
            }
            span.cache_gen.store(0, Ordering::Release);
            e.span = std::ptr::null();
        }
        gen
    };
    // 2. A new span (may sweep and lock: outside any region). It comes
    // back with `taking` set, so it stays allocated until cleared below.
    let span = take_span(sc, gen);
    let region = local.region();
    // SAFETY: as in step 1.
    let c = unsafe { &mut *local.cache() };
    let e = &mut c.entries[sc.index()];
    if region.epoch().gen() != gen || e.gen != gen || e.bits != 0 {
        // A new generation began meanwhile: leave ours to the next sweep.
        span.cache_gen.store(0, Ordering::Release);
        span.taking.store(false, Ordering::Release);
        return;
    }
    let mut free_slots = 0;
    for w in 0..span.words() {
        free_slots += span.free_word(w).count_ones() as u64;
    }
    ALLOCATED.fetch_add(free_slots * span.elem_size as u64, Ordering::Relaxed);
    if !e.span.is_null() {
        // SAFETY: owned for `gen`, as in step 1.
        unsafe { &*e.span }.cache_gen.store(0, Ordering::Release);
    }
    e.span = span;
    // Owned by the cache for `gen` from here on (`cache_gen`), inside a
    // region of `gen`.
    span.taking.store(false, Ordering::Release);
    for w in 0..span.words() {
        let free = span.free_word(w);
        if free != 0 {
            e.window = w * 64;
            e.bits = free;
            return;
        }
    }
}

/// A span of `sc` with free slots, owned by the caller's cache for `gen`.
fn take_span(sc: SpanClass, gen: u64) -> &'static Span {
    let mut swept = 0;
    loop {
        let mut lists = CENTRAL[sc.index()].lock();
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
                    SWEEPING.fetch_add(1, Ordering::AcqRel);
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
    HEAP_BYTES.fetch_add((npages * PAGE_SIZE) as u64, Ordering::Relaxed);
    let mut lists = CENTRAL[sc.index()].lock();
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
    let gen = SWEEP_GEN.load(Ordering::Acquire);
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
pub(crate) fn publish_large(span: &Span, epoch: crate::mutator::Epoch, drops: bool) {
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
/// incremented `SWEEPING` while holding the class lock.
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
            POISON.load(Ordering::Relaxed),
            MARK_EPOCH.load(Ordering::Acquire),
        );
        // Zombies occupy slots like live objects (see `Span::sweep`).
        live = swept.live + swept.zombies;
        (finalize, cleanups) = (swept.finalize, swept.cleanups);
        SWEPT_LIVE.fetch_add((swept.live * span.elem_size) as u64, Ordering::Relaxed);
        FREED_OBJECTS.fetch_add(swept.freed as u64, Ordering::Relaxed);
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
        let mut lists = CENTRAL[span.class.index()].lock();
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
    SWEEPING.fetch_sub(1, Ordering::AcqRel);
    // After the span is released: the finalizer thread takes it from here.
    crate::cleanup::submit(finalize, cleanups);
    result
}

fn free_span(span: &'static Span) {
    pages::set_span(span.base, span.npages, std::ptr::null());
    pages::free_pages(span.base, span.npages);
    HEAP_BYTES.fetch_sub((span.npages * PAGE_SIZE) as u64, Ordering::Relaxed);
    // SAFETY: the span was leaked from a Box in `new_span`, is in no list
    // and no page points to it; no cache owns it (checked by the caller)
    // and stale caches never dereference it.
    drop(unsafe { Box::from_raw(span as *const Span as *mut Span) });
}

/// Sweeps every span not yet swept for `gen` (the collector's background
/// sweep and sweep termination), then waits for sweeps other threads are
/// running. Whoever pops a span from `unswept` counts it in `SWEEPING`
/// before releasing the class lock, so when this returns no sweep of `gen`
/// is pending or running anywhere (the next mark may start).
pub(crate) fn sweep_all(gen: u64) {
    for class_lists in CENTRAL.iter() {
        loop {
            let next = {
                let mut lists = class_lists.lock();
                lists.roll_over();
                let next = lists.unswept.pop();
                if next.is_some() {
                    SWEEPING.fetch_add(1, Ordering::AcqRel);
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
    while SWEEPING.load(Ordering::Acquire) != 0 {
        std::thread::yield_now();
    }
}

/// Every span in use (after sweep termination this is every span).
pub(crate) fn spans_in_use() -> Vec<SpanRef> {
    let mut all = Vec::new();
    for lists in CENTRAL.iter() {
        let lists = lists.lock();
        all.extend_from_slice(&lists.in_use);
        all.extend_from_slice(&lists.unswept);
    }
    all
}

/// Result of shading an object.
pub(crate) enum Shade {
    /// Already marked.
    Black,
    /// Newly marked, holds no `Gc` (done).
    NoScan,
    /// Newly marked, must be scanned (grey).
    Grey,
}

/// Marks the object at `header` in marking epoch `epoch` (raw).
#[inline]
pub(crate) fn shade(header: *const Header, epoch: u64) -> Shade {
    let span = pages::span_of(header as usize);
    if !span.set_mark(span.slot_of(header as usize), epoch) {
        Shade::Black
    } else if span.class.noscan() {
        Shade::NoScan
    } else {
        Shade::Grey
    }
}

/// Whether the object at `header` is marked in marking epoch `epoch`.
pub(crate) fn is_marked(header: *const Header, epoch: u64) -> bool {
    let span = pages::span_of(header as usize);
    span.is_marked(span.slot_of(header as usize), epoch)
}
