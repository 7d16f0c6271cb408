//! Concurrent ping-pong: 16 pairs of green threads, each doing round trips
//! over two unbuffered channels at once; ns per round trip (elapsed time
//! over all round trips of all pairs).
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

fn round(pairs: usize, per_pair: usize) -> f64 {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(2 * pairs);
    for _ in 0..pairs {
        let (ping_tx, ping_rx) = fibra::chan::channel::<usize>(0);
        let (pong_tx, pong_rx) = fibra::chan::channel::<usize>(0);
        handles.push(fibra::spawn(move || {
            while let Ok(v) = ping_rx.recv() {
                pong_tx.send(v).unwrap();
            }
        }));
        handles.push(fibra::spawn(move || {
            for i in 0..per_pair {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv().unwrap(), i);
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    ns_per(start.elapsed(), pairs * per_pair)
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 2_000_000);
    let pairs = args.usize("tasks", 16);
    let w = workers(&args);
    let rt = fibra::Runtime::builder().workers(w).build().unwrap();
    let ns = rt.run(|| {
        round(pairs, n / pairs / 10);
        round(pairs, n / pairs)
    });
    report(
        &format!("pingpong_pairs_{w}w"),
        "fibra",
        "time",
        ns,
        "ns/roundtrip",
    );
}
