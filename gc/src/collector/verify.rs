//! Heap verification (`FIBRA_GC_TORTURE`): after marking, every root and
//! every child of a marked object must be marked.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::heap;
use crate::heap::mark::{self, MARK};
use crate::heap::object::Header;
use crate::trace::{TraceMode, Tracer};

/// Torture mode: checks that every rooted object and every child of a
/// marked object is marked (the tri-colour invariant at the end of
/// marking). Aborts the process on a violation.
pub(super) fn verify(cycle: u64) {
    let marking = MARK.epoch.load(Ordering::Acquire);
    let mut tracer = Tracer::new(TraceMode::Collect, marking);
    let mut checked = 0u64;
    for s in heap::spans_in_use() {
        let span = s.get();
        for w in 0..span.words() {
            let mut allocated = span.allocated_word(w);
            while allocated != 0 {
                let slot = w * 64 + allocated.trailing_zeros() as usize;
                allocated &= allocated - 1;
                let h = span.object(slot);
                let marked = span.is_marked(slot, marking);
                // SAFETY: allocated slots hold initialised objects.
                let roots = unsafe { (*h).root_count() };
                if roots > 0 && !marked {
                    violation(cycle, h, "a rooted object is not marked");
                }
                if !marked || span.class.noscan() {
                    continue;
                }
                checked += 1;
                let deadline = Instant::now() + Duration::from_millis(200);
                loop {
                    tracer.stack.clear();
                    tracer.busy = false;
                    // SAFETY: as above.
                    unsafe { ((*h).vtable().trace)(h, &mut tracer) };
                    if !tracer.busy || Instant::now() > deadline {
                        break;
                    }
                    std::thread::yield_now();
                }
                for &child in &tracer.stack {
                    if !mark::is_marked(child, marking) {
                        violation(cycle, child, "a child of a marked object is not marked");
                    }
                }
            }
        }
    }
    tracing::debug!(target: "fibra_gc", cycle, checked, "heap verified");
}

pub(super) fn violation(cycle: u64, h: *const Header, what: &str) -> ! {
    // SAFETY: `h` is an allocated object.
    let name = unsafe { ((*h).vtable().name)() };
    eprintln!("fibra_gc: heap verification failed in cycle {cycle}: {what} ({name} at {h:p})");
    std::process::abort()
}
