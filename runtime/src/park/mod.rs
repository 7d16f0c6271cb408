//! Parking: how any blocking operation waits, whoever calls it.
//!
//! Part of the task and wake core: it imports only `task`, the timer leaf
//! and its own pieces, the OS-thread [`parker`] (how a worker or a plain
//! thread sleeps) and the wait [`record`] (what a parked task waits on,
//! read by `debug`).
//!
//! Every fibra primitive that may wait (join, channels, locks, IO, timers)
//! is written as a poll function over a `std::task::Context` and handed to
//! [`wait`]. The waker it registers decides how waiting happens:
//!
//! - in a green thread, the waker is the task itself: `wait` suspends the
//!   coroutine (`Suspend::Park`) and the worker runs other tasks; a wake
//!   pushes the task back to its worker (see `task::state` for why no wake
//!   is lost between registering and suspending);
//! - on a plain OS thread, the waker unparks that thread;
//! - in an async task, a blocking call would stall the worker, so it panics
//!   and points to the `_async` form.
//!
//! Futures, channels, IO and timers therefore share one wake path.
//!
//! A green thread asked to cancel (`task::cancel`) starts unwinding where
//! it suspends: right before it parks, or when it resumes from a park or a
//! yield.

#[cfg_attr(loom, allow(unused_imports))]
use std::future::Future;
#[cfg_attr(loom, allow(unused_imports))]
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use std::sync::atomic::Ordering;

pub(crate) mod abort;
pub(crate) mod parker;
pub(crate) mod record;

use crate::task::{current, Kind, Suspend, Task};
#[cfg_attr(loom, allow(unused_imports))]
use crate::timer::Sleep;
use parker::{Parker, ThreadWaker};
use record::{WaitOn, BLOCKED_THREADS};

thread_local! {
    /// This OS thread's waker, reused by every blocking call it makes.
    static THREAD_WAKER: Arc<ThreadWaker> = Arc::new(ThreadWaker { parker: Parker::new() });
    /// Why a green thread on this thread must not suspend now (see
    /// [`forbid_suspend`]), or `None`.
    static NO_SUSPEND: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// While the returned guard lives, a green thread running on the calling
/// thread may not park or yield: a blocking fibra call or `yield_now`
/// panics with `why` before it registers anything. For sections that hold
/// a per-thread resource another green thread on the same worker could
/// wait for (fibra-gc's `GcCell` borrows: the cell's lock, and the
/// collector's per-thread count of held cells). Guards nest.
///
/// ```
/// let guard = fibra::gc_seam::forbid_suspend("inside a critical section");
/// drop(guard);
/// ```
#[doc(hidden)]
pub fn forbid_suspend(why: &'static str) -> NoSuspend {
    NoSuspend {
        prev: NO_SUSPEND.with(|c| c.replace(Some(why))),
        _not_send: std::marker::PhantomData,
    }
}

/// See [`forbid_suspend`].
#[doc(hidden)]
pub struct NoSuspend {
    prev: Option<&'static str>,
    /// Restores the thread-local of the thread that made it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for NoSuspend {
    fn drop(&mut self) {
        NO_SUSPEND.with(|c| c.set(self.prev));
    }
}

/// Why a green thread on this thread may not suspend now, if it may not
/// (see [`forbid_suspend`]).
#[inline]
pub(crate) fn suspend_forbidden() -> Option<&'static str> {
    NO_SUSPEND.with(|c| c.get())
}

/// Panics if the calling green thread may not suspend (see
/// [`forbid_suspend`]).
#[inline]
#[track_caller]
fn check_may_suspend() {
    if let Some(why) = suspend_forbidden() {
        suspend_forbidden_panic(why);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn suspend_forbidden_panic(why: &str) -> ! {
    panic!("fibra: a green thread cannot park or yield {why}");
}

/// Blocks until `poll` returns `Ready`: parks the green thread, or blocks
/// the OS thread. `poll` must register the context's waker whenever it
/// returns `Pending`. The wait is recorded as waiting on a future; prefer
/// [`wait_as`].
#[track_caller]
#[allow(dead_code)]
pub(crate) fn wait<R>(poll: impl FnMut(&mut Context<'_>) -> Poll<R>) -> R {
    wait_as(WaitOn::Future, poll)
}

/// [`wait`], recording what the task waits on and the caller's location
/// for dumps and the deadlock report. Blocking APIs are `#[track_caller]`
/// so the location is the user's call site.
#[track_caller]
#[cfg(not(loom))]
pub(crate) fn wait_as<R>(on: WaitOn, mut poll: impl FnMut(&mut Context<'_>) -> Poll<R>) -> R {
    let current = current::with_task(|t| t.map(|t| t as *const Task));
    // SAFETY: the running task outlives this call: its worker's registry of
    // started green threads (or the worker itself, while cancelling) holds
    // a reference for as long as its coroutine - and so this frame - exists.
    match current.map(|t| unsafe { &*t }) {
        Some(task) if task.kind == Kind::Green => {
            check_may_suspend();
            let waker = task.borrowed_waker();
            let mut cx = Context::from_waker(&waker);
            let site = std::panic::Location::caller();
            let mut recorded = false;
            loop {
                if let Poll::Ready(v) = poll(&mut cx) {
                    if recorded {
                        task.wait.clear();
                    }
                    return v;
                }
                if !recorded {
                    task.wait.set(on, site);
                    recorded = true;
                }
                park_current(task);
            }
        }
        Some(_) => panic!(
            "fibra: a blocking call was made from an async task, which would stall its worker; \
             await the `_async` form instead (or call it from a green thread)"
        ),
        None => match block_thread(None, poll) {
            Some(v) => v,
            None => unreachable!("a wait without a deadline cannot time out"),
        },
    }
}

/// Blocks a plain OS thread until `poll` is ready (`Some`) or `deadline`
/// passes (`None`), counted as blocked for the deadlock detector.
fn block_thread<R>(
    deadline: Option<Instant>,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<R>,
) -> Option<R> {
    THREAD_WAKER.with(|tw| {
        let waker = Waker::from(tw.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(v) = poll(&mut cx) {
                return Some(v);
            }
            let timeout = match deadline {
                None => None,
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    Some(deadline - now)
                }
            };
            BLOCKED_THREADS.fetch_add(1, Ordering::SeqCst);
            tw.parker.park(timeout);
            BLOCKED_THREADS.fetch_sub(1, Ordering::SeqCst);
        }
    })
}

/// Like [`wait`], but gives up at `deadline` and returns `None`.
///
/// A green thread arms a timer on its worker; a plain thread parks with a
/// timeout. `poll` is always tried once, even if the deadline has passed.
#[track_caller]
#[allow(dead_code)]
pub(crate) fn wait_deadline<R>(
    deadline: Option<Instant>,
    poll: impl FnMut(&mut Context<'_>) -> Poll<R>,
) -> Option<R> {
    wait_deadline_as(WaitOn::Future, deadline, poll)
}

/// [`wait_deadline`], recording what the task waits on (see [`wait_as`]).
#[track_caller]
#[cfg(not(loom))]
pub(crate) fn wait_deadline_as<R>(
    on: WaitOn,
    deadline: Option<Instant>,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<R>,
) -> Option<R> {
    let Some(deadline) = deadline else {
        return Some(wait_as(on, poll));
    };
    if in_green_thread() {
        let mut sleep = Sleep::until(deadline);
        return wait_as(on, |cx| {
            if let Poll::Ready(v) = poll(cx) {
                return Poll::Ready(Some(v));
            }
            match Pin::new(&mut sleep).poll(cx) {
                Poll::Ready(()) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        });
    }
    if current::with_task(|t| t.is_some()) {
        // An async task: `wait_as` explains the misuse.
        return Some(wait_as(on, poll));
    }
    block_thread(Some(deadline), poll)
}

/// Under loom, blocking calls run on loom's model threads: `wait` blocks
/// with loom's executor, and a deadline counts as already passed after the
/// first poll (which models a timeout racing the operation).
#[cfg(loom)]
pub(crate) fn wait_as<R>(_on: WaitOn, mut poll: impl FnMut(&mut Context<'_>) -> Poll<R>) -> R {
    struct LoomWaker(loom::sync::Notify);
    impl std::task::Wake for LoomWaker {
        fn wake(self: Arc<Self>) {
            self.0.notify();
        }
    }
    let lw = Arc::new(LoomWaker(loom::sync::Notify::new()));
    let waker = Waker::from(lw.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = poll(&mut cx) {
            return v;
        }
        lw.0.wait();
    }
}

#[cfg(loom)]
pub(crate) fn wait_deadline_as<R>(
    on: WaitOn,
    deadline: Option<Instant>,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<R>,
) -> Option<R> {
    if deadline.is_none() {
        return Some(wait_as(on, poll));
    }
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    match poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Suspends the running green thread until its next wake (or returns at
/// once if a wake already arrived).
///
/// A cancellation asked of the task (`Task::request_cancel`) starts its
/// unwind here, before it suspends or once it resumes.
fn park_current(task: &Task) {
    task.check_cancel();
    if task.state.take_notification() {
        task.check_cancel();
        return;
    }
    task.wait.stamp();
    record::record_backtrace(task);
    let yielder = task.yielder.get();
    task.stack.record_suspend();
    // SAFETY: `yielder` was set by the coroutine's entry point and points
    // into the running coroutine's stack, which is the stack we run on.
    unsafe { (*yielder).suspend(Suspend::Park) };
    task.check_cancel();
}

/// Lets other tasks run: the green thread goes to the back of its worker's
/// queue. On a plain OS thread it yields the thread.
///
/// ```
/// fibra::run(|| {
///     let h = fibra::spawn(|| 7);
///     while !h.is_finished() {
///         fibra::yield_now();
///     }
///     assert_eq!(h.join().unwrap(), 7);
/// });
/// ```
#[track_caller]
pub fn yield_now() {
    let current = current::with_task(|t| t.map(|t| t as *const Task));
    // SAFETY: as in `wait_as`: the running task outlives this call.
    match current.map(|t| unsafe { &*t }) {
        Some(task) if task.kind == Kind::Green => {
            check_may_suspend();
            task.stack.record_suspend();
            let yielder = task.yielder.get();
            // SAFETY: as in `park_current`.
            unsafe { (*yielder).suspend(Suspend::Yield) };
            // Still the same task: a started green thread resumes only on
            // its own worker, as itself.
            task.check_cancel();
        }
        _ => std::thread::yield_now(),
    }
}

/// Whether the caller runs in a green thread.
///
/// ```
/// assert!(!fibra::in_green_thread());
/// fibra::run(|| assert!(fibra::in_green_thread()));
/// ```
pub fn in_green_thread() -> bool {
    current::with_task(|t| t.is_some_and(|t| t.kind == Kind::Green))
}
