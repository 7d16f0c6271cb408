//! Timers: sleeping parks only the green thread, deadlines are honoured,
//! and `Sleep` works on any executor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibra_runtime::time::{sleep, Sleep};
use fibra_runtime::{spawn, Runtime};

#[test]
fn sleep_lasts_at_least_its_duration() {
    fibra_runtime::run(|| {
        for ms in [1u64, 5, 20] {
            let start = Instant::now();
            sleep(Duration::from_millis(ms));
            assert!(start.elapsed() >= Duration::from_millis(ms));
        }
    });
}

#[test]
fn a_sleeping_task_does_not_block_its_worker() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let progress = Arc::new(AtomicUsize::new(0));
        let p = progress.clone();
        let sleeper = spawn(move || {
            sleep(Duration::from_millis(50));
            p.load(Ordering::SeqCst)
        });
        let p = progress.clone();
        let worker = spawn(move || {
            for _ in 0..100 {
                p.fetch_add(1, Ordering::SeqCst);
                fibra_runtime::yield_now();
            }
        });
        worker.join().unwrap();
        // The busy task finished its 100 steps while the other slept.
        assert_eq!(sleeper.join().unwrap(), 100);
    });
}

#[test]
fn ten_thousand_sleepers_all_wake() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let woke = rt.run(|| {
        let handles: Vec<_> = (0..10_000u64)
            .map(|i| {
                spawn(move || {
                    let d = Duration::from_micros(100 * (i % 50));
                    let start = Instant::now();
                    sleep(d);
                    start.elapsed() >= d
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count()
    });
    assert_eq!(woke, 10_000);
}

#[test]
fn sleep_future_on_a_plain_thread() {
    let start = Instant::now();
    fibra_runtime::block_on(Sleep::new(Duration::from_millis(10)));
    assert!(start.elapsed() >= Duration::from_millis(10));
}

#[test]
fn sleep_future_in_an_async_task() {
    fibra_runtime::run(|| {
        let h = fibra_runtime::spawn_async(async {
            let start = Instant::now();
            Sleep::new(Duration::from_millis(5)).await;
            start.elapsed()
        });
        assert!(h.join().unwrap() >= Duration::from_millis(5));
    });
}

#[test]
fn dropped_sleeps_do_not_fire() {
    struct Count(AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fibra_runtime::run(|| {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let mut kept = Sleep::new(Duration::from_millis(1));
        let mut dropped = Sleep::new(Duration::from_millis(1));
        assert!(std::future::Future::poll(std::pin::Pin::new(&mut kept), &mut cx).is_pending());
        assert!(std::future::Future::poll(std::pin::Pin::new(&mut dropped), &mut cx).is_pending());
        drop(dropped);
        sleep(Duration::from_millis(5));
        // Only the armed sleep woke its waker.
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(kept.is_elapsed());
    });
}
