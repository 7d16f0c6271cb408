//! A tour of fibra's runtime: green threads, joins, sleeps, async tasks and
//! runtime metrics.
//!
//! Try it: `cargo run --release --example tour`

use std::time::{Duration, Instant};

fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    // Each call below 20 levels deep is its own green thread.
    if n > 20 {
        let a = fibra::spawn(move || fib(n - 1));
        let b = fib(n - 2);
        a.join().unwrap() + b
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();

    fibra::run(|| {
        let start = Instant::now();
        let handles: Vec<_> = (0..100_000u64).map(|i| fibra::spawn(move || i)).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        println!(
            "100k green threads spawned and joined in {:?} (sum {sum})",
            start.elapsed()
        );

        let start = Instant::now();
        let sleepers: Vec<_> = (0..10_000)
            .map(|_| fibra::spawn(|| fibra::time::sleep(Duration::from_millis(10))))
            .collect();
        for s in sleepers {
            s.join().unwrap();
        }
        println!(
            "10k green threads slept 10 ms each, concurrently, in {:?}",
            start.elapsed()
        );

        let start = Instant::now();
        println!(
            "fib(32) = {} using nested green threads, in {:?}",
            fib(32),
            start.elapsed()
        );

        let answer = fibra::spawn_async(async {
            fibra::time::Sleep::new(Duration::from_millis(1)).await;
            42
        });
        println!(
            "an async task on the same workers answered {}",
            answer.join().unwrap()
        );

        let stats = fibra::stats();
        println!(
            "workers: {}, tasks spawned: {}, stacks mapped: {} ({} KiB reserved)",
            stats.workers.len(),
            stats.tasks_spawned,
            stats.stacks.mapped,
            stats.stacks.bytes_reserved / 1024
        );
    });
}
