//! spawn + join of many coroutines that finish at once (may, from a coroutine).
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

fn round(n: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..n).map(|_| may::go!(|| ())).collect();
    for h in handles {
        h.join().unwrap();
    }
    ns_per(start.elapsed(), n)
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 1_000_000);
    may::config().set_workers(workers(&args));
    let ns = may::go!(move || {
        round(n / 10);
        round(n)
    })
    .join()
    .unwrap();
    report("spawn_join", "may", "time", ns, "ns/task");
}
