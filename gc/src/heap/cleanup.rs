//! The finalizer thread: destructors of dead objects and cleanups (Go's
//! `runtime.AddCleanup`, the resurrection-free alternative to finalizers)
//! run here, never inside a sweep or on the collector thread.
//!
//! # Protocol
//!
//! A sweep that finds a dead object whose type has a destructor turns it
//! into a *zombie* (see `span::Span::sweep`: its slot stays allocated) and
//! collects a `Finalize` for it; a dead object with the header's `CLEANUP`
//! bit has its functions moved out of `Finalizers::registered`. After the
//! sweep has released its span (claim and `Heap::sweeping` count), it
//! `submit`s both as one `Job`. The finalizer thread runs each job's
//! destructors, then its cleanups; each destructor ends by marking its
//! zombie `DROPPED`, and the next sweep of the span frees the slot.
//!
//! # Why this cannot deadlock collection
//!
//! No cycle waits for the finalizer thread: sweeps only queue work, and a
//! zombie whose destructor has not finished is simply kept by later sweeps.
//! So a destructor may block (on a lock the thread calling `collect()`
//! holds, on a channel, by parking) or call `collect()` itself; collection
//! goes on, and the zombies wait. Nothing is resurrected: a destructor or a
//! cleanup owns no root to its object (a root would have kept it alive).

use std::collections::HashMap;

use parking_lot::{Condvar, Mutex};

use super::span::Finalize;

/// A cleanup function.
pub(crate) type Cleanup = Box<dyn FnOnce() + Send + 'static>;

/// Work for the finalizer thread from one sweep.
struct Job {
    /// Destructors, run first.
    finalize: Vec<Finalize>,
    /// Cleanups of the same sweep's dead objects, run after them.
    cleanups: Vec<Cleanup>,
}

// SAFETY: a `Finalize` refers to a zombie that only the finalizer thread
// touches (the sweep that made it handed it over), and the value's type is
// `Send` (`Gc::new` requires it).
unsafe impl Send for Job {}

/// The finalizer thread's state.
struct Finalizers {
    /// Cleanup functions by object address.
    registered: Mutex<Option<HashMap<usize, Vec<Cleanup>>>>,
    /// Jobs waiting for the finalizer thread.
    ready: Mutex<Vec<Job>>,
    /// The finalizer thread waits here for jobs.
    ready_cv: Condvar,
    /// Whether the finalizer thread was started.
    started: Mutex<bool>,
}

static FINALIZERS: Finalizers = Finalizers {
    registered: Mutex::new(None),
    ready: Mutex::new(Vec::new()),
    ready_cv: Condvar::new(),
    started: Mutex::new(false),
};

/// The finalizer thread's stack: dropping a value nested deep inside one
/// object (a long `Box` list) recurses in Rust's drop glue. Reserved, not
/// committed: only the pages a destructor touches become resident.
const FINALIZER_STACK: usize = 512 << 20;

/// Registers `f` for the object at `addr`.
pub(crate) fn register(addr: usize, f: Cleanup) {
    FINALIZERS
        .registered
        .lock()
        .get_or_insert_with(HashMap::new)
        .entry(addr)
        .or_default()
        .push(f);
}

/// Called by a sweep for a dead object whose header has `CLEANUP`: clears
/// its weak slot (see `weak`) and moves its functions to `out`.
pub(crate) fn object_died(addr: usize, out: &mut Vec<Cleanup>) {
    super::weak::object_died(addr);
    if let Some(fs) = FINALIZERS
        .registered
        .lock()
        .as_mut()
        .and_then(|m| m.remove(&addr))
    {
        out.extend(fs);
    }
}

/// Hands a sweep's destructors and cleanups to the finalizer thread
/// (called after the sweep released its span).
pub(crate) fn submit(finalize: Vec<Finalize>, cleanups: Vec<Cleanup>) {
    if finalize.is_empty() && cleanups.is_empty() {
        return;
    }
    FINALIZERS.ready.lock().push(Job { finalize, cleanups });
    FINALIZERS.ready_cv.notify_one();
    let mut started = FINALIZERS.started.lock();
    if !*started {
        let spawn = |stack: usize| {
            std::thread::Builder::new()
                .name("fibra-gc-finalizer".into())
                .stack_size(stack)
                .spawn(run_finalizers)
        };
        // Where address space or commit is tight, a default stack will do.
        match spawn(FINALIZER_STACK).or_else(|_| spawn(2 << 20)) {
            Ok(_) => *started = true,
            // The jobs wait (their zombies stay allocated); the next
            // submit tries again.
            Err(e) => {
                tracing::error!(target: "fibra_gc", "cannot start the finalizer thread ({e}); destructors of dead objects are postponed")
            }
        }
    }
}

fn run_finalizers() {
    loop {
        let batch = {
            let mut ready = FINALIZERS.ready.lock();
            while ready.is_empty() {
                FINALIZERS.ready_cv.wait(&mut ready);
            }
            std::mem::take(&mut *ready)
        };
        for job in batch {
            for f in job.finalize {
                // SAFETY: each `Finalize` comes from a sweep and is run once.
                unsafe { f.run() };
            }
            for f in job.cleanups {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
                    tracing::error!(target: "fibra_gc", "a cleanup function panicked");
                }
            }
        }
    }
}
