//! The blocking pool and the monitor thread.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibra_runtime::{spawn, spawn_blocking, Runtime};

#[test]
fn spawn_blocking_does_not_block_the_worker() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let progress = Arc::new(AtomicUsize::new(0));
        let p = progress.clone();
        let blocking = spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(100));
            p.load(Ordering::SeqCst)
        });
        let p = progress.clone();
        let busy = spawn(move || {
            for _ in 0..100 {
                p.fetch_add(1, Ordering::SeqCst);
                fibra_runtime::yield_now();
            }
        });
        busy.join().unwrap();
        // The one worker ran the other task while the blocking job slept.
        assert_eq!(blocking.join().unwrap(), 100);
    });
}

#[test]
fn many_blocking_jobs_run_in_parallel_and_panics_are_reported() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let start = Instant::now();
        let jobs: Vec<_> = (0..32)
            .map(|i| {
                spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    i
                })
            })
            .collect();
        let sum: i32 = jobs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, (0..32).sum());
        // 32 sleeps of 50 ms in sequence would take 1.6 s.
        assert!(
            start.elapsed() < Duration::from_millis(1200),
            "{:?}",
            start.elapsed()
        );
        let err = spawn_blocking(|| panic!("boom")).join().unwrap_err();
        assert!(err.is_panic());
        // Fibra calls work inside: the runtime is entered.
        let inner = spawn_blocking(|| spawn(|| 5).join().unwrap());
        assert_eq!(inner.join().unwrap(), 5);
    });
}

#[test]
fn idle_blocking_threads_exit_after_keep_alive() {
    let rt = Runtime::builder()
        .workers(1)
        .thread_keep_alive(Duration::from_millis(30))
        .build()
        .unwrap();
    rt.run(|| spawn_blocking(|| ()).join().unwrap());
    assert_eq!(rt.metrics().blocking_threads, 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while rt.metrics().blocking_threads != 0 {
        assert!(Instant::now() < deadline, "the idle thread never exited");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_stalled_task_is_reported_once_by_name() {
    support::install();
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let h = fibra_runtime::task::Builder::new()
            .name("stubborn-cruncher")
            .spawn(|| {
                // Holds its worker without yielding.
                std::thread::sleep(Duration::from_millis(80));
            })
            .unwrap();
        let id = h.id().as_u64();
        h.join().unwrap();
        let events = support::events_containing("stubborn-cruncher");
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].contains(&format!("task.id={id}")), "{events:?}");
        assert!(events[0].contains("stalled_ms"), "{events:?}");
    });
}

#[test]
fn a_stalled_workers_queued_tasks_run_elsewhere() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let parent = spawn(|| {
            let blocked = Arc::new(AtomicBool::new(true));
            let children: Vec<_> = (0..8)
                .map(|_| {
                    let blocked = blocked.clone();
                    spawn(move || blocked.load(Ordering::SeqCst))
                })
                .collect();
            // The children sit in this worker's deque; stall it.
            std::thread::sleep(Duration::from_millis(200));
            blocked.store(false, Ordering::SeqCst);
            children
        });
        let children = parent.join().unwrap();
        for c in children {
            assert!(c.join().unwrap(), "a child waited for the stalled worker");
        }
    });
}
