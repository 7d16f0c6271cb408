//! Fault injection: the `spawn_blocking` pool exhausted. Jobs beyond the
//! thread limit queue, green threads keep running on the workers, and a
//! full pool whose jobs wait for green threads does not deadlock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibra_runtime::{spawn, spawn_blocking, Runtime};

#[test]
fn jobs_past_the_limit_queue_and_all_complete() {
    let rt = Runtime::builder()
        .workers(1)
        .max_blocking_threads(2)
        .build()
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let sum = rt.run(|| {
        let jobs: Vec<_> = (0..40u64)
            .map(|i| {
                let (running, peak) = (running.clone(), peak.clone());
                spawn_blocking(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        jobs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, (0..40).sum());
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&peak),
        "{peak} jobs ran at once with 2 threads"
    );
}

#[test]
fn a_full_pool_waiting_on_green_threads_does_not_deadlock() {
    // Both blocking threads hold jobs that wait for a green thread; more
    // jobs queue behind them. The worker must stay free to run the green
    // thread that releases them.
    let rt = Runtime::builder()
        .workers(1)
        .max_blocking_threads(2)
        .build()
        .unwrap();
    let done = rt.run(|| {
        let (senders, stuck): (Vec<_>, Vec<_>) = (0..2)
            .map(|_| {
                let (tx, rx) = std::sync::mpsc::channel::<usize>();
                (tx, spawn_blocking(move || rx.recv().unwrap()))
            })
            .unzip();
        let queued: Vec<_> = (0..20).map(|_| spawn_blocking(|| 1usize)).collect();
        // Green threads still run while the pool is full.
        let green: usize = (0..100)
            .map(|i| spawn(move || i))
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(green, (0..100).sum());
        // A green thread releases the stuck jobs, after a timer.
        spawn(move || {
            fibra_runtime::time::sleep(Duration::from_millis(5));
            for tx in senders {
                tx.send(1).unwrap();
            }
        })
        .join()
        .unwrap();
        stuck
            .into_iter()
            .chain(queued)
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(done, 22);
}

#[test]
fn blocking_jobs_spawned_from_many_green_threads_while_saturated() {
    let rt = Runtime::builder()
        .workers(2)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let total = rt.run(|| {
        let tasks: Vec<_> = (0..50u64)
            .map(|i| {
                spawn(move || {
                    let a = spawn_blocking(move || i).join().unwrap();
                    fibra_runtime::yield_now();
                    let b = spawn_blocking(move || i * 2).join().unwrap();
                    a + b
                })
            })
            .collect();
        tasks.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, (0..50u64).map(|i| 3 * i).sum());
}
