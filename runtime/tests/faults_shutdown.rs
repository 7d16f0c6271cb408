//! Fault injection: shutting a runtime down with 100,000 parked green
//! threads. Every destructor runs, every join handle resolves, and every
//! stack goes back (no leak in the process-wide stack counters).
//!
//! Alone in its binary: it reads the process-wide stack counters.

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
