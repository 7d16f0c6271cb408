//! How late `sleep(1ms)` wakes with 10k sleepers (tokio::time::sleep).
use std::time::{Duration, Instant};

use fibra_compare::{quantile, report, workers, Args};

fn main() {
    let args = Args::parse();
    let tasks = args.usize("tasks", 10_000);
    let rounds = args.usize("rounds", 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers(&args))
        .enable_time()
        .build()
        .unwrap();
    let mut late: Vec<f64> = rt.block_on(async move {
        tokio::spawn(async move {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    tokio::spawn(async move {
                        let mut v = Vec::with_capacity(rounds);
                        for _ in 0..rounds {
                            let t = Instant::now();
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            v.push((t.elapsed().as_nanos() as f64 - 1e6) / 1e3);
                        }
                        v
                    })
                })
                .collect();
            let mut all = Vec::new();
            for h in handles {
                all.extend(h.await.unwrap());
            }
            all
        })
        .await
        .unwrap()
    });
    late.sort_by(f64::total_cmp);
    report("sleep_1ms", "tokio", "p50_late", quantile(&late, 0.5), "us");
    report(
        "sleep_1ms",
        "tokio",
        "p99_late",
        quantile(&late, 0.99),
        "us",
    );
}
