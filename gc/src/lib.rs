//! fibra's garbage-collected heap: one heap per process, shared by every
//! green thread, async task and OS thread; a concurrent, non-moving,
//! tri-colour mark-sweep collector whose stop-the-world pauses only flip a
//! phase word.
//!
//! ```
//! use fibra::gc::{Gc, GcCell, Trace};
//!
//! #[derive(Trace)]
//! struct Node {
//!     value: u64,
//!     next: GcCell<Option<Gc<Node>>>,
//! }
//!
//! let a = Gc::new(Node { value: 1, next: GcCell::new(None) });
//! let b = Gc::new(Node { value: 2, next: GcCell::new(Some(a.clone())) });
//! a.next.set(Some(b.clone())); // a cycle
//! assert_eq!(a.next.get().unwrap().value, 2);
//! drop((a, b));
//! fibra::gc::collect(); // the cycle is unreachable now and is freed
//! ```
//!
//! # Design
//!
//! ## Objects, handles and roots
//!
//! An object is a `GcBox<T>`: an 8-byte header (a 32-bit atomic *root
//! count* and a 32-bit reference to the type's vtable, which holds its trace
//! and drop functions) followed by the value. Mark bits live beside the
//! objects, in per-span bitmaps.
//!
//! A [`Gc<T>`] is one pointer word. Its low bit says whether this handle is a
//! **root**. The rule that makes the API sound from safe Rust:
//!
//! * every `Gc` outside the heap is a root: `Gc::new` returns a root, and
//!   `Clone` makes a root. A root adds one to its object's root count; dropping
//!   it subtracts one. So a `Gc` kept in a local, a `Vec`, a `Box`, a channel
//!   buffer, a `static`, on any thread, keeps its object alive, wherever Rust
//!   puts the bytes (stack scanning could never see a `Vec`'s buffer).
//! * a `Gc` inside a heap object is traced, not counted. Moving a value into
//!   the heap (`Gc::new(v)`, `GcCell::set(v)`) *unroots* the handles in it
//!   through [`Trace::trace_handles`], which needs `&mut` access, i.e. sole
//!   ownership. An unrooted handle can only be reached through `&` of a heap
//!   object, and cloning it makes a new root. The one way to get `&mut` to a
//!   heap value, [`GcCell::with_mut`], roots the handles in it for the
//!   duration of the borrow and unroots them afterwards, so a handle moved out
//!   with `mem::swap` leaves as a root.
//! * a `Gc` that a `Trace` impl does not visit (a `#[trace(skip)]` field, an
//!   `Arc`) simply stays a root: that can leak a cycle, never free a live
//!   object.
//!
//! Cost: a clone is one atomic increment of the header (like `Arc`);
//! dropping a root is one decrement inside a *mutator region* (a few
//! instructions during which the collector cannot change phase). When a
//! handle is the only root of an object that was never stored in the heap
//! (the header's `STORED` bit is clear), nothing else can reach the object,
//! so unrooting or dropping it is a plain store: building a structure from
//! fresh objects (`Gc::new(Node { left: Gc::new(..), .. })`) costs no atomic
//! read-modify-write at all. The roots of the heap are exactly the objects
//! with a non-zero count; the collector finds them by reading the counts of
//! allocated objects concurrently with the mutators, never in a pause (this
//! root scan reads one header per allocated object; a per-span root bitmap
//! would make it proportional to the roots instead).
//!
//! ## Destructors
//!
//! Destructors of dead objects run on the *finalizer thread*
//! (`fibra-gc-finalizer`), as Go runs finalizers on their own goroutine;
//! never on the collector thread, never inside a sweep or an allocation.
//! A sweep that finds a dead object whose type has a destructor keeps its
//! slot (the object becomes a *zombie*) and queues the destructor; the
//! slot is freed by the first sweep after the destructor ran, i.e. such
//! objects take one more cycle to be reused than objects without drop
//! glue. So a destructor may take a lock that a thread calling
//! [`collect()`] holds, block, park, allocate or call `collect()` itself:
//! collection never waits for it (its zombie simply waits). `collect()`
//! returns when the cycle's sweep is done, usually before the destructors
//! it queued have run. A destructor that never returns stalls the
//! destructors and cleanups queued after it, and their objects' memory
//! stays allocated meanwhile (as a blocked finalizer goroutine does in Go);
//! collection itself goes on. Objects still reachable when the process
//! exits are not dropped.
//!
//! A destructor could meet objects that are already freed (its `Gc`
//! fields may point to objects that died in the same cycle). Therefore a
//! traced type's `Drop` must not dereference its `Gc` fields:
//! `#[derive(Trace)]` refuses to compile for a type that implements
//! `Drop`, and hand-written `Trace` impls must uphold it (it is part of
//! the trait's safety contract). Drop glue of fields is fine: dropping an
//! unrooted `Gc` does nothing, and dropping a root only touches a live
//! object. Nothing is ever resurrected. Objects are dropped on another
//! thread, so `Gc::new` requires `T: Send`. The finalizer thread has a
//! large (reserved, not committed) stack, so dropping a long `Box` list
//! kept in one object does not overflow it.
//!
//! ```compile_fail
//! use fibra::gc::{Gc, Trace};
//!
//! #[derive(Trace)]
//! struct Bad {
//!     next: Option<Gc<Bad>>,
//! }
//!
//! impl Drop for Bad {
//!     // Could read `self.next` after its target was swept: rejected.
//!     fn drop(&mut self) {}
//! }
//! ```
//!
//! Types without `Gc` fields may implement `Drop` (e.g. to close a file)
//! when they are fields of a traced type, or when their `Trace` impl is
//! written by hand. To act when an object dies, register a cleanup with
//! [`Gc::add_cleanup`] (Go's `AddCleanup`): it runs on the finalizer thread
//! after the object's destructor and never sees the object itself.
//!
//! ## Deeply nested values
//!
//! Marking never recurses from one object to another: edges go to explicit
//! mark stacks, so a chain of a million `Gc` nodes costs memory, not stack.
//! A value nested inside *one* object (a `Box` list, a tree of `Vec`s) is
//! traced by Rust recursion through its `Trace` impls: on the collector
//! thread, whose stack is large (reserved, not committed), and in
//! allocation assists only up to 64 containers deep (deeper objects are
//! left to the collector thread). Its destructor runs on the finalizer
//! thread, whose stack is large too. Moving such a value into the heap,
//! or overwriting it in a `GcCell` while marking, walks its handles on
//! the calling thread's stack, as dropping it there would. A type whose
//! nesting holds no `Gc` (`struct Node { v: u64, next: Option<Box<Node>> }`)
//! has `NEEDS_TRACE` false under `#[derive(Trace)]` and is never walked.
//!
//! ## Pacing, stats and debugging
//!
//! A cycle starts when the heap has grown by `FIBRA_GC_PERCENT` (default
//! 100, `off` disables) over the live bytes of the previous cycle, with a 4 MiB
//! minimum; `FIBRA_GC_MEMORY_LIMIT` (e.g. `512MiB`) lowers the goal to stay
//! under a soft limit. Allocating threads assist marking when the heap
//! outgrows its goal during a cycle. Each pause emits a `tracing` event
//! (target `fibra_gc`, message `gc pause`, fields `phase`, `pause_ns`,
//! `stopping_ns` = `time_to_safepoint_ns` (the wait for every worker to
//! stop), `work_ns` (the rest of the pause), `cycle`) and lands in
//! [`stats()`]'s histograms (pause length, time to safepoint, work). `FIBRA_GCTRACE=1` prints
//! one line per cycle to stderr. `FIBRA_GC_TORTURE=1` collects every few
//! hundred allocations, checks the heap's invariants after each mark (every
//! root and every child of a marked object is marked) and poisons freed
//! memory.
//!
//! # Layers
//!
//! The crate's modules form layers; each imports only from the layers
//! below it (computed from `crate::` paths, no cycle among top-level
//! modules but `heap` and `trace`, which share the bottom layer: a type's
//! vtable holds its trace function, and a tracer shades through the heap's
//! mark bits).
//!
//! ```text
//!   gc (Gc<T>)   cell (GcCell<T>)   weak (Weak<T>)   stats (stats())   the API
//!   ------------------------------------------------
//!   collector (cycles, pacer, assists, marking)
//!   ------------------------------------------------
//!   mutator (regions, each thread's ThreadHeap and cache)
//!   ------------------------------------------------
//!   heap (spans, pages, sweeping, mark bits, finalizer thread)
//!   trace (Trace, Tracer)   config   epoch   histogram
//! ```
//!
//! The collector's internals (phases, the barrier, regions and grace
//! periods) are documented in `collector`, the allocator's in `heap`.

#![warn(missing_docs)]

extern crate self as fibra_gc;

mod cell;
mod collector;
mod config;
mod epoch;
mod gc;
mod heap;
mod histogram;
mod mutator;
mod stats;
mod trace;
mod weak;

pub use cell::GcCell;
pub use collector::collect;
pub use fibra_gc_derive::Trace;
pub use gc::Gc;
pub use histogram::PauseHistogram;
pub use stats::{stats, GcStats};
pub use trace::{Handles, Trace, Tracer};
pub use weak::Weak;

/// Items the derive macro refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::{Handles, Trace, Tracer};

    pub use crate::collector::setups_on_allocation;

    /// Stands for the deriving type in its own `NEEDS_TRACE` and
    /// `HEAP_DROP_IS_NOOP` (see `fibra_gc_derive`'s "Recursive types"):
    /// adds nothing to either. Never traced: it only appears in constants.
    pub struct Recursive;

    // SAFETY: visits nothing in both methods; has no `Gc` and no `Drop`.
    unsafe impl Trace for Recursive {
        const NEEDS_TRACE: bool = false;
        const HEAP_DROP_IS_NOOP: bool = true;
        fn trace(&self, _: &mut Tracer) {}
        fn trace_handles(&mut self, _: &mut Handles) {}
    }
}
