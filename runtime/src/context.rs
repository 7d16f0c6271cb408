//! Thread-local context: which worker this OS thread is, which task it is
//! running, and which runtime a plain thread has entered.
//!
//! Only runtime-owned thread-locals live here, and every access happens
//! inside runtime calls; a started green thread never leaves its worker, so
//! these always describe the thread the code actually runs on.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::sched::{Shared, Worker};
use crate::task::Task;

pub(crate) const OUTSIDE_RUNTIME: &str = "fibra: this call needs a fibra runtime, but none is \
     running on this thread: call it inside `fibra::run(|| ...)`, `Runtime::run`, \
     `Runtime::block_on` or a task they spawned, or use `Runtime::spawn` from outside";

thread_local! {
    /// The worker running on this thread, if it is a worker thread.
    static WORKER: Cell<*const Worker> = const { Cell::new(std::ptr::null()) };
    /// The task this thread is running right now (green or async).
    static TASK: Cell<*const Task> = const { Cell::new(std::ptr::null()) };
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

/// Marks `task` as the task running on this thread (null when none).
#[inline]
pub(crate) fn set_task(task: *const Task) -> *const Task {
    TASK.with(|c| c.replace(task))
}

/// Runs `f` with the running task, without touching its reference count.
#[inline]
pub(crate) fn with_task<R>(f: impl FnOnce(Option<&Task>) -> R) -> R {
    let ptr = TASK.with(|c| c.get());
    // SAFETY: `ptr` was obtained with `Arc::as_ptr` from an `Arc<Task>` the
    // worker keeps alive for as long as the pointer is set.
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
