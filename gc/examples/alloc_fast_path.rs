//! The allocation fast path and handle costs, as the fastest of many short
//! batches (robust on a shared machine, where a batch may be preempted).
//!
//! `cargo run --release -p fibra-gc --example alloc_fast_path`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use fibra_gc::Gc;

/// Best ns per operation over `rounds` batches of `batch` operations.
fn best(rounds: usize, batch: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        f(batch);
        best = best.min(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    best
}

fn main() {
    let mut keep: Vec<Gc<[u64; 3]>> = Vec::with_capacity(1000);
    let new = best(2000, 1000, |n| {
        keep.clear();
        for i in 0..n {
            keep.push(Gc::new(black_box([i as u64, 2, 3])));
        }
    });
    let keep_drop = best(2000, 1000, |n| {
        for i in 0..n {
            black_box(Gc::new(black_box([i as u64, 2, 3])));
        }
    });
    let mut boxes: Vec<Box<[u64; 4]>> = Vec::with_capacity(1000);
    let boxed = best(2000, 1000, |n| {
        boxes.clear();
        for i in 0..n {
            boxes.push(Box::new(black_box([i as u64, 2, 3, 4])));
        }
    });
    let g = Gc::new([0u64; 3]);
    let a = Arc::new([0u64; 3]);
    let gc_clone = best(2000, 1000, |n| {
        for _ in 0..n {
            drop(black_box(g.clone()));
        }
    });
    let arc_clone = best(2000, 1000, |n| {
        for _ in 0..n {
            drop(black_box(a.clone()));
        }
    });
    println!("Gc::new, 32-byte object (kept; drop of the batch included): {new:.1} ns");
    println!("Gc::new + drop, 32-byte object: {keep_drop:.1} ns");
    println!("Box::new, 32 bytes (kept; free of the batch included): {boxed:.1} ns");
    println!("Gc clone + drop: {gc_clone:.1} ns; Arc clone + drop: {arc_clone:.1} ns");
}
