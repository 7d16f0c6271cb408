//! Many producers and consumers (green threads and OS threads) over
//! buffered and unbuffered channels: every value is received exactly once.
//! Longer runs: `FIBRA_STRESS_SCALE=50 cargo test --release --test chan_mpmc_stress`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use fibra_runtime::chan::channel;
use fibra_runtime::Runtime;

fn scale() -> u64 {
    std::env::var("FIBRA_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn run_case(workers: usize, cap: usize, producers: u64, consumers: usize, os_producers: u64) {
    let per = 2_000 * scale();
    let total = (producers + os_producers) * per;
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..total).map(|_| AtomicU8::new(0)).collect());
    let rt = Runtime::builder().workers(workers).build().unwrap();
    let (tx, rx) = channel::<u64>(cap);
    let os: Vec<_> = (0..os_producers)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    tx.send((producers + p) * per + i).unwrap();
                }
            })
        })
        .collect();
    let seen2 = seen.clone();
    rt.run(move || {
        let ps: Vec<_> = (0..producers)
            .map(|p| {
                let tx = tx.clone();
                fibra_runtime::spawn(move || {
                    for i in 0..per {
                        tx.send(p * per + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let cs: Vec<_> = (0..consumers)
            .map(|_| {
                let (rx, seen) = (rx.clone(), seen2.clone());
                fibra_runtime::spawn(move || {
                    let mut last = vec![None::<u64>; 64];
                    for v in rx.iter() {
                        seen[v as usize].fetch_add(1, Ordering::Relaxed);
                        // Per-producer FIFO: one consumer sees each producer's
                        // values in increasing order.
                        let p = (v / per) as usize;
                        if let Some(prev) = last[p] {
                            assert!(v > prev, "producer {p}: {v} after {prev}");
                        }
                        last[p] = Some(v);
                    }
                })
            })
            .collect();
        for h in ps {
            h.join().unwrap();
        }
        for h in cs {
            h.join().unwrap();
        }
    });
    for t in os {
        t.join().unwrap();
    }
    for (v, c) in seen.iter().enumerate() {
        assert_eq!(
            c.load(Ordering::Relaxed),
            1,
            "value {v} (workers {workers}, cap {cap})"
        );
    }
}

#[test]
fn unbuffered_many_to_many() {
    for workers in [1, 2] {
        run_case(workers, 0, 4, 4, 0);
    }
}

#[test]
fn buffered_many_to_many() {
    for workers in [1, 2] {
        for cap in [1, 16, 1024] {
            run_case(workers, cap, 4, 3, 0);
        }
    }
}

#[test]
fn os_thread_and_green_producers_together() {
    for workers in [1, 2] {
        run_case(workers, 0, 2, 3, 2);
        run_case(workers, 8, 2, 3, 2);
    }
}
