//! Stops made by a running worker.
//!
//! A stop requested by the collector's own thread starts with that thread
//! on a CPU. When the machine has no spare CPU (two busy workers and the
//! collector on two cores), that CPU was taken from a worker, which must
//! get it back from the OS before it can reach its safepoint: the stop
//! then waits for the OS scheduler, milliseconds on a busy machine, while
//! every other worker is already stopped. Go does not meet this because
//! its stops run on a P, in place of a goroutine. fibra does the same by
//! handing the stop to a worker that is running: the collector publishes
//! its request and sleeps, leaving its CPU; the first worker to poll a
//! safepoint (between tasks, or on the collector's allocation slow path)
//! claims it, stops the world, runs the collector's step, restarts the
//! world and wakes the collector.
//!
//! # Protocol
//!
//! `STATE` goes `NONE → WANTED → CLAIMED → DONE → NONE`. The collector
//! (one at a time: `Slot::serial`) stores the step, then `WANTED`
//! (Release). A worker that sees `WANTED` claims it with a CAS to
//! `CLAIMED` (Acquire, so it sees the step), performs the stop, stores the
//! outcome and `DONE`, and notifies. The collector waits for `DONE`; if no
//! worker claimed the request within [`CLAIM_WAIT`] (none polls: all
//! spin in user code, or sleep), or no worker runs any more (checked every
//! `RECHECK_EVERY`), it claims it itself with the same CAS,
//! so exactly one thread performs the stop. It also performs it at once
//! when no worker is running at all (nothing would poll).

use std::sync::atomic::{AtomicU8, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{stop_the_world, StopReport};

/// How long the collector waits for a worker to claim its stop before it
/// stops the world itself.
pub const CLAIM_WAIT: Duration = Duration::from_micros(500);

/// How often the waiting requester checks that some worker still runs.
const RECHECK_EVERY: Duration = Duration::from_micros(50);

/// Stack a worker needs left to make a stop handed to it.
const CLAIM_STACK: usize = 16 * 1024;

const NONE: u8 = 0;
const WANTED: u8 = 1;
const CLAIMED: u8 = 2;
const DONE: u8 = 3;

/// The request in flight, if any. Read without a lock by every safepoint
/// poll of a worker.
static STATE: AtomicU8 = AtomicU8::new(NONE);

/// The collector's step, for the duration of one request: the pointer is
/// valid from `WANTED` until the requester has seen `DONE`.
#[derive(Clone, Copy)]
struct Step(*const (dyn Fn() + Sync));

// SAFETY: the pointee is `Sync` and outlives the request (the requester
// waits for `DONE` before it returns), so it may be called from the
// claiming worker.
unsafe impl Send for Step {}

struct Slot {
    /// One request at a time.
    serial: Mutex<()>,
    /// The step of the request in flight, and its outcome once `DONE`.
    inner: Mutex<(Option<Step>, Option<StopReport>)>,
    done: Condvar,
}

static SLOT: Slot = Slot {
    serial: Mutex::new(()),
    inner: Mutex::new((None, None)),
    done: Condvar::new(),
};

/// Whether a request waits for a worker to claim it (the safepoint polls'
/// check; a hint, the claim decides).
#[inline]
pub(super) fn wanted() -> bool {
    STATE.load(Relaxed) == WANTED
}

/// Called by a worker at a safepoint (outside any region of the
/// collector, holding no cell): claims the request, if it is still
/// wanted, and performs it.
#[cold]
pub(super) fn claim_on_worker() {
    // A green thread near the end of its stack leaves the stop to another
    // worker, or to the requester (the stop needs a few KiB of stack).
    if crate::stack::remaining().is_some_and(|left| left < CLAIM_STACK) {
        return;
    }
    if STATE
        .compare_exchange(WANTED, CLAIMED, Acquire, Relaxed)
        .is_err()
    {
        return;
    }
    let step = SLOT.inner.lock().0.expect("a wanted stop has a step");
    // SAFETY: the step stays valid until `DONE` (the requester waits), is
    // `Sync`, and only flips the collector's phase word: what
    // `stop_the_world` allows with the world stopped. This worker is at a
    // safepoint, outside the collector's regions and cells.
    let report = unsafe { perform(&*step.0, true) };
    finish(report);
}

/// Stops the world, runs `step`, restarts the world.
///
/// # Safety
///
/// As for [`stop_the_world`]: `step` must not wait for anything a stopped
/// task could provide.
unsafe fn perform(step: &(dyn Fn() + Sync), on_worker: bool) -> StopReport {
    // SAFETY: forwarded from the caller.
    let world = unsafe { stop_the_world() };
    step();
    world.finish(on_worker)
}

fn finish(report: StopReport) {
    let mut inner = SLOT.inner.lock();
    inner.1 = Some(report);
    STATE.store(DONE, Release);
    SLOT.done.notify_all();
}

/// Runs `step` with the world stopped, the stop made by a running worker
/// when one claims it within [`CLAIM_WAIT`], else by the calling thread.
/// Returns how long the stop took and who made it.
///
/// # Safety
///
/// As for [`stop_the_world`]: `step` must not allocate on the GC heap,
/// touch a `GcCell`, park, or wait for anything a task could provide or a
/// lock a task may hold. The calling thread must not be a worker.
pub(crate) unsafe fn stop_and_run(step: &(dyn Fn() + Sync)) -> StopReport {
    let _serial = SLOT.serial.lock();
    if !super::any_worker_running() {
        // SAFETY: forwarded from the caller.
        return unsafe { perform(step, false) };
    }
    let mut inner = SLOT.inner.lock();
    // SAFETY: only the lifetime is erased. `step` outlives this call, and
    // the pointer is cleared below before it returns; a worker reads it
    // only after claiming the request, and this call returns only once
    // that worker is done with it (`DONE`).
    let erased: *const (dyn Fn() + Sync + 'static) = unsafe { std::mem::transmute(step) };
    inner.0 = Some(Step(erased));
    inner.1 = None;
    STATE.store(WANTED, Release);
    // Wait for a claim, in slices: a worker that was running may since
    // have gone idle or stepped aside to wait (an allocation stalled for
    // marking), and then none will claim; the caller makes the stop as
    // soon as no worker runs.
    let deadline = std::time::Instant::now() + CLAIM_WAIT;
    while STATE.load(Acquire) == WANTED {
        let now = std::time::Instant::now();
        if now >= deadline {
            break;
        }
        let slice = deadline.min(now + RECHECK_EVERY);
        if SLOT.done.wait_until(&mut inner, slice).timed_out()
            && STATE.load(Acquire) == WANTED
            && !super::any_worker_running()
        {
            break;
        }
    }
    let report = if STATE
        .compare_exchange(WANTED, CLAIMED, Acquire, Relaxed)
        .is_ok()
    {
        drop(inner);
        // SAFETY: forwarded from the caller.
        let report = unsafe { perform(step, false) };
        inner = SLOT.inner.lock();
        report
    } else {
        while STATE.load(Acquire) != DONE {
            SLOT.done.wait(&mut inner);
        }
        inner.1.take().expect("a finished stop has its report")
    };
    inner.0 = None;
    STATE.store(NONE, Release);
    report
}
