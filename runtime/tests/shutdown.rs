//! Shutdown: remaining tasks are cancelled, their stacks unwound (so their
//! destructors run), their join handles resolve as cancelled, and nothing
//! leaks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibra_runtime::{spawn, Runtime};

struct CountOnDrop(Arc<AtomicUsize>);
impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn run_cancels_parked_tasks_and_runs_their_destructors() {
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
    fibra_runtime::run(|| tree_of_sleepers(3));
    let before = fibra_runtime::stack::stats();
    for _ in 0..20 {
        fibra_runtime::run(|| tree_of_sleepers(3));
    }
    let after = fibra_runtime::stack::stats();
    // Other tests in this binary run concurrently, so allow their stacks,
    // but twenty runtimes must not each leave stacks mapped.
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
