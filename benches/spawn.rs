//! Spawn + join of green threads that finish at once, in ns per task.
//!
//! `cargo bench --bench spawn`. One criterion iteration is one task: the
//! routine spawns `iters` tasks, then joins them all, so the figure includes
//! the JoinHandle, the queue traffic, the first resume on a pooled stack and
//! the completion. Compare with Go's `go f()` + WaitGroup and tokio::spawn in
//! `benches/compare.sh` (row `spawn_join`).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

/// Spawns `n` empty green threads from the calling green thread, joins them.
fn spawn_join_from_green(n: u64) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..n).map(|_| fibra::spawn(|| ())).collect();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

fn spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);
    for workers in [1, 2] {
        let rt = fibra::Runtime::builder().workers(workers).build().unwrap();
        group.bench_function(format!("from_green_thread/{workers}_workers"), |b| {
            b.iter_custom(|iters| rt.run(|| spawn_join_from_green(iters)))
        });
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
