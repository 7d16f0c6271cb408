//! The pause histogram: stop-the-world pause lengths, bucketed
//! logarithmically. A leaf: the collector records into it, `stats()`
//! shows copies of it.

/// Buckets per power of two in the pause histogram.
const SUB_BUCKETS: u32 = 4;
/// Number of histogram buckets (covers up to 2^40 ns).
const BUCKETS: usize = 41 * SUB_BUCKETS as usize;

/// Stop-the-world pause lengths, bucketed logarithmically (four buckets
/// per power of two, so a percentile is exact to within 19%), and the
/// longest one recorded exactly.
///
/// ```
/// let h = fibra::gc::stats().pause_histogram;
/// assert_eq!(h.count(), fibra::gc::stats().pauses);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PauseHistogram {
    buckets: Vec<u64>,
    /// The largest value recorded (0 when empty).
    max: u64,
}

impl Default for PauseHistogram {
    fn default() -> PauseHistogram {
        PauseHistogram {
            buckets: vec![0; BUCKETS],
            max: 0,
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
        self.max = self.max.max(ns);
    }

    /// The largest value recorded (ns; 0 without pauses).
    ///
    /// ```
    /// fibra::gc::collect();
    /// let s = fibra::gc::stats();
    /// assert_eq!(s.pause_histogram.max(), s.pause_max_ns);
    /// ```
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Number of pauses recorded.
    ///
    /// ```
    /// assert!(fibra::gc::stats().pause_histogram.count() >= 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The `q`-quantile (0.0..=1.0, nearest rank) of the pause lengths in
    /// ns; 0 without pauses. It is the upper bound of the rank's bucket
    /// (at most 19% above the true value) but never more than the longest
    /// pause recorded, so quantiles never exceed the maximum and
    /// `quantile(1.0)` is the maximum.
    ///
    /// ```
    /// fibra::gc::collect();
    /// let h = fibra::gc::stats().pause_histogram;
    /// let (p50, p99) = (h.quantile(0.5), h.quantile(0.99));
    /// assert!(0 < p50 && p50 <= p99 && p99 <= h.max());
    /// assert_eq!(h.quantile(1.0), h.max());
    /// ```
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_limit(b).min(self.max);
            }
        }
        self.max
    }

    /// Non-empty buckets as `(upper bound ns, count)`.
    ///
    /// ```
    /// for (limit, n) in fibra::gc::stats().pause_histogram.buckets() {
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
    fn quantiles() {
        let mut h = PauseHistogram::default();
        for ns in 1..=100u64 {
            h.record(ns * 1000);
        }
        let p50 = h.quantile(0.5);
        assert!((50_000..=60_000).contains(&p50), "{p50}");
        assert_eq!(h.quantile(1.0), 100_000);
    }

    #[test]
    fn no_quantile_exceeds_the_maximum() {
        // 96.8 us lies in the bucket [81.92, 98.304) us: the bucket's
        // bound alone made p99 read 98.3 us with a maximum of 96.8 us.
        let mut h = PauseHistogram::default();
        for ns in [10_000, 20_000, 96_800] {
            h.record(ns);
        }
        assert_eq!(h.max(), 96_800);
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert!(h.quantile(q) <= 96_800, "q {q}: {}", h.quantile(q));
        }
        assert_eq!(h.quantile(0.99), 96_800);
        assert_eq!(h.quantile(1.0), 96_800);
    }

    #[test]
    fn quantiles_are_monotonic_and_bound_their_rank() {
        let mut h = PauseHistogram::default();
        let mut values: Vec<u64> = (1..=1000u64).map(|i| i * i * 37 % 1_000_003).collect();
        for &v in &values {
            h.record(v);
        }
        values.sort_unstable();
        let mut last = 0;
        for i in 0..=100 {
            let q = i as f64 / 100.0;
            let est = h.quantile(q);
            assert!(est >= last, "not monotonic at q {q}");
            last = est;
            // Nearest rank: the estimate is at least the true value and at
            // most 25% (a bucket's width) above it.
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            let exact = values[rank - 1];
            assert!(est >= exact, "q {q}: {est} < {exact}");
            assert!(est <= exact + exact / 4 + 1, "q {q}: {est} >> {exact}");
        }
    }

    #[test]
    fn an_empty_histogram_reads_zero() {
        let h = PauseHistogram::default();
        assert_eq!((h.quantile(0.5), h.quantile(1.0), h.max()), (0, 0, 0));
    }
}
