//! Resident memory per parked coroutine, with 100k coroutines waiting on a
//! flag (may, default stack size).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fibra_compare::{report, rss_bytes, workers, Args};

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 100_000);
    may::config().set_workers(workers(&args));
    let per_task = may::go!(move || {
        let gate = Arc::new(may::sync::SyncFlag::new());
        let parked = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let before = rss_bytes();
        for _ in 0..n {
            let (gate, parked, done) = (gate.clone(), parked.clone(), done.clone());
            drop(may::go!(move || {
                parked.fetch_add(1, Ordering::Relaxed);
                gate.wait();
                done.fetch_add(1, Ordering::Relaxed);
            }));
        }
        while parked.load(Ordering::Relaxed) < n {
            may::coroutine::yield_now();
        }
        let after = rss_bytes();
        gate.fire();
        while done.load(Ordering::Relaxed) < n {
            may::coroutine::yield_now();
        }
        (after.saturating_sub(before)) as f64 / n as f64
    })
    .join()
    .unwrap();
    report("parked_memory", "may", "rss", per_task, "B/task");
}
