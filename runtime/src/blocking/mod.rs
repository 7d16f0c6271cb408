//! `spawn_blocking`: runs a closure on a separate OS thread of the
//! runtime's blocking pool (`sched::blocking_pool`, which documents the
//! pool's protocol), so a blocking syscall, a C library call or a long
//! computation does not hold a worker.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::context;
use crate::task::{JoinHandle, Task};

/// Runs `f` on the current runtime's blocking pool and returns a handle to
/// its result. The calling green thread keeps running; `join` on the
/// handle parks it (not its worker) until `f` is done.
///
/// The pool has at most 512 threads by default
/// ([`Builder::max_blocking_threads`](crate::Builder::max_blocking_threads));
/// past that, jobs wait in a queue. Idle threads exit after 10 s. When the
/// runtime shuts down, jobs that have not started are cancelled; running
/// ones finish on their threads.
///
/// # Panics
///
/// Outside a runtime, like [`spawn`](crate::spawn).
///
/// ```
/// fibra::run(|| {
///     let h = fibra::spawn_blocking(|| {
///         std::thread::sleep(std::time::Duration::from_millis(5));
///         "done"
///     });
///     assert_eq!(h.join().unwrap(), "done");
/// });
/// ```
#[track_caller]
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let Some(shared) = context::current_runtime() else {
        panic!("{}", context::OUTSIDE_RUNTIME);
    };
    spawn_on(&shared, f)
}

pub(crate) fn spawn_on<F, T>(shared: &Arc<crate::sched::Shared>, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let task = Task::new_green(shared.clone(), None, 0, f);
    let handle = JoinHandle::new(task.clone());
    shared.blocking.submit(task);
    handle
}

/// Runs `f`, which may borrow from the caller, on the blocking pool and
/// waits for it: a green thread parks, any other thread just calls `f`.
///
/// Used for calls that may block for long (hostname resolution).
pub(crate) fn run_scoped<'a, F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'static,
{
    let shared = match context::current_runtime() {
        Some(shared) if crate::park::in_green_thread() => shared,
        _ => return f(),
    };
    let f: Box<dyn FnOnce() -> T + Send + 'a> = Box::new(f);
    // SAFETY: `f` may borrow from the caller's frame. This function does
    // not return, and does not let that frame unwind, before the job has
    // completed (run, or dropped unrun by a cancellation): the normal path
    // joins it, and `Wait` below blocks the OS thread until completion if
    // the green thread is unwound (cancelled at shutdown) while parked.
    let f: Box<dyn FnOnce() -> T + Send + 'static> = unsafe { std::mem::transmute(f) };
    let task = Task::new_green(shared.clone(), None, 0, f);
    let handle = JoinHandle::<T>::new(task.clone());
    shared.blocking.submit(task.clone());
    let guard = Wait(task);
    let mut handle = handle;
    let result = crate::park::wait_as(crate::park::record::WaitOn::Blocking, |cx| {
        std::pin::Pin::new(&mut handle).poll(cx)
    });
    // The job has completed (the handle was ready), so this returns at
    // once; dropping, not forgetting, the guard releases its task
    // reference (forgetting it leaked the task, and through it the
    // runtime's `Shared` with its poller descriptors).
    drop(guard);
    match result {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("fibra: a blocking call was cancelled: {e}"),
    }
}

/// Blocks the thread until a scoped job completes, if its caller unwinds.
struct Wait(Arc<Task>);

impl Drop for Wait {
    fn drop(&mut self) {
        while !self.0.state.is_complete() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_job_borrows_and_returns() {
        let data = [1u64, 2, 3];
        let sum = crate::run(|| run_scoped(|| data.iter().sum::<u64>()));
        assert_eq!(sum, 6);
    }

    #[test]
    fn pool_threads_are_bounded() {
        let rt = crate::Runtime::builder()
            .workers(1)
            .max_blocking_threads(2)
            .build()
            .unwrap();
        let max_seen = rt.run(|| {
            let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let max = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (running, max) = (running.clone(), max.clone());
                    spawn_blocking(move || {
                        let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        max.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(10));
                        running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            max.load(std::sync::atomic::Ordering::SeqCst)
        });
        assert_eq!(max_seen, 2);
    }
}
