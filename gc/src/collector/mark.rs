//! Collector-side marking: the root scan, split into per-span jobs that
//! assists share, and draining the grey objects until termination.
//!
//! # Marking and termination
//!
//! The collector thread holds a local mark stack; mutators shade into the
//! shared grey queue (`MarkState::grey`, from barriers) and assist inside
//! a mutator region: they claim root spans from the cycle's `RootJobs`
//! (the root scan reads one header per allocated object, so it is shared)
//! and scan objects from the grey queue. An allocation that finds the heap
//! 25% past its goal keeps assisting (or waits, if there is no work) for
//! at most `MAX_STALL` (see `assist`). The collector shares work into the
//! grey queue when its stack is deep. Objects whose `GcCell` was busy go
//! to a deferred list and are retried. An assist traces at most
//! `ASSIST_MAX_DEPTH` containers deep into one object (its stack may be a
//! green thread's); a deeper object goes to the deep queue
//! (`MarkState::deep`), which only the collector thread drains (its stack
//! is large). Marking across objects never recurses: edges go to explicit
//! stacks. Marking ends when the stack, both queues and the deferred list
//! are empty after a grace period (which waits for in-flight barriers and
//! assists): by the snapshot argument ("The barrier" in `collector`) no
//! later shade can find a white object.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_deque::{Injector, Steal};

use super::COLLECTOR;
use crate::heap::mark::MARK;
use crate::heap::object::Header;
use crate::heap::{self, span::Span, SpanRef};
use crate::mutator;
use crate::trace::{TraceMode, Tracer};

/// Collector-side marking: roots, then drain until termination. Returns
/// the number of objects scanned.
pub(super) fn mark() -> u64 {
    let marking = MARK.epoch.load(Ordering::Acquire);
    MARK.terminating.store(false, Ordering::SeqCst);
    let mut tracer = Tracer::new(TraceMode::Mark, marking);
    let mut deferred: Vec<*const Header> = Vec::new();
    let mut scanned = 0u64;
    // Roots: every allocated, unmarked object with a non-zero root count,
    // found span by span; assists take spans from the same list.
    let jobs = Arc::new(RootJobs {
        spans: heap::spans_in_use(),
        next: AtomicUsize::new(0),
    });
    *COLLECTOR.root_jobs.lock() = Some(jobs.clone());
    while let Some(span) = jobs.claim() {
        scan_roots(span, &mut tracer);
        scanned += drain(&mut tracer, &mut deferred, 4096);
    }
    loop {
        scanned += drain(&mut tracer, &mut deferred, usize::MAX);
        if !deferred.is_empty() {
            std::thread::sleep(Duration::from_micros(50));
            tracer.stack.append(&mut deferred);
            continue;
        }
        // Waits for barriers and assists (root jobs included) in flight;
        // regions that begin after it see `terminating` and make no grey
        // object (see `heap::weak`).
        MARK.terminating.store(true, Ordering::SeqCst);
        mutator::grace_period();
        if MARK.grey.is_empty() && MARK.deep.is_empty() && tracer.stack.is_empty() {
            *COLLECTOR.root_jobs.lock() = None;
            return scanned;
        }
        MARK.terminating.store(false, Ordering::SeqCst);
    }
}

/// The root spans of the current cycle, claimed one at a time by the
/// collector and by assists.
pub(super) struct RootJobs {
    spans: Vec<SpanRef>,
    next: AtomicUsize,
}

impl RootJobs {
    pub(super) fn claim(&self) -> Option<&'static Span> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.spans.get(i).map(|s| s.get())
    }
}

/// Shades the rooted, unmarked objects of `span`.
pub(super) fn scan_roots(span: &Span, tracer: &mut Tracer) {
    for w in 0..span.words() {
        let mut candidates = span.allocated_word(w) & !span.marked_word(w, tracer.epoch);
        while candidates != 0 {
            let slot = w * 64 + candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            let h = span.object(slot);
            // SAFETY: allocated slots hold initialised objects, and no
            // object is freed while marking.
            if unsafe { (*h).root_count() } > 0 {
                tracer.edge(h);
            }
        }
    }
}

/// Scans grey objects until the local stack and the grey queue are empty (or
/// `budget` objects were scanned); objects with busy cells go to
/// `deferred`.
pub(super) fn drain(tracer: &mut Tracer, deferred: &mut Vec<*const Header>, budget: usize) -> u64 {
    let mut scanned = 0;
    while (scanned as usize) < budget {
        let Some(h) = pop_grey(tracer).or_else(|| steal(&MARK.deep)) else {
            break;
        };
        scan(h, tracer, &mut |h| deferred.push(h));
        scanned += 1;
        // Share work so that assists find some.
        if scanned % 256 == 0 && tracer.stack.len() > 512 && MARK.grey.is_empty() {
            for h in tracer.stack.drain(..128) {
                MARK.grey.push(h as usize);
            }
        }
    }
    scanned
}

pub(super) fn pop_grey(tracer: &mut Tracer) -> Option<*const Header> {
    if let Some(h) = tracer.stack.pop() {
        return Some(h);
    }
    steal(&MARK.grey)
}

pub(super) fn steal(queue: &Injector<usize>) -> Option<*const Header> {
    loop {
        match queue.steal() {
            Steal::Success(h) => return Some(h as *const Header),
            Steal::Empty => return None,
            Steal::Retry => continue,
        }
    }
}

/// Scans one grey object; a busy `GcCell` defers it, a value nested too
/// deep for the tracer goes to the deep queue (rescanning is harmless: shading is
/// idempotent).
pub(super) fn scan(h: *const Header, tracer: &mut Tracer, defer: &mut dyn FnMut(*const Header)) {
    tracer.busy = false;
    tracer.too_deep = false;
    // SAFETY: grey objects are marked, allocated and initialised.
    let vtable = unsafe { (*h).vtable() };
    // SAFETY: as above; the vtable belongs to the object's type.
    unsafe { (vtable.trace)(h, tracer) };
    if tracer.too_deep {
        MARK.deep.push(h as usize);
    } else if tracer.busy {
        defer(h);
    }
}
