//! spawn + join of many green threads that finish at once (fibra).
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

fn round(n: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..n).map(|_| fibra::spawn(|| ())).collect();
    for h in handles {
        h.join().unwrap();
    }
    ns_per(start.elapsed(), n)
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 1_000_000);
    let rt = fibra::Runtime::builder()
        .workers(workers(&args))
        .build()
        .unwrap();
    let ns = rt.run(|| {
        round(n / 10); // warm-up: stack pools, queues, allocator
        round(n)
    });
    report("spawn_join", "fibra", "time", ns, "ns/task");
}
