//! A span: a run of pages holding objects of one span class, with side
//! bitmaps for marking and allocation.
//!
//! # States of a slot
//!
//! A slot is *allocated* if it is below `freeindex` (allocated since the
//! span was last swept) or its `alloc` bit is set (survived the last
//! sweep). An allocated slot is *marked* if its `mark` bit is set. Sweeping
//! for generation `g` frees every allocated, unmarked object, then copies
//! `mark` into `alloc`, clears `mark` and resets `freeindex`; afterwards
//! `sweepgen == g`. The exception is a dead object with a destructor: it
//! becomes a *zombie* (its header's vtable is `ZOMBIE`) and keeps its
//! `alloc` bit until a sweep finds it `DROPPED` by the finalizer thread
//! (see `Span::sweep` and `cleanup`).
//!
//! A large object's span is *pending* from `heap::alloc_large` until
//! `heap::publish_large`: sweeps treat it as swept and never free it.
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
use super::object::{Header, DROPPED, ZOMBIE};

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
    /// The marking epoch (raw, odd) in which objects were last allocated
    /// here; 0: none since the last sweep.
    pub(crate) black_epoch: AtomicU64,
    /// First slot allocated during `black_epoch`: free slots (no `alloc`
    /// bit) in `black_from..freeindex` are black without a mark bit, since
    /// the owning cache allocates in increasing slot order.
    pub(crate) black_from: AtomicUsize,
    /// Set once a cleanup was registered for an object here.
    pub(crate) has_cleanups: AtomicBool,
    /// Set once an object whose type has a destructor was allocated here
    /// (otherwise sweeping never reads the objects).
    pub(crate) has_drops: AtomicBool,
    /// Slots below this were allocated since the last sweep.
    pub(crate) freeindex: AtomicUsize,
    /// Set while a large object's span awaits its object's publication
    /// (`heap::alloc_large`): sweeps neither sweep nor free it.
    pub(crate) pending: AtomicBool,
    /// Set while a thread's `mutator::cache::refill` holds the span between
    /// taking it and installing it in its cache, outside any region: a
    /// sweep of a later generation may sweep the span meanwhile but never
    /// frees it.
    pub(crate) taking: AtomicBool,
    /// Mark bits, one per slot.
    pub(crate) mark: Box<[AtomicU64]>,
    /// Slots that survived the last sweep.
    pub(crate) alloc: Box<[AtomicU64]>,
}

/// What sweeping found.
#[derive(Default)]
pub(crate) struct Swept {
    /// Objects that survived because they are reachable.
    pub(crate) live: usize,
    /// Dead objects kept for (or during) their destructor: their slots
    /// stay allocated, but they are not live bytes.
    pub(crate) zombies: usize,
    /// Objects found dead (each counted once: a zombie when it dies, not
    /// when its slot is freed after its destructor).
    pub(crate) freed: usize,
    /// Destructors for the finalizer thread (new zombies).
    pub(crate) finalize: Vec<Finalize>,
    /// Cleanups of the objects that died.
    pub(crate) cleanups: Vec<super::cleanup::Cleanup>,
}

/// Bits of word `w` for slots in `from..to`.
#[inline]
fn range_mask(w: usize, from: usize, to: usize) -> u64 {
    let lo = from.saturating_sub(w * 64).min(64);
    let hi = to.saturating_sub(w * 64).min(64);
    if lo >= hi {
        return 0;
    }
    let upper = if hi == 64 { u64::MAX } else { (1u64 << hi) - 1 };
    upper & !((1u64 << lo) - 1)
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
            black_epoch: AtomicU64::new(0),
            black_from: AtomicUsize::new(0),
            has_cleanups: AtomicBool::new(false),
            freeindex: AtomicUsize::new(0),
            pending: AtomicBool::new(false),
            taking: AtomicBool::new(false),
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

    /// Whether the allocated slot `slot` was allocated black in marking
    /// epoch `epoch` (raw; only odd, marking epochs can match).
    #[inline]
    fn allocated_black(&self, slot: usize, epoch: u64) -> bool {
        epoch & 1 == 1
            && self.black_epoch.load(Ordering::Acquire) == epoch
            && slot >= self.black_from.load(Ordering::Relaxed)
            && self.alloc[slot / 64].load(Ordering::Relaxed) & (1 << (slot % 64)) == 0
    }

    /// Whether the allocated slot `slot` is marked in marking epoch `epoch`
    /// (by its bit, or by being allocated during it).
    #[inline]
    pub(crate) fn is_marked(&self, slot: usize, epoch: u64) -> bool {
        self.mark[slot / 64].load(Ordering::Relaxed) & (1 << (slot % 64)) != 0
            || self.allocated_black(slot, epoch)
    }

    /// Marked slots of bitmap word `w` in marking epoch `epoch`.
    #[inline]
    pub(crate) fn marked_word(&self, w: usize, epoch: u64) -> u64 {
        let bits = self.mark[w].load(Ordering::Acquire);
        if epoch & 1 == 0 || self.black_epoch.load(Ordering::Acquire) != epoch {
            return bits;
        }
        let from = self.black_from.load(Ordering::Relaxed);
        let to = self.freeindex.load(Ordering::Acquire);
        bits | (range_mask(w, from, to) & !self.alloc[w].load(Ordering::Relaxed))
    }

    /// Marks `slot` in marking epoch `epoch`; true if it was unmarked.
    #[inline]
    pub(crate) fn set_mark(&self, slot: usize, epoch: u64) -> bool {
        let word = &self.mark[slot / 64];
        let bit = 1u64 << (slot % 64);
        if word.load(Ordering::Relaxed) & bit != 0 || self.allocated_black(slot, epoch) {
            return false;
        }
        word.fetch_or(bit, Ordering::AcqRel) & bit == 0
    }

    /// Makes the object in `slot` (header and value written) visible as
    /// allocated; during a marking epoch (`marking`: its raw value) it is
    /// black: the first black allocation of the epoch fixes `black_from`.
    /// `drops`: the object's type has a destructor.
    #[inline]
    pub(crate) fn publish(&self, slot: usize, marking: Option<u64>, drops: bool) {
        if drops && !self.has_drops.load(Ordering::Relaxed) {
            self.has_drops.store(true, Ordering::Relaxed);
        }
        if let Some(epoch) = marking {
            if self.black_epoch.load(Ordering::Relaxed) != epoch {
                self.black_from.store(slot, Ordering::Relaxed);
                self.black_epoch.store(epoch, Ordering::Release);
            }
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

    /// Sweeps the span: frees every allocated, unmarked object and resets
    /// the bitmaps for allocation. The caller holds the `sweeping` claim.
    ///
    /// No user code runs here: a dead object whose type has a destructor
    /// is not freed but becomes a *zombie* (its vtable is swapped for
    /// `ZOMBIE`, its slot stays allocated) and goes to `out.finalize`; the
    /// finalizer thread drops its value and swaps in `DROPPED`, and the
    /// first sweep after that frees the slot. A zombie is unreachable (no
    /// root, no marked object points to it), so marking never reads it;
    /// it occupies its slot, so its span is never freed under it.
    pub(crate) fn sweep(&self, poison: bool, mark_epoch: u64) -> Swept {
        let mut out = Swept::default();
        let cleanups = self.has_cleanups.load(Ordering::Acquire);
        let visit = poison || cleanups || self.has_drops.load(Ordering::Relaxed);
        for w in 0..self.words() {
            let allocated = self.allocated_word(w);
            let marked = self.marked_word(w, mark_epoch);
            let mut garbage = allocated & !marked;
            let mut kept = 0u64;
            if !visit {
                out.freed += garbage.count_ones() as usize;
            }
            while visit && garbage != 0 {
                let bit = garbage & garbage.wrapping_neg();
                let slot = w * 64 + bit.trailing_zeros() as usize;
                garbage &= garbage - 1;
                let header = self.object(slot);
                // SAFETY: the slot holds an initialised object (or a zombie
                // whose header is intact) that no root and no marked
                // object reaches.
                let vtable = unsafe { (*header).vtable() };
                if std::ptr::eq(vtable, &ZOMBIE) {
                    kept |= bit;
                    continue;
                }
                if let Some(drop) = vtable.drop {
                    // SAFETY: as above; from here on only the finalizer
                    // touches the value.
                    unsafe { (*header).set_vtable(&ZOMBIE) };
                    out.finalize.push(Finalize {
                        header: header as usize,
                        drop,
                        name: vtable.name,
                    });
                    kept |= bit;
                    out.freed += 1;
                    // SAFETY: as above.
                    if cleanups && unsafe { (*header).has_cleanup() } {
                        super::cleanup::object_died(header as usize, &mut out.cleanups);
                    }
                    continue;
                }
                if !std::ptr::eq(vtable, &DROPPED) {
                    out.freed += 1;
                }
                // SAFETY: as above.
                if cleanups && unsafe { (*header).has_cleanup() } {
                    super::cleanup::object_died(header as usize, &mut out.cleanups);
                }
                if poison {
                    // SAFETY: the slot is ours until it is allocated again.
                    unsafe { std::ptr::write_bytes(header.cast::<u8>(), 0xA5, self.elem_size) };
                }
            }
            let survivors = marked | kept;
            out.live += marked.count_ones() as usize;
            out.zombies += kept.count_ones() as usize;
            self.mark[w].store(0, Ordering::Relaxed);
            self.alloc[w].store(survivors, Ordering::Relaxed);
        }
        self.freeindex.store(0, Ordering::Release);
        self.black_epoch.store(0, Ordering::Release);
        out
    }
}

/// A zombie's destructor, for the finalizer thread.
pub(crate) struct Finalize {
    /// The object's header address.
    pub(crate) header: usize,
    /// Its type's drop function.
    pub(crate) drop: unsafe fn(*mut Header),
    /// Its type's name, for reports.
    pub(crate) name: fn() -> &'static str,
}

impl Finalize {
    /// Drops the zombie's value and marks it `DROPPED` (a panic is
    /// reported, the object still counts as dropped).
    ///
    /// # Safety
    /// `self` came from a sweep and is run once.
    pub(crate) unsafe fn run(self) {
        let header = std::ptr::with_exposed_provenance_mut::<Header>(self.header);
        // SAFETY: per the contract the value is initialised and dropped
        // exactly once; the zombie's slot stays allocated until the
        // `DROPPED` store below is seen by a sweep.
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { (self.drop)(header) }));
        if result.is_err() {
            tracing::error!(target: "fibra_gc", ty = (self.name)(), "a destructor panicked while its object was finalized");
        }
        // SAFETY: the header is intact (only the value was dropped).
        unsafe { (*header).set_vtable(&DROPPED) };
    }
}

#[cfg(test)]
mod tests {
    use super::range_mask;

    #[test]
    fn range_masks() {
        assert_eq!(range_mask(0, 0, 64), u64::MAX);
        assert_eq!(range_mask(0, 3, 5), 0b11000);
        assert_eq!(range_mask(1, 3, 5), 0);
        assert_eq!(range_mask(1, 60, 70), 0b11_1111);
        assert_eq!(range_mask(0, 60, 70), 0xF << 60);
        assert_eq!(range_mask(2, 0, 1000), u64::MAX);
    }
}
