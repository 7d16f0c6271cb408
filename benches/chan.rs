//! Channel speed: unbuffered ping-pong round trip between two green threads
//! (1 and 2 workers), buffered (cap 1024) one-producer-one-consumer per
//! message, and a two-arm `select!`, beside tokio's mpsc (capacity 1 for the
//! ping-pong; tokio has no rendezvous channel) on a current-thread and a
//! 2-worker runtime in the same run. Peers in the issue: Go 309 / 414 ns
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

fn tokio_rt(workers: usize) -> tokio::runtime::Runtime {
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
            .unwrap()
    }
}

fn tokio_ping_pong(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        tokio::spawn(async move {
            let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let echo = tokio::spawn(async move {
                while let Some(v) = ping_rx.recv().await {
                    pong_tx.send(v).await.unwrap();
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                ping_tx.send(i).await.unwrap();
                pong_rx.recv().await.unwrap();
            }
            let t = start.elapsed();
            drop(ping_tx);
            echo.await.unwrap();
            t
        })
        .await
        .unwrap()
    })
}

fn tokio_buffered(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        tokio::spawn(async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1024);
            let start = Instant::now();
            let producer = tokio::spawn(async move {
                for i in 0..iters {
                    tx.send(i).await.unwrap();
                }
            });
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
            }
            let t = start.elapsed();
            assert_eq!(n, iters);
            producer.await.unwrap();
            t
        })
        .await
        .unwrap()
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
        drop(rt);
        let trt = tokio_rt(workers);
        c.bench_function(
            &format!("tokio_mpsc1_pingpong_roundtrip/workers={workers}"),
            |b| b.iter_custom(|iters| tokio_ping_pong(&trt, iters)),
        );
        c.bench_function(
            &format!("tokio_mpsc_buffered_1024_per_msg/workers={workers}"),
            |b| b.iter_custom(|iters| tokio_buffered(&trt, iters)),
        );
    }
}

criterion_group! {
    name = chan;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    targets = benches
}
criterion_main!(chan);
