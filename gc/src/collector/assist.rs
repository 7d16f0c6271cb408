//! Assists: allocating threads help marking, inside a mutator region,
//! when the heap outgrows its goal during a cycle, and stall (help or
//! wait, for a bounded time) past the hard goal.
//!
//! # Protocol
//!
//! An assist claims root spans from the cycle's `RootJobs` (the root scan
//! reads one header per allocated object, so it is shared) and scans grey
//! objects from `MarkState::grey`, inside one region, so the collector's
//! termination grace period waits for it. It traces at most
//! `ASSIST_MAX_DEPTH` containers deep into one object (its stack may be a
//! green thread's); a deeper object goes to `MarkState::deep`. Work it
//! found but did not do goes back to `grey`, also when a `Trace` impl
//! panics, so no marked object stays unscanned.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::mark::{pop_grey, scan, scan_roots};
use super::{on_collector_thread, COLLECTOR};
use crate::heap::mark::MARK;
use crate::heap::HEAP;
use crate::mutator;
use crate::trace::Tracer;

/// Containers nested in one object that an assist traces through before
/// it leaves the object to the collector thread (a mutator's stack may
/// be a green thread's few KiB).
pub(super) const ASSIST_MAX_DEPTH: u32 = 64;

/// The heap size past which allocations stall to help marking: the goal
/// plus `HARD_GOAL_SLACK_PERCENT`.
pub(super) fn hard_goal(goal: u64) -> u64 {
    goal.saturating_add(goal / 100 * HARD_GOAL_SLACK_PERCENT)
}

/// How far (percent) the heap may outgrow its goal before allocations stall.
pub(super) const HARD_GOAL_SLACK_PERCENT: u64 = 25;

/// Longest one allocation helps or waits for marking: each allocation
/// made while the heap is past its hard goal pays at most this, so a
/// mutator slows down in proportion instead of stopping for long (the
/// gc-latency benchmark's worst push).
pub(super) const MAX_STALL: Duration = Duration::from_micros(500);

/// The heap has outgrown its hard goal while marking, or while a cycle is
/// requested but not yet marking (the collector is behind, e.g. starved
/// of CPU): help mark, or wait, for a bounded time instead of growing
/// further. Never while holding a cell lock (the
/// collector may need it to finish).
#[cold]
pub(super) fn stall_for_mark(goal: u64) {
    if mutator::holding_cell() || on_collector_thread() {
        return;
    }
    let deadline = Instant::now() + MAX_STALL;
    // Marking, or a cycle requested that has not begun marking yet.
    let collecting =
        || mutator::epoch().marking() || COLLECTOR.pacer.cycle_pending.load(Ordering::Acquire);
    let behind = || {
        collecting()
            && COLLECTOR.pacer.live.load(Ordering::Relaxed) + HEAP.allocated.load(Ordering::Relaxed)
                > hard_goal(goal)
            && Instant::now() < deadline
    };
    // Help while there is work; wait (counted as stopped) when there is none.
    while behind() {
        if !assist() {
            fibra_runtime::gc_seam::blocking(|| std::thread::sleep(Duration::from_micros(100)));
        }
    }
}

/// Work (objects) per assist: bounded, so an allocation never stalls long.
pub(super) const ASSIST_OBJECTS: usize = 256;
/// Root spans scanned per assist.
pub(super) const ASSIST_ROOT_SPANS: usize = 4;

/// Scans a few root spans and up to `ASSIST_OBJECTS` grey objects inside a
/// region. Returns whether there was work.
pub(super) fn assist() -> bool {
    mutator::with_thread_heap(|thread| {
        let region = thread.region();
        let epoch = region.epoch();
        let mut worked = false;
        if epoch.marking() {
            let mut tracer = Tracer::shallow(epoch.raw(), ASSIST_MAX_DEPTH);
            // Root spans first (the collector scans them alone otherwise).
            let jobs = COLLECTOR.root_jobs.lock().clone();
            if let Some(jobs) = jobs {
                for _ in 0..ASSIST_ROOT_SPANS {
                    match jobs.claim() {
                        Some(span) => {
                            scan_roots(span, &mut tracer);
                            worked = true;
                        }
                        None => break,
                    }
                }
            }
            let mut done = 0;
            while done < ASSIST_OBJECTS {
                let Some(h) = pop_grey(&mut tracer) else {
                    break;
                };
                let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    scan(h, &mut tracer, &mut |h| MARK.grey.push(h as usize))
                }));
                if let Err(payload) = scanned {
                    // A `Trace` impl panicked: give the object and the
                    // work found so far back, so that no marked object
                    // stays unscanned (the collector meets the panic in
                    // turn and stops collecting).
                    MARK.grey.push(h as usize);
                    for h in tracer.stack.drain(..) {
                        MARK.grey.push(h as usize);
                    }
                    std::panic::resume_unwind(payload);
                }
                done += 1;
                worked = true;
            }
            for h in tracer.stack.drain(..) {
                MARK.grey.push(h as usize);
            }
        }
        drop(region);
        worked
    })
}
