//! Context-switch costs, in ns per switch.
//!
//! `cargo bench --bench switch`:
//! - `yield/two_green_threads_one_worker`: two green threads on one worker
//!   calling `yield_now` in turn; one iteration is one `yield_now`, i.e. one
//!   switch through the scheduler (Go's `Gosched` does the same work);
//! - `corosensei/resume_suspend`: a bare corosensei coroutine resumed and
//!   suspended, the floor any green-thread switch builds on; one iteration is
//!   one resume + one suspend.

use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);

    let rt = fibra::Runtime::builder().workers(1).build().unwrap();
    group.bench_function("yield/two_green_threads_one_worker", |b| {
        b.iter_custom(|iters| {
            let half = iters.div_ceil(2);
            rt.run(|| {
                let start = Instant::now();
                let other = fibra::spawn(move || {
                    for _ in 0..half {
                        fibra::yield_now();
                    }
                });
                for _ in 0..half {
                    fibra::yield_now();
                }
                other.join().unwrap();
                // 2 * half switches; report per requested iteration.
                start.elapsed().mul_f64(iters as f64 / (2 * half) as f64)
            })
        })
    });

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

criterion_group!(benches, switch);
criterion_main!(benches);
