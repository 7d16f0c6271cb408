//! `Weak<T>`: a handle that does not keep its object alive; upgraded to a
//! [`Gc`] while the object lives, `None` once a collection found it dead.
//! The protocol that keeps an upgrade from racing the collector is in
//! `heap::weak`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::gc::Gc;
use crate::heap::weak::{self, Upgrade, WeakSlot};
use crate::mutator::with_thread_heap;
use crate::trace::{Handles, Trace, Tracer};

/// A weak reference to an object in fibra's heap, made by
/// [`Gc::downgrade`]: it does not keep the object alive, and
/// [`upgrade`](Weak::upgrade) gives `None` once a collection has found the
/// object unreachable (the sweep clears every `Weak` to it; nothing is
/// resurrected).
///
/// A `Weak` may be kept anywhere a `Gc` may: in locals, collections and
/// statics, on any thread, and inside heap objects (where it is not an
/// edge: a cycle through a `Weak` is collected).
///
/// ```
/// use fibra::gc::{Gc, Weak};
///
/// let strong = Gc::new(String::from("cache entry"));
/// let weak: Weak<String> = Gc::downgrade(&strong);
/// assert_eq!(weak.upgrade().as_deref().map(String::as_str), Some("cache entry"));
///
/// drop(strong);
/// fibra::gc::collect();
/// assert!(weak.upgrade().is_none());
/// ```
pub struct Weak<T: 'static> {
    /// Shared by every `Weak` to the object.
    slot: Arc<WeakSlot>,
    /// What an upgrade yields: `Send` and `Sync` exactly when `Gc<T>` is.
    _marker: PhantomData<Gc<T>>,
}

impl<T: 'static> Gc<T> {
    /// A [`Weak`] handle to the object: it does not keep it alive.
    ///
    /// ```
    /// use fibra::gc::Gc;
    ///
    /// let a = Gc::new(5u32);
    /// let w = Gc::downgrade(&a);
    /// assert!(Gc::ptr_eq(&w.upgrade().unwrap(), &a));
    /// ```
    pub fn downgrade(this: &Gc<T>) -> Weak<T> {
        let header = Gc::header_addr(this);
        let slot = weak::slot_for(header);
        // Makes sweeps report the object's death (see `heap::weak`).
        Gc::mark_has_specials(this);
        Weak {
            slot,
            _marker: PhantomData,
        }
    }
}

impl<T: 'static> Weak<T> {
    /// A `Weak` that refers to nothing: [`upgrade`](Weak::upgrade) always
    /// gives `None`.
    ///
    /// ```
    /// let w: fibra::gc::Weak<u8> = fibra::gc::Weak::new();
    /// assert!(w.upgrade().is_none());
    /// ```
    pub fn new() -> Weak<T> {
        Weak {
            slot: WeakSlot::dangling(),
            _marker: PhantomData,
        }
    }

    /// A root handle to the object if it is alive; `None` once a
    /// collection has found it unreachable. While the collector marks,
    /// the upgraded object is kept for this cycle (it is shaded, as the
    /// write barrier shades); between the end of a mark and the sweep of
    /// the object's span, the call sweeps that span first (or waits for
    /// the thread sweeping it).
    ///
    /// ```
    /// use fibra::gc::Gc;
    ///
    /// let node = Gc::new(vec![1, 2, 3]);
    /// let w = Gc::downgrade(&node);
    /// fibra::gc::collect(); // `node` is a root: it survives
    /// assert_eq!(w.upgrade().unwrap().len(), 3);
    /// ```
    pub fn upgrade(&self) -> Option<Gc<T>> {
        let mut spins = 0u32;
        loop {
            let header = self.slot.lock();
            if *header == 0 {
                return None;
            }
            let addr = *header;
            let found = with_thread_heap(|thread| {
                let region = thread.region();
                // SAFETY: we hold the slot's lock, it holds `addr`, and we
                // are inside `region`.
                unsafe { weak::upgrade_locked(addr, region.epoch()) }
            });
            drop(header);
            match found {
                // SAFETY: `upgrade_locked` added a root to the live object
                // at `addr`, a `GcBox<T>` (the slot was made from a `Gc<T>`).
                Upgrade::Live => return Some(unsafe { Gc::from_added_root(addr) }),
                Upgrade::Terminating => {
                    // Marking is ending: wait for the flip, letting a stop
                    // of the world proceed meanwhile.
                    fibra_runtime::gc_seam::blocking(std::thread::yield_now);
                }
                Upgrade::Unswept(span) => {
                    weak::sweep_for_upgrade(span);
                    // Swept by us, or by another thread right now: retry,
                    // backing off should sweeping not be allowed yet.
                    spins += 1;
                    if spins > 1 {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }

    /// Whether two `Weak`s were made from the same object.
    ///
    /// ```
    /// use fibra::gc::Gc;
    /// let a = Gc::new(1u8);
    /// assert!(fibra::gc::Weak::ptr_eq(&Gc::downgrade(&a), &Gc::downgrade(&a)));
    /// ```
    pub fn ptr_eq(this: &Weak<T>, other: &Weak<T>) -> bool {
        Arc::ptr_eq(&this.slot, &other.slot)
    }
}

impl<T: 'static> Default for Weak<T> {
    fn default() -> Weak<T> {
        Weak::new()
    }
}

impl<T: 'static> Clone for Weak<T> {
    fn clone(&self) -> Weak<T> {
        Weak {
            slot: self.slot.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T: 'static> fmt::Debug for Weak<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(Weak)")
    }
}

impl<T: 'static> Drop for Weak<T> {
    /// The last `Weak` to an object unregisters its slot.
    fn drop(&mut self) {
        if Arc::strong_count(&self.slot) == 2 {
            weak::release(&self.slot);
        }
    }
}

// SAFETY: a `Weak` holds no `Gc` and is not an edge: both methods visit
// nothing, so `NEEDS_TRACE` is false. Its `Drop` never touches a heap
// object (it only reads its slot and the registry).
unsafe impl<T: 'static> Trace for Weak<T> {
    const NEEDS_TRACE: bool = false;
    fn trace(&self, _: &mut Tracer) {}
    fn trace_handles(&mut self, _: &mut Handles) {}
}
