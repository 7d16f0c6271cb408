//! `Gc<T>`: a handle to an object in the shared heap; a root while it is
//! outside the heap (see the crate docs).

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::collector;
use crate::epoch::Epoch;
use crate::heap::class::{class_of, SpanClass};
use crate::heap::mark;
use crate::heap::object::{Header, VTable};
use crate::heap::{self};
use crate::mutator::cache;
use crate::mutator::with_thread_heap;
use crate::trace::{Handles, Trace, Tracer};

/// An object in the heap: header, then value.
#[repr(C)]
pub(crate) struct GcBox<T> {
    header: Header,
    value: T,
}

impl<T: Trace + Send + 'static> GcBox<T> {
    const VTABLE: VTable = VTable {
        trace: trace_box::<T>,
        drop: if std::mem::needs_drop::<T>() && !T::HEAP_DROP_IS_NOOP {
            Some(drop_box::<T>)
        } else {
            None
        },
        name: std::any::type_name::<T>,
    };
    const SIZE: usize = std::mem::size_of::<GcBox<T>>();
    const CLASS: usize = class_of(Self::SIZE);
    const SPAN_CLASS: SpanClass = SpanClass::new(Self::CLASS, !T::NEEDS_TRACE);
}

/// # Safety
/// `header` is the header of a live `GcBox<T>`.
unsafe fn trace_box<T: Trace>(header: *const Header, tracer: &mut Tracer) {
    // SAFETY: per the contract.
    unsafe { (*header.cast::<GcBox<T>>()).value.trace(tracer) }
}

/// # Safety
/// `header` is the header of an initialised `GcBox<T>` that is never used
/// again.
unsafe fn drop_box<T>(header: *mut Header) {
    // SAFETY: per the contract.
    unsafe { std::ptr::drop_in_place(std::ptr::addr_of_mut!((*header.cast::<GcBox<T>>()).value)) }
}

/// Low bit of the handle: this handle is a root.
const ROOT: usize = 1;

/// A shared, garbage-collected pointer to a `T` in fibra's heap.
///
/// A `Gc` held outside the heap (a local, a `Vec`, a channel, a `static`, on
/// any thread) keeps its object alive; a `Gc` stored inside a heap object is
/// traced instead. Cycles are collected.
///
/// ```
/// use fibra::gc::Gc;
///
/// let a = Gc::new(String::from("shared"));
/// let b = a.clone();
/// assert!(Gc::ptr_eq(&a, &b));
/// assert_eq!(b.len(), 6);
/// ```
pub struct Gc<T: 'static> {
    /// The `GcBox<T>`, tagged with `ROOT`.
    ptr: NonNull<u8>,
    _marker: PhantomData<GcBox<T>>,
}

// SAFETY: a `Gc` gives shared access to `T` from any thread (needs `Sync`)
// and the object may be dropped on any thread (needs `Send`); the root
// count is atomic.
unsafe impl<T: Send + Sync> Send for Gc<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Gc<T> {}

impl<T: Trace + Send + 'static> Gc<T> {
    /// Moves `value` into the heap and returns a root handle to it. The
    /// `Gc`s inside `value` stop being roots: the new object keeps them
    /// alive for as long as it is reachable itself.
    ///
    /// ```
    /// let n = fibra::gc::Gc::new(42u64);
    /// assert_eq!(*n, 42);
    /// ```
    #[inline]
    pub fn new(value: T) -> Gc<T> {
        const {
            assert!(
                std::mem::align_of::<T>() <= 8,
                "fibra_gc: types aligned to more than 8 bytes cannot live in the heap directly; box them"
            )
        };
        if GcBox::<T>::CLASS == 0 {
            return Gc::new_large(value);
        }
        let mut value = value;
        let obj = with_thread_heap(|thread| loop {
            let region = thread.region();
            let epoch = region.epoch();
            let slot = cache::try_alloc(
                // SAFETY: inside the region nothing else borrows the cache.
                unsafe { &mut *thread.cache() },
                GcBox::<T>::SPAN_CLASS,
                epoch.gen(),
            );
            if let Some((span, slot)) = slot {
                if T::NEEDS_TRACE {
                    value.trace_handles(&mut Handles::unroot(epoch));
                }
                let obj = span.object(slot).cast::<GcBox<T>>();
                // SAFETY: the slot is free, owned by this allocation, large
                // enough and 8-aligned for `GcBox<T>`.
                unsafe {
                    obj.write(GcBox {
                        header: Header::new(&GcBox::<T>::VTABLE),
                        value,
                    })
                };
                span.publish(
                    slot,
                    epoch.marking().then(|| epoch.raw()),
                    GcBox::<T>::VTABLE.drop.is_some(),
                );
                drop(region);
                collector::after_alloc(thread);
                return obj;
            }
            drop(region);
            collector::alloc_slow(thread, GcBox::<T>::SPAN_CLASS);
        });
        Gc::from_new(obj)
    }

    /// `new` for an object past the largest size class, in its own span.
    /// Everything long happens outside the mutator region, where a
    /// stop-the-world may preempt the thread: the pacer and the safepoint
    /// poll, taking pages, and copying the value into the heap. The region
    /// only unroots the value's handles and publishes the object.
    #[cold]
    #[inline(never)]
    fn new_large(value: T) -> Gc<T> {
        collector::before_large_alloc(GcBox::<T>::SIZE);
        let span = heap::alloc_large(!T::NEEDS_TRACE, GcBox::<T>::SIZE);
        let obj = span.object(0).cast::<GcBox<T>>();
        // SAFETY: the span is new, owned by this allocation until it is
        // published, and large enough and 8-aligned for `GcBox<T>`. Until
        // `publish_large` nobody reads it: its slot is not allocated.
        unsafe {
            obj.write(GcBox {
                header: Header::new(&GcBox::<T>::VTABLE),
                value,
            })
        };
        // Should unrooting panic (a hand-written `Trace` impl), the span is
        // abandoned: the value is leaked, never dropped, and a later sweep
        // frees the pages.
        let abandon = heap::AbandonLarge(span);
        with_thread_heap(|thread| {
            let region = thread.region();
            let epoch = region.epoch();
            if T::NEEDS_TRACE {
                // SAFETY: the value was written above and this thread is
                // its only user until the object is published.
                unsafe { (*obj).value.trace_handles(&mut Handles::unroot(epoch)) };
            }
            heap::publish_large(span, epoch, GcBox::<T>::VTABLE.drop.is_some());
            std::mem::forget(abandon);
            drop(region);
            collector::after_alloc(thread);
        });
        Gc::from_new(obj)
    }

    /// The root handle of a just-published object.
    #[inline]
    fn from_new(obj: *mut GcBox<T>) -> Gc<T> {
        Gc {
            // SAFETY: `obj` is a non-null slot address; the tag keeps it so.
            ptr: unsafe { NonNull::new_unchecked(obj.cast::<u8>().map_addr(|a| a | ROOT)) },
            _marker: PhantomData,
        }
    }
}

impl<T: 'static> Gc<T> {
    #[inline]
    fn boxed(&self) -> *const GcBox<T> {
        self.ptr.as_ptr().map_addr(|a| a & !ROOT).cast::<GcBox<T>>()
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: a handle always points at a live object (roots keep it
        // alive; unrooted handles live in reachable objects).
        unsafe { &(*self.boxed()).header }
    }

    /// The address of the object's header (for `Weak`).
    pub(crate) fn header_addr(this: &Gc<T>) -> usize {
        this.header() as *const Header as usize
    }

    /// Makes sweeps report the object's death (cleanups, weak slots): the
    /// header's `CLEANUP` bit and its span's `has_cleanups`.
    pub(crate) fn mark_has_specials(this: &Gc<T>) {
        let header = this.header();
        header.set_cleanup();
        heap::pages::span_of(header as *const Header as usize)
            .has_cleanups
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The root handle of the object whose header is at `header`.
    ///
    /// # Safety
    /// The object is a live `GcBox<T>` to which the caller added a root
    /// that this handle now owns.
    pub(crate) unsafe fn from_added_root(header: usize) -> Gc<T> {
        let obj = std::ptr::with_exposed_provenance_mut::<u8>(header);
        Gc {
            // SAFETY: a header address is non-null; the tag keeps it so.
            ptr: unsafe { NonNull::new_unchecked(obj.map_addr(|a| a | ROOT)) },
            _marker: PhantomData,
        }
    }

    #[inline]
    fn is_root(&self) -> bool {
        self.ptr.as_ptr() as usize & ROOT != 0
    }

    /// Runs `cleanup` on the collector's finalizer thread some time after the
    /// object has become unreachable and was freed (Go's `AddCleanup`).
    /// `cleanup` must not hold a handle to the object itself: that handle
    /// would be a root and keep the object alive forever. Cleanups are not
    /// guaranteed to run before the process exits.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let done = Arc::new(AtomicBool::new(false));
    /// let obj = fibra::gc::Gc::new(7u32);
    /// let flag = done.clone();
    /// fibra::gc::Gc::add_cleanup(&obj, move || flag.store(true, Ordering::SeqCst));
    /// drop(obj);
    /// fibra::gc::collect();
    /// fibra::gc::collect();
    /// for _ in 0..1000 {
    ///     if done.load(Ordering::SeqCst) {
    ///         break;
    ///     }
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// assert!(done.load(Ordering::SeqCst));
    /// ```
    pub fn add_cleanup(this: &Gc<T>, cleanup: impl FnOnce() + Send + 'static) {
        heap::cleanup::register(Gc::header_addr(this), Box::new(cleanup));
        Gc::mark_has_specials(this);
    }

    /// Whether two handles point at the same object.
    ///
    /// ```
    /// use fibra::gc::Gc;
    /// let a = Gc::new(1);
    /// let b = Gc::new(1);
    /// assert!(Gc::ptr_eq(&a, &a.clone()));
    /// assert!(!Gc::ptr_eq(&a, &b));
    /// ```
    #[inline]
    pub fn ptr_eq(this: &Gc<T>, other: &Gc<T>) -> bool {
        this.boxed() == other.boxed()
    }

    /// The address of the value (stable: the heap never moves objects).
    ///
    /// ```
    /// let a = fibra::gc::Gc::new(5u8);
    /// assert_eq!(unsafe { *fibra::gc::Gc::as_ptr(&a) }, 5);
    /// ```
    #[inline]
    pub fn as_ptr(this: &Gc<T>) -> *const T {
        // SAFETY: see `header`.
        unsafe { std::ptr::addr_of!((*this.boxed()).value) }
    }
}

impl<T: 'static> Deref for Gc<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: see `header`.
        unsafe { &(*self.boxed()).value }
    }
}

impl<T: 'static> Clone for Gc<T> {
    /// Makes a new root handle: one relaxed atomic increment. (Creating a
    /// reference needs no barrier: see "The barrier" in `collector`.)
    #[inline]
    fn clone(&self) -> Gc<T> {
        self.header().add_root();
        Gc {
            ptr: self.ptr.map_addr(|a| a | ROOT),
            _marker: PhantomData,
        }
    }
}

impl<T: 'static> Drop for Gc<T> {
    #[inline]
    fn drop(&mut self) {
        if self.is_root() {
            let header: *const Header = self.header();
            with_thread_heap(|thread| {
                let region = thread.region();
                drop_root(header, region.epoch(), false);
            });
        }
    }
}

/// Removes one root from `header` (shading it first while marking);
/// `into_heap` when the handle is being stored in the heap.
#[inline]
fn drop_root(header: *const Header, epoch: Epoch, into_heap: bool) {
    if epoch.marking() {
        mark::shade_from_mutator(header, epoch.raw());
    }
    // SAFETY: the object is alive while this root exists.
    unsafe { (*header).remove_root(into_heap) };
}

// SAFETY: a `Gc` is one edge, visited by both methods.
unsafe impl<T: 'static> Trace for Gc<T> {
    /// An unrooted handle's drop does nothing.
    const HEAP_DROP_IS_NOOP: bool = true;

    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        tracer.edge(self.header());
    }

    #[inline]
    fn trace_handles(&mut self, handles: &mut Handles) {
        match (handles.root, self.is_root()) {
            (true, false) => {
                self.header().add_root();
                self.ptr = self.ptr.map_addr(|a| a | ROOT);
            }
            (false, true) => {
                drop_root(self.header(), handles.epoch, true);
                // SAFETY: clearing the tag leaves the (non-null) address.
                self.ptr =
                    unsafe { NonNull::new_unchecked(self.ptr.as_ptr().map_addr(|a| a & !ROOT)) };
            }
            _ => {}
        }
    }
}

impl<T: fmt::Debug + 'static> fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display + 'static> fmt::Display for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: PartialEq + 'static> PartialEq for Gc<T> {
    fn eq(&self, other: &Gc<T>) -> bool {
        **self == **other
    }
}

impl<T: Eq + 'static> Eq for Gc<T> {}

impl<T: PartialOrd + 'static> PartialOrd for Gc<T> {
    fn partial_cmp(&self, other: &Gc<T>) -> Option<std::cmp::Ordering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: Ord + 'static> Ord for Gc<T> {
    fn cmp(&self, other: &Gc<T>) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl<T: std::hash::Hash + 'static> std::hash::Hash for Gc<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl<T: 'static> AsRef<T> for Gc<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: 'static> std::borrow::Borrow<T> for Gc<T> {
    fn borrow(&self) -> &T {
        self
    }
}
