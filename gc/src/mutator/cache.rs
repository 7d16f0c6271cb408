//! A thread's allocation cache (Go's `mcache`): one span per span class,
//! with a 64-bit window of the span's free slots. The fast path
//! (`try_alloc`) takes a slot inside the caller's region without locks or
//! read-modify-write atomics; the slow path (`refill`) takes spans from
//! the heap's central lists.
//!
//! # Protocol
//!
//! The cache is only read and changed inside short regions of its own
//! thread, each acting on the generation it read on entry (see `refill`
//! for why a cached span is never freed under it).

use std::sync::atomic::Ordering;

use crate::heap::class::{SpanClass, NUM_SPAN_CLASSES};
use crate::heap::span::Span;
use crate::heap::{take_span, HEAP};

use super::ThreadHeap;

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

/// The slow path: gives the cache of `thread` a window of free slots for
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
pub(crate) fn refill(thread: &ThreadHeap, sc: SpanClass) {
    // 1. Drop stale entries; try the next window of the current span.
    let gen = {
        let region = thread.region();
        let gen = region.epoch().gen();
        // SAFETY: this thread's cache; no other borrow of it is live (the
        // caller's contract, and nothing below calls out).
        let c = unsafe { &mut *thread.cache() };
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
    let region = thread.region();
    // SAFETY: as in step 1.
    let c = unsafe { &mut *thread.cache() };
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
    HEAP.allocated
        .fetch_add(free_slots * span.elem_size as u64, Ordering::Relaxed);
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
