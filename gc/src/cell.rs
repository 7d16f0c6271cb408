//! `GcCell<T>`: interior mutability for values in the heap, with the write
//! barrier in its store path.
//!
//! # Protocol
//!
//! A cell is a mutex (`lock`), a flag `in_heap`, and the value. `in_heap`
//! changes only through `&mut` (when the cell moves into or out of the
//! heap), so it is stable while the cell is shared. The handles in the value
//! are roots exactly when `in_heap` is false, except during `with_mut`,
//! which roots them for the duration of the borrow.
//!
//! # `with_mut` and the deletion barrier
//!
//! `with_mut` hands out `&mut T`, through which safe code can move a
//! handle out of the heap (`Option::take`, `mem::swap`, `Vec::remove`)
//! without any barrier running. So on entry, inside one mutator region,
//! `with_mut` shades every referent of the value if the collector is
//! marking (the deletion barrier for every edge `f` might delete), then
//! roots the value's handles. If marking begins only after that region,
//! the handles are already counted roots when the snapshot is taken; a
//! root dropped or stored back into the heap later runs the ordinary
//! barrier. On exit the handles still in the value are unrooted, which
//! shades them while marking, as any move into the heap does.
//!
//! Every access holds `lock`. The marker traces a cell with `try_lock`
//! (a busy cell is scanned again later); a barrier locks. A thread takes the
//! lock *before* entering a mutator region, and never holds a region while
//! waiting for it, so the collector's grace periods never wait on user code.
//! A green thread never suspends while it holds a cell
//! (`fibra::gc_seam::forbid_suspend`), so the per-thread count of
//! held cells (`mutator::holding_cell`, which turns off safepoint polls and
//! refuses `collect()`) is exactly the running task's.

use std::cell::UnsafeCell;
use std::fmt;

use parking_lot::lock_api::RawMutex as _;
use parking_lot::RawMutex;

use crate::mutator::{self, with_thread_heap};
use crate::trace::{Handles, Trace, TraceMode, Tracer};

/// A mutable, thread-safe slot for heap values (`RefCell`'s role in a
/// garbage-collected heap). `get` and `set` are atomic with respect to each
/// other; `set` runs the collector's write barrier.
///
/// ```
/// use fibra::gc::{Gc, GcCell};
///
/// let counter = Gc::new(GcCell::new(0u64));
/// counter.set(counter.get() + 1);
/// counter.with_mut(|n| *n += 1);
/// assert_eq!(counter.get(), 2);
/// ```
///
/// Do not block, yield, or call [`collect`](crate::collect) inside
/// `with`/`with_mut` (nor touch the same cell again there: the lock is not
/// reentrant). In a green thread, a blocking fibra call, `yield_now` or
/// `collect()` inside the borrow panics (the lock would stay held while
/// other green threads run on the same worker); a plain OS thread may
/// block there, as with a `std::sync::Mutex`.
pub struct GcCell<T> {
    lock: RawMutex,
    /// Whether the cell lives inside a heap object (its handles are
    /// unrooted).
    in_heap: bool,
    value: UnsafeCell<T>,
}

// SAFETY: all access to `value` holds the lock, so `T: Send` suffices, as
// for `Mutex<T>`.
unsafe impl<T: Send> Send for GcCell<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for GcCell<T> {}

/// Unlocks on drop (also on unwinding).
struct Locked<'a, T> {
    cell: &'a GcCell<T>,
    /// A green thread may not suspend while it holds the lock: another
    /// green thread on its worker would block the worker on the lock, and
    /// the count of held cells is per OS thread.
    _no_suspend: fibra_runtime::gc_seam::NoSuspend,
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        mutator::cell_released();
        // SAFETY: this guard holds the lock.
        unsafe { self.cell.lock.unlock() };
    }
}

impl<T> GcCell<T> {
    /// A new cell (outside the heap until moved into a `Gc`).
    ///
    /// ```
    /// let c = fibra::gc::GcCell::new(vec![1, 2]);
    /// assert_eq!(c.get(), vec![1, 2]);
    /// ```
    pub const fn new(value: T) -> GcCell<T> {
        GcCell {
            lock: RawMutex::INIT,
            in_heap: false,
            value: UnsafeCell::new(value),
        }
    }

    fn locked(&self) -> Locked<'_, T> {
        self.lock.lock();
        mutator::cell_locked();
        Locked {
            cell: self,
            _no_suspend: fibra_runtime::gc_seam::forbid_suspend(
                "inside GcCell::with/with_mut (the cell stays locked): finish the borrow first",
            ),
        }
    }

    /// Runs `f` with shared access to the value.
    ///
    /// ```
    /// let c = fibra::gc::GcCell::new(String::from("abc"));
    /// assert_eq!(c.with(|s| s.len()), 3);
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let _guard = self.locked();
        // SAFETY: we hold the lock.
        f(unsafe { &*self.value.get() })
    }

    /// The value, consuming the cell.
    ///
    /// ```
    /// assert_eq!(fibra::gc::GcCell::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        // A cell owned by value is outside the heap: its handles are roots.
        self.value.into_inner()
    }

    /// Mutable access through a unique borrow (no locking needed).
    ///
    /// ```
    /// let mut c = fibra::gc::GcCell::new(1);
    /// *c.get_mut() += 1;
    /// assert_eq!(c.get(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: Clone> GcCell<T> {
    /// A clone of the value (its `Gc`s are new roots).
    ///
    /// ```
    /// let c = fibra::gc::GcCell::new(Some(7));
    /// assert_eq!(c.get(), Some(7));
    /// ```
    pub fn get(&self) -> T {
        self.with(T::clone)
    }
}

impl<T: Trace> GcCell<T> {
    /// Replaces the value; the old one is dropped after the lock is
    /// released. In the heap, the new value's `Gc`s stop being roots and the
    /// old value's referents are shaded while the collector marks (the
    /// deletion barrier).
    ///
    /// ```
    /// use fibra::gc::{Gc, GcCell};
    /// let slot = Gc::new(GcCell::new(None));
    /// slot.set(Some(Gc::new(5)));
    /// assert_eq!(*slot.get().unwrap(), 5);
    /// ```
    pub fn set(&self, value: T) {
        // The old value's handles are unrooted (if in the heap): dropping
        // them is free, and the barrier has already shaded their referents.
        drop(self.swap_in(value, false));
    }

    /// Replaces the value and returns the old one (its `Gc`s are roots
    /// again).
    ///
    /// ```
    /// let c = fibra::gc::GcCell::new(1);
    /// assert_eq!(c.replace(2), 1);
    /// assert_eq!(c.get(), 2);
    /// ```
    pub fn replace(&self, value: T) -> T {
        self.swap_in(value, true)
    }

    /// Stores `value`, returning the old value: with its handles rooted if
    /// `root_old`, else as they were in the cell (only fit for dropping).
    /// Rooting happens inside the region, before a cycle could start.
    fn swap_in(&self, value: T, root_old: bool) -> T {
        let mut value = value;
        let guard = self.locked();
        // SAFETY: we hold the lock.
        let slot = unsafe { &mut *self.value.get() };
        let old = if self.in_heap && T::NEEDS_TRACE {
            with_thread_heap(|thread| {
                let region = thread.region();
                let epoch = region.epoch();
                value.trace_handles(&mut Handles::unroot(epoch));
                if epoch.marking() {
                    slot.trace(&mut Tracer::new(TraceMode::Barrier, epoch.raw()));
                }
                let mut old = std::mem::replace(slot, value);
                if root_old {
                    old.trace_handles(&mut Handles::root());
                }
                drop(region);
                old
            })
        } else {
            std::mem::replace(slot, value)
        };
        drop(guard);
        old
    }

    /// Runs `f` with mutable access to the value. In the heap, the value's
    /// `Gc`s are roots during `f` (so anything moved out stays alive) and
    /// are unrooted again afterwards: this costs one atomic per `Gc` in the
    /// value, so prefer `set`/`get` for large collections of handles.
    ///
    /// ```
    /// use fibra::gc::{Gc, GcCell};
    /// let list = Gc::new(GcCell::new(Vec::new()));
    /// list.with_mut(|v| v.push(Gc::new(1)));
    /// assert_eq!(list.with(|v| *v[0]), 1);
    /// ```
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        struct Unroot<'a, T: Trace> {
            cell: &'a GcCell<T>,
            _locked: Locked<'a, T>,
        }
        impl<T: Trace> Drop for Unroot<'_, T> {
            fn drop(&mut self) {
                if self.cell.in_heap && T::NEEDS_TRACE {
                    with_thread_heap(|thread| {
                        let region = thread.region();
                        // SAFETY: the lock is still held (dropped after us).
                        unsafe { &mut *self.cell.value.get() }
                            .trace_handles(&mut Handles::unroot(region.epoch()));
                    });
                }
            }
        }
        let locked = self.locked();
        // SAFETY: we hold the lock.
        let value = unsafe { &mut *self.value.get() };
        if self.in_heap && T::NEEDS_TRACE {
            with_thread_heap(|thread| {
                let region = thread.region();
                let epoch = region.epoch();
                if epoch.marking() {
                    // `f` may move any handle out (`take`, `mem::swap`,
                    // `Vec::remove`): each is a heap edge deleted without
                    // a barrier, so shade every referent now.
                    value.trace(&mut Tracer::new(TraceMode::Barrier, epoch.raw()));
                }
                // Rooted inside the region: if marking starts later, the
                // snapshot counts these roots (see the module docs).
                value.trace_handles(&mut Handles::root());
            });
        }
        let _unroot = Unroot {
            cell: self,
            _locked: locked,
        };
        f(value)
    }
}

// SAFETY: visits the value's handles in both methods; tracing holds the lock.
unsafe impl<T: Trace> Trace for GcCell<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const HEAP_DROP_IS_NOOP: bool = T::HEAP_DROP_IS_NOOP;

    fn trace(&self, tracer: &mut Tracer) {
        if !T::NEEDS_TRACE {
            return;
        }
        match tracer.mode {
            TraceMode::Mark | TraceMode::Collect => {
                // `get`/`set` hold the lock for a moment: wait a little
                // before deferring the whole object (which may be large).
                let mut spins = 0u32;
                while !self.lock.try_lock() {
                    spins += 1;
                    if spins > 200 {
                        tracer.busy = true;
                        return;
                    }
                    std::hint::spin_loop();
                }
            }
            TraceMode::Barrier => self.lock.lock(),
        }
        // SAFETY: we hold the lock.
        unsafe { &*self.value.get() }.trace(tracer);
        // SAFETY: locked above.
        unsafe { self.lock.unlock() };
    }

    fn trace_handles(&mut self, handles: &mut Handles) {
        self.in_heap = !handles.root;
        self.value.get_mut().trace_handles(handles);
    }
}

impl<T: Default> Default for GcCell<T> {
    fn default() -> GcCell<T> {
        GcCell::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for GcCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lock.try_lock() {
            // SAFETY: we hold the lock.
            let r = f
                .debug_tuple("GcCell")
                .field(unsafe { &*self.value.get() })
                .finish();
            // SAFETY: locked above.
            unsafe { self.lock.unlock() };
            r
        } else {
            f.write_str("GcCell(<locked>)")
        }
    }
}
