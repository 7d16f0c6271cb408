//! Spawn + join of many green threads that finish at once.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    for workers in [1, 2] {
        let rt = fibra::Runtime::builder().workers(workers).build().unwrap();
        const N: u64 = 10_000;
        group.throughput(Throughput::Elements(N));
        group.bench_function(format!("{workers}_workers_{N}_tasks"), |b| {
            b.iter(|| {
                rt.run(|| {
                    let handles: Vec<_> = (0..N).map(|i| fibra::spawn(move || i)).collect();
                    handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, spawn_join);
criterion_main!(benches);
