//! Resident memory per parked task, with 100k tasks waiting on a gate (tokio).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fibra_compare::{report, rss_bytes, workers, Args, Gate};

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers(&args))
        .build()
        .unwrap();
    let per_task = rt.block_on(async move {
        tokio::spawn(async move {
            let gate = Arc::new(Gate::new());
            let parked = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicUsize::new(0));
            let before = rss_bytes();
            for _ in 0..n {
                let (gate, parked, done) = (gate.clone(), parked.clone(), done.clone());
                drop(tokio::spawn(async move {
                    parked.fetch_add(1, Ordering::Relaxed);
                    gate.wait().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }));
            }
            while parked.load(Ordering::Relaxed) < n {
                tokio::task::yield_now().await;
            }
            let after = rss_bytes();
            gate.open();
            while done.load(Ordering::Relaxed) < n {
                tokio::task::yield_now().await;
            }
            (after.saturating_sub(before)) as f64 / n as f64
        })
        .await
        .unwrap()
    });
    report("parked_memory", "tokio", "rss", per_task, "B/task");
}
