//! Collector statistics and the pause histogram.

use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use crate::heap;

/// Buckets per power of two in the pause histogram.
const SUB_BUCKETS: u32 = 4;
/// Number of histogram buckets (covers up to 2^40 ns).
const BUCKETS: usize = 41 * SUB_BUCKETS as usize;

/// Stop-the-world pause lengths, bucketed logarithmically (four buckets
/// per power of two, so a percentile is exact to within 19%).
///
/// ```
/// let h = fibra_gc::stats().pause_histogram;
/// assert_eq!(h.count(), fibra_gc::stats().pauses);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PauseHistogram {
    buckets: Vec<u64>,
}

impl Default for PauseHistogram {
    fn default() -> PauseHistogram {
        PauseHistogram {
            buckets: vec![0; BUCKETS],
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < 4 {
        return ns as usize;
    }
    let octave = 63 - ns.leading_zeros();
    let sub = (ns >> (octave - 2)) & 3;
    ((octave - 1) * SUB_BUCKETS + sub as u32).min(BUCKETS as u32 - 1) as usize
}

/// Upper bound (exclusive) of bucket `b` in nanoseconds.
fn bucket_limit(b: usize) -> u64 {
    if b < 4 {
        return b as u64 + 1;
    }
    let octave = b as u32 / SUB_BUCKETS + 1;
    let sub = b as u64 % SUB_BUCKETS as u64;
    (4 + sub + 1) << (octave - 2)
}

impl PauseHistogram {
    pub(crate) fn record(&mut self, ns: u64) {
        self.buckets[bucket_of(ns)] += 1;
    }

    /// Number of pauses recorded.
    ///
    /// ```
    /// assert!(fibra_gc::stats().pause_histogram.count() >= 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The pause length (ns, upper bound of its bucket) below which a
    /// fraction `q` (0.0..=1.0) of pauses fall; 0 without pauses.
    ///
    /// ```
    /// fibra_gc::collect();
    /// let p99 = fibra_gc::stats().pause_histogram.quantile(0.99);
    /// assert!(p99 > 0);
    /// ```
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_limit(b);
            }
        }
        bucket_limit(BUCKETS - 1)
    }

    /// Non-empty buckets as `(upper bound ns, count)`.
    ///
    /// ```
    /// for (limit, n) in fibra_gc::stats().pause_histogram.buckets() {
    ///     assert!(limit > 0 && n > 0);
    /// }
    /// ```
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(b, &n)| (bucket_limit(b), n))
            .collect()
    }
}

/// A snapshot of the collector's counters.
///
/// ```
/// let s = fibra_gc::stats();
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
    /// Longest time to stop the world, part of a pause (ns).
    pub stopping_max_ns: u64,
    /// Distribution of pause lengths.
    pub pause_histogram: PauseHistogram,
    /// Distribution of the time each pause spent stopping the world (the
    /// wait for every worker to reach a safepoint; part of the pause). One
    /// entry per pause, so `stopping_histogram.count() == pauses`.
    ///
    /// ```
    /// fibra_gc::collect();
    /// let s = fibra_gc::stats();
    /// assert_eq!(s.stopping_histogram.count(), s.pauses);
    /// // Bucket bounds are exclusive upper limits: the top one covers the max.
    /// assert!(s.stopping_histogram.quantile(1.0) > s.stopping_max_ns);
    /// ```
    pub stopping_histogram: PauseHistogram,
    /// Heap size that starts the next cycle (bytes; 0 when collection is off).
    pub goal_bytes: u64,
    /// Objects freed by sweeping, ever.
    pub freed_objects: u64,
    /// Fraction of `heap_bytes` not holding live objects after the last
    /// cycle (free slots, partly used spans, rounding).
    pub fragmentation: f64,
}

/// The collector's own counters (heap sizes are read from the allocator).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) cycles: u64,
    pub(crate) live_bytes: u64,
    pub(crate) heap_after_sweep: u64,
    pub(crate) pauses: u64,
    pub(crate) pause_total_ns: u64,
    pub(crate) pause_max_ns: u64,
    pub(crate) stopping_max_ns: u64,
    pub(crate) histogram: Option<PauseHistogram>,
    pub(crate) stopping_histogram: Option<PauseHistogram>,
    pub(crate) goal_bytes: u64,
}

pub(crate) static COUNTERS: Mutex<Counters> = Mutex::new(Counters {
    cycles: 0,
    live_bytes: 0,
    heap_after_sweep: 0,
    pauses: 0,
    pause_total_ns: 0,
    pause_max_ns: 0,
    stopping_max_ns: 0,
    histogram: None,
    stopping_histogram: None,
    goal_bytes: 0,
});

/// Records one pause.
pub(crate) fn record_pause(ns: u64, stopping_ns: u64) {
    let mut c = COUNTERS.lock();
    c.pauses += 1;
    c.pause_total_ns += ns;
    c.pause_max_ns = c.pause_max_ns.max(ns);
    c.stopping_max_ns = c.stopping_max_ns.max(stopping_ns);
    c.histogram
        .get_or_insert_with(PauseHistogram::default)
        .record(ns);
    c.stopping_histogram
        .get_or_insert_with(PauseHistogram::default)
        .record(stopping_ns);
}

/// The collector's counters now.
///
/// ```
/// let before = fibra_gc::stats().cycles;
/// fibra_gc::collect();
/// assert!(fibra_gc::stats().cycles > before);
/// ```
pub fn stats() -> GcStats {
    let c = COUNTERS.lock();
    let fragmentation = if c.heap_after_sweep > 0 {
        1.0 - c.live_bytes as f64 / c.heap_after_sweep as f64
    } else {
        0.0
    };
    GcStats {
        cycles: c.cycles,
        heap_bytes: heap::HEAP_BYTES.load(Ordering::Relaxed),
        live_bytes: c.live_bytes,
        pauses: c.pauses,
        pause_total_ns: c.pause_total_ns,
        pause_max_ns: c.pause_max_ns,
        stopping_max_ns: c.stopping_max_ns,
        pause_histogram: c.histogram.clone().unwrap_or_default(),
        stopping_histogram: c.stopping_histogram.clone().unwrap_or_default(),
        goal_bytes: c.goal_bytes,
        freed_objects: heap::FREED_OBJECTS.load(Ordering::Relaxed),
        fragmentation,
    }
}

/// The figures `fibra::stats()` shows (see [`fibra_runtime::GcSummary`]).
pub(crate) fn summary() -> fibra_runtime::GcSummary {
    let s = stats();
    let mut out = fibra_runtime::GcSummary::default();
    out.cycles = s.cycles;
    out.heap_bytes = s.heap_bytes;
    out.live_bytes = s.live_bytes;
    out.pauses = s.pauses;
    out.pause_total_ns = s.pause_total_ns;
    out.pause_max_ns = s.pause_max_ns;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values() {
        for ns in [0u64, 1, 3, 4, 5, 7, 8, 100, 1_000, 12_345, 999_999, 1 << 30] {
            let b = bucket_of(ns);
            assert!(
                ns < bucket_limit(b),
                "{ns} in bucket {b} < {}",
                bucket_limit(b)
            );
            if b > 0 {
                assert!(ns >= bucket_limit(b - 1), "{ns} below bucket {b}");
            }
        }
    }

    #[test]
    fn every_pause_lands_in_both_histograms() {
        crate::collect();
        let s = stats();
        assert!(s.pauses >= 2, "a cycle has two pauses: {}", s.pauses);
        assert_eq!(s.pause_histogram.count(), s.pauses);
        assert_eq!(s.stopping_histogram.count(), s.pauses);
        // Stopping is part of the pause, and bucket limits are exclusive.
        assert!(s.stopping_histogram.quantile(1.0) > s.stopping_max_ns);
        assert!(s.stopping_max_ns <= s.pause_max_ns);
        assert!(s.stopping_histogram.quantile(0.5) <= s.pause_histogram.quantile(1.0));
    }

    #[test]
    fn quantiles() {
        let mut h = PauseHistogram::default();
        for ns in 1..=100u64 {
            h.record(ns * 1000);
        }
        let p50 = h.quantile(0.5);
        assert!((50_000..=60_000).contains(&p50), "{p50}");
        assert!(h.quantile(1.0) >= 100_000);
    }
}
