//! Thread-local context of the scheduler: which worker this OS thread is,
//! and which runtime a plain thread has entered. (Which task it runs is
//! `task::current`, below the scheduler.)
//!
//! Only runtime-owned thread-locals live here, and every access happens
//! inside runtime calls; a started green thread never leaves its worker, so
//! these always describe the thread the code actually runs on.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use super::{Shared, Worker};

pub(crate) const OUTSIDE_RUNTIME: &str = "fibra: this call needs a fibra runtime, but none is \
     running on this thread: call it inside `fibra::run(|| ...)`, `Runtime::run`, \
     `Runtime::block_on` or a task they spawned, or use `Runtime::spawn` from outside";

thread_local! {
    /// The worker running on this thread, if it is a worker thread.
    static WORKER: Cell<*const Worker> = const { Cell::new(std::ptr::null()) };
    /// The runtime a plain thread entered (`Runtime::block_on`).
    static ENTERED: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

/// Makes this thread the worker `w` until [`clear_worker`].
pub(crate) fn set_worker(w: &Worker) {
    WORKER.with(|c| c.set(w));
}

pub(crate) fn clear_worker() {
    WORKER.with(|c| c.set(std::ptr::null()));
}

/// Runs `f` with this thread's worker, if any.
#[inline]
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&Worker>) -> R) -> R {
    let ptr = WORKER.with(|c| c.get());
    // SAFETY: the pointer is set by the worker loop to a `Worker` that lives
    // on that loop's stack frame and is cleared before the frame ends; the
    // loop runs every task nested inside itself.
    f(unsafe { ptr.as_ref() })
}

/// The runtime of this thread: its worker's, or the one it entered.
pub(crate) fn current_runtime() -> Option<Arc<Shared>> {
    if let Some(shared) = with_worker(|w| w.map(|w| w.shared.clone())) {
        return Some(shared);
    }
    ENTERED.with(|e| e.borrow().clone())
}

/// Enters `shared` on a plain thread until the guard drops.
pub(crate) fn enter(shared: Arc<Shared>) -> EnterGuard {
    let prev = ENTERED.with(|e| e.borrow_mut().replace(shared));
    EnterGuard { prev }
}

pub(crate) struct EnterGuard {
    prev: Option<Arc<Shared>>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        ENTERED.with(|e| *e.borrow_mut() = prev);
    }
}
