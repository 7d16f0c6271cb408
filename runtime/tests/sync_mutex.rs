//! `Mutex`: mutual exclusion across green threads (1 and 2 workers), OS
//! threads and async tasks; parking instead of blocking workers; fairness
//! (starvation hand-off); poisoning; cancellation.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibra_runtime::sync::Mutex;
use fibra_runtime::Runtime;

#[test]
fn counts_exactly_under_contention() {
    for workers in [1, 2] {
        let rt = Runtime::builder().workers(workers).build().unwrap();
        let m = Arc::new(Mutex::new(0u64));
        let os: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..5_000 {
                        *m.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        let m2 = m.clone();
        rt.run(move || {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let m = m2.clone();
                    fibra_runtime::spawn(move || {
                        for j in 0..5_000 {
                            let mut g = m.lock().unwrap();
                            let v = *g;
                            if j % 64 == i {
                                fibra_runtime::yield_now(); // hold it across a switch
                            }
                            *g = v + 1;
                        }
                    })
                })
                .collect();
            let a = fibra_runtime::spawn_async({
                let m = m2.clone();
                async move {
                    for _ in 0..5_000 {
                        *m.lock_async().await.unwrap() += 1;
                    }
                }
            });
            hs.into_iter().for_each(|h| h.join().unwrap());
            a.join().unwrap();
        });
        os.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*m.lock().unwrap(), 11 * 5_000);
    }
}

#[test]
fn waiting_parks_the_green_thread_not_the_worker() {
    // One worker: while the holder sleeps with the lock, a waiter parks and
    // an unrelated green thread still runs.
    Runtime::builder().workers(1).build().unwrap().run(|| {
        let m = Arc::new(Mutex::new(()));
        let ran = Arc::new(AtomicBool::new(false));
        let g = m.lock().unwrap();
        let waiter = {
            let m = m.clone();
            fibra_runtime::spawn(move || drop(m.lock().unwrap()))
        };
        let other = {
            let ran = ran.clone();
            fibra_runtime::spawn(move || ran.store(true, Ordering::SeqCst))
        };
        other.join().unwrap();
        assert!(ran.load(Ordering::SeqCst));
        fibra_runtime::time::sleep(Duration::from_millis(5));
        assert!(!waiter.is_finished());
        drop(g);
        waiter.join().unwrap();
    });
}

#[test]
fn long_waiter_is_not_starved() {
    // Two hogs re-lock in a tight loop on two workers; a third waiter must
    // still get the lock quickly thanks to the 1 ms hand-off.
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let m = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let hogs: Vec<_> = (0..2)
            .map(|_| {
                let (m, stop) = (m.clone(), stop.clone());
                fibra_runtime::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let mut g = m.lock().unwrap();
                        *g += 1;
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(20) {}
                        drop(g);
                    }
                })
            })
            .collect();
        fibra_runtime::time::sleep(Duration::from_millis(5));
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            drop(m.lock().unwrap());
            worst = worst.max(t.elapsed());
            fibra_runtime::time::sleep(Duration::from_micros(200));
        }
        stop.store(true, Ordering::Relaxed);
        hogs.into_iter().for_each(|h| h.join().unwrap());
        // Generous bound (shared CI machines): starvation would be seconds.
        assert!(worst < Duration::from_millis(500), "waited {worst:?}");
    });
}

#[test]
fn poisoning_like_std() {
    let m = Arc::new(Mutex::new(1));
    let m2 = m.clone();
    let r = std::thread::spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("boom");
    })
    .join();
    assert!(r.is_err());
    assert!(m.is_poisoned());
    let g = m.lock().unwrap_err().into_inner();
    assert_eq!(*g, 1);
    drop(g);
    m.clear_poison();
    assert!(m.lock().is_ok());

    // And from a green thread.
    Runtime::builder().workers(1).build().unwrap().run(|| {
        let m = Arc::new(Mutex::new(0));
        let m2 = m.clone();
        let h = fibra_runtime::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("boom in a green thread");
        });
        assert!(h.join().unwrap_err().is_panic());
        assert!(m.is_poisoned());
    });
}

#[test]
fn try_lock_and_get_mut() {
    let mut m = Mutex::new(String::from("a"));
    m.get_mut().unwrap().push('b');
    let g = m.try_lock().unwrap();
    assert!(m.try_lock().is_err());
    assert_eq!(*g, "ab");
    drop(g);
    assert_eq!(m.into_inner().unwrap(), "ab");
}

#[test]
fn cancelled_waiter_does_not_block_others() {
    // A green thread parked on the mutex is unwound at shutdown; the lock
    // must still work for everybody else afterwards.
    let m = Arc::new(Mutex::new(0));
    let g = m.lock().unwrap();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let m2 = m.clone();
    rt.spawn(move || *m2.lock().unwrap() += 100);
    std::thread::sleep(Duration::from_millis(20));
    drop(rt);
    drop(g);
    *m.lock().unwrap() += 1;
    assert_eq!(*m.lock().unwrap(), 1);
}

#[test]
fn dropped_lock_future_passes_the_wakeup_on() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};
    let m = Arc::new(Mutex::new(0));
    let g = m.lock().unwrap();
    let woke = Arc::new(AtomicUsize::new(0));
    struct W(Arc<AtomicUsize>);
    impl std::task::Wake for W {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let waker = Waker::from(Arc::new(W(woke.clone())));
    let mut cx = Context::from_waker(&waker);
    let mut first = Box::pin(m.lock_async());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    let m2 = m.clone();
    let second = std::thread::spawn(move || *m2.lock().unwrap() += 1);
    std::thread::sleep(Duration::from_millis(20));
    drop(g); // wakes `first`, which never runs again...
    drop(first); // ...and passes the wake-up on to `second`.
    second.join().unwrap();
    assert_eq!(*m.lock().unwrap(), 1);
    let _ = pin!(async {});
}
