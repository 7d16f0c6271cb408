//! Unbuffered channel round trips between two green threads (fibra::chan, cap 0).
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

fn round(n: usize) -> f64 {
    let (ping_tx, ping_rx) = fibra::chan::channel::<usize>(0);
    let (pong_tx, pong_rx) = fibra::chan::channel::<usize>(0);
    let echo = fibra::spawn(move || {
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
    let rt = fibra::Runtime::builder().workers(w).build().unwrap();
    let ns = rt.run(|| {
        round(n / 10);
        round(n)
    });
    report(
        &format!("chan_pingpong_{w}w"),
        "fibra",
        "time",
        ns,
        "ns/roundtrip",
    );
}
