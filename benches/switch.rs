//! Yield ping-pong between two green threads on one worker, beside the raw
//! corosensei resume/suspend floor.

use criterion::{criterion_group, criterion_main, Criterion};

fn raw_corosensei(c: &mut Criterion) {
    let mut co = corosensei::Coroutine::new(|y: &corosensei::Yielder<(), ()>, ()| loop {
        y.suspend(());
    });
    c.bench_function("corosensei_resume_suspend", |b| b.iter(|| co.resume(())));
}

fn yield_switch(c: &mut Criterion) {
    let rt = fibra::Runtime::builder().workers(1).build().unwrap();
    c.bench_function("fibra_yield_switch_x1000", |b| {
        b.iter(|| {
            rt.run(|| {
                let other = fibra::spawn(|| {
                    for _ in 0..500 {
                        fibra::yield_now();
                    }
                });
                for _ in 0..500 {
                    fibra::yield_now();
                }
                other.join().unwrap();
            })
        })
    });
}

criterion_group!(benches, raw_corosensei, yield_switch);
criterion_main!(benches);
