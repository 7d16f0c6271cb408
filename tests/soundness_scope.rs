//! `fibra::scope`: scoped green threads borrow from their caller and are
//! all joined before `scope` returns or unwinds - whether they are parked,
//! panicking, cancelled, leaked, nested, or the caller itself is being
//! cancelled or shut down. Borrowed values record their own drop, and
//! every scoped thread checks what it borrows is still alive; use after
//! free would also show under `scripts/memcheck.sh --asan-suite`, which
//! runs this file under AddressSanitizer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records events in order, shared between green threads.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, e: impl Into<String>) {
        self.0.lock().unwrap().push(e.into());
    }
    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A value owned by the scope's caller that scoped threads borrow; it
/// records its own drop, and whoever reads it checks it is still alive.
struct Owned {
    alive: AtomicBool,
    log: Log,
}

impl Owned {
    fn new(log: &Log) -> Owned {
        Owned {
            alive: AtomicBool::new(true),
            log: log.clone(),
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.alive.store(false, SeqCst);
        self.log.push("owner's value dropped");
    }
}

/// Runs `f` when dropped (also while unwinding).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[test]
fn scoped_threads_borrow_a_vec_and_mutate_its_parts() {
    let mut numbers: Vec<u64> = (1..=100).collect();
    let total = fibra::run(|| {
        fibra::scope(|s| {
            let handles: Vec<_> = numbers
                .chunks(10)
                .map(|chunk| s.spawn(move || chunk.iter().sum::<u64>()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        })
    });
    assert_eq!(total, 5050);
    fibra::run(|| {
        fibra::scope(|s| {
            for chunk in numbers.chunks_mut(7) {
                s.spawn(move || {
                    fibra::yield_now();
                    chunk.iter_mut().for_each(|n| *n *= 2);
                });
            }
        })
    });
    assert_eq!(numbers.iter().sum::<u64>(), 10100);
}

#[test]
fn parked_scoped_threads_finish_before_scope_returns() {
    let done = AtomicUsize::new(0);
    let mut notes = Vec::new();
    fibra::run(|| {
        fibra::scope(|s| {
            for i in 0..8u64 {
                let done = &done;
                s.spawn(move || {
                    fibra::time::sleep(Duration::from_millis(20 + i * 3));
                    done.fetch_add(1, SeqCst);
                });
            }
            s.spawn(|| {
                fibra::time::sleep(Duration::from_millis(30));
                notes.push("written after a park");
            });
            // The body returns while every scoped thread is asleep.
        });
        assert_eq!(done.load(SeqCst), 8);
    });
    assert_eq!(notes, ["written after a park"]);
}

#[test]
fn body_panic_waits_for_parked_threads_then_resumes() {
    let log = Log::default();
    let result = fibra::run(|| {
        catch_unwind(AssertUnwindSafe(|| {
            let owned = Owned::new(&log);
            let (tx, rx) = fibra::chan::channel::<()>(0);
            fibra::scope(|s| {
                s.spawn(|| {
                    // Woken when the body's unwind drops `tx`, so it reads
                    // `owned` only once the body is unwinding.
                    let _ = rx.recv();
                    fibra::time::sleep(Duration::from_millis(20));
                    log.push(format!("child read alive={}", owned.alive.load(SeqCst)));
                });
                let _tx = tx;
                panic!("the body panics");
            })
        }))
    });
    let payload = result.unwrap_err();
    assert_eq!(panic_text(&*payload), "the body panics");
    assert_eq!(
        log.events(),
        ["child read alive=true", "owner's value dropped"]
    );
}

#[test]
fn unjoined_child_panic_propagates_and_a_joined_one_does_not() {
    fibra::run(|| {
        let sibling_done = AtomicBool::new(false);
        let result = catch_unwind(AssertUnwindSafe(|| {
            fibra::scope(|s| {
                s.spawn(|| panic!("child boom"));
                s.spawn(|| {
                    fibra::time::sleep(Duration::from_millis(20));
                    sibling_done.store(true, SeqCst);
                });
            })
        }));
        assert_eq!(panic_text(&*result.unwrap_err()), "child boom");
        assert!(sibling_done.load(SeqCst), "the sibling was joined first");

        let joined = fibra::scope(|s| {
            let h = s.spawn(|| panic!("handled"));
            let err = h.join().unwrap_err();
            assert!(err.is_panic());
            err.to_string()
        });
        assert!(joined.contains("handled"), "{joined}");
    });
}

#[test]
fn unjoined_result_is_dropped_before_scope_returns() {
    struct Borrowing<'a>(&'a AtomicBool);
    impl Drop for Borrowing<'_> {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let dropped = AtomicBool::new(false);
    fibra::run(|| {
        fibra::scope(|s| {
            // Dropped without a join; the result borrows from outside.
            drop(s.spawn(|| {
                fibra::time::sleep(Duration::from_millis(20));
                Borrowing(&dropped)
            }));
        });
        assert!(dropped.load(SeqCst));
    });
}

#[test]
fn forgotten_handle_neither_hangs_nor_frees_early() {
    let v = [1, 2, 3];
    let done = AtomicBool::new(false);
    fibra::run(|| {
        fibra::scope(|s| {
            let h = s.spawn(|| {
                fibra::time::sleep(Duration::from_millis(30));
                let n = v.len();
                done.store(true, SeqCst);
                vec![n; 4] // a result with heap memory, leaked with the handle
            });
            std::mem::forget(h);
        });
        assert!(done.load(SeqCst), "scope returned before the thread ended");
    });
}

#[test]
fn scoped_threads_spawn_scoped_threads_and_nest_scopes() {
    let count = AtomicUsize::new(0);
    fibra::run(|| {
        fibra::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..4 {
                        s.spawn(|| {
                            fibra::yield_now();
                            s.spawn(|| {
                                fibra::time::sleep(Duration::from_millis(5));
                                count.fetch_add(1, SeqCst);
                            });
                        });
                    }
                    // A scope inside a scoped thread.
                    fibra::scope(|inner| {
                        inner.spawn(|| count.fetch_add(100, SeqCst));
                    });
                });
            }
        });
        assert_eq!(count.load(SeqCst), 4 * 4 + 4 * 100);
    });
}

#[test]
fn cancelled_owner_cancels_its_scoped_threads_before_it_unwinds() {
    let log = Log::default();
    let (_keep_tx, rx) = fibra::chan::channel::<u8>(0);
    let rt = fibra::Runtime::builder().workers(2).build().unwrap();
    let owner = {
        let log = log.clone();
        rt.spawn(move || {
            let owned = Owned::new(&log);
            fibra::scope(|s| {
                s.spawn(|| {
                    let _unwound = OnDrop(|| {
                        log.push(format!("child unwound, alive={}", owned.alive.load(SeqCst)))
                    });
                    let _ = rx.recv(); // never sent: parks until cancelled
                });
            });
            log.push("scope returned (must not happen)");
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    owner.cancel();
    let err = owner.join().unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert_eq!(
        log.events(),
        ["child unwound, alive=true", "owner's value dropped"]
    );
}

#[test]
fn owner_cancelled_inside_the_body_still_joins_first() {
    let log = Log::default();
    let rt = fibra::Runtime::builder().workers(1).build().unwrap();
    let owner = {
        let log = log.clone();
        rt.spawn(move || {
            let owned = Owned::new(&log);
            fibra::scope(|s| {
                s.spawn(|| {
                    let _unwound = OnDrop(|| {
                        log.push(format!("child unwound, alive={}", owned.alive.load(SeqCst)))
                    });
                    fibra::time::sleep(Duration::from_secs(3600));
                });
                fibra::time::sleep(Duration::from_secs(3600)); // cancelled here
            });
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    owner.cancel();
    assert!(owner.join().unwrap_err().is_cancelled());
    assert_eq!(
        log.events(),
        ["child unwound, alive=true", "owner's value dropped"]
    );
}

#[test]
fn runtime_shutdown_with_an_open_scope_never_frees_borrowed_data_early() {
    let log = Log::default();
    let rt = fibra::Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = fibra::chan::channel::<u8>(0);
    let owner = {
        let log = log.clone();
        rt.spawn(move || {
            let owned = Owned::new(&log);
            fibra::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        let _unwound = OnDrop(|| {
                            log.push(format!("child unwound, alive={}", owned.alive.load(SeqCst)))
                        });
                        let _ = rx.recv();
                    });
                }
            });
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    drop(rt);
    drop(tx);
    assert!(owner.join().unwrap_err().is_cancelled());
    let events = log.events();
    let children: Vec<_> = events.iter().filter(|e| e.starts_with("child")).collect();
    assert_eq!(children.len(), 3, "{events:?}");
    assert!(
        children.iter().all(|e| e.ends_with("alive=true")),
        "{events:?}"
    );
    // The owner's value is dropped after every child, or never (its stack
    // was abandoned at shutdown).
    if let Some(pos) = events.iter().position(|e| e == "owner's value dropped") {
        assert_eq!(pos, events.len() - 1, "{events:?}");
    }
}

#[test]
fn deadlocked_scope_is_reported_after_its_threads_unwind() {
    let log = Log::default();
    let rt = fibra::Runtime::builder()
        .workers(1)
        .deadlock_grace(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        rt.run(|| {
            let owned = Owned::new(&log);
            let (_tx, rx) = fibra::chan::channel::<u8>(0);
            fibra::scope(|s| {
                s.spawn(|| {
                    let _unwound = OnDrop(|| {
                        log.push(format!("child unwound, alive={}", owned.alive.load(SeqCst)))
                    });
                    let _ = rx.recv();
                });
            });
        })
    }));
    let text = panic_text(&*result.unwrap_err());
    assert!(text.contains("deadlock"), "{text}");
    assert_eq!(
        log.events(),
        ["child unwound, alive=true", "owner's value dropped"]
    );
}

#[test]
fn plain_thread_inside_block_on_waits_for_its_scope() {
    let rt = fibra::Runtime::builder().workers(2).build().unwrap();
    let data = vec![3u32; 64];
    let sum = rt.block_on(async {
        fibra::scope(|s| {
            let hs: Vec<_> = data
                .chunks(16)
                .map(|c| {
                    s.spawn(move || {
                        fibra::time::sleep(Duration::from_millis(5));
                        c.iter().sum::<u32>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
        })
    });
    assert_eq!(sum, 192);
}

#[test]
fn plain_thread_without_runtime_gets_a_clear_panic() {
    let ran = AtomicBool::new(false);
    let result = catch_unwind(AssertUnwindSafe(|| {
        fibra::scope(|s| {
            ran.store(true, SeqCst);
            s.spawn(|| ());
        })
    }));
    assert!(ran.load(SeqCst));
    let text = panic_text(&*result.unwrap_err());
    assert!(text.contains("needs a fibra runtime"), "{text}");
}

#[test]
fn async_task_and_no_suspend_sections_are_refused_before_the_body() {
    fibra::run(|| {
        let h = fibra::spawn_async(async {
            fibra::scope(|_| -> () { unreachable!("the body must not run") });
        });
        let err = h.join().unwrap_err();
        assert!(err.to_string().contains("async task"), "{err}");

        let result = catch_unwind(|| {
            let _no_park = fibra::gc_seam::forbid_suspend("inside a test section");
            fibra::scope(|_| -> () { unreachable!("the body must not run") });
        });
        let text = panic_text(&*result.unwrap_err());
        assert!(text.contains("inside a test section"), "{text}");
    });
}

#[test]
fn cancelling_one_scoped_thread_runs_its_destructors() {
    let log = Log::default();
    fibra::run(|| {
        let (_tx, rx) = fibra::chan::channel::<u8>(0);
        fibra::scope(|s| {
            let h = s.spawn(|| {
                let _g = OnDrop(|| log.push("destructor ran"));
                rx.recv()
            });
            fibra::time::sleep(Duration::from_millis(10));
            h.cancel();
            assert!(h.join().unwrap_err().is_cancelled());
        });
    });
    assert_eq!(log.events(), ["destructor ran"]);
}

#[test]
fn stress_many_scopes_with_parking_threads() {
    let rt = fibra::Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let outer: Vec<_> = (0..16u64)
            .map(|k| {
                fibra::spawn(move || {
                    for round in 0..20u64 {
                        let mut cells = [0u64; 8];
                        fibra::scope(|s| {
                            for (i, cell) in cells.iter_mut().enumerate() {
                                s.spawn(move || {
                                    match (i as u64 + round + k) % 3 {
                                        0 => fibra::yield_now(),
                                        1 => fibra::time::sleep(Duration::from_micros(200)),
                                        _ => {}
                                    }
                                    *cell = i as u64 + 1;
                                });
                            }
                        });
                        assert_eq!(cells.iter().sum::<u64>(), 36);
                    }
                })
            })
            .collect();
        for h in outer {
            h.join().unwrap();
        }
    });
}
