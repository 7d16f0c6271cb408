//! One producer, one consumer through a channel of capacity 1024 (tokio mpsc).
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

async fn round(n: usize) -> f64 {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<usize>(1024);
    let start = Instant::now();
    let producer = tokio::spawn(async move {
        for i in 0..n {
            tx.send(i).await.unwrap();
        }
    });
    let mut sum = 0usize;
    while let Some(v) = rx.recv().await {
        sum = sum.wrapping_add(v);
    }
    let ns = ns_per(start.elapsed(), n);
    producer.await.unwrap();
    assert_eq!(sum, (0..n).fold(0usize, |a, b| a.wrapping_add(b)));
    ns
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 5_000_000);
    let w = workers(&args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(w)
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
    report(
        &format!("chan_buffered_{w}w"),
        "tokio",
        "time",
        ns,
        "ns/msg",
    );
}
