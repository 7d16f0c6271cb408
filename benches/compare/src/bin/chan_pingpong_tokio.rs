//! Channel round trips between two tasks (tokio mpsc with capacity 1: tokio
//! has no rendezvous channel; with one message in flight it behaves alike).
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};
use tokio::sync::mpsc;

async fn round(n: usize) -> f64 {
    let (ping_tx, mut ping_rx) = mpsc::channel::<usize>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<usize>(1);
    let echo = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            pong_tx.send(v).await.unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..n {
        ping_tx.send(i).await.unwrap();
        assert_eq!(pong_rx.recv().await.unwrap(), i);
    }
    let ns = ns_per(start.elapsed(), n);
    drop(ping_tx);
    echo.await.unwrap();
    ns
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 1_000_000);
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
        &format!("chan_pingpong_{w}w"),
        "tokio",
        "time",
        ns,
        "ns/roundtrip",
    );
}
