//! The floor under every green-thread switch: a bare corosensei coroutine
//! resumed and suspended, in ns; one iteration is one resume + one suspend.
//! (The switch through fibra's scheduler, `yield_now` between two green
//! threads beside Go, tokio and may, is the `yield` row of
//! `benches/compare.sh`.)
//!
//! `cargo bench --bench switch_floor`

use std::time::Duration;

use corosensei::{Coroutine, CoroutineResult};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn switch_floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch_floor");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);

    group.bench_function("corosensei/resume_suspend", |b| {
        let mut co = Coroutine::new(|yielder, mut input: u64| loop {
            input = yielder.suspend(black_box(input));
        });
        b.iter(|| match co.resume(black_box(1)) {
            CoroutineResult::Yield(v) => v,
            CoroutineResult::Return(()) => unreachable!(),
        })
    });
    group.finish();
}

criterion_group!(benches, switch_floor);
criterion_main!(benches);
