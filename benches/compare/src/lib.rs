//! Helpers shared by the comparison programs: argument parsing, the result
//! line, memory readings, percentiles, and a small wake-all gate.
//!
//! Every program prints one or more lines of the form
//!
//! ```text
//! RESULT name=spawn_join runtime=fibra metric=time value=123.4 unit=ns/task
//! ```
//!
//! which `benches/compare.sh` collects. Parameters come as `-key=value`
//! (or `--key=value`) arguments, the same spelling Go's `flag` package
//! accepts, so the script passes identical arguments to every runtime.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The `-key=value` arguments of this process.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `std::env::args()`; panics on an argument of another form.
    pub fn parse() -> Args {
        let mut values = HashMap::new();
        for arg in std::env::args().skip(1) {
            let body = arg.trim_start_matches('-');
            let (k, v) = body
                .split_once('=')
                .unwrap_or_else(|| panic!("argument {arg:?}: expected -key=value"));
            values.insert(k.to_string(), v.to_string());
        }
        Args { values }
    }

    /// An integer argument, or `default`.
    pub fn usize(&self, key: &str, default: usize) -> usize {
        self.values
            .get(key)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("-{key}={v}: not an integer"))
            })
            .unwrap_or(default)
    }

    /// A string argument, or `default`.
    pub fn str(&self, key: &str, default: &str) -> String {
        self.values
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }
}

/// Prints one result line (and flushes, so a killed server still reports).
pub fn report(name: &str, runtime: &str, metric: &str, value: f64, unit: &str) {
    use std::io::Write;
    println!("RESULT name={name} runtime={runtime} metric={metric} value={value:.3} unit={unit}");
    std::io::stdout().flush().ok();
}

/// Nanoseconds per operation.
pub fn ns_per(elapsed: Duration, ops: usize) -> f64 {
    elapsed.as_nanos() as f64 / ops as f64
}

/// One field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`, ...).
pub fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kb: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .expect("a kB figure");
            return kb * 1024;
        }
    }
    panic!("no {field} in /proc/self/status")
}

/// Resident set size now, in bytes.
pub fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS")
}

/// Peak resident set size so far, in bytes.
pub fn peak_rss_bytes() -> u64 {
    proc_status_bytes("VmHWM")
}

/// The `q`-quantile (0..=1) of `sorted` (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of nothing");
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A one-shot gate that many tasks wait on and one call opens: a future,
/// so fibra green threads (`block_on`), tokio tasks and plain threads can
/// all park on it the same way.
#[derive(Debug, Default)]
pub struct Gate {
    open: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Opens the gate and wakes every waiter.
    pub fn open(&self) {
        self.open.store(true, Ordering::Release);
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap());
        for w in waiters {
            w.wake();
        }
    }

    /// A future that is ready once the gate is open.
    pub fn wait(&self) -> GateWait<'_> {
        GateWait {
            gate: self,
            registered: false,
        }
    }
}

/// Future returned by [`Gate::wait`].
#[derive(Debug)]
pub struct GateWait<'a> {
    gate: &'a Gate,
    registered: bool,
}

impl Future for GateWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.gate.open.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if !self.registered {
            self.gate.waiters.lock().unwrap().push(cx.waker().clone());
            self.registered = true;
            // Re-check: `open` may have drained the list before our push.
            if self.gate.open.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

/// The thread count the peers are given: `-workers=N`, else the CPUs.
pub fn workers(args: &Args) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    args.usize("workers", cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.5), 7.0);
    }

    #[test]
    fn rss_is_read() {
        assert!(rss_bytes() > 0);
        assert!(peak_rss_bytes() >= rss_bytes() / 2);
    }
}
