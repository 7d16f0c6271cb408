//! One producer, one consumer through a may channel. may has no bounded
//! channel, so this one is unbounded: its producer never waits (the table
//! says so).
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

fn round(n: usize) -> f64 {
    let (tx, rx) = may::sync::mpsc::channel::<usize>();
    let start = Instant::now();
    let producer = may::go!(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    let mut sum = 0usize;
    while let Ok(v) = rx.recv() {
        sum = sum.wrapping_add(v);
    }
    let ns = ns_per(start.elapsed(), n);
    producer.join().unwrap();
    assert_eq!(sum, (0..n).fold(0usize, |a, b| a.wrapping_add(b)));
    ns
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 5_000_000);
    let w = workers(&args);
    may::config().set_workers(w);
    let ns = may::go!(move || {
        round(n / 10);
        round(n)
    })
    .join()
    .unwrap();
    report(&format!("chan_buffered_{w}w"), "may", "time", ns, "ns/msg");
}
