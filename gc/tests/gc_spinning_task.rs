//! Collection cycles complete while a task spins in a loop that never calls
//! the runtime (its worker is stopped by a preemption signal), and values
//! stored through `GcCell` by a busy mutator survive them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use fibra_gc::{Gc, GcCell};

/// Sets the flag on drop: a failed assertion must not leave a spinning
/// task behind for the runtime's shutdown to wait on.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

#[test]
fn cycles_complete_beside_a_spinning_task() {
    let rt = fibra_runtime::Runtime::builder()
        .workers(2)
        .build()
        .unwrap();
    let before = fibra_gc::stats();
    let (_, stopped_before) = fibra_runtime::debug::preemptions();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    let count = Arc::new(AtomicU64::new(0));
    // The spinner holds one worker for the whole test (started green
    // threads stay on their worker, so the test drives everything else
    // from this thread and the other worker).
    let spinner = {
        let (stop, count) = (stop.clone(), count.clone());
        rt.spawn(move || {
            while !stop.load(Relaxed) {
                count.fetch_add(1, Relaxed);
                std::hint::spin_loop();
            }
        })
    };
    while count.load(Relaxed) == 0 {
        std::thread::yield_now();
    }
    // A mutator storing fresh objects through a cell (barrier and
    // allocation regions, which refuse preemption) while cycles run.
    let cell = Gc::new(GcCell::new(Gc::new(0u64)));
    let mutator = {
        let (stop, cell) = (stop.clone(), cell.clone());
        rt.spawn(move || {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                n += 1;
                cell.set(Gc::new(n));
                assert_eq!(*cell.get(), n);
                if n.is_multiple_of(64) {
                    fibra_runtime::yield_now();
                }
            }
            n
        })
    };
    for _ in 0..10 {
        fibra_gc::collect();
    }
    stop.store(true, Relaxed);
    let stored = mutator.join().unwrap();
    assert_eq!(*cell.get(), stored, "the last stored value survived");
    spinner.join().unwrap();
    let after = fibra_gc::stats();
    assert!(after.cycles >= before.cycles + 10);
    let (_, stopped_after) = fibra_runtime::debug::preemptions();
    assert!(
        stopped_after > stopped_before,
        "no pause stopped the spinning task by a signal"
    );
}
