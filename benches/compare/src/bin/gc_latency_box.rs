//! gc-latency with `Box` and malloc: the no-GC reference.
use std::time::{Duration, Instant};

use fibra_compare::{report, Args};

fn main() {
    let args = Args::parse();
    let window = args.usize("window", 200_000);
    let n = args.usize("n", 1_000_000);
    let mut store: Vec<Option<Box<[u8; 1024]>>> = (0..window).map(|_| None).collect();
    let mut worst = Duration::ZERO;
    for i in 0..n {
        let t = Instant::now();
        store[i % window] = Some(Box::new([i as u8; 1024]));
        worst = worst.max(t.elapsed());
    }
    report(
        "gc_latency",
        "rust-box",
        "worst_push",
        worst.as_secs_f64() * 1e3,
        "ms",
    );
}
