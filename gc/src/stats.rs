//! `stats()`: a snapshot of the collector's counters and the heap's sizes.

use std::sync::atomic::Ordering;

use crate::collector;
use crate::heap::HEAP;
use crate::histogram::PauseHistogram;

/// A snapshot of the collector's counters.
///
/// ```
/// let s = fibra::gc::stats();
/// assert!(s.pause_max_ns >= s.pause_total_ns / s.pauses.max(1));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct GcStats {
    /// Completed collection cycles.
    pub cycles: u64,
    /// Bytes in spans (the heap's footprint, excluding metadata).
    pub heap_bytes: u64,
    /// Bytes of objects found live by the last cycle.
    pub live_bytes: u64,
    /// Stop-the-world pauses.
    pub pauses: u64,
    /// Sum of all pause lengths (ns).
    pub pause_total_ns: u64,
    /// Longest pause (ns).
    pub pause_max_ns: u64,
    /// Longest time to stop the world, part of a pause (ns). The same
    /// figure as `time_to_safepoint_max_ns`.
    pub stopping_max_ns: u64,
    /// Sum over all pauses of the time to safepoint: from the request to
    /// stop until the last worker stopped (ns). Part of `pause_total_ns`.
    ///
    /// ```
    /// fibra::gc::collect();
    /// let s = fibra::gc::stats();
    /// assert!(s.time_to_safepoint_total_ns <= s.pause_total_ns);
    /// assert_eq!(
    ///     s.time_to_safepoint_total_ns + s.pause_work_total_ns,
    ///     s.pause_total_ns
    /// );
    /// ```
    pub time_to_safepoint_total_ns: u64,
    /// Longest time to safepoint of one pause (ns).
    pub time_to_safepoint_max_ns: u64,
    /// Sum over all pauses of the work done with the world stopped, i.e.
    /// the pause minus its time to safepoint (ns).
    pub pause_work_total_ns: u64,
    /// Longest work of one pause with the world stopped (ns).
    pub pause_work_max_ns: u64,
    /// Distribution of pause lengths.
    pub pause_histogram: PauseHistogram,
    /// Distribution of the time each pause spent stopping the world (the
    /// wait for every worker to reach a safepoint; part of the pause). One
    /// entry per pause, so `stopping_histogram.count() == pauses`.
    ///
    /// ```
    /// fibra::gc::collect();
    /// let s = fibra::gc::stats();
    /// assert_eq!(s.stopping_histogram.count(), s.pauses);
    /// assert_eq!(s.stopping_histogram.quantile(1.0), s.stopping_max_ns);
    /// ```
    pub stopping_histogram: PauseHistogram,
    /// Distribution of the work each pause did with the world stopped
    /// (the pause minus its time to safepoint). One entry per pause.
    ///
    /// ```
    /// fibra::gc::collect();
    /// let s = fibra::gc::stats();
    /// assert_eq!(s.pause_work_histogram.count(), s.pauses);
    /// assert_eq!(s.pause_work_histogram.max(), s.pause_work_max_ns);
    /// ```
    pub pause_work_histogram: PauseHistogram,
    /// Heap size that starts the next cycle (bytes; 0 when collection is off).
    pub goal_bytes: u64,
    /// Objects freed by sweeping, ever.
    pub freed_objects: u64,
    /// Fraction of `heap_bytes` not holding live objects after the last
    /// cycle (free slots, partly used spans, rounding).
    pub fragmentation: f64,
}

/// The collector's counters now.
///
/// ```
/// let before = fibra::gc::stats().cycles;
/// fibra::gc::collect();
/// assert!(fibra::gc::stats().cycles > before);
/// ```
pub fn stats() -> GcStats {
    let c = collector::counters();
    let fragmentation = if c.heap_after_sweep > 0 {
        1.0 - c.live_bytes as f64 / c.heap_after_sweep as f64
    } else {
        0.0
    };
    GcStats {
        cycles: c.cycles,
        heap_bytes: HEAP.heap_bytes.load(Ordering::Relaxed),
        live_bytes: c.live_bytes,
        pauses: c.pauses,
        pause_total_ns: c.pause_total_ns,
        pause_max_ns: c.pause_max_ns,
        stopping_max_ns: c.stopping_max_ns,
        time_to_safepoint_total_ns: c.stopping_total_ns,
        time_to_safepoint_max_ns: c.stopping_max_ns,
        pause_work_total_ns: c.pause_total_ns - c.stopping_total_ns,
        pause_work_max_ns: c.work_max_ns,
        pause_histogram: c.histogram.clone().unwrap_or_default(),
        stopping_histogram: c.stopping_histogram.clone().unwrap_or_default(),
        pause_work_histogram: c.work_histogram.clone().unwrap_or_default(),
        goal_bytes: c.goal_bytes,
        freed_objects: HEAP.freed_objects.load(Ordering::Relaxed),
        fragmentation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pause_lands_in_both_histograms() {
        crate::collect();
        let s = stats();
        assert!(s.pauses >= 2, "a cycle has two pauses: {}", s.pauses);
        assert_eq!(s.pause_histogram.count(), s.pauses);
        assert_eq!(s.stopping_histogram.count(), s.pauses);
        assert_eq!(s.pause_work_histogram.count(), s.pauses);
        // Stopping is part of the pause.
        assert_eq!(s.stopping_histogram.quantile(1.0), s.stopping_max_ns);
        assert!(s.stopping_max_ns <= s.pause_max_ns);
        assert!(s.stopping_histogram.quantile(0.5) <= s.pause_histogram.quantile(1.0));
    }

    #[test]
    fn time_to_safepoint_and_work_add_up_to_the_pauses() {
        crate::collect();
        let s = stats();
        assert!(s.pauses >= 2);
        assert!(s.time_to_safepoint_total_ns <= s.pause_total_ns);
        assert_eq!(
            s.time_to_safepoint_total_ns + s.pause_work_total_ns,
            s.pause_total_ns
        );
        assert_eq!(s.time_to_safepoint_max_ns, s.stopping_max_ns);
        assert!(s.time_to_safepoint_max_ns <= s.pause_max_ns);
        assert!(s.pause_work_max_ns <= s.pause_max_ns);
        assert!(s.pause_work_max_ns <= s.pause_work_total_ns);
        assert!(s.time_to_safepoint_max_ns <= s.time_to_safepoint_total_ns);
        assert!(s.pause_work_total_ns > 0, "a pause flips the phase word");
        assert_eq!(s.pause_work_histogram.max(), s.pause_work_max_ns);
        assert_eq!(s.stopping_histogram.max(), s.time_to_safepoint_max_ns);
    }
}
