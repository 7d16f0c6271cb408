//! Resident memory per parked green thread, with 100k of them parked on a
//! gate (fibra; each has run, so each holds a stack).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fibra_compare::{report, rss_bytes, workers, Args, Gate};

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 100_000);
    let rt = fibra::Runtime::builder()
        .workers(workers(&args))
        .build()
        .unwrap();
    let per_task = rt.run(|| {
        let gate = Arc::new(Gate::new());
        let parked = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let before = rss_bytes();
        for _ in 0..n {
            let (gate, parked, done) = (gate.clone(), parked.clone(), done.clone());
            // Detached: the handle is dropped, completion is counted instead.
            drop(fibra::spawn(move || {
                parked.fetch_add(1, Ordering::Relaxed);
                fibra::block_on(gate.wait());
                done.fetch_add(1, Ordering::Relaxed);
            }));
        }
        while parked.load(Ordering::Relaxed) < n {
            fibra::yield_now();
        }
        let after = rss_bytes();
        gate.open();
        while done.load(Ordering::Relaxed) < n {
            fibra::yield_now();
        }
        (after.saturating_sub(before)) as f64 / n as f64
    });
    report("parked_memory", "fibra", "rss", per_task, "B/task");
}
