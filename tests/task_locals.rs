//! `fibra::task_local!`: values per green thread and per async task, kept
//! across parks, never seen by another green thread on the same worker,
//! restored by nested scopes even when they unwind.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

fibra::task_local! {
    static ID: u64;
    static NAME: String;
    /// A counter each green thread increments in its own scope.
    pub static COUNTER: Cell<u32>;
}

#[test]
fn sixty_four_green_threads_keep_their_values_across_sleeps() {
    let rt = fibra::Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let handles: Vec<_> = (0..64u64)
            .map(|i| {
                fibra::spawn(move || {
                    ID.scope(i, || {
                        COUNTER.scope(Cell::new(0), || {
                            for round in 0..5 {
                                // Interleave with the others on both workers.
                                fibra::time::sleep(Duration::from_millis(1 + (i + round) % 3));
                                assert_eq!(ID.with(|v| *v), i);
                                COUNTER.with(|c| c.set(c.get() + 1));
                                fibra::yield_now();
                                assert_eq!(ID.with(|v| *v), i);
                            }
                            COUNTER.with(|c| c.get())
                        })
                    })
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 5);
        }
    });
}

#[test]
fn a_value_never_shows_through_to_another_green_thread_on_the_worker() {
    let rt = fibra::Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let (tx, rx) = fibra::chan::channel::<()>(0);
        let setter = fibra::spawn(move || {
            ID.scope(7, || {
                // Parked inside its scope while the other runs on this worker.
                tx.send(()).unwrap();
                fibra::time::sleep(Duration::from_millis(20));
                ID.with(|v| *v)
            })
        });
        let reader = fibra::spawn(move || {
            rx.recv().unwrap();
            ID.try_with(|v| *v)
        });
        assert!(reader.join().unwrap().is_err());
        assert_eq!(setter.join().unwrap(), 7);
        // Nor into a green thread spawned inside a scope.
        ID.scope(1, || {
            let child = fibra::spawn(|| ID.try_with(|v| *v).is_err());
            assert!(child.join().unwrap());
        });
    });
}

#[test]
fn nested_scopes_restore_the_outer_value_even_on_panic() {
    fibra::run(|| {
        NAME.scope("outer".to_string(), || {
            let r = catch_unwind(AssertUnwindSafe(|| {
                NAME.scope("inner".to_string(), || {
                    assert_eq!(NAME.with(|n| n.clone()), "inner");
                    fibra::yield_now();
                    panic!("unwinds through the inner scope");
                })
            }));
            assert!(r.is_err());
            assert_eq!(NAME.with(|n| n.clone()), "outer");
            NAME.scope("again".to_string(), || {
                assert_eq!(NAME.with(|n| n.clone()), "again")
            });
            assert_eq!(NAME.with(|n| n.clone()), "outer");
        });
        assert!(NAME.try_with(|_| ()).is_err());
    });
}

#[test]
fn with_outside_any_scope_panics_clearly() {
    let r = catch_unwind(|| ID.with(|v| *v));
    let payload = r.unwrap_err();
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("`ID`") && text.contains("scope"), "{text}");
    fibra::run(|| {
        let err = fibra::spawn(|| ID.with(|v| *v)).join().unwrap_err();
        assert!(err.to_string().contains("`ID`"), "{err}");
    });
}

#[test]
fn async_tasks_have_their_own_values_across_awaits() {
    let rt = fibra::Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let handles: Vec<_> = (0..32u64)
            .map(|i| {
                fibra::spawn_async(ID.scope_async(i, async move {
                    for _ in 0..3 {
                        fibra::time::Sleep::new(Duration::from_millis(1)).await;
                        assert_eq!(ID.with(|v| *v), i);
                    }
                    // A synchronous scope inside a poll shadows, then restores.
                    let inner = ID.scope(1000 + i, || ID.with(|v| *v));
                    assert_eq!(inner, 1000 + i);
                    ID.with(|v| *v)
                }))
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i as u64);
        }
        // Between polls nothing leaks to the green thread that spawned them.
        assert!(ID.try_with(|_| ()).is_err());
    });
}

#[test]
fn plain_threads_have_their_own_values() {
    let t = std::thread::spawn(|| ID.scope(5, || ID.with(|v| *v)));
    assert!(ID.try_with(|_| ()).is_err());
    assert_eq!(t.join().unwrap(), 5);
}
