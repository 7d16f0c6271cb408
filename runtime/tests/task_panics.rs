//! Panics are caught per task, reported through the join handle, and never
//! take a worker down; the same holds for panics in destructors (on a
//! task's normal exit and while shutdown cancels it) and in futures driven
//! by `block_on`: each is reported to whoever waits, takes no worker, no
//! runtime and not the process down, and does not stop the other
//! destructors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibra_runtime::{spawn, Runtime};

#[test]
fn panic_is_reported_through_join() {
    fibra_runtime::run(|| {
        let err = spawn(|| -> u32 { panic!("task failed on purpose") })
            .join()
            .unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert!(err.to_string().contains("task failed on purpose"), "{err}");
        let payload = err.into_panic();
        assert_eq!(
            *payload.downcast::<&str>().unwrap(),
            "task failed on purpose"
        );
    });
}

#[test]
fn workers_survive_panicking_tasks() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let ok = rt.run(|| {
        let bad: Vec<_> = (0..100)
            .map(|i| spawn(move || -> u32 { panic!("bad {i}") }))
            .collect();
        let good: Vec<_> = (0..100u32).map(|i| spawn(move || i)).collect();
        assert!(bad.into_iter().all(|h| h.join().unwrap_err().is_panic()));
        good.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
    });
    assert_eq!(ok, 4950);
    // And the runtime still works afterwards.
    assert_eq!(rt.run(|| spawn(|| 1).join().unwrap()), 1);
}

#[test]
fn detached_panicking_task_does_not_disturb_others() {
    fibra_runtime::run(|| {
        drop(spawn(|| panic!("nobody joins me")));
        for _ in 0..10 {
            fibra_runtime::yield_now();
        }
        assert_eq!(spawn(|| 3).join().unwrap(), 3);
    });
}

#[test]
fn panic_in_main_resumes_on_the_caller() {
    let result = std::panic::catch_unwind(|| fibra_runtime::run(|| panic!("main fails")));
    let payload = result.unwrap_err();
    assert_eq!(*payload.downcast::<&str>().unwrap(), "main fails");
}

#[test]
fn spawn_outside_a_runtime_panics_with_guidance() {
    let payload = std::panic::catch_unwind(|| drop(spawn(|| ()))).unwrap_err();
    let msg = payload.downcast::<String>().unwrap();
    assert!(msg.contains("fibra::run"), "{msg}");
}

#[test]
fn builder_spawn_outside_a_runtime_is_an_error() {
    let err = fibra_runtime::task::Builder::new()
        .spawn(|| ())
        .unwrap_err();
    assert!(err.to_string().contains("fibra::run"), "{err}");
}

#[test]
fn zero_workers_is_an_error() {
    let err = Runtime::builder().workers(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn async_task_panic_is_reported() {
    fibra_runtime::run(|| {
        let err = fibra_runtime::spawn_async(async { panic!("async boom") })
            .join()
            .unwrap_err();
        assert!(err.is_panic());
    });
}

// Fault injection: destructors and futures that panic.

/// Counts its drops.
struct CountOnDrop(Arc<AtomicUsize>);
impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counts its drops, then panics (unless the thread is already unwinding,
/// which would abort the process, as in any Rust program).
struct PanicOnDrop(Arc<AtomicUsize>);
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if !std::thread::panicking() {
            panic!("drop failed on purpose");
        }
    }
}

/// Pending forever, and panics when dropped.
struct PanickyPending(Arc<AtomicUsize>);
impl std::future::Future for PanickyPending {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}
impl Drop for PanickyPending {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if !std::thread::panicking() {
            panic!("future drop failed on purpose");
        }
    }
}

#[test]
fn a_panicking_drop_at_task_exit_is_reported_through_join() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    rt.run(move || {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let (p, c) = (PanicOnDrop(d.clone()), CountOnDrop(d.clone()));
                spawn(move || {
                    let _c = c;
                    let _p = p;
                    fibra_runtime::yield_now();
                    7u32
                })
            })
            .collect();
        for h in handles {
            let err = h.join().unwrap_err();
            assert!(err.is_panic(), "{err}");
            assert!(err.to_string().contains("drop failed on purpose"), "{err}");
        }
    });
    // Both locals of every task dropped: the panic in the first did not
    // skip the second.
    assert_eq!(drops.load(Ordering::SeqCst), 100);
    // The workers survived.
    assert_eq!(rt.run(|| spawn(|| 1).join().unwrap()), 1);
}

#[test]
fn a_detached_output_whose_drop_panics_does_not_kill_the_worker() {
    // The output is dropped by whoever drops the join handle: here a
    // detached task's output, dropped by the runtime. It must not kill a
    // worker.
    let rt = Runtime::builder().workers(1).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    rt.run(move || {
        for _ in 0..20 {
            let d = d.clone();
            drop(spawn(move || PanicOnDrop(d)));
        }
        for _ in 0..20 {
            fibra_runtime::yield_now();
        }
        assert_eq!(spawn(|| 2).join().unwrap(), 2);
    });
    assert_eq!(rt.run(|| spawn(|| 3).join().unwrap()), 3);
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), 20);
}

#[test]
fn panicking_drops_during_shutdown_cancellation_do_not_stop_the_others() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let handles = rt.run(move || {
        let mut handles = Vec::new();
        for i in 0..200 {
            // The guards are made here and moved in, so they are dropped
            // whether or not the task started before shutdown.
            let c = CountOnDrop(d.clone());
            if i % 2 == 0 {
                let p = PanicOnDrop(d.clone());
                handles.push(spawn(move || {
                    let _c = c;
                    let _p = p;
                    fibra_runtime::time::sleep(Duration::from_secs(3600));
                }));
            } else {
                let p = PanickyPending(d.clone());
                handles.push(fibra_runtime::spawn_async(async move {
                    let _c = c;
                    p.await;
                }));
            }
        }
        // Let every task start and park.
        fibra_runtime::time::sleep(Duration::from_millis(50));
        handles
    });
    drop(rt);
    // Every destructor ran: two per task.
    assert_eq!(drops.load(Ordering::SeqCst), 400);
    for h in handles {
        assert!(h.is_finished());
        let err = h.join().unwrap_err();
        assert!(err.is_cancelled() || err.is_panic(), "{err}");
    }
    // And a new runtime works.
    assert_eq!(fibra_runtime::run(|| spawn(|| 4).join().unwrap()), 4);
}

#[test]
fn a_future_panicking_in_block_on_on_a_plain_thread_unwinds_to_the_caller() {
    let payload = std::panic::catch_unwind(|| {
        fibra_runtime::block_on(async {
            fibra_runtime::time::Sleep::new(Duration::from_millis(1)).await;
            panic!("future failed on purpose");
        })
    })
    .unwrap_err();
    assert_eq!(
        *payload.downcast::<&str>().unwrap(),
        "future failed on purpose"
    );
    // The thread's parker is still usable.
    assert_eq!(fibra_runtime::block_on(async { 5 }), 5);
}

#[test]
fn a_future_panicking_in_block_on_in_a_green_thread_fails_only_that_task() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let h = spawn(|| {
            fibra_runtime::block_on(async {
                fibra_runtime::time::Sleep::new(Duration::from_millis(1)).await;
                panic!("future failed on purpose");
            })
        });
        let err = h.join().unwrap_err();
        assert!(err.is_panic());
        assert!(
            err.to_string().contains("future failed on purpose"),
            "{err}"
        );
        // Caught inside the green thread, the panic unwinds only to the
        // catch, and the green thread keeps going.
        let caught = spawn(|| {
            let r = std::panic::catch_unwind(|| {
                fibra_runtime::block_on(async { panic!("inner") });
            });
            assert!(r.is_err());
            fibra_runtime::block_on(async { 6 })
        });
        assert_eq!(caught.join().unwrap(), 6);
    });
}

#[test]
fn a_future_panicking_in_runtime_block_on_unwinds_and_the_runtime_survives() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            fibra_runtime::time::Sleep::new(Duration::from_millis(1)).await;
            panic!("runtime future failed on purpose");
        })
    }))
    .unwrap_err();
    assert_eq!(
        *payload.downcast::<&str>().unwrap(),
        "runtime future failed on purpose"
    );
    assert_eq!(rt.block_on(async { 8 }), 8);
    assert_eq!(rt.run(|| spawn(|| 9).join().unwrap()), 9);
}
