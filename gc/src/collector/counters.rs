//! The collector's own counters: cycles, the last cycle's result, pauses
//! (heap sizes are read from the heap). `stats()` and `fibra::stats()`
//! show them.

use std::sync::atomic::Ordering;

use parking_lot::MutexGuard;

use super::COLLECTOR;
use crate::heap::HEAP;
use crate::histogram::PauseHistogram;

/// The collector's counters (`Collector::counters`).
pub(crate) struct Counters {
    /// Completed cycles.
    pub(crate) cycles: u64,
    /// Bytes found live by the last cycle.
    pub(crate) live_bytes: u64,
    /// Bytes in spans after the last cycle's sweep.
    pub(crate) heap_after_sweep: u64,
    /// Stop-the-world pauses.
    pub(crate) pauses: u64,
    /// Sum of pause lengths (ns).
    pub(crate) pause_total_ns: u64,
    /// Longest pause (ns).
    pub(crate) pause_max_ns: u64,
    /// Longest time to stop the world (ns).
    pub(crate) stopping_max_ns: u64,
    /// Sum of the times to stop the world (ns; part of `pause_total_ns`).
    pub(crate) stopping_total_ns: u64,
    /// Longest work of a pause with the world stopped (ns).
    pub(crate) work_max_ns: u64,
    /// Pause lengths (made on the first pause).
    pub(crate) histogram: Option<PauseHistogram>,
    /// Times to stop the world (made on the first pause).
    pub(crate) stopping_histogram: Option<PauseHistogram>,
    /// Work with the world stopped (made on the first pause).
    pub(crate) work_histogram: Option<PauseHistogram>,
    /// The next cycle's heap goal (0 when collection is off).
    pub(crate) goal_bytes: u64,
}

impl Counters {
    pub(super) const fn new() -> Counters {
        Counters {
            cycles: 0,
            live_bytes: 0,
            heap_after_sweep: 0,
            pauses: 0,
            pause_total_ns: 0,
            pause_max_ns: 0,
            stopping_max_ns: 0,
            stopping_total_ns: 0,
            work_max_ns: 0,
            histogram: None,
            stopping_histogram: None,
            work_histogram: None,
            goal_bytes: 0,
        }
    }
}

/// The counters, locked.
pub(crate) fn counters() -> MutexGuard<'static, Counters> {
    COLLECTOR.counters.lock()
}

/// Records one pause of `ns`, of which `stopping_ns` were spent reaching
/// the safepoint (at most `ns`) and the rest is `work_ns`.
pub(super) fn record_pause(ns: u64, stopping_ns: u64) {
    let stopping_ns = stopping_ns.min(ns);
    let work_ns = ns - stopping_ns;
    let mut c = COLLECTOR.counters.lock();
    c.pauses += 1;
    c.pause_total_ns += ns;
    c.pause_max_ns = c.pause_max_ns.max(ns);
    c.stopping_max_ns = c.stopping_max_ns.max(stopping_ns);
    c.stopping_total_ns += stopping_ns;
    c.work_max_ns = c.work_max_ns.max(work_ns);
    c.work_histogram
        .get_or_insert_with(PauseHistogram::default)
        .record(work_ns);
    c.histogram
        .get_or_insert_with(PauseHistogram::default)
        .record(ns);
    c.stopping_histogram
        .get_or_insert_with(PauseHistogram::default)
        .record(stopping_ns);
}

/// The figures `fibra::stats()` shows (see [`fibra::GcSummary`]).
pub(super) fn summary() -> fibra_runtime::GcSummary {
    let c = COLLECTOR.counters.lock();
    let mut out = fibra_runtime::GcSummary::default();
    out.cycles = c.cycles;
    out.heap_bytes = HEAP.heap_bytes.load(Ordering::Relaxed);
    out.live_bytes = c.live_bytes;
    out.pauses = c.pauses;
    out.pause_total_ns = c.pause_total_ns;
    out.pause_max_ns = c.pause_max_ns;
    out
}
