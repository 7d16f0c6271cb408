//! Many tasks incrementing one counter behind a lock (tokio::sync::Mutex).
use std::sync::Arc;
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

async fn round(tasks: usize, per_task: usize) -> f64 {
    let counter = Arc::new(tokio::sync::Mutex::new(0usize));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let counter = counter.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    *counter.lock().await += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let ns = ns_per(start.elapsed(), tasks * per_task);
    assert_eq!(*counter.lock().await, tasks * per_task);
    ns
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 2_000_000);
    let tasks = args.usize("tasks", 16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers(&args))
        .build()
        .unwrap();
    let ns = rt.block_on(async move {
        tokio::spawn(async move {
            round(tasks, n / tasks / 10).await;
            round(tasks, n / tasks).await
        })
        .await
        .unwrap()
    });
    report("mutex", "tokio", "time", ns, "ns/lock");
}
