//! spawn + join of many tasks that finish at once (tokio, from a worker).
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

async fn round(n: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(async {})).collect();
    for h in handles {
        h.await.unwrap();
    }
    ns_per(start.elapsed(), n)
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers(&args))
        .build()
        .unwrap();
    let ns = rt.block_on(async move {
        tokio::spawn(async move {
            round(n / 10).await;
            round(n).await
        })
        .await
        .unwrap()
    });
    report("spawn_join", "tokio", "time", ns, "ns/task");
}
