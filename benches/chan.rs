//! Channel speed: unbuffered ping-pong round trip between two green threads
//! (1 and 2 workers), buffered (cap 1024) one-producer-one-consumer per
//! message, and a two-arm `select!`. Peers in the issue: Go 309 / 414 ns
//! ping-pong round trip (GOMAXPROCS 1 / 2), 41 / 62 ns buffered per message.
//!
//! `cargo bench --bench chan`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use fibra::chan::channel;

/// Runs `iters` round trips between two green threads; returns the time.
fn ping_pong(rt: &fibra::Runtime, iters: u64) -> Duration {
    rt.run(move || {
        let (ping_tx, ping_rx) = channel::<u64>(0);
        let (pong_tx, pong_rx) = channel::<u64>(0);
        let echo = fibra::spawn(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v).unwrap();
            }
        });
        // Warm up so both sides are started and parked once.
        ping_tx.send(0).unwrap();
        pong_rx.recv().unwrap();
        let start = Instant::now();
        for i in 0..iters {
            ping_tx.send(i).unwrap();
            pong_rx.recv().unwrap();
        }
        let t = start.elapsed();
        drop(ping_tx);
        echo.join().unwrap();
        t
    })
}

fn buffered(rt: &fibra::Runtime, iters: u64) -> Duration {
    rt.run(move || {
        let (tx, rx) = channel::<u64>(1024);
        let start = Instant::now();
        let producer = fibra::spawn(move || {
            for i in 0..iters {
                tx.send(i).unwrap();
            }
        });
        let mut n = 0;
        for _ in rx.iter() {
            n += 1;
        }
        let t = start.elapsed();
        assert_eq!(n, iters);
        producer.join().unwrap();
        t
    })
}

fn select_recv(rt: &fibra::Runtime, iters: u64) -> Duration {
    rt.run(move || {
        let (tx_a, rx_a) = channel::<u64>(1024);
        let (tx_b, rx_b) = channel::<u64>(1024);
        let start = Instant::now();
        let producer = fibra::spawn(move || {
            for i in 0..iters {
                if i % 2 == 0 {
                    tx_a.send(i).unwrap();
                } else {
                    tx_b.send(i).unwrap();
                }
            }
        });
        let mut n = 0;
        let (mut a, mut b) = (true, true);
        while a || b {
            fibra::select! {
                recv(rx_a) -> v => match v { Ok(_) => n += 1, Err(_) => a = false },
                recv(rx_b) -> v => match v { Ok(_) => n += 1, Err(_) => b = false },
            }
            if !a || !b {
                break;
            }
        }
        n += rx_a.iter().count() + rx_b.iter().count();
        let t = start.elapsed();
        assert_eq!(n as u64, iters);
        producer.join().unwrap();
        t
    })
}

fn benches(c: &mut Criterion) {
    for workers in [1, 2] {
        let rt = fibra::Runtime::builder().workers(workers).build().unwrap();
        c.bench_function(&format!("chan_pingpong_roundtrip/workers={workers}"), |b| {
            b.iter_custom(|iters| ping_pong(&rt, iters))
        });
        c.bench_function(
            &format!("chan_buffered_1024_per_msg/workers={workers}"),
            |b| b.iter_custom(|iters| buffered(&rt, iters)),
        );
        c.bench_function(
            &format!("chan_select2_buffered_per_msg/workers={workers}"),
            |b| b.iter_custom(|iters| select_recv(&rt, iters)),
        );
    }
}

criterion_group! {
    name = chan;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    targets = benches
}
criterion_main!(chan);
