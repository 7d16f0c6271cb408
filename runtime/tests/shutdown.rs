//! Shutdown: remaining tasks are cancelled, their stacks unwound (so their
//! destructors run), their join handles resolve as cancelled, and nothing
//! leaks, down to a runtime shut down with 100,000 parked green threads
//! (every destructor runs, every join handle resolves, and every stack goes
//! back to the process-wide stack counters).
//!
//! The tests here take `one_at_a_time()` first: the leak checks read the
//! process-wide stack counters, which a concurrent test would move.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fibra_runtime::{spawn, Runtime};

struct CountOnDrop(Arc<AtomicUsize>);
impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Serializes this binary's tests (see the module docs).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn run_cancels_parked_tasks_and_runs_their_destructors() {
    let _serial = one_at_a_time();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let handles = fibra_runtime::run(move || {
        (0..1000)
            .map(|_| {
                let guard = CountOnDrop(d.clone());
                spawn(move || {
                    let _guard = guard;
                    fibra_runtime::time::sleep(Duration::from_secs(3600));
                })
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 1000);
    for h in handles {
        assert!(h.join().unwrap_err().is_cancelled());
    }
}

#[test]
fn unstarted_tasks_are_cancelled_too() {
    let _serial = one_at_a_time();
    let dropped = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().workers(1).build().unwrap();
    let d = dropped.clone();
    let handles = rt.run(move || {
        // The main task never yields, so none of these starts before
        // shutdown.
        (0..100)
            .map(|_| {
                let guard = CountOnDrop(d.clone());
                spawn(move || drop(guard))
            })
            .collect::<Vec<_>>()
    });
    drop(rt);
    let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    // Each closure either ran (dropping its guard) or was cancelled
    // (dropping it too).
    assert_eq!(dropped.load(Ordering::SeqCst), 100);
    assert!(results
        .iter()
        .all(|r| r.is_ok() || r.as_ref().unwrap_err().is_cancelled()));
}

#[test]
fn runtime_run_leaves_other_tasks_running() {
    let _serial = one_at_a_time();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let counter = Arc::new(AtomicUsize::new(0));
    let c = counter.clone();
    let background = rt.run(move || {
        spawn(move || {
            for _ in 0..50 {
                c.fetch_add(1, Ordering::SeqCst);
                fibra_runtime::time::sleep(Duration::from_millis(1));
            }
        })
    });
    background.join().unwrap();
    assert_eq!(counter.load(Ordering::SeqCst), 50);
}

#[test]
fn async_tasks_waiting_forever_are_cancelled() {
    let _serial = one_at_a_time();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let handles = fibra_runtime::run(move || {
        (0..100)
            .map(|_| {
                let guard = CountOnDrop(d.clone());
                fibra_runtime::spawn_async(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                })
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 100);
    assert!(handles
        .into_iter()
        .all(|h| h.join().unwrap_err().is_cancelled()));
}

#[test]
fn repeated_runs_do_not_leak_stacks() {
    let _serial = one_at_a_time();
    fibra_runtime::run(|| tree_of_sleepers(3));
    let before = fibra_runtime::stack::stats();
    for _ in 0..20 {
        fibra_runtime::run(|| tree_of_sleepers(3));
    }
    let after = fibra_runtime::stack::stats();
    // Allow some slack, but twenty
    // runtimes must not each leave stacks mapped.
    assert!(
        after.in_use <= before.in_use + 64,
        "stacks in use grew from {} to {}",
        before.in_use,
        after.in_use
    );
}

fn tree_of_sleepers(depth: u32) {
    if depth == 0 {
        fibra_runtime::time::sleep(Duration::from_secs(3600));
        return;
    }
    for _ in 0..4 {
        drop(spawn(move || tree_of_sleepers(depth - 1)));
    }
    fibra_runtime::yield_now();
}

/// Tasks to park; `FIBRA_FAULT_TASKS` lowers it (the memory-checking
/// script does, since Valgrind runs the whole process on one core).
fn tasks() -> usize {
    std::env::var("FIBRA_FAULT_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

#[test]
fn shutdown_with_100k_parked_tasks_runs_every_destructor_and_frees_every_stack() {
    let _serial = one_at_a_time();
    let n = tasks();
    let before = fibra_runtime::stack::stats();
    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (d, s) = (drops.clone(), started.clone());
    let handles = rt.run(move || {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (guard, s) = (CountOnDrop(d.clone()), s.clone());
                spawn(move || {
                    let _guard = guard;
                    s.fetch_add(1, Ordering::SeqCst);
                    // Three ways to be parked: a long timer, parked on a
                    // join that never completes, and yielded-then-sleeping.
                    match i % 3 {
                        0 => fibra_runtime::time::sleep(Duration::from_secs(3600)),
                        1 => {
                            let forever =
                                spawn(|| fibra_runtime::time::sleep(Duration::from_secs(3600)));
                            let _ = forever.join();
                        }
                        _ => {
                            fibra_runtime::yield_now();
                            fibra_runtime::time::sleep(Duration::from_secs(3600));
                        }
                    }
                })
            })
            .collect();
        while s.load(Ordering::SeqCst) < n {
            fibra_runtime::time::sleep(Duration::from_millis(5));
        }
        handles
    });
    assert_eq!(started.load(Ordering::SeqCst), n);
    let parked = fibra_runtime::stack::stats();
    assert!(
        parked.in_use >= before.in_use + n,
        "{} stacks in use with {n} parked tasks",
        parked.in_use
    );
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), n, "destructors run");
    let after = fibra_runtime::stack::stats();
    assert_eq!(
        after.in_use, before.in_use,
        "stacks still in use after shutdown: {after:?}"
    );
    assert_eq!(after.segments, before.segments, "{after:?}");
    for h in handles {
        assert!(h.join().unwrap_err().is_cancelled());
    }
}
