//! Two tasks on one worker yielding to each other (tokio `yield_now`).
use std::time::Instant;

use fibra_compare::{ns_per, report, Args};

async fn round(n: usize) -> f64 {
    let start = Instant::now();
    let yielder = move || async move {
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
    };
    let a = tokio::spawn(yielder());
    let b = tokio::spawn(yielder());
    a.await.unwrap();
    b.await.unwrap();
    ns_per(start.elapsed(), 2 * n)
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 2_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
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
    report("yield", "tokio", "time", ns, "ns/yield");
}
