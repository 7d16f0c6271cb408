//! Channel round trips between two coroutines (may has only unbounded
//! channels; with one message in flight a ping-pong behaves alike).
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};
use may::sync::mpsc;

fn round(n: usize) -> f64 {
    let (ping_tx, ping_rx) = mpsc::channel::<usize>();
    let (pong_tx, pong_rx) = mpsc::channel::<usize>();
    let echo = may::go!(move || {
        while let Ok(v) = ping_rx.recv() {
            pong_tx.send(v).unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..n {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv().unwrap(), i);
    }
    let ns = ns_per(start.elapsed(), n);
    drop(ping_tx);
    echo.join().unwrap();
    ns
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 1_000_000);
    let w = workers(&args);
    may::config().set_workers(w);
    let ns = may::go!(move || {
        round(n / 10);
        round(n)
    })
    .join()
    .unwrap();
    report(
        &format!("chan_pingpong_{w}w"),
        "may",
        "time",
        ns,
        "ns/roundtrip",
    );
}
