//! A crowd of green threads parked on one channel (fibra): start `n` that
//! each report on a WaitGroup and park receiving from one channel, wait
//! until every one has started, then close the channel and join them all.
//! Prints ns per task for both phases (`start`, `wake_join`) of the last
//! of `-rounds` rounds (default 1: a cold start).
use std::sync::Arc;
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 100_000);
    let rounds = args.usize("rounds", 1).max(1);
    let rt = fibra::Runtime::builder()
        .workers(workers(&args))
        .build()
        .unwrap();
    let round = move || {
        let (tx, rx) = fibra::chan::channel::<()>(0);
        let started = Arc::new(fibra::sync::WaitGroup::new());
        started.add(n as isize);
        let t0 = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (rx, started) = (rx.clone(), started.clone());
                fibra::spawn(move || {
                    started.done();
                    // Err once the channel is closed: that is the wake-up.
                    let _ = rx.recv();
                })
            })
            .collect();
        started.wait();
        let start = t0.elapsed();
        let t1 = Instant::now();
        tx.close();
        for h in handles {
            h.join().unwrap();
        }
        (start, t1.elapsed())
    };
    let (start, wake_join) = rt.run(move || (1..rounds).fold(round(), |_, _| round()));
    let name = format!("park_wake_{n}");
    report(&name, "fibra", "start", ns_per(start, n), "ns/task");
    report(&name, "fibra", "wake_join", ns_per(wake_join, n), "ns/task");
}
