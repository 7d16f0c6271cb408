//! Two coroutines on one worker yielding to each other (may).
use std::time::Instant;

use fibra_compare::{ns_per, report, Args};

fn round(n: usize) -> f64 {
    let start = Instant::now();
    let other = may::go!(move || {
        for _ in 0..n {
            may::coroutine::yield_now();
        }
    });
    for _ in 0..n {
        may::coroutine::yield_now();
    }
    other.join().unwrap();
    ns_per(start.elapsed(), 2 * n)
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 2_000_000);
    may::config().set_workers(1);
    let ns = may::go!(move || {
        round(n / 10);
        round(n)
    })
    .join()
    .unwrap();
    report("yield", "may", "time", ns, "ns/yield");
}
