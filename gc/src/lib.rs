//! fibra's garbage-collected heap: one heap per process, shared by every
//! green thread, async task and OS thread; a concurrent, non-moving,
//! tri-colour mark-sweep collector whose stop-the-world pauses only flip a
//! phase word.
//!
//! ```
//! use fibra_gc::{Gc, GcCell, Trace};
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
//! fibra_gc::collect(); // the cycle is unreachable now and is freed
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
//! dropping a root is one decrement inside a *mutator region* (below). When a
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
//! ## Phases and the phase word
//!
//! A global `EPOCH` word holds `(gen, marking)`. A cycle (see `collector`):
//!
//! 1. **Sweep termination** (concurrent): finish sweeping the previous
//!    generation, so every span's mark bitmap is clear.
//! 2. **Mark start** (stop-the-world, O(1)): `EPOCH = (gen, marking)`. Then a
//!    *grace period* (below) waits until no thread acts on the old phase.
//! 3. **Root scan and mark** (concurrent, on the collector thread, with
//!    assists from allocating threads): shade every allocated, unmarked
//!    object whose root count is non-zero; drain the grey queue, tracing each
//!    grey object's fields. A `GcCell` is traced under its lock (try-lock; a
//!    busy cell is retried later, never waited on).
//! 4. **Mark termination**: when the grey queue is empty, a grace period
//!    flushes in-flight barrier work; if the queue is still empty, marking is
//!    complete (stop-the-world, O(1)): `EPOCH = (gen + 1, off)`, grace period.
//! 5. **Sweep** (concurrent and lazy): a span is swept by whoever needs it
//!    first, an allocating thread looking for free slots or the collector's
//!    background sweep. Sweeping frees unreachable objects (handing their
//!    destructors to the finalizer thread, see "Destructors") and makes the
//!    span's mark bitmap its allocation bitmap.
//!
//! ## The barrier: snapshot-at-the-beginning over counted roots
//!
//! While `marking`, every deletion of a reference *shades* (marks grey) the
//! object it referred to: dropping a root, unrooting a handle as it moves into
//! the heap, and overwriting a `GcCell`'s value (its old contents). Objects are
//! allocated black. Creating a reference (clone, store) needs no barrier.
//! This is Yuasa's deletion barrier with the root set "virtualised": the
//! snapshot is the heap and the root counts at the end of the mark-start
//! grace period. Correctness: an object reachable at the snapshot stays on a
//! path of intact edges from a root, or one of those edges was deleted and
//! shaded its target; an object reachable later was reachable at the
//! snapshot or was allocated since (black), because nothing unreachable can
//! become reachable again (no resurrection, see destructors). So when the
//! grey set is empty, every object reachable at the snapshot is black, and
//! any later shade only meets black objects: termination is stable.
//!
//! ## Mutator regions and grace periods (OS threads are never stopped)
//!
//! Barriers and allocation read `EPOCH` once, on entry to a *mutator
//! region*, and act on that value until they leave it. Each thread has a
//! record whose sequence number is odd inside a region. To change phase the
//! collector stores the new `EPOCH`, issues a process-wide memory barrier
//! (`membarrier(2)`, or a `SeqCst` fence in every region entry where that is
//! unavailable), and waits until each record that was inside a region has
//! left it. After this grace period no thread acts on the old phase, whether
//! it is a worker, a plain OS thread, or blocked in a system call. Regions
//! are a few instructions long, never block and never poll a safepoint. The
//! stop-the-world around each flip (`fibra_runtime::safepoint`) keeps the
//! workers out of regions altogether, so the grace period only ever waits for
//! plain threads, and it runs after the world has restarted.
//!
//! ## Allocator
//!
//! * 64 MiB arenas reserved from the OS, split into 8 KiB pages; each arena
//!   starts with a page-to-span table, so the span of any object is two loads
//!   away.
//! * 67 size classes up to 32 KiB (Go's), each served by spans of one or more
//!   pages; spans are *scan* or *noscan* (types whose `Trace::NEEDS_TRACE` is
//!   false are never scanned). Larger objects get a span of their own:
//!   they count toward the pacer and poll for a safepoint like a cache
//!   refill, and their value is copied into the span outside the mutator
//!   region (the span stays *pending*, invisible to sweeps and marking,
//!   until a short region publishes it), so a stop-the-world never waits
//!   for a large copy.
//! * Each thread has a cache with one span per span class and a 64-bit window
//!   of free slots: the fast path is a `trailing_zeros`, a store and the
//!   header write, without locks or read-modify-write atomics.
//! * Per-class central lists (`in_use`, `partial`, `unswept`) behind a mutex
//!   serve the caches; a new generation turns `in_use` into `unswept` lazily,
//!   in O(1) per class.
//! * Side bitmaps per span: `mark` and `alloc`. Slots below the span's
//!   `freeindex` were allocated since the last sweep. Allocating black costs
//!   no atomic read-modify-write: a span records the first slot its cache
//!   allocated during the current marking epoch (`black_from`), and free
//!   slots from there up to `freeindex` count as marked. A span whose objects
//!   have no destructor (`Trace::HEAP_DROP_IS_NOOP`, e.g. nodes made of
//!   `Gc`s and numbers) is swept by bitmap operations alone.
//! * Free page runs beyond what the next heap goal needs are returned to the
//!   OS after each cycle (`madvise(MADV_DONTNEED)`).
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
//! use fibra_gc::{Gc, Trace};
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
//! ## Towards shorter pauses (what the next steps change)
//!
//! Marking already runs on the collector thread while mutators run, and
//! both pauses do O(1) work; their length is the time the workers take to
//! reach a safepoint. Still to come: parallel mark workers with a CPU budget
//! (Go's 25%), splitting huge objects into scan chunks ("oblets"), paced
//! assists with credit, cleanups of stacks after a cycle, and a bound on
//! time-to-safepoint for tasks that never reach one (a signal-based poll in
//! the runtime).
//!
//! ## Pacing, stats and debugging
//!
//! A cycle starts when the heap has grown by `FIBRA_GC_PERCENT` (default
//! 100, `off` disables) over the live bytes of the previous cycle, with a 4 MiB
//! minimum; `FIBRA_GC_MEMORY_LIMIT` (e.g. `512MiB`) lowers the goal to stay
//! under a soft limit. Allocating threads assist marking when the heap
//! outgrows its goal during a cycle. Each pause emits a `tracing` event (target `fibra_gc`, message
//! `gc pause`, fields `phase`, `pause_ns`, `stopping_ns`, `cycle`) and lands in
//! [`stats()`]'s histograms (pause length, and the time spent stopping the
//! world). `FIBRA_GCTRACE=1` prints one line per cycle to
//! stderr. `FIBRA_GC_TORTURE=1` collects every few hundred allocations, checks
//! the heap's invariants after each mark (every root and every child of a
//! marked object is marked) and poisons freed memory.

#![warn(missing_docs)]

extern crate self as fibra_gc;

mod cell;
mod cleanup;
mod collector;
mod config;
mod gc;
mod heap;
mod mutator;
mod stats;
mod trace;

pub use cell::GcCell;
pub use collector::collect;
pub use fibra_gc_derive::Trace;
pub use gc::Gc;
pub use stats::{stats, GcStats, PauseHistogram};
pub use trace::{Handles, Trace, Tracer};

/// Items the derive macro refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::{Handles, Trace, Tracer};

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
