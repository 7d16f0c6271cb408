//! Unreachable objects' fields are dropped exactly once, on the finalizer
//! thread after the cycle that found them dead, and destructors that call
//! back into the collector do not deadlock it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fibra_gc::{Gc, GcCell, Trace};

/// Counts its drops (a field with a destructor of its own).
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Calls into the collector from its destructor.
struct Reentrant;

impl Drop for Reentrant {
    fn drop(&mut self) {
        fibra_gc::collect();
        let g = Gc::new(1u64);
        assert_eq!(*g, 1);
    }
}

#[derive(Trace)]
struct Holder {
    next: GcCell<Option<Gc<Holder>>>,
    #[trace(skip)]
    _counted: Counted,
}

#[derive(Trace)]
struct Noisy {
    #[trace(skip)]
    _reentrant: Reentrant,
}

/// Waits (at most 10 s) until `count` reaches `want`, collecting so that
/// destructed zombies are freed; returns the final count.
fn wait_for_drops(count: &AtomicUsize, want: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count.load(Ordering::SeqCst) < want && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // No destructor runs twice, however many cycles follow.
    fibra_gc::collect();
    fibra_gc::collect();
    count.load(Ordering::SeqCst)
}

#[test]
fn destructors_of_garbage_run_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let keep = Gc::new(Holder {
            next: GcCell::new(None),
            _counted: Counted(drops.clone()),
        });
        for _ in 0..1000 {
            let a = Gc::new(Holder {
                next: GcCell::new(None),
                _counted: Counted(drops.clone()),
            });
            let b = Gc::new(Holder {
                next: GcCell::new(Some(a.clone())),
                _counted: Counted(drops.clone()),
            });
            a.next.set(Some(b)); // a garbage cycle
        }
        fibra_gc::collect();
        assert_eq!(wait_for_drops(&drops, 2000), 2000);
        drop(keep);
    }
    fibra_gc::collect();
    assert_eq!(wait_for_drops(&drops, 2001), 2001);
}

#[test]
fn destructors_may_allocate_and_collect() {
    for _ in 0..100 {
        drop(Gc::new(Noisy {
            _reentrant: Reentrant,
        }));
    }
    fibra_gc::collect();
    fibra_gc::collect();
    // Garbage made by the destructors themselves goes in later cycles.
    fibra_gc::collect();
}

#[test]
fn cleanups_run_for_dead_objects_only() {
    let ran = Arc::new(AtomicUsize::new(0));
    let live = Gc::new(Holder {
        next: GcCell::new(None),
        _counted: Counted(Arc::new(AtomicUsize::new(0))),
    });
    let r = ran.clone();
    Gc::add_cleanup(&live, move || {
        r.fetch_add(1000, Ordering::SeqCst);
    });
    for _ in 0..50 {
        let a = Gc::new(Holder {
            next: GcCell::new(None),
            _counted: Counted(Arc::new(AtomicUsize::new(0))),
        });
        a.next.set(Some(a.clone())); // a self-cycle
        let r = ran.clone();
        Gc::add_cleanup(&a, move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
    }
    fibra_gc::collect();
    fibra_gc::collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ran.load(Ordering::SeqCst) < 50 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(ran.load(Ordering::SeqCst), 50);
    assert!(live.next.get().is_none());
}
