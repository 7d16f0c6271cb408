//! Two green threads on one worker yielding to each other (fibra).
use std::time::Instant;

use fibra_compare::{ns_per, report, Args};

fn round(n: usize) -> f64 {
    let start = Instant::now();
    let other = fibra::spawn(move || {
        for _ in 0..n {
            fibra::yield_now();
        }
    });
    for _ in 0..n {
        fibra::yield_now();
    }
    other.join().unwrap();
    ns_per(start.elapsed(), 2 * n)
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 2_000_000);
    let rt = fibra::Runtime::builder().workers(1).build().unwrap();
    let ns = rt.run(|| {
        round(n / 10);
        round(n)
    });
    report("yield", "fibra", "time", ns, "ns/yield");
}
