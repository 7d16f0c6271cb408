//! The object header: a root count and a compressed vtable reference, 8
//! bytes in front of every value in the heap.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::trace::Tracer;

/// The first 8 bytes of every object.
#[repr(C)]
pub(crate) struct Header {
    /// How many root handles (`Gc`s outside the heap) point here (low 30
    /// bits; the collector treats the object as a root while non-zero), and
    /// `STORED` once a handle to the object has been moved into the heap,
    /// `CLEANUP` once a cleanup or a weak slot was registered for it.
    roots: AtomicU32,
    /// The object's `VTable`, as a signed offset from `ANCHOR`. Changed
    /// only for a dead object awaiting or past its destructor (`ZOMBIE`,
    /// `DROPPED`: see `span::Span::sweep`).
    vtable: AtomicU32,
}

/// What the collector needs to know about an object's type.
pub(crate) struct VTable {
    /// Visits the `Gc` fields of the value behind the header.
    pub(crate) trace: unsafe fn(*const Header, &mut Tracer),
    /// Drops the value behind the header in place (`None`: nothing to drop).
    pub(crate) drop: Option<unsafe fn(*mut Header)>,
    /// The type's name, for the verifier's messages.
    pub(crate) name: fn() -> &'static str,
}

/// The origin of vtable offsets. Vtables are constants of the final binary,
/// so their distance from this static fits in 32 bits.
static ANCHOR: VTable = VTable {
    trace: trace_nothing,
    drop: None,
    name: || "anchor",
};

unsafe fn trace_nothing(_: *const Header, _: &mut Tracer) {}

/// The vtable of a dead object whose destructor was handed to the
/// finalizer thread and may still be running: sweeps keep its slot.
pub(crate) static ZOMBIE: VTable = VTable {
    trace: trace_nothing,
    drop: None,
    name: || "a dead object awaiting its destructor",
};

/// The vtable of a dead object whose destructor has run: the next sweep
/// frees its slot.
pub(crate) static DROPPED: VTable = VTable {
    trace: trace_nothing,
    drop: None,
    name: || "a dead object after its destructor",
};

/// Root count that no program reaches; counting past it aborts (like `Arc`).
pub(crate) const MAX_ROOTS: u32 = 1 << 29;
/// The root-count bits of `roots`.
const COUNT: u32 = (1 << 30) - 1;
/// Set in `roots` once a cleanup was registered for the object.
const CLEANUP: u32 = 1 << 30;
/// Set in `roots` once a handle to the object was stored in the heap.
const STORED: u32 = 1 << 31;

impl Header {
    /// A header for a new object with one root.
    #[inline]
    pub(crate) fn new(vtable: &'static VTable) -> Header {
        Header {
            roots: AtomicU32::new(1),
            vtable: AtomicU32::new(encode(vtable)),
        }
    }

    /// The number of root handles.
    #[inline]
    pub(crate) fn root_count(&self) -> u32 {
        self.roots.load(Ordering::Relaxed) & COUNT
    }

    /// Records that a cleanup is registered for the object.
    pub(crate) fn set_cleanup(&self) {
        self.roots.fetch_or(CLEANUP, Ordering::Relaxed);
    }

    /// Whether a cleanup is registered for the object.
    pub(crate) fn has_cleanup(&self) -> bool {
        self.roots.load(Ordering::Relaxed) & CLEANUP != 0
    }

    /// Adds a root (a clone, or a handle leaving the heap).
    #[inline]
    pub(crate) fn add_root(&self) {
        let old = self.roots.fetch_add(1, Ordering::Relaxed);
        if old & COUNT >= MAX_ROOTS {
            root_count_overflow();
        }
    }

    /// Removes the caller's root; `into_heap` when the handle is being
    /// stored in a heap object rather than dropped.
    ///
    /// When the count is exactly 1 without other bits, the caller's handle is
    /// the only way to the object anywhere: no other root exists, no heap
    /// object points to it, and the handle is owned (`&mut`), so no other
    /// thread can be cloning it. Then a plain store replaces the atomic
    /// read-modify-write (the common case of building a structure from
    /// fresh objects). Otherwise the update is atomic.
    #[inline]
    pub(crate) fn remove_root(&self, into_heap: bool) {
        let v = self.roots.load(Ordering::Relaxed);
        if v == 1 {
            self.roots
                .store(if into_heap { STORED } else { 0 }, Ordering::Relaxed);
            return;
        }
        if into_heap && v & STORED == 0 {
            self.roots.fetch_or(STORED, Ordering::Relaxed);
        }
        self.roots.fetch_sub(1, Ordering::Release);
    }

    /// The object's vtable.
    #[inline]
    pub(crate) fn vtable(&self) -> &'static VTable {
        decode(self.vtable.load(Ordering::Acquire))
    }

    /// Replaces the vtable of a dead object (`ZOMBIE`, `DROPPED`).
    pub(crate) fn set_vtable(&self, vtable: &'static VTable) {
        self.vtable.store(encode(vtable), Ordering::Release);
    }
}

#[cold]
fn root_count_overflow() -> ! {
    eprintln!("fibra_gc: more than {MAX_ROOTS} roots to one object; aborting");
    std::process::abort()
}

#[inline]
fn anchor() -> usize {
    (&ANCHOR as *const VTable).expose_provenance()
}

#[inline]
fn encode(vtable: &'static VTable) -> u32 {
    let addr = (vtable as *const VTable).expose_provenance();
    let offset = addr.wrapping_sub(anchor()) as isize;
    match i32::try_from(offset) {
        Ok(o) => o as u32,
        Err(_) => encode_failed(),
    }
}

#[cold]
fn encode_failed() -> ! {
    panic!("fibra_gc: a Trace vtable lies more than 2 GiB away from the collector's own code; the heap supports one statically linked binary")
}

#[inline]
fn decode(raw: u32) -> &'static VTable {
    let addr = anchor().wrapping_add(raw as i32 as isize as usize);
    // SAFETY: `raw` was produced by `encode` from a `&'static VTable` whose
    // address was exposed there.
    unsafe { &*std::ptr::with_exposed_provenance::<VTable>(addr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    static OTHER: VTable = VTable {
        trace: trace_nothing,
        drop: None,
        name: || "other",
    };

    #[test]
    fn vtables_round_trip() {
        let h = Header::new(&OTHER);
        assert_eq!((h.vtable().name)(), "other");
        let h = Header::new(&ANCHOR);
        assert_eq!((h.vtable().name)(), "anchor");
    }
}
