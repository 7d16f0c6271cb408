//! The collector: one background thread that runs cycles (see "Phases"
//! below), the pacer that starts them, the assists that
//! allocating threads contribute, and `collect()`. All of its
//! process-wide state is one `static`, [`COLLECTOR`] (Go's
//! `gcController`); the shared grey queues it drains are the heap's
//! (`heap::mark`), because the mutators' barriers, below the collector,
//! feed them.
//!
//! * `cycle`: cycle requests, the collector thread, one cycle's phases,
//!   `collect()`, pauses;
//! * `pacer`: the trigger and goal, and the allocation hooks that check
//!   them;
//! * `assist`: allocating threads helping marking, and stalls;
//! * `mark`: the root scan and draining to termination;
//! * `verify`: torture mode's heap check;
//! * `counters`: cycle and pause statistics, and the figures
//!   `fibra::stats()` shows.
//!
//! # Phases and the phase word
//!
//! A global phase word (see `mutator`) holds `(gen, marking)`. A cycle
//! (see `cycle`):
//!
//! 1. **Sweep termination** (concurrent): finish sweeping the previous
//!    generation, so every span's mark bitmap is clear.
//! 2. **Mark start** (stop-the-world, O(1)): `epoch = (gen, marking)`. Then a
//!    *grace period* (below) waits until no thread acts on the old phase.
//! 3. **Root scan and mark** (concurrent, on the collector thread, with
//!    assists from allocating threads): shade every allocated, unmarked
//!    object whose root count is non-zero; drain the grey queue, tracing each
//!    grey object's fields. A `GcCell` is traced under its lock (try-lock; a
//!    busy cell is retried later, never waited on).
//! 4. **Mark termination**: when the grey queue is empty, a grace period
//!    flushes in-flight barrier work; if the queue is still empty, marking is
//!    complete (stop-the-world, O(1)): `epoch = (gen + 1, off)`, grace period.
//! 5. **Sweep** (concurrent and lazy): a span is swept by whoever needs it
//!    first, an allocating thread looking for free slots or the collector's
//!    background sweep. Sweeping frees unreachable objects (handing their
//!    destructors to the finalizer thread, see "Destructors" in the crate
//!    docs) and makes the span's mark bitmap its allocation bitmap.
//!
//! # The barrier: snapshot-at-the-beginning over counted roots
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
//! any later shade only meets black objects: termination is stable. The
//! one way to reach an unreachable object again, a `Weak` upgrade, shades
//! it like a barrier and never after the collector's last check for grey
//! objects (`MarkState::terminating`, see `heap::weak`).
//!
//! # Mutator regions and grace periods (OS threads are never stopped)
//!
//! Barriers and allocation read the phase word once, on entry to a *mutator
//! region*, and act on that value until they leave it. Each thread has a
//! record whose sequence number is odd inside a region. To change phase the
//! collector stores the new phase word, issues a process-wide memory barrier
//! (`membarrier(2)`, or a `SeqCst` fence in every region entry where that is
//! unavailable), and waits until each record that was inside a region has
//! left it. After this grace period no thread acts on the old phase, whether
//! it is a worker, a plain OS thread, or blocked in a system call. Regions
//! are a few instructions long, never block and never poll a safepoint
//! (see `mutator` for the protocol). The stop-the-world around each flip
//! (`fibra::gc_seam::stop_the_world`) keeps the workers out of
//! regions altogether, so the grace period only ever waits for plain
//! threads, and it runs after the world has restarted.
//!
//! # Towards shorter pauses
//!
//! Marking already runs on the collector thread while mutators run, and
//! both pauses do O(1) work; their length is the time the workers take to
//! reach a safepoint. A task that never reaches one is stopped by the
//! runtime's signal-based preemption wherever it is outside a mutator
//! region (`may_preempt`), and after each cycle the workers release the
//! unused stack pages of their parked green threads. Still to come:
//! parallel mark workers with a CPU budget (Go's 25%), splitting huge
//! objects into scan chunks ("oblets"), and paced assists with credit.

mod assist;
mod counters;
mod cycle;
mod mark;
mod pacer;
mod verify;
mod warm_up;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use parking_lot::{Condvar, Mutex};

use crate::config::config;
use crate::heap::HEAP;
use crate::mutator;

pub(crate) use counters::{counters, Counters};
pub use cycle::collect;
pub(crate) use pacer::{after_alloc, alloc_slow, before_large_alloc};
pub use warm_up::setups_on_allocation;

use cycle::Control;
use mark::RootJobs;
use pacer::Pacer;

/// The collector's state (Go's `gcController`): everything but the grey
/// queues, which the barriers feed (`heap::mark::MarkState`).
pub(crate) struct Collector {
    /// Cycle requests, completions and the collector thread (see `cycle`).
    control: Mutex<Control>,
    /// Where the collector thread waits for requests, callers for completions.
    control_cv: Condvar,
    /// When cycles start, and the goal assists keep the heap to.
    pacer: Pacer,
    /// The running cycle's root jobs (None outside marking).
    root_jobs: Mutex<Option<Arc<RootJobs>>>,
    /// Cycle and pause statistics.
    counters: Mutex<Counters>,
    /// Whether torture mode is on (`FIBRA_GC_TORTURE`).
    torture: AtomicBool,
    /// Whether configuration has been applied (`configure`).
    configured: Once,
}

/// The collector.
static COLLECTOR: Collector = Collector {
    control: Mutex::new(Control::new()),
    control_cv: Condvar::new(),
    pacer: Pacer::new(),
    root_jobs: Mutex::new(None),
    counters: Mutex::new(Counters::new()),
    torture: AtomicBool::new(false),
    configured: Once::new(),
};

thread_local! {
    /// Set on the collector thread (which must never wait for itself).
    static IS_COLLECTOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is the collector thread.
fn on_collector_thread() -> bool {
    IS_COLLECTOR.with(|c| c.get())
}

/// Applies the configuration once: registers the preemption check and the
/// stats source with the runtime, reads the pacer's and torture mode's
/// settings, and starts the collector thread (which sets up the
/// process-wide barrier in the background, see `mutator`).
fn configure() {
    COLLECTOR.configured.call_once(|| {
        // SAFETY: `may_preempt` reads only thread-locals without lazy
        // initialisation or destructors (see `region_refuses_preemption`).
        unsafe { fibra_runtime::gc_seam::set_preemption_check(may_preempt) };
        fibra_runtime::gc_seam::set_gc_stats_source(counters::summary);
        let c = config();
        if c.percent.is_none() {
            COLLECTOR.pacer.trigger.store(u64::MAX, Ordering::Relaxed);
        }
        if c.torture.is_some() {
            COLLECTOR.torture.store(true, Ordering::Relaxed);
            HEAP.poison.store(true, Ordering::Relaxed);
        }
        // A failure here is reported by the first cycle request, which
        // tries again (`cycle::ensure_thread`).
        let _ = cycle::try_ensure_thread(&mut COLLECTOR.control.lock());
    });
}

/// `configure`, from an allocation: counts the set-up it had to do itself
/// (see `heap::pages::SETUPS_ON_ALLOCATION`).
fn configure_for_allocation() {
    if !COLLECTOR.configured.is_completed() {
        crate::heap::pages::SETUPS_ON_ALLOCATION.fetch_add(1, Ordering::Relaxed);
    }
    configure();
}

/// Whether a preemption signal may stop the calling thread where it is:
/// not inside a region. Regions never wait for anything a stopped thread
/// could hold (the barrier's lock of a cell nested in an overwritten value
/// is never contended: that cell is reachable only through the outer one,
/// whose lock the barrier's thread holds), so a stop never waits on a
/// thread that waits on a stopped one. Everywhere else - holding a
/// `GcCell`, inside malloc, waiting for a lock - a thread may stop: a
/// thread blocked on what it holds is stopped by a signal in turn.
///
/// A refused region stops at a safepoint as it ends (`mutator`'s
/// `preempt_pending`), so the stop waits for the region, not for the
/// stopper's next signal. A region lasts as long as its work: an
/// allocation or a barrier is a few instructions; moving a value into the
/// heap (`Gc::new`, `GcCell::set`) also walks the value's handles, so its
/// length grows with the number of `Gc`s in that value.
fn may_preempt() -> bool {
    !mutator::region_refuses_preemption()
}
