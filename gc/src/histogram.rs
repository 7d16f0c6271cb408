//! The pause histogram: stop-the-world pause lengths, bucketed
//! logarithmically. A leaf: the collector records into it, `stats()`
//! shows copies of it.

/// Buckets per power of two in the pause histogram.
const SUB_BUCKETS: u32 = 4;
/// Number of histogram buckets (covers up to 2^40 ns).
const BUCKETS: usize = 41 * SUB_BUCKETS as usize;

/// Stop-the-world pause lengths, bucketed logarithmically (four buckets
/// per power of two, so a percentile is exact to within 19%).
///
/// ```
/// let h = fibra::gc::stats().pause_histogram;
/// assert_eq!(h.count(), fibra::gc::stats().pauses);
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
    /// assert!(fibra::gc::stats().pause_histogram.count() >= 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The pause length (ns, upper bound of its bucket) below which a
    /// fraction `q` (0.0..=1.0) of pauses fall; 0 without pauses.
    ///
    /// ```
    /// fibra::gc::collect();
    /// let p99 = fibra::gc::stats().pause_histogram.quantile(0.99);
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
        assert!(h.quantile(1.0) >= 100_000);
    }
}
