//! Contended mutex: 8 green threads on a 2-worker runtime incrementing a
//! counter under `fibra::sync::Mutex`, beside 8 OS threads doing the same
//! under `parking_lot::Mutex` and `std::sync::Mutex`. Reported per lock
//! acquisition (total time / total increments). Target: fibra within 2x of
//! parking_lot.
//!
//! `cargo bench --bench sync_mutex`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

const THREADS: u64 = 8;

fn fibra_mutex(rt: &fibra::Runtime, iters: u64) -> Duration {
    let per = iters.div_ceil(THREADS);
    rt.run(move || {
        let m = Arc::new(fibra::sync::Mutex::new(0u64));
        let start = Instant::now();
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                let m = m.clone();
                fibra::spawn(move || {
                    for _ in 0..per {
                        *m.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        let t = start.elapsed();
        assert_eq!(*m.lock().unwrap(), per * THREADS);
        t
    })
}

fn os_threads<M: Send + Sync + 'static>(iters: u64, m: M, inc: fn(&M)) -> Duration {
    let per = iters.div_ceil(THREADS);
    let m = Arc::new(m);
    let barrier = Arc::new(std::sync::Barrier::new(THREADS as usize + 1));
    let hs: Vec<_> = (0..THREADS)
        .map(|_| {
            let (m, barrier) = (m.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..per {
                    inc(&m);
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    hs.into_iter().for_each(|h| h.join().unwrap());
    start.elapsed()
}

fn benches(c: &mut Criterion) {
    let rt = fibra::Runtime::builder().workers(2).build().unwrap();
    c.bench_function("mutex_contended_8/fibra_green_2_workers", |b| {
        b.iter_custom(|iters| fibra_mutex(&rt, iters))
    });
    c.bench_function("mutex_contended_8/parking_lot_os_threads", |b| {
        b.iter_custom(|iters| os_threads(iters, parking_lot::Mutex::new(0u64), |m| *m.lock() += 1))
    });
    c.bench_function("mutex_contended_8/std_os_threads", |b| {
        b.iter_custom(|iters| {
            os_threads(iters, std::sync::Mutex::new(0u64), |m| {
                *m.lock().unwrap() += 1
            })
        })
    });
}

criterion_group! {
    name = sync_mutex;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    targets = benches
}
criterion_main!(sync_mutex);
