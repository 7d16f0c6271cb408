//! gc-latency: a window of 200k 1 KiB messages, 1M pushes; the worst time
//! of one push (fibra's GC heap).
use std::time::{Duration, Instant};

use fibra::gc::Gc;
use fibra_compare::{report, Args};

fn main() {
    let args = Args::parse();
    let window = args.usize("window", 200_000);
    let n = args.usize("n", 1_000_000);
    let worst = fibra::run(move || {
        let mut store: Vec<Option<Gc<[u8; 1024]>>> = (0..window).map(|_| None).collect();
        // Every push is timed, the first included: the runtime's start set
        // the heap up (as Go's is before main runs).
        let mut worst = Duration::ZERO;
        for i in 0..n {
            let t = Instant::now();
            store[i % window] = Some(Gc::new([i as u8; 1024]));
            worst = worst.max(t.elapsed());
        }
        worst
    });
    report(
        "gc_latency",
        "fibra",
        "worst_push",
        worst.as_secs_f64() * 1e3,
        "ms",
    );
}
