//! The object header: a root count and a compressed vtable reference, 8
//! bytes in front of every value in the heap.

use std::sync::atomic::AtomicU32;

use crate::trace::Tracer;

/// The first 8 bytes of every object.
#[repr(C)]
pub(crate) struct Header {
    /// How many root handles (`Gc`s outside the heap) point here. The
    /// collector treats the object as a root while this is non-zero.
    pub(crate) roots: AtomicU32,
    /// The object's `VTable`, as a signed offset from `ANCHOR`.
    vtable: u32,
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

/// Root count that no program reaches; counting past it aborts (like `Arc`).
pub(crate) const MAX_ROOTS: u32 = u32::MAX / 2;

impl Header {
    /// A header for a new object with one root.
    #[inline]
    pub(crate) fn new(vtable: &'static VTable) -> Header {
        Header {
            roots: AtomicU32::new(1),
            vtable: encode(vtable),
        }
    }

    /// The object's vtable.
    #[inline]
    pub(crate) fn vtable(&self) -> &'static VTable {
        decode(self.vtable)
    }
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
