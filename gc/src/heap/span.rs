//! A span: a run of pages holding objects of one span class, with side
//! bitmaps for marking and allocation.
//!
//! # States of a slot
//!
//! A slot is *allocated* if it is below `freeindex` (allocated since the
//! span was last swept) or its `alloc` bit is set (survived the last
//! sweep). An allocated slot is *marked* if its `mark` bit is set. Sweeping
//! for generation `g` drops every allocated, unmarked object, then copies
//! `mark` into `alloc`, clears `mark` and resets `freeindex`; afterwards
//! `sweepgen == g`.
//!
//! # Ownership
//!
//! A span is allocated into by at most one thread cache at a time: the one
//! that set `cache_gen` to the current generation. A cache only uses its
//! span while the generation it read in its mutator region equals
//! `cache_gen`, so after a generation's grace period stale caches never touch
//! their spans again and any sweeper may sweep them. Sweeping is claimed by
//! the `sweeping` flag; mark bits are set with atomic `fetch_or` by the
//! marker, assists and barriers; `alloc` bits change only while sweeping.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::class::{SpanClass, PAGE_SIZE};
use super::object::Header;

/// A run of pages serving one span class.
pub(crate) struct Span {
    /// Address of slot 0.
    pub(crate) base: usize,
    /// Length in pages.
    pub(crate) npages: usize,
    /// Bytes per slot (header included).
    pub(crate) elem_size: usize,
    /// Number of slots.
    pub(crate) nelems: usize,
    /// `ceil(2^32 / elem_size)`: slot index by multiplication.
    div_mul: u64,
    /// Size class and scan/noscan.
    pub(crate) class: SpanClass,
    /// The generation this span was last swept for.
    pub(crate) sweepgen: AtomicU64,
    /// Set while a thread sweeps the span.
    pub(crate) sweeping: AtomicBool,
    /// The generation in which a thread cache took the span (0: none).
    pub(crate) cache_gen: AtomicU64,
    /// Set once a cleanup was registered for an object here.
    pub(crate) has_cleanups: AtomicBool,
    /// Set once an object whose type has a destructor was allocated here
    /// (otherwise sweeping never reads the objects).
    pub(crate) has_drops: AtomicBool,
    /// Slots below this were allocated since the last sweep.
    pub(crate) freeindex: AtomicUsize,
    /// Mark bits, one per slot.
    pub(crate) mark: Box<[AtomicU64]>,
    /// Slots that survived the last sweep.
    pub(crate) alloc: Box<[AtomicU64]>,
}

/// What sweeping found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Swept {
    /// Objects that survived.
    pub(crate) live: usize,
    /// Objects dropped.
    pub(crate) freed: usize,
}

fn bitmap(n: usize) -> Box<[AtomicU64]> {
    (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect()
}

impl Span {
    /// A span over `npages` pages at `base`, with no objects, swept for
    /// `gen`.
    pub(crate) fn new(
        base: usize,
        npages: usize,
        class: SpanClass,
        elem_size: usize,
        gen: u64,
    ) -> Span {
        let nelems = if class.class() == 0 {
            1
        } else {
            npages * PAGE_SIZE / elem_size
        };
        Span {
            base,
            npages,
            elem_size,
            nelems,
            div_mul: (1u64 << 32).div_ceil(elem_size as u64),
            class,
            sweepgen: AtomicU64::new(gen),
            sweeping: AtomicBool::new(false),
            cache_gen: AtomicU64::new(0),
            has_drops: AtomicBool::new(false),
            has_cleanups: AtomicBool::new(false),
            freeindex: AtomicUsize::new(0),
            mark: bitmap(nelems),
            alloc: bitmap(nelems),
        }
    }

    /// The slot of the object starting at `addr`.
    #[inline]
    pub(crate) fn slot_of(&self, addr: usize) -> usize {
        (((addr - self.base) as u64 * self.div_mul) >> 32) as usize
    }

    /// The header of slot `slot`.
    #[inline]
    pub(crate) fn object(&self, slot: usize) -> *mut Header {
        std::ptr::with_exposed_provenance_mut(self.base + slot * self.elem_size)
    }

    /// Valid-slot mask of bitmap word `w`.
    #[inline]
    pub(crate) fn word_mask(&self, w: usize) -> u64 {
        let remaining = self.nelems - w * 64;
        if remaining >= 64 {
            u64::MAX
        } else {
            (1u64 << remaining) - 1
        }
    }

    /// Allocated slots of bitmap word `w` (see the module docs).
    #[inline]
    pub(crate) fn allocated_word(&self, w: usize) -> u64 {
        let free_index = self.freeindex.load(Ordering::Acquire);
        let below = if free_index >= (w + 1) * 64 {
            u64::MAX
        } else if free_index <= w * 64 {
            0
        } else {
            (1u64 << (free_index - w * 64)) - 1
        };
        (self.alloc[w].load(Ordering::Relaxed) | below) & self.word_mask(w)
    }

    /// Whether slot `slot` is marked.
    #[inline]
    pub(crate) fn is_marked(&self, slot: usize) -> bool {
        self.mark[slot / 64].load(Ordering::Relaxed) & (1 << (slot % 64)) != 0
    }

    /// Sets the mark bit of `slot`; true if it was clear.
    #[inline]
    pub(crate) fn set_mark(&self, slot: usize) -> bool {
        let word = &self.mark[slot / 64];
        let bit = 1u64 << (slot % 64);
        if word.load(Ordering::Relaxed) & bit != 0 {
            return false;
        }
        word.fetch_or(bit, Ordering::AcqRel) & bit == 0
    }

    /// Makes the object in `slot` visible as allocated (after its header
    /// and value are written), black if the heap is marking. `drops`: the
    /// object's type has a destructor.
    #[inline]
    pub(crate) fn publish(&self, slot: usize, black: bool, drops: bool) {
        if drops && !self.has_drops.load(Ordering::Relaxed) {
            self.has_drops.store(true, Ordering::Relaxed);
        }
        if black {
            self.set_mark(slot);
        }
        self.freeindex.store(slot + 1, Ordering::Release);
    }

    /// Free slots (not allocated) of bitmap word `w`, for allocation.
    #[inline]
    pub(crate) fn free_word(&self, w: usize) -> u64 {
        !self.alloc[w].load(Ordering::Relaxed) & self.word_mask(w)
    }

    /// Number of bitmap words.
    pub(crate) fn words(&self) -> usize {
        self.mark.len()
    }

    /// Sweeps the span: drops every allocated, unmarked object (running
    /// destructors on this thread) and resets the bitmaps for allocation.
    /// The caller holds the `sweeping` claim.
    pub(crate) fn sweep(&self, poison: bool) -> Swept {
        let mut out = Swept::default();
        let cleanups = self.has_cleanups.load(Ordering::Acquire);
        let visit = poison || cleanups || self.has_drops.load(Ordering::Relaxed);
        for w in 0..self.words() {
            let allocated = self.allocated_word(w);
            let marked = self.mark[w].load(Ordering::Acquire);
            let mut garbage = allocated & !marked;
            out.live += marked.count_ones() as usize;
            out.freed += garbage.count_ones() as usize;
            while visit && garbage != 0 {
                let slot = w * 64 + garbage.trailing_zeros() as usize;
                garbage &= garbage - 1;
                if cleanups {
                    // SAFETY: the slot holds an initialised object.
                    if unsafe { (*self.object(slot)).has_cleanup() } {
                        crate::cleanup::object_died(self.object(slot) as usize);
                    }
                }
                // SAFETY: the slot holds an initialised object that no root
                // and no marked object reaches; nothing will read it again.
                unsafe { self.drop_object(slot, poison) };
            }
            self.alloc[w].store(marked, Ordering::Relaxed);
            self.mark[w].store(0, Ordering::Relaxed);
        }
        self.freeindex.store(0, Ordering::Release);
        out
    }

    /// Runs the destructor of the object in `slot`.
    ///
    /// # Safety
    /// The slot holds an unreachable, initialised object.
    unsafe fn drop_object(&self, slot: usize, poison: bool) {
        let header = self.object(slot);
        // SAFETY: per the contract, the header is initialised.
        let vtable = unsafe { (*header).vtable() };
        if let Some(drop) = vtable.drop {
            // SAFETY: the value is initialised and dropped exactly once.
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { drop(header) }));
            if result.is_err() {
                tracing::error!(target: "fibra_gc", ty = (vtable.name)(), "a destructor panicked while its object was swept");
            }
        }
        if poison {
            // SAFETY: the slot is ours until it is allocated again.
            unsafe { std::ptr::write_bytes(header.cast::<u8>(), 0xA5, self.elem_size) };
        }
    }
}
