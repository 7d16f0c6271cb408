//! What a `maybe_grow` split costs: a call that splits onto a segment in a
//! tight loop (Go's "hot split") against the same call without a split and
//! a plain call, in a green thread and on an OS thread.
//!
//! The split reuses the task's cached segment, so it costs two stack
//! switches and no system call. "split, no cache" alternates two segment
//! sizes so the one-slot cache never matches and every split goes through
//! the shared pool's lock: the cost the cache saves.
//!
//! ```text
//! cargo bench --bench maybe_grow
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use fibra::stack::maybe_grow;

const SEGMENT: usize = 64 * 1024;

#[inline(never)]
fn work(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7
}

fn loop_plain(iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        black_box(work(i));
    }
    start.elapsed()
}

fn loop_grow(iters: u64, red_zone: usize) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        black_box(maybe_grow(red_zone, SEGMENT, || work(i)));
    }
    start.elapsed()
}

fn loop_grow_uncached(iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        let size = if i & 1 == 0 { SEGMENT } else { 2 * SEGMENT };
        black_box(maybe_grow(usize::MAX, size, || work(i)));
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = fibra::Runtime::builder().workers(1).build().unwrap();
    let mut g = c.benchmark_group("maybe_grow/green_thread");
    g.bench_function("plain call", |b| {
        b.iter_custom(|n| rt.run(|| loop_plain(n)))
    });
    g.bench_function("maybe_grow, no split", |b| {
        b.iter_custom(|n| rt.run(|| loop_grow(n, 0)))
    });
    g.bench_function("maybe_grow, split every call", |b| {
        b.iter_custom(|n| rt.run(|| loop_grow(n, usize::MAX)))
    });
    g.bench_function("maybe_grow, split, no cache", |b| {
        b.iter_custom(|n| rt.run(|| loop_grow_uncached(n)))
    });
    g.finish();

    let mut g = c.benchmark_group("maybe_grow/os_thread");
    g.bench_function("plain call", |b| b.iter_custom(loop_plain));
    g.bench_function("maybe_grow, no split", |b| {
        b.iter_custom(|n| loop_grow(n, 0))
    });
    g.bench_function("maybe_grow, split every call", |b| {
        b.iter_custom(|n| loop_grow(n, usize::MAX))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
