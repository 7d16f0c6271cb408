//! One producer, one consumer through a channel of capacity 1024 (fibra::chan).
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

fn round(n: usize) -> f64 {
    let (tx, rx) = fibra::chan::channel::<usize>(1024);
    let start = Instant::now();
    let producer = fibra::spawn(move || {
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
    let rt = fibra::Runtime::builder().workers(w).build().unwrap();
    let ns = rt.run(|| {
        round(n / 10);
        round(n)
    });
    report(
        &format!("chan_buffered_{w}w"),
        "fibra",
        "time",
        ns,
        "ns/msg",
    );
}
