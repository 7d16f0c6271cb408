//! Weak slots: where a `Weak` finds its object, cleared by the sweep that
//! finds the object dead (Go's weak handles).
//!
//! # Protocol
//!
//! Each object that has been downgraded has one [`WeakSlot`], registered
//! by the object's address in [`WEAK`] and shared (`Arc`) by its `Weak`
//! handles; the header's `CLEANUP` bit and its span's `has_cleanups` make
//! sweeps report the object's death (`cleanup::object_died`, which calls
//! [`object_died`]). The slot holds the header's address until then, and
//! 0 after.
//!
//! - *Death*: a sweep for generation `g` that finds the object dead clears
//!   its slot (under the slot's lock) before it frees the slot or makes it
//!   a zombie, and before it stores the span's `sweepgen = g`.
//! - *Upgrade* ([`upgrade_locked`]): takes the slot's lock *outside* any
//!   mutator region (a sweeping thread holding it may be stopped by a
//!   stop-the-world; a region must never wait for it), then, inside one
//!   region whose epoch is `(gen, marking)`:
//!   - slot 0: dead;
//!   - marking: every span was swept for `gen` before marking began and no
//!     sweep runs until it ends, so a non-zero slot is a live object. The
//!     new root did not exist in the snapshot, so it is shaded first, as
//!     the deletion barrier would (snapshot-at-the-beginning): the object
//!     and what it reaches survive this cycle. Unlike a barrier's, this
//!     shade may meet a *white* object (unreachable at the snapshot), so
//!     it must not come after the collector's last check for grey
//!     objects: the collector sets `MarkState::terminating` before the
//!     grace period that precedes that check. A region that sees it set
//!     does not shade: a marked object is kept (grey or black, it is
//!     scanned before marking ends), a white one makes the caller wait
//!     outside the region until marking has ended (the object is then
//!     dead, its span unswept) or gone on (the flag is cleared). A region
//!     that does not see it began before the grace period ended, which
//!     waits for it: its grey object is seen by the check;
//!   - not marking, the span swept for `gen` (`sweepgen` read with
//!     acquire): the sweep would have cleared the slot, so the object
//!     lives;
//!   - not marking, the span not yet swept: the last mark decided, but
//!     only its sweep tells. The caller leaves the region and the lock,
//!     sweeps the span itself if it is still listed unswept
//!     ([`sweep_for_upgrade`]; otherwise another thread is sweeping it, or
//!     sweeping for `gen` is not allowed yet), and tries again.
//!
//!   While the lock is held and the slot is non-zero, the object's death
//!   has not been recorded, so neither its slot nor its span is freed:
//!   reading the span is safe.
//! - A dead object's registration is removed with its slot's clearing; a
//!   new object at the same address gets a new slot. The registration of
//!   a live object goes when its last `Weak` does ([`release`]); the
//!   header keeps its `CLEANUP` bit, which only costs its sweep a lookup.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::mark;
use super::object::Header;
use super::pages;
use super::span::Span;
use super::HEAP;
use crate::epoch::Epoch;

/// Where the `Weak` handles of one object find it.
pub(crate) struct WeakSlot {
    /// The object's header address; 0 once a sweep found it dead.
    header: Mutex<usize>,
}

/// Slots of live objects, by header address.
static WEAK: Mutex<Option<HashMap<usize, Arc<WeakSlot>>>> = Mutex::new(None);

/// What [`upgrade_locked`] found.
pub(crate) enum Upgrade {
    /// Alive: a root was added for the caller.
    Live,
    /// Its span has not been swept since the last mark: sweep it
    /// ([`sweep_for_upgrade`]) and try again.
    Unswept(UnsweptSpan),
    /// Marking may be ending and the object is white: try again once it
    /// has ended (or gone on).
    Terminating,
}

/// A span an upgrade found unswept, named without a reference: once the
/// slot's lock is released the span may be freed, so it is only compared
/// with the spans still listed unswept.
pub(crate) struct UnsweptSpan {
    /// Its span class's index.
    class: usize,
    /// Its address.
    span: usize,
    /// The generation to sweep it for.
    gen: u64,
}

impl WeakSlot {
    /// A slot that refers to nothing.
    pub(crate) fn dangling() -> Arc<WeakSlot> {
        Arc::new(WeakSlot {
            header: Mutex::new(0),
        })
    }

    /// Locks the slot (outside any mutator region: see the module docs):
    /// the header's address, or 0.
    pub(crate) fn lock(&self) -> MutexGuard<'_, usize> {
        self.header.lock()
    }
}

/// Adds a root to the object at `header` if it is alive (see the module
/// docs), inside a mutator region whose epoch is `epoch`.
///
/// # Safety
/// The caller holds the lock of the object's slot ([`WeakSlot::lock`]),
/// which holds `header` (non-zero), and is inside a region of `epoch`.
pub(crate) unsafe fn upgrade_locked(header: usize, epoch: Epoch) -> Upgrade {
    let obj = std::ptr::with_exposed_provenance::<Header>(header);
    if epoch.marking() {
        if !mark::MARK.terminating.load(Ordering::SeqCst) {
            mark::shade_from_mutator(obj, epoch.raw());
        } else if !mark::is_marked(obj, epoch.raw()) {
            return Upgrade::Terminating;
        }
    } else {
        let span = pages::span_of(header);
        if span.sweepgen.load(Ordering::Acquire) < epoch.gen() {
            return Upgrade::Unswept(UnsweptSpan {
                class: span.class.index(),
                span: span as *const Span as usize,
                gen: epoch.gen(),
            });
        }
    }
    // SAFETY: the object is alive: the slot is set under its lock, and
    // its span is swept for this generation, or it was shaded while
    // marking (module docs).
    unsafe { (*obj).add_root() };
    Upgrade::Live
}

/// The slot of the live object at `header` (made on first use).
pub(crate) fn slot_for(header: usize) -> Arc<WeakSlot> {
    WEAK.lock()
        .get_or_insert_with(HashMap::new)
        .entry(header)
        .or_insert_with(|| {
            Arc::new(WeakSlot {
                header: Mutex::new(header),
            })
        })
        .clone()
}

/// A sweep found the object at `header` dead: clears its slot, if it has
/// one.
pub(crate) fn object_died(header: usize) {
    let slot = WEAK.lock().as_mut().and_then(|m| m.remove(&header));
    if let Some(slot) = slot {
        *slot.header.lock() = 0;
    }
}

/// Sweeps the span an upgrade found unswept, if it is still listed
/// unswept for the generation the upgrade saw (see "Sweep claims" in
/// `heap`). Called with no slot lock held and outside any region.
pub(crate) fn sweep_for_upgrade(unswept: UnsweptSpan) {
    let s = {
        let mut lists = HEAP.central[unswept.class].lock();
        lists.roll_over();
        if lists.gen != unswept.gen {
            return;
        }
        let Some(i) = lists
            .unswept
            .iter()
            .position(|s| s.0 as usize == unswept.span)
        else {
            return;
        };
        let s = lists.unswept.swap_remove(i);
        // Counted under the lock, as every sweeper does.
        HEAP.sweeping.fetch_add(1, Ordering::AcqRel);
        s
    };
    super::sweep_span(s, unswept.gen, false);
}

/// The last `Weak` to a live object is going away (`slot` is its slot,
/// and the caller's reference is one of two): unregisters the slot, so
/// objects downgraded once do not keep a registration for life. A
/// `downgrade` racing with this clones the slot under the same lock, and
/// is then seen here.
pub(crate) fn release(slot: &Arc<WeakSlot>) {
    let mut weak = WEAK.lock();
    if Arc::strong_count(slot) != 2 {
        return;
    }
    let header = *slot.header.lock();
    if let Some(map) = weak.as_mut() {
        if map.get(&header).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            map.remove(&header);
        }
    }
}
