//! Stacks come from chunks mapped in batches: a burst of spawns maps one
//! chunk per 256 stacks and a second burst maps nothing; 100k green threads
//! parked on one channel are woken by its closing and joined; spawning and
//! exiting on several workers at once keeps the counters consistent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fibra_runtime::chan::channel;
use fibra_runtime::stack::stats;
use fibra_runtime::sync::WaitGroup;

/// The counters are process-wide: one test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `n` green threads that park on one channel, waits until all have
/// started, closes the channel and joins them; returns how many saw the
/// channel closed.
fn park_then_close(n: usize) -> usize {
    let (tx, rx) = channel::<()>(0);
    let started = Arc::new(WaitGroup::new());
    started.add(n as isize);
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (rx, started) = (rx.clone(), started.clone());
            fibra_runtime::spawn(move || {
                started.done();
                rx.recv().is_err()
            })
        })
        .collect();
    started.wait();
    tx.close();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&closed| closed)
        .count()
}

#[test]
fn a_burst_of_spawns_maps_one_chunk_per_256_stacks_and_the_next_burst_none() {
    let _serial = serial();
    let rt = fibra_runtime::Runtime::builder()
        .workers(2)
        .build()
        .unwrap();
    let n = 2000;
    let before = stats();
    assert_eq!(rt.run(move || park_then_close(n)), n);
    let first = stats();
    let chunks = first.mmap_calls - before.mmap_calls;
    // 2,001 stacks live at once (the main green thread too), carved 256 to
    // a chunk by each of two workers; pools may have held a few already.
    assert!(
        chunks <= n.div_ceil(256) + 4,
        "{chunks} chunks mapped for {n} stacks: {before:?} -> {first:?}"
    );
    assert!(first.chunks >= 1, "{first:?}");
    for _ in 0..3 {
        assert_eq!(rt.run(move || park_then_close(n)), n);
    }
    let later = stats();
    // Stacks are reused from the pools; chunks that all came back may be
    // unmapped past the pools' size and mapped again, a few at most.
    assert!(
        later.mmap_calls - first.mmap_calls <= 3 * 4,
        "warm bursts mapped {} chunks: {first:?} -> {later:?}",
        later.mmap_calls - first.mmap_calls
    );
    assert_eq!(later.in_use, before.in_use, "every stack came back");
    assert_eq!(later.mapped, later.in_use + later.pooled);
}

#[test]
fn a_hundred_thousand_parked_green_threads_are_woken_by_one_close() {
    let _serial = serial();
    let rt = fibra_runtime::Runtime::builder()
        .workers(2)
        .build()
        .unwrap();
    let n = 100_000;
    let before = stats();
    assert_eq!(rt.run(move || park_then_close(n)), n);
    let after = stats();
    assert_eq!(after.in_use, before.in_use, "every stack came back");
    // Chunks whose stacks all came back are unmapped once a worker idles:
    // the pools do not keep 100k stacks.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let idle = loop {
        let now = stats();
        if now.pooled < 20_000 || std::time::Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        idle.pooled < 20_000,
        "pooled stacks were released in chunks: {idle:?}"
    );
    assert!(idle.chunks < 100, "{idle:?}");
}

#[test]
fn concurrent_spawns_and_exits_on_every_worker_keep_the_counters_straight() {
    let _serial = serial();
    let rt = fibra_runtime::Runtime::builder()
        .workers(3)
        .build()
        .unwrap();
    let before = stats();
    let total = Arc::new(AtomicUsize::new(0));
    let t = total.clone();
    rt.run(move || {
        // Spawners on every worker, each starting short tasks of three
        // stack sizes (the default one from the worker pools, two others
        // from the shared pool), some of which split onto a segment.
        let spawners: Vec<_> = (0..6)
            .map(|s| {
                let t = t.clone();
                fibra_runtime::spawn(move || {
                    for round in 0..40 {
                        let hs: Vec<_> = (0..50)
                            .map(|i| {
                                let t = t.clone();
                                let size = [0, 64 * 1024, 512 * 1024][(s + i + round) % 3];
                                let mut b = fibra_runtime::task::Builder::new();
                                if size != 0 {
                                    b = b.stack_size(size);
                                }
                                b.spawn(move || {
                                    if i % 7 == 0 {
                                        fibra_runtime::stack::maybe_grow(
                                            usize::MAX,
                                            64 * 1024,
                                            || fibra_runtime::yield_now(),
                                        );
                                    } else if i % 2 == 0 {
                                        fibra_runtime::yield_now();
                                    }
                                    t.fetch_add(1, Ordering::Relaxed);
                                })
                                .unwrap()
                            })
                            .collect();
                        for h in hs {
                            h.join().unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in spawners {
            h.join().unwrap();
        }
    });
    assert_eq!(total.load(Ordering::Relaxed), 6 * 40 * 50);
    drop(rt);
    let after = stats();
    assert_eq!(
        after.in_use - after.segments,
        before.in_use - before.segments
    );
    assert_eq!(after.mapped, after.in_use + after.pooled);
}
