//! Channel `select!`: a two-arm `select!` receiving from two buffered
//! (cap 1024) channels fed by one producer, per message, on 1 and 2
//! workers. (The ping-pong and buffered channel questions, with Go, tokio
//! and may beside fibra, are rows of `benches/compare.sh`.)
//!
//! `cargo bench --bench chan_select`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use fibra::chan::channel;

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
        c.bench_function(
            &format!("chan_select2_buffered_per_msg/workers={workers}"),
            |b| b.iter_custom(|iters| select_recv(&rt, iters)),
        );
    }
}

criterion_group! {
    name = chan_select;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    targets = benches
}
criterion_main!(chan_select);
