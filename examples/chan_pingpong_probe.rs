//! Ping-pong probe for profiling (callgrind, perf): `MODE` is `chan`
//! (unbuffered round trips between two green threads), `yield` (two green
//! threads yielding to each other: the scheduler's floor for two switches)
//! or `buffered` (cap 1024, one producer one consumer).
//!
//! `cargo run --release --example chan_pingpong_probe -- MODE WORKERS N`

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "chan".into());
    let workers: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(1);
    let n: u64 = args.next().map(|s| s.parse().unwrap()).unwrap_or(1_000_000);
    let rt = fibra::Runtime::builder().workers(workers).build().unwrap();
    let ns = match mode.as_str() {
        "chan" => rt.run(move || ping_pong(n)),
        "yield" => rt.run(move || yields(n)),
        "buffered" => rt.run(move || buffered(n)),
        other => panic!("unknown mode {other}"),
    };
    println!("{mode} workers={workers}: {ns:.1} ns per iteration");
}

fn ping_pong(n: u64) -> f64 {
    let (ping_tx, ping_rx) = fibra::chan::channel::<u64>(0);
    let (pong_tx, pong_rx) = fibra::chan::channel::<u64>(0);
    let echo = fibra::spawn(move || {
        for v in ping_rx.iter() {
            pong_tx.send(v).unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..n {
        ping_tx.send(i).unwrap();
        pong_rx.recv().unwrap();
    }
    let t = start.elapsed();
    drop(ping_tx);
    echo.join().unwrap();
    t.as_nanos() as f64 / n as f64
}

fn yields(n: u64) -> f64 {
    let other = fibra::spawn(move || {
        for _ in 0..n {
            fibra::yield_now();
        }
    });
    let start = Instant::now();
    for _ in 0..n {
        fibra::yield_now();
    }
    let t = start.elapsed();
    other.join().unwrap();
    t.as_nanos() as f64 / n as f64
}

fn buffered(n: u64) -> f64 {
    let (tx, rx) = fibra::chan::channel::<u64>(1024);
    let start = Instant::now();
    let producer = fibra::spawn(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    let mut count = 0;
    for _ in rx.iter() {
        count += 1;
    }
    assert_eq!(count, n);
    let t = start.elapsed();
    producer.join().unwrap();
    t.as_nanos() as f64 / n as f64
}
