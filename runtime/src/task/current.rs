//! The task running on this thread: set by whoever runs a task (a worker,
//! the blocking pool), read by the wait path and the stack guards.
//!
//! Only the runtime sets it, around each resume or poll; a started green
//! thread never leaves its worker, so it always describes the thread the
//! code actually runs on.

use std::cell::Cell;

use super::Task;

thread_local! {
    /// The task this thread is running right now (green or async).
    static TASK: Cell<*const Task> = const { Cell::new(std::ptr::null()) };
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
