//! The pacer: when a cycle starts (the trigger), the heap goal a cycle
//! aims for, and the allocation hooks that check both (Go's pacing in
//! `gcController`).
//!
//! # Protocol
//!
//! Every allocation slow path (a cache refill, a large object) calls
//! `pace`: when the heap (live bytes after the last cycle plus bytes
//! allocated since) reaches `Pacer::trigger` and no cycle is pending, it
//! requests one (see `cycle`); while marking, an allocation past the goal
//! assists, and past the hard goal it stalls for a bounded time (see
//! `assist`). After each cycle the collector sets the next goal and
//! trigger (`Pacer::set_next`): the trigger lies 7/8 of the way from the
//! live heap to the goal, so marking ends near the goal.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::assist::{assist, hard_goal, stall_for_mark};
use super::cycle::request;
use super::{configure_for_allocation, COLLECTOR};
use crate::config::{config, MIN_HEAP_GOAL};
use crate::heap::class::SpanClass;
use crate::heap::{self, HEAP};
use crate::mutator::{self, cache, ThreadHeap};

/// The pacer's state. Atomics: `pace` reads them on every allocation slow
/// path without a lock. The heap's size is the live bytes after the last
/// cycle plus the bytes allocated since (`Heap::allocated`); `u64::MAX` in
/// `trigger` or `goal` means automatic collection is off.
pub(super) struct Pacer {
    /// Heap size that starts the next cycle.
    pub(super) trigger: AtomicU64,
    /// The heap goal of the running cycle (assists start above it).
    pub(super) goal: AtomicU64,
    /// Live bytes after the last cycle.
    pub(super) live: AtomicU64,
    /// Set while a cycle is requested or running (the pacer's fast check).
    pub(super) cycle_pending: AtomicBool,
}

impl Pacer {
    pub(super) const fn new() -> Pacer {
        Pacer {
            trigger: AtomicU64::new(MIN_HEAP_GOAL),
            goal: AtomicU64::new(MIN_HEAP_GOAL),
            live: AtomicU64::new(0),
            cycle_pending: AtomicBool::new(false),
        }
    }

    /// Records a cycle's result: `live` bytes survived, the next goal is
    /// `goal` (from `next_goal`).
    pub(super) fn set_next(&self, live: u64, goal: u64) {
        self.live.store(live, Ordering::Relaxed);
        self.goal.store(goal, Ordering::Relaxed);
        // Start the next cycle early enough for marking to end near the goal.
        let trigger = if goal == u64::MAX {
            u64::MAX
        } else {
            live + (goal - live) * 7 / 8
        };
        self.trigger.store(trigger, Ordering::Relaxed);
    }
}

/// Called after each small allocation, outside the region.
#[inline]
pub(crate) fn after_alloc(thread: &ThreadHeap) {
    if COLLECTOR.torture.load(Ordering::Relaxed) {
        torture_tick(thread);
    }
}

#[cold]
pub(super) fn torture_tick(thread: &ThreadHeap) {
    let n = thread.torture_count.get() + 1;
    thread.torture_count.set(n);
    let every = config().torture.unwrap_or(u64::MAX);
    if n.is_multiple_of(every) {
        let mut control = COLLECTOR.control.lock();
        if control.requested <= control.started {
            let n = control.started + 1;
            request(&mut control, n);
        }
    }
}

/// The allocation slow path (outside any region): safepoint, pacing,
/// assists, then a cache refill.
#[cold]
pub(crate) fn alloc_slow(thread: &ThreadHeap, sc: SpanClass) {
    configure_for_allocation();
    // Never stop at a safepoint while holding a cell: another worker could
    // be blocked on that cell's lock, and the world would never stop.
    if !mutator::holding_cell() {
        fibra_runtime::gc_seam::poll();
    }
    pace();
    // Outside any region, and `Gc::new` holds no borrow of the cache
    // across this call (see `refill`).
    cache::refill(thread, sc);
}

/// Called before a large object takes its own span (outside any region):
/// the same safepoint poll and pacing as `alloc_slow`, with the object's
/// pages counted first, so large objects start cycles, assist and stall
/// like small ones.
#[cold]
pub(crate) fn before_large_alloc(size: usize) {
    configure_for_allocation();
    if !mutator::holding_cell() {
        fibra_runtime::gc_seam::poll();
    }
    HEAP.allocated
        .fetch_add(heap::large_bytes(size) as u64, Ordering::Relaxed);
    pace();
}

/// Starts a cycle when the heap reaches the trigger; helps marking when
/// it has outgrown the goal during a cycle.
pub(super) fn pace() {
    let heap_now =
        COLLECTOR.pacer.live.load(Ordering::Relaxed) + HEAP.allocated.load(Ordering::Relaxed);
    if heap_now >= COLLECTOR.pacer.trigger.load(Ordering::Relaxed)
        && !COLLECTOR.pacer.cycle_pending.load(Ordering::Acquire)
    {
        let mut control = COLLECTOR.control.lock();
        if control.requested <= control.started && control.completed == control.started {
            let n = control.started + 1;
            request(&mut control, n);
        }
    }
    let goal = COLLECTOR.pacer.goal.load(Ordering::Relaxed);
    if mutator::epoch().marking() && heap_now > goal {
        let _ = assist();
        if heap_now > hard_goal(goal) {
            stall_for_mark(goal);
        }
    } else if heap_now > hard_goal(goal) && COLLECTOR.pacer.cycle_pending.load(Ordering::Acquire) {
        // Past the hard goal with a cycle requested that has not begun
        // marking (its thread is slow to get a CPU): wait for it, bounded,
        // rather than grow.
        stall_for_mark(goal);
    }
}

/// The heap goal after a cycle that found `live` bytes live:
/// `FIBRA_GC_PERCENT` over `live` (at least `MIN_HEAP_GOAL`), lowered to
/// stay under `FIBRA_GC_MEMORY_LIMIT`; `u64::MAX` when automatic
/// collection is off.
pub(super) fn next_goal(live: u64) -> u64 {
    let mut goal = match config().percent {
        Some(p) => (live + live * p / 100).max(MIN_HEAP_GOAL),
        None => u64::MAX,
    };
    if let Some(limit) = config().memory_limit {
        // A soft limit: aim below it, but never below the live heap plus a
        // margin (collecting without freeing anything would only burn CPU).
        goal = goal.min(limit.max(live + live / 16 + (1 << 20)));
    }
    goal
}
