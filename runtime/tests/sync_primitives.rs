//! `RwLock`, `Condvar`, `WaitGroup` and `Semaphore` from green threads
//! (1 and 2 workers), OS threads and async tasks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibra_runtime::sync::{Condvar, Mutex, RwLock, Semaphore, WaitGroup};
use fibra_runtime::Runtime;

fn runtimes() -> impl Iterator<Item = Runtime> {
    [1, 2]
        .into_iter()
        .map(|w| Runtime::builder().workers(w).build().unwrap())
}

#[test]
fn rwlock_readers_share_writers_exclude() {
    for rt in runtimes() {
        rt.run(|| {
            let lock = Arc::new(RwLock::new((0u64, 0u64)));
            let readers_in = Arc::new(AtomicUsize::new(0));
            let max_readers = Arc::new(AtomicUsize::new(0));
            let mut hs = Vec::new();
            for i in 0..8 {
                let (lock, rin, maxr) = (lock.clone(), readers_in.clone(), max_readers.clone());
                hs.push(fibra_runtime::spawn(move || {
                    for j in 0..500 {
                        if (i + j) % 4 == 0 {
                            let mut g = lock.write().unwrap();
                            assert_eq!(rin.load(Ordering::SeqCst), 0, "writer with readers");
                            g.0 += 1;
                            fibra_runtime::yield_now();
                            g.1 += 1;
                        } else {
                            let g = lock.read().unwrap();
                            let n = rin.fetch_add(1, Ordering::SeqCst) + 1;
                            maxr.fetch_max(n, Ordering::SeqCst);
                            assert_eq!(g.0, g.1, "torn write seen");
                            fibra_runtime::yield_now();
                            rin.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                }));
            }
            hs.into_iter().for_each(|h| h.join().unwrap());
            let g = lock.read().unwrap();
            assert_eq!(g.0, 1000);
            assert_eq!(g.0, g.1);
            assert!(
                max_readers.load(Ordering::SeqCst) > 1,
                "readers never overlapped"
            );
        });
    }
}

#[test]
fn rwlock_queued_writer_blocks_new_readers() {
    Runtime::builder().workers(1).build().unwrap().run(|| {
        let lock = Arc::new(RwLock::new(0));
        let r = lock.read().unwrap();
        let w = {
            let lock = lock.clone();
            fibra_runtime::spawn(move || *lock.write().unwrap() = 1)
        };
        fibra_runtime::time::sleep(Duration::from_millis(5));
        assert!(
            lock.try_read().is_err(),
            "a queued writer must block new readers"
        );
        drop(r);
        w.join().unwrap();
        assert_eq!(*lock.read().unwrap(), 1);
    });
}

#[test]
fn condvar_signals_between_green_and_os_threads() {
    for rt in runtimes() {
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        let p2 = pair.clone();
        // An OS thread produces, green threads consume.
        let producer = std::thread::spawn(move || {
            for _ in 0..200 {
                let (m, cv) = &*p2;
                *m.lock().unwrap() += 1;
                cv.notify_one();
                std::thread::yield_now();
            }
        });
        let p3 = pair.clone();
        let consumed = rt.run(move || {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let p = p3.clone();
                    fibra_runtime::spawn(move || {
                        let (m, cv) = &*p;
                        let mut got = 0;
                        loop {
                            let g = m.lock().unwrap();
                            let (mut g, r) = cv
                                .wait_timeout_while_compat(g, Duration::from_millis(50))
                                .unwrap();
                            if *g > 0 {
                                *g -= 1;
                                got += 1;
                            } else if r {
                                return got;
                            }
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
        });
        producer.join().unwrap();
        let left = *pair.0.lock().unwrap();
        assert_eq!(consumed + left, 200);
    }
}

/// `wait_timeout` until the counter is positive; returns whether it timed out.
trait WaitCompat {
    fn wait_timeout_while_compat<'a>(
        &self,
        g: fibra_runtime::sync::MutexGuard<'a, u32>,
        d: Duration,
    ) -> Result<(fibra_runtime::sync::MutexGuard<'a, u32>, bool), ()>;
}

impl WaitCompat for Condvar {
    fn wait_timeout_while_compat<'a>(
        &self,
        mut g: fibra_runtime::sync::MutexGuard<'a, u32>,
        d: Duration,
    ) -> Result<(fibra_runtime::sync::MutexGuard<'a, u32>, bool), ()> {
        let deadline = std::time::Instant::now() + d;
        while *g == 0 {
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok((g, true));
            }
            let (g2, _) = self.wait_timeout(g, deadline - now).map_err(|_| ())?;
            g = g2;
        }
        Ok((g, false))
    }
}

#[test]
fn condvar_notify_all_wakes_everyone() {
    for rt in runtimes() {
        rt.run(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let hs: Vec<_> = (0..10)
                .map(|_| {
                    let p = pair.clone();
                    fibra_runtime::spawn(move || {
                        let g = p.1.wait_while(p.0.lock().unwrap(), |go| !*go).unwrap();
                        assert!(*g);
                    })
                })
                .collect();
            fibra_runtime::time::sleep(Duration::from_millis(5));
            *pair.0.lock().unwrap() = true;
            pair.1.notify_all();
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
    }
}

#[test]
fn condvar_timeout_reports_and_leaves_no_waiter() {
    Runtime::builder().workers(1).build().unwrap().run(|| {
        let (m, cv) = (Mutex::new(()), Condvar::new());
        let (g, r) = cv
            .wait_timeout(m.lock().unwrap(), Duration::from_millis(5))
            .unwrap();
        assert!(r.timed_out());
        drop(g);
        cv.notify_one(); // nobody is queued any more: a no-op
        assert!(m.try_lock().is_ok(), "the mutex was relocked and released");
    });
}

#[test]
fn waitgroup_waits_for_all() {
    for rt in runtimes() {
        rt.run(|| {
            let wg = Arc::new(WaitGroup::new());
            let done = Arc::new(AtomicUsize::new(0));
            for i in 0..50 {
                wg.add(1);
                let (wg, done) = (wg.clone(), done.clone());
                fibra_runtime::spawn(move || {
                    if i % 3 == 0 {
                        fibra_runtime::time::sleep(Duration::from_millis(1));
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                });
            }
            // Several waiters, including an async one and an OS thread.
            let w2 = {
                let wg = wg.clone();
                fibra_runtime::spawn(move || wg.wait())
            };
            let w3 = {
                let wg = wg.clone();
                fibra_runtime::spawn_async(async move { wg.wait_async().await })
            };
            let w4 = {
                let wg = wg.clone();
                std::thread::spawn(move || wg.wait())
            };
            wg.wait();
            assert_eq!(done.load(Ordering::SeqCst), 50);
            w2.join().unwrap();
            w3.join().unwrap();
            w4.join().unwrap();
        });
    }
}

#[test]
#[should_panic(expected = "negative WaitGroup counter")]
fn waitgroup_negative_counter_panics() {
    WaitGroup::new().done();
}

#[test]
fn semaphore_bounds_concurrency() {
    for rt in runtimes() {
        rt.run(|| {
            let sem = Arc::new(Semaphore::new(3));
            let inside = Arc::new(AtomicUsize::new(0));
            let max = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..20)
                .map(|_| {
                    let (sem, inside, max) = (sem.clone(), inside.clone(), max.clone());
                    fibra_runtime::spawn(move || {
                        for _ in 0..20 {
                            let _p = sem.acquire();
                            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(n, Ordering::SeqCst);
                            fibra_runtime::yield_now();
                            inside.fetch_sub(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert!(max.load(Ordering::SeqCst) <= 3);
            assert_eq!(sem.available_permits(), 3);
        });
    }
}

#[test]
fn semaphore_is_fifo_for_large_requests() {
    Runtime::builder().workers(1).build().unwrap().run(|| {
        let sem = Arc::new(Semaphore::new(2));
        let p = sem.acquire_many(2);
        let big = {
            let sem = sem.clone();
            fibra_runtime::spawn(move || sem.acquire_many(2).forget())
        };
        fibra_runtime::time::sleep(Duration::from_millis(2));
        // A small request behind the big one must not overtake it.
        assert!(sem.try_acquire().is_none());
        drop(p);
        big.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
    });
}

#[test]
fn semaphore_timeout_returns_nothing_and_keeps_count() {
    let sem = Semaphore::new(1);
    let p = sem.acquire();
    assert!(sem.acquire_timeout(Duration::from_millis(5)).is_none());
    drop(p);
    assert_eq!(sem.available_permits(), 1);
    let p = fibra_runtime::block_on(sem.acquire_async());
    assert_eq!(p.num_permits(), 1);
}
