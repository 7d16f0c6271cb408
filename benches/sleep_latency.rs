//! Timer wake latency: how late `sleep(1ms)` returns, measured by a probe
//! green thread while 10,000 other green threads sleep, in two settings:
//!
//! - *parked*: the 10,000 sleep for long stretches (0.5..1.5 s, spread so
//!   that about 10,000 wake per second), so they mostly sit in the timer
//!   heaps;
//! - *churning*: the 10,000 sleep random 1..=100 ms in a loop (about
//!   200,000 wake-ups per second besides the probe).
//!
//! ```text
//! cargo bench --bench sleep_latency
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SLEEPERS: usize = 10_000;
const PROBES: usize = 2_000;

/// `cargo test --benches` runs this without `--bench`: a short smoke run.
fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn run(label: &str, sleep_of: fn(usize, u64) -> Duration) {
    let (sleepers_n, probes_n) = if smoke() {
        (500, 20)
    } else {
        (SLEEPERS, PROBES)
    };
    let rt = fibra::Runtime::new().unwrap();
    let mut samples = rt.run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let sleepers: Vec<_> = (0..sleepers_n)
            .map(|i| {
                let stop = stop.clone();
                fibra::spawn(move || {
                    let mut k = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        fibra::time::sleep(sleep_of(i, k));
                        k += 1;
                    }
                })
            })
            .collect();
        // Let them all start and settle.
        fibra::time::sleep(Duration::from_millis(200));
        let probe = fibra::spawn(move || {
            let mut late = Vec::with_capacity(probes_n);
            for _ in 0..probes_n {
                let start = Instant::now();
                fibra::time::sleep(Duration::from_millis(1));
                late.push(start.elapsed());
            }
            late
        });
        let late = probe.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        for s in sleepers {
            s.join().unwrap();
        }
        late
    });
    samples.sort();
    println!(
        "{label:<9} sleep(1ms) returned after: p50 {:>8.3?}  p99 {:>8.3?}  p99.9 {:>8.3?}  max {:>8.3?}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        percentile(&samples, 0.999),
        samples[samples.len() - 1],
    );
}

fn main() {
    println!("{SLEEPERS} sleeping green threads beside one probe, {PROBES} probes each");
    run("parked", |i, _| {
        Duration::from_millis(500 + (i % 1000) as u64)
    });
    run("churning", |i, k| {
        let x =
            (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        Duration::from_millis(1 + (x >> 33) % 100)
    });
}
