//! Handle cost: `Gc` clone + drop beside `Arc`'s, uncontended and with a
//! second thread cloning and dropping the same object.
//!
//! `cargo bench -p fibra-gc --bench handles`

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use fibra_gc::Gc;

/// Runs `f` on another thread in a loop until the guard drops.
struct Contender(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Contender {
    fn start(mut f: impl FnMut() + Send + 'static) -> Contender {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let h = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    f();
                }
            }
        });
        Contender(stop, Some(h))
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        self.1.take().unwrap().join().unwrap();
    }
}

fn handles(c: &mut Criterion) {
    let mut g = c.benchmark_group("clone+drop");
    let gc = Gc::new([0u64; 3]);
    let arc = Arc::new([0u64; 3]);
    g.bench_function("Gc uncontended", |b| b.iter(|| drop(black_box(gc.clone()))));
    g.bench_function("Arc uncontended", |b| {
        b.iter(|| drop(black_box(arc.clone())))
    });
    {
        let other = gc.clone();
        let _c = Contender::start(move || drop(black_box(other.clone())));
        g.bench_function("Gc 2 threads, one object", |b| {
            b.iter(|| drop(black_box(gc.clone())))
        });
    }
    {
        let other = arc.clone();
        let _c = Contender::start(move || drop(black_box(other.clone())));
        g.bench_function("Arc 2 threads, one object", |b| {
            b.iter(|| drop(black_box(arc.clone())))
        });
    }
    g.finish();
}

criterion_group!(benches, handles);
criterion_main!(benches);
