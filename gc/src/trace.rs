//! The `Trace` trait: how the collector and the rooting protocol see the
//! `Gc` handles inside a value.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::sync::Arc;

use crate::epoch::Epoch;
use crate::heap::mark::{self, Shade};
use crate::heap::object::Header;

/// A type whose `Gc` handles the collector can find.
///
/// Derive it with `#[derive(Trace)]` (fields that hold no `Gc`, or whose
/// type does not implement `Trace`, can be left out with `#[trace(skip)]`;
/// a skipped `Gc` stays a root, which can leak a cycle but never frees a
/// live object).
///
/// ```
/// use fibra::gc::{Gc, Trace};
///
/// #[derive(Trace)]
/// struct Pair {
///     left: Option<Gc<Pair>>,
///     right: Option<Gc<Pair>>,
///     #[trace(skip)]
///     label: std::sync::atomic::AtomicU32,
/// }
///
/// let leaf = Gc::new(Pair { left: None, right: None, label: Default::default() });
/// let root = Gc::new(Pair { left: Some(leaf.clone()), right: Some(leaf), label: Default::default() });
/// assert!(Gc::ptr_eq(root.left.as_ref().unwrap(), root.right.as_ref().unwrap()));
/// ```
///
/// # Safety
///
/// An implementation must:
/// * visit, in both `trace` and `trace_handles`, exactly the same `Gc`
///   handles (or none of a field's: an unvisited handle simply stays a
///   root);
/// * give no way to move a visited handle out through `&self` (interior
///   mutability over `Gc`s must go through [`GcCell`](crate::GcCell));
/// * tolerate `trace` being called from the collector's thread while other
///   threads hold `&self` (it only reads);
/// * not dereference any `Gc` in a `Drop` impl of the type (the target may
///   already be swept); `#[derive(Trace)]` rejects types that implement
///   `Drop`;
/// * set `NEEDS_TRACE` to false only if `trace` visits nothing.
pub unsafe trait Trace {
    /// Whether values of this type can hold `Gc`s the collector must visit;
    /// objects of types where it is false go to spans that are never
    /// scanned.
    const NEEDS_TRACE: bool = true;

    /// Whether dropping a value of this type inside the heap (its visited
    /// `Gc`s unrooted) does nothing, so sweeping may free it without
    /// calling its destructor. `false` is always correct; a wrong `true`
    /// only leaks what the destructor would have freed.
    const HEAP_DROP_IS_NOOP: bool = false;

    /// Passes every `Gc` directly inside `self` (not behind another `Gc`)
    /// to `tracer`.
    fn trace(&self, tracer: &mut Tracer);

    /// Passes every `Gc` directly inside `self` to `handles`, which roots
    /// or unroots it as the value leaves or enters the heap.
    fn trace_handles(&mut self, handles: &mut Handles);
}

/// What a [`Tracer`] does with each edge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TraceMode {
    /// Marking: shade and push to the local stack; busy cells are retried.
    Mark,
    /// A deletion barrier: shade, grey objects go to the shared queue; cells
    /// are locked (waiting for the marker's short hold).
    Barrier,
    /// The verifier: collect the edges without marking.
    Collect,
}

/// Receives the `Gc` edges of a value (see [`Trace::trace`]). A
/// hand-written impl passes it on to each field:
///
/// ```
/// use fibra::gc::{Gc, Handles, Trace, Tracer};
///
/// struct Pair {
///     first: Gc<u64>,
///     second: Option<Gc<u64>>,
///     label: String,
/// }
///
/// // SAFETY: both methods visit exactly `first` and `second`; there is no
/// // interior mutability and no `Drop` impl.
/// unsafe impl Trace for Pair {
///     fn trace(&self, tracer: &mut Tracer) {
///         self.first.trace(tracer);
///         self.second.trace(tracer);
///     }
///     fn trace_handles(&mut self, handles: &mut Handles) {
///         self.first.trace_handles(handles);
///         self.second.trace_handles(handles);
///     }
/// }
///
/// let p = Gc::new(Pair { first: Gc::new(1), second: None, label: "p".into() });
/// assert_eq!(*p.first + p.label.len() as u64, 2);
/// ```
pub struct Tracer {
    pub(crate) mode: TraceMode,
    /// The marking epoch (raw) this tracer shades in.
    pub(crate) epoch: u64,
    /// Grey objects to scan (`Mark`), or the edges found (`Collect`).
    pub(crate) stack: Vec<*const Header>,
    /// Set when a `GcCell` could not be locked: scan the object again later.
    pub(crate) busy: bool,
    /// Containers (`Box`, `Vec`, maps...) entered on the current path: the
    /// depth of Rust recursion a value nested in one object causes.
    depth: u32,
    /// Nesting past which a trace stops and sets `too_deep` (for tracers
    /// that run on small stacks: mutators' assists).
    max_depth: u32,
    /// Set when the value was nested deeper than `max_depth`: the object
    /// was not fully traced; hand it to the collector thread.
    pub(crate) too_deep: bool,
}

impl Tracer {
    pub(crate) fn new(mode: TraceMode, epoch: u64) -> Tracer {
        Tracer {
            mode,
            epoch,
            stack: Vec::new(),
            busy: false,
            depth: 0,
            max_depth: u32::MAX,
            too_deep: false,
        }
    }

    /// A marking tracer for a thread with a small stack: it gives up on
    /// values nested deeper than `max_depth` containers (see `too_deep`).
    pub(crate) fn shallow(epoch: u64, max_depth: u32) -> Tracer {
        Tracer {
            max_depth,
            ..Tracer::new(TraceMode::Mark, epoch)
        }
    }

    /// Traces the contents of a container (one level deeper), unless that
    /// is past `max_depth`.
    #[inline]
    fn nested(&mut self, f: impl FnOnce(&mut Tracer)) {
        if self.depth >= self.max_depth {
            self.too_deep = true;
            return;
        }
        self.depth += 1;
        f(self);
        self.depth -= 1;
    }

    /// Records the edge to the object at `header`.
    #[inline]
    pub(crate) fn edge(&mut self, header: *const Header) {
        match self.mode {
            TraceMode::Collect => self.stack.push(header),
            TraceMode::Mark => {
                if let Shade::Grey = mark::shade(header, self.epoch) {
                    self.stack.push(header);
                }
            }
            TraceMode::Barrier => mark::shade_from_mutator(header, self.epoch),
        }
    }
}

/// Roots or unroots the `Gc` handles of a value crossing the heap boundary
/// (see [`Trace::trace_handles`]); a hand-written impl passes it on to the
/// same fields as `trace` (see the example on [`Tracer`]).
///
/// ```
/// use fibra::gc::{Gc, Handles, Trace, Tracer};
///
/// struct Wrapper(Vec<Gc<u8>>);
///
/// // SAFETY: both methods visit the vector's handles.
/// unsafe impl Trace for Wrapper {
///     fn trace(&self, tracer: &mut Tracer) {
///         self.0.trace(tracer)
///     }
///     fn trace_handles(&mut self, handles: &mut Handles) {
///         self.0.trace_handles(handles)
///     }
/// }
///
/// let w = Gc::new(Wrapper(vec![Gc::new(3)]));
/// assert_eq!(*w.0[0], 3);
/// ```
pub struct Handles {
    /// True: make handles roots (value leaves the heap); false: unroot them.
    pub(crate) root: bool,
    /// The mutator region's epoch (unrooting shades while marking).
    pub(crate) epoch: Epoch,
}

impl Handles {
    pub(crate) fn root() -> Handles {
        Handles {
            root: true,
            epoch: Epoch::new(0, false),
        }
    }

    pub(crate) fn unroot(epoch: Epoch) -> Handles {
        Handles { root: false, epoch }
    }
}

macro_rules! leaf_trace {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: holds no `Gc`.
        unsafe impl Trace for $t {
            const NEEDS_TRACE: bool = false;
            const HEAP_DROP_IS_NOOP: bool = !std::mem::needs_drop::<$t>();
            #[inline]
            fn trace(&self, _: &mut Tracer) {}
            #[inline]
            fn trace_handles(&mut self, _: &mut Handles) {}
        }
    )*};
}

leaf_trace!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    std::num::NonZeroU32,
    std::num::NonZeroU64,
    std::num::NonZeroUsize,
    std::sync::atomic::AtomicBool,
    std::sync::atomic::AtomicU32,
    std::sync::atomic::AtomicU64,
    std::sync::atomic::AtomicUsize,
    std::sync::atomic::AtomicI32,
    std::sync::atomic::AtomicI64,
    std::sync::atomic::AtomicIsize,
    std::path::PathBuf,
    std::ffi::OsString,
);

// SAFETY: holds no `Gc`.
unsafe impl<T: ?Sized> Trace for std::marker::PhantomData<T> {
    const NEEDS_TRACE: bool = false;
    const HEAP_DROP_IS_NOOP: bool = true;
    fn trace(&self, _: &mut Tracer) {}
    fn trace_handles(&mut self, _: &mut Handles) {}
}

// SAFETY: the contents of an `Arc` may be shared with code outside the heap,
// so its handles are never unrooted or traced: they stay roots.
unsafe impl<T: ?Sized> Trace for Arc<T> {
    const NEEDS_TRACE: bool = false;
    fn trace(&self, _: &mut Tracer) {}
    fn trace_handles(&mut self, _: &mut Handles) {}
}

macro_rules! seq_trace {
    ($($t:ident),*) => {$(
        // SAFETY: visits each element in both methods.
        unsafe impl<T: Trace> Trace for $t<T> {
            const NEEDS_TRACE: bool = T::NEEDS_TRACE;
            #[inline]
            fn trace(&self, tracer: &mut Tracer) {
                if T::NEEDS_TRACE {
                    tracer.nested(|tracer| {
                        for x in self.iter() {
                            x.trace(tracer);
                        }
                    });
                }
            }
            #[inline]
            fn trace_handles(&mut self, handles: &mut Handles) {
                if T::NEEDS_TRACE {
                    for x in self.iter_mut() {
                        x.trace_handles(handles);
                    }
                }
            }
        }
    )*};
}

seq_trace!(Vec, VecDeque, LinkedList);

// SAFETY: visits the payload in both methods.
unsafe impl<T: Trace> Trace for Option<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const HEAP_DROP_IS_NOOP: bool = T::HEAP_DROP_IS_NOOP;
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        if let Some(v) = self {
            v.trace(tracer);
        }
    }
    #[inline]
    fn trace_handles(&mut self, handles: &mut Handles) {
        if let Some(v) = self {
            v.trace_handles(handles);
        }
    }
}

// SAFETY: visits each element in both methods.
unsafe impl<T: Trace, const N: usize> Trace for [T; N] {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const HEAP_DROP_IS_NOOP: bool = T::HEAP_DROP_IS_NOOP;
    fn trace(&self, tracer: &mut Tracer) {
        if T::NEEDS_TRACE {
            self.iter().for_each(|x| x.trace(tracer));
        }
    }
    fn trace_handles(&mut self, handles: &mut Handles) {
        if T::NEEDS_TRACE {
            self.iter_mut().for_each(|x| x.trace_handles(handles));
        }
    }
}

// SAFETY: visits each element in both methods.
unsafe impl<T: Trace> Trace for [T] {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    fn trace(&self, tracer: &mut Tracer) {
        if T::NEEDS_TRACE {
            self.iter().for_each(|x| x.trace(tracer));
        }
    }
    fn trace_handles(&mut self, handles: &mut Handles) {
        if T::NEEDS_TRACE {
            self.iter_mut().for_each(|x| x.trace_handles(handles));
        }
    }
}

// SAFETY: forwards to the boxed value.
unsafe impl<T: Trace + ?Sized> Trace for Box<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    fn trace(&self, tracer: &mut Tracer) {
        if T::NEEDS_TRACE {
            tracer.nested(|tracer| (**self).trace(tracer))
        }
    }
    fn trace_handles(&mut self, handles: &mut Handles) {
        (**self).trace_handles(handles)
    }
}

// SAFETY: visits both variants' payloads in both methods.
unsafe impl<T: Trace, E: Trace> Trace for Result<T, E> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE || E::NEEDS_TRACE;
    const HEAP_DROP_IS_NOOP: bool = T::HEAP_DROP_IS_NOOP && E::HEAP_DROP_IS_NOOP;
    fn trace(&self, tracer: &mut Tracer) {
        match self {
            Ok(v) => v.trace(tracer),
            Err(e) => e.trace(tracer),
        }
    }
    fn trace_handles(&mut self, handles: &mut Handles) {
        match self {
            Ok(v) => v.trace_handles(handles),
            Err(e) => e.trace_handles(handles),
        }
    }
}

// SAFETY: keys cannot be mutated in place, so they are never unrooted nor
// traced (a `Gc` in a key stays a root); values are visited in both methods.
unsafe impl<K, V: Trace, S> Trace for HashMap<K, V, S> {
    const NEEDS_TRACE: bool = V::NEEDS_TRACE;
    fn trace(&self, tracer: &mut Tracer) {
        if V::NEEDS_TRACE {
            tracer.nested(|tracer| self.values().for_each(|v| v.trace(tracer)));
        }
    }
    fn trace_handles(&mut self, handles: &mut Handles) {
        if V::NEEDS_TRACE {
            self.values_mut().for_each(|v| v.trace_handles(handles));
        }
    }
}

// SAFETY: as for `HashMap`.
unsafe impl<K, V: Trace> Trace for BTreeMap<K, V> {
    const NEEDS_TRACE: bool = V::NEEDS_TRACE;
    fn trace(&self, tracer: &mut Tracer) {
        if V::NEEDS_TRACE {
            tracer.nested(|tracer| self.values().for_each(|v| v.trace(tracer)));
        }
    }
    fn trace_handles(&mut self, handles: &mut Handles) {
        if V::NEEDS_TRACE {
            self.values_mut().for_each(|v| v.trace_handles(handles));
        }
    }
}

// SAFETY: set elements cannot be mutated in place; like map keys they stay
// roots and are never visited.
unsafe impl<T, S> Trace for HashSet<T, S> {
    const NEEDS_TRACE: bool = false;
    fn trace(&self, _: &mut Tracer) {}
    fn trace_handles(&mut self, _: &mut Handles) {}
}

// SAFETY: as for `HashSet`.
unsafe impl<T> Trace for BTreeSet<T> {
    const NEEDS_TRACE: bool = false;
    fn trace(&self, _: &mut Tracer) {}
    fn trace_handles(&mut self, _: &mut Handles) {}
}

// SAFETY: as for `HashSet`.
unsafe impl<T> Trace for BinaryHeap<T> {
    const NEEDS_TRACE: bool = false;
    fn trace(&self, _: &mut Tracer) {}
    fn trace_handles(&mut self, _: &mut Handles) {}
}

macro_rules! tuple_trace {
    ($(($($n:tt $t:ident),+)),*) => {$(
        // SAFETY: visits each field in both methods.
        unsafe impl<$($t: Trace),+> Trace for ($($t,)+) {
            const NEEDS_TRACE: bool = $($t::NEEDS_TRACE)||+;
            const HEAP_DROP_IS_NOOP: bool = $($t::HEAP_DROP_IS_NOOP)&&+;
            fn trace(&self, tracer: &mut Tracer) {
                $(self.$n.trace(tracer);)+
            }
            fn trace_handles(&mut self, handles: &mut Handles) {
                $(self.$n.trace_handles(handles);)+
            }
        }
    )*};
}

tuple_trace!(
    (0 A),
    (0 A, 1 B),
    (0 A, 1 B, 2 C),
    (0 A, 1 B, 2 C, 3 D),
    (0 A, 1 B, 2 C, 3 D, 4 E),
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F),
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G),
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H)
);

#[cfg(test)]
mod tests {
    use super::{Trace, TraceMode, Tracer};
    use crate::Gc;

    #[test]
    fn a_shallow_tracer_stops_at_its_depth() {
        let leaf = Gc::new(7u64);
        let nested: Box<Vec<Box<Gc<u64>>>> = Box::new(vec![Box::new(leaf.clone())]);
        let mut deep = Tracer::new(TraceMode::Collect, 0);
        nested.trace(&mut deep);
        assert_eq!(deep.stack.len(), 1);
        assert!(!deep.too_deep);
        // Three containers deep: a tracer allowed two stops, records it.
        let mut shallow = Tracer {
            max_depth: 2,
            ..Tracer::new(TraceMode::Collect, 0)
        };
        nested.trace(&mut shallow);
        assert!(shallow.stack.is_empty());
        assert!(shallow.too_deep);
        let mut enough = Tracer {
            max_depth: 3,
            ..Tracer::new(TraceMode::Collect, 0)
        };
        nested.trace(&mut enough);
        assert_eq!(enough.stack.len(), 1);
        assert!(!enough.too_deep);
        assert_eq!(enough.depth, 0);
    }
}
