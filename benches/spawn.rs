//! Spawn + join by the two paths `benches/compare.sh` does not measure, in
//! ns per task: green threads spawned from a plain OS thread
//! (`Runtime::spawn`), and async tasks (`spawn_async`). Spawning green
//! threads from a green thread, beside Go, tokio and may, is the
//! `spawn_join` row of `benches/compare.sh`.
//!
//! `cargo bench --bench spawn`. One criterion iteration is one task: the
//! routine spawns `iters` tasks, then joins them all, so the figure includes
//! the JoinHandle, the queue traffic and the completion.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

fn spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);
    for workers in [1, 2] {
        let rt = fibra::Runtime::builder().workers(workers).build().unwrap();
        group.bench_function(format!("from_os_thread/{workers}_workers"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let handles: Vec<_> = (0..iters).map(|_| rt.spawn(|| ())).collect();
                for h in handles {
                    h.join().unwrap();
                }
                start.elapsed()
            })
        });
        group.bench_function(format!("async_task/{workers}_workers"), |b| {
            b.iter_custom(|iters| {
                rt.run(|| {
                    let start = Instant::now();
                    let handles: Vec<_> =
                        (0..iters).map(|_| fibra::spawn_async(async {})).collect();
                    for h in handles {
                        h.join().unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
