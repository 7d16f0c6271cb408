//! Allocation fast path: `Gc::new` of small objects beside `Box::new`.
//!
//! `cargo bench -p fibra-gc --bench alloc`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use fibra_gc::Gc;

fn alloc(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc");
    // 24-byte payload: a 32-byte object with its header.
    g.bench_function("Gc::new 32-byte object (drop untimed)", |b| {
        b.iter_with_large_drop(|| Gc::new(black_box([1u64, 2, 3])))
    });
    g.bench_function("Gc::new 32-byte payload (drop untimed)", |b| {
        b.iter_with_large_drop(|| Gc::new(black_box([1u64, 2, 3, 4])))
    });
    g.bench_function("Gc::new + drop, 32-byte object", |b| {
        b.iter(|| Gc::new(black_box([1u64, 2, 3])))
    });
    g.bench_function("Box::new + drop, 32 bytes", |b| {
        b.iter(|| Box::new(black_box([1u64, 2, 3, 4])))
    });
    g.finish();
}

criterion_group!(benches, alloc);
criterion_main!(benches);
