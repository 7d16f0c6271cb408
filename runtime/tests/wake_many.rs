//! Waking many parked green threads at once (a channel closing, a
//! `Condvar::notify_all`, a `WaitGroup` reaching zero) reaches every one of
//! them on every worker, from inside the runtime and from outside it, and
//! a waker that panics in the middle of a broadcast does not strand the
//! green threads woken before it (their workers are still unparked).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use fibra_runtime::chan::channel;
use fibra_runtime::sync::{Condvar, Mutex, WaitGroup};

mod bounded;
use bounded::{runtime, within_a_minute};

#[test]
fn closing_a_channel_from_inside_wakes_every_green_thread_on_every_worker() {
    let woken = within_a_minute(|| {
        runtime(4).run(|| {
            let (tx, rx) = channel::<()>(0);
            let started = Arc::new(WaitGroup::new());
            let n = 20_000;
            started.add(n);
            let hs: Vec<_> = (0..n)
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
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&c| c)
                .count()
        })
    });
    assert_eq!(woken, 20_000);
}

#[test]
fn closing_a_channel_from_an_os_thread_wakes_every_green_thread() {
    let woken = within_a_minute(|| {
        let rt = runtime(3);
        let (tx, rx) = channel::<()>(0);
        let started = Arc::new(WaitGroup::new());
        let n = 5_000;
        started.add(n);
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let (rx, started) = (rx.clone(), started.clone());
                rt.spawn(move || {
                    started.done();
                    rx.recv().is_err()
                })
            })
            .collect();
        // Blocks this OS thread until every green thread started.
        started.wait();
        // Give them time to park and their workers time to fall asleep.
        std::thread::sleep(Duration::from_millis(50));
        drop(tx);
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&c| c)
            .count()
    });
    assert_eq!(woken, 5_000);
}

#[test]
fn notify_all_and_a_wait_group_release_every_waiter() {
    let released = within_a_minute(|| {
        runtime(3).run(|| {
            let n = 3_000;
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let gate = Arc::new(WaitGroup::new());
            gate.add(1);
            let counted = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..n)
                .map(|i| {
                    let (pair, gate, counted) = (pair.clone(), gate.clone(), counted.clone());
                    fibra_runtime::spawn(move || {
                        if i % 2 == 0 {
                            let (lock, cv) = &*pair;
                            let mut open = lock.lock().unwrap();
                            while !*open {
                                open = cv.wait(open).unwrap();
                            }
                        } else {
                            gate.wait();
                        }
                        counted.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for _ in 0..10 {
                fibra_runtime::yield_now();
            }
            *pair.0.lock().unwrap() = true;
            pair.1.notify_all();
            gate.done();
            for h in hs {
                h.join().unwrap();
            }
            counted.load(Ordering::SeqCst)
        })
    });
    assert_eq!(released, 3_000);
}

/// A waker that panics when woken.
struct Boom;

impl Wake for Boom {
    fn wake(self: Arc<Self>) {
        panic!("a waker that panics");
    }
}

#[test]
fn a_panicking_waker_in_a_broadcast_does_not_strand_the_other_waiters() {
    let done = within_a_minute(|| {
        runtime(2).run(|| {
            let n = 2_000;
            let gate = Arc::new(WaitGroup::new());
            gate.add(1);
            // The panicking waker queues first, so it is woken first.
            let waker = Waker::from(Arc::new(Boom));
            let mut fut = Box::pin(gate.wait_async());
            assert!(fut
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending());
            let hs: Vec<_> = (0..n)
                .map(|_| {
                    let gate = gate.clone();
                    fibra_runtime::spawn(move || gate.wait())
                })
                .collect();
            // Let them queue, and their workers fall asleep.
            for _ in 0..20 {
                fibra_runtime::yield_now();
            }
            std::thread::sleep(Duration::from_millis(20));
            let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gate.done()));
            assert!(panicked.is_err(), "the waker's panic reaches the caller");
            drop(fut);
            // Every green thread was woken despite the panic, and its
            // worker unparked although `done` unwound.
            hs.into_iter()
                .map(|h| h.join())
                .filter(Result::is_ok)
                .count()
        })
    });
    assert_eq!(done, 2_000);
}
