//! Tasks: green threads (a closure on its own stack) and async tasks (a
//! future, no stack), sharing one header, one state machine and one wake
//! path.
//!
//! A `Task` is reference counted (`Arc<Task>`): run queues, wakers and the
//! [`JoinHandle`] each hold a reference. Its body (the coroutine or the
//! future) is touched only by the worker that holds the `RUNNING` bit (see
//! `state`), and its output only by the join handle once `COMPLETE` is
//! published.
//!
//! Green threads get their stack and coroutine when they first run, so an
//! unstarted task costs two small heap blocks and no memory mapping. From
//! then on they are pinned to that worker (see `sched`).

mod builder;
pub(crate) mod cancel;
pub(crate) mod current;
pub(crate) mod hook;
pub(crate) mod join;
mod local;
pub(crate) mod state;

pub use builder::Builder;
pub use join::{JoinError, JoinHandle};
pub use local::{AccessError, LocalKey, TaskLocalFuture};

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake};

use corosensei::{Coroutine, Yielder};

use crate::park::record::WaitRecord;
use crate::stack::{Stack, StackOwner, TaskStack};
use cancel::Cancelled;
use state::State;

/// How a task reaches the scheduler that runs it, as tokio's `task` module
/// reaches its scheduler through `Schedule`: the task core names no
/// scheduler type. A runtime's `sched::Shared` is the implementation; a
/// task keeps it as `Arc<dyn Schedule>`, so a wake is one indirect call.
pub(crate) trait Schedule: Any + Send + Sync {
    /// Puts `task`, whose `SCHEDULED` bit the caller set, into a run queue
    /// (or cancels it if the scheduler has terminated). A wake made on a
    /// started green thread's own worker took its `RUNNING` bit instead
    /// (`State::wake_held`); it goes to that worker's queue like any local
    /// wake.
    ///
    /// `self` may be borrowed from `task.scheduler` (a wake does not touch
    /// the scheduler's reference count): the implementation must keep
    /// itself alive for the whole call by other means once it may have
    /// given `task` away (a worker of its own holds it; elsewhere it takes
    /// a reference first).
    fn schedule(&self, task: Arc<Task>, reason: Reason);
}

/// Why a task is being put in a run queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Newly spawned.
    Spawn,
    /// Woken after parking.
    Wake,
    /// Yielded, or woken while it was still running.
    Yield,
}

/// A task's process-unique id.
///
/// ```
/// fibra::run(|| {
///     let h = fibra::spawn(|| ());
///     assert!(h.id().as_u64() > 0);
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(u64);

impl TaskId {
    /// A fresh id. Threads take ids from the global counter in batches (as
    /// Go's Ps cache goroutine ids), so spawning makes no shared atomic
    /// increment per task.
    fn next() -> TaskId {
        const BATCH: u64 = 1024;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        thread_local! {
            static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        RANGE.with(|r| {
            let (mut next, mut end) = r.get();
            if next == end {
                next = NEXT.fetch_add(BATCH, Ordering::Relaxed);
                end = next + BATCH;
            }
            r.set((next + 1, end));
            TaskId(next)
        })
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a green thread hands back to its worker when it suspends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// Runnable: put me at the back of the queue.
    Yield,
    /// Waiting: run me again only after a wake.
    Park,
    /// My cancellation unwind aborted: never resume me (see
    /// `park::abort`).
    Abandon,
}

pub(crate) type GreenCoroutine = Coroutine<(), Suspend, (), Stack>;
pub(crate) type GreenYielder = Yielder<(), Suspend>;

/// Marks a task that is not pinned to a worker (unstarted, or async).
pub(crate) const NO_OWNER: usize = usize::MAX;

/// Whether the task runs on its own stack or as a future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Green,
    Async,
}

// Join interest: decides who reports a panic nobody joined. `finish` and the
// handle's drop each swap in their mark; exactly one sees the other's.
const JOIN_ATTACHED: u8 = 0;
const JOIN_DETACHED: u8 = 1;
const JOIN_FINISHED: u8 = 2;

/// A task's job, stored inside the task's own allocation when it fits in
/// eight words (a small closure and its output), so spawning allocates once.
pub(crate) type JobBox = smallbox::SmallBox<dyn Job, smallbox::space::S8>;

/// The type-erased body of a task together with its output slot.
pub(crate) trait Job: Send {
    /// Green threads: runs the closure to completion, stores `Ok(value)`.
    fn call(&mut self);
    /// Async tasks: polls the future; stores `Ok(value)` when ready.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// Stores `Err(err)` and drops the closure or future (if still there),
    /// containing a panic of its destructor (see [`drop_contained`]).
    fn fail(&mut self, err: JoinError);
    /// `&mut Option<Result<T, JoinError>>`, for the join handle.
    fn output(&mut self) -> &mut dyn Any;
    /// The stored error, if the task failed.
    fn error(&self) -> Option<&JoinError>;
}

/// Drops part of a task (its closure, future or unjoined output) where a
/// panicking destructor must not escape: into a worker's loop, the
/// shutdown path, or whichever thread drops a detached task last. Such a
/// panic is logged and its payload discarded (forgotten, should dropping
/// the payload panic as well).
pub(crate) fn drop_contained<V>(value: V, id: TaskId, what: &str) {
    contain(move || drop(value), id, what);
}

/// Runs `drop_fn` (which drops part of a task, in place or by value),
/// containing a panic as [`drop_contained`] does.
pub(crate) fn contain(drop_fn: impl FnOnce(), id: TaskId, what: &str) {
    let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(drop_fn)) else {
        return;
    };
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string payload)")
        .to_owned();
    tracing::error!(
        task.id = id.0,
        "a destructor panicked while dropping the task's {what}: {message}"
    );
    if let Err(again) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)))
    {
        std::mem::forget(again);
    }
}

struct GreenJob<F, T> {
    f: Option<F>,
    out: Option<Result<T, JoinError>>,
}

impl<F, T> Job for GreenJob<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn call(&mut self) {
        let f = self.f.take().expect("green thread body runs once");
        self.out = Some(Ok(f()));
    }
    fn poll(&mut self, _: &mut Context<'_>) -> Poll<()> {
        unreachable!("a green thread is resumed, not polled")
    }
    fn fail(&mut self, err: JoinError) {
        let (id, body) = (err.id(), self.f.take());
        self.out = Some(Err(err));
        drop_contained(body, id, "closure");
    }
    fn output(&mut self) -> &mut dyn Any {
        &mut self.out
    }
    fn error(&self) -> Option<&JoinError> {
        self.out.as_ref()?.as_ref().err()
    }
}

/// An async task's future and output slot.
///
/// The future is pinned from its first poll on: it lives inside the task
/// (inline or in the job's box), and the task is behind an `Arc` and never
/// moves. So it is only ever dropped where it lies - by assigning `None`
/// to `fut`, which runs its destructor in place (and leaves `None` even if
/// that destructor panics) - never moved out first: a parked future may
/// have registered a waiter at its own address in a channel's or lock's
/// queue, and only its destructor, run at that address, unlinks it.
struct AsyncJob<Fut: Future> {
    fut: Option<Fut>,
    out: Option<Result<Fut::Output, JoinError>>,
}

impl<Fut> Job for AsyncJob<Fut>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn call(&mut self) {
        unreachable!("an async task is polled, not resumed")
    }
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(fut) = self.fut.as_mut() else {
            return Poll::Ready(());
        };
        // SAFETY: the job lives in the task (inline or in a box) from before
        // its first poll until the task is freed; the task is behind an
        // `Arc` and never moves, and the future is only dropped in place
        // (see the type's docs): it is pinned from its first poll on.
        let fut = unsafe { Pin::new_unchecked(fut) };
        match fut.poll(cx) {
            Poll::Ready(v) => {
                // In place; a panic of the destructor reaches the worker,
                // which fails the task with it (`fut` is `None` by then).
                self.fut = None;
                self.out = Some(Ok(v));
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
    fn fail(&mut self, err: JoinError) {
        let id = err.id();
        self.out = Some(Err(err));
        let fut = &mut self.fut;
        contain(|| *fut = None, id, "future");
    }
    fn output(&mut self) -> &mut dyn Any {
        &mut self.out
    }
    fn error(&self) -> Option<&JoinError> {
        self.out.as_ref()?.as_ref().err()
    }
}

/// One green thread or async task.
pub(crate) struct Task {
    /// See [`state`]: who may run the body, and pending wake-ups.
    pub(crate) state: State,
    /// Process-unique id.
    pub(crate) id: TaskId,
    /// Optional name given by [`Builder::name`].
    pub(crate) name: Option<Box<str>>,
    /// Green thread or async task.
    pub(crate) kind: Kind,
    /// Requested usable stack size; 0 means the runtime's default.
    pub(crate) stack_size: usize,
    /// Worker a started green thread is pinned to, or [`NO_OWNER`].
    pub(crate) owner: AtomicUsize,
    /// The scheduler (a runtime's `Shared`) whose queues this task goes
    /// back to when woken.
    pub(crate) scheduler: Arc<dyn Schedule>,
    /// `tracing` span entered on every resume (see [`Task::enter_span`]);
    /// `None` when no subscriber wants it, which keeps the record small.
    span: Option<Box<tracing::Span>>,
    /// Join-interest protocol (`JOIN_*`).
    join: AtomicU8,
    /// Waker of whoever waits on the join handle.
    pub(crate) join_waker: parking_lot::Mutex<Option<std::task::Waker>>,
    /// Set (SeqCst) by a join handle before it stores a waker, so `finish`
    /// takes the lock only when someone may be waiting.
    pub(crate) join_waiting: std::sync::atomic::AtomicBool,
    /// Closure or future, and the output slot. Dropped by `Drop for Task`
    /// through [`drop_contained`]: the last reference to a detached task
    /// may go away on a worker, whose loop a panicking destructor of the
    /// output must not unwind.
    pub(crate) job: UnsafeCell<ManuallyDrop<JobBox>>,
    /// The coroutine of a started green thread (owner worker only).
    pub(crate) coroutine: UnsafeCell<Option<GreenCoroutine>>,
    /// The coroutine's yielder while it is started (owner worker only).
    pub(crate) yielder: Cell<*const GreenYielder>,
    /// A cancellation asked of a started green thread (see [`cancel`]).
    pub(crate) cancel: AtomicU8,
    /// Stack bounds, segments and shrink bookkeeping of a green thread
    /// (owner worker's thread only; see `stack::shrink`).
    pub(crate) stack: TaskStack,
    /// Index in the owner worker's (green) or the runtime's (async) task
    /// registry, for shutdown and dumps.
    pub(crate) slot: AtomicUsize,
    /// What the task waits on while parked (for dumps and deadlock reports).
    pub(crate) wait: WaitRecord,
    /// Where it parked, with `FIBRA_TRACEBACK=1` (boxed: rarely there).
    pub(crate) park_backtrace: parking_lot::Mutex<Option<Box<std::backtrace::Backtrace>>>,
    /// Head of its task-local scopes (see `local`; the running thread only).
    pub(crate) locals: Cell<*const local::Frame>,
}

// SAFETY: the non-thread-safe fields (`job`, `coroutine`, `yielder`,
// `stack`, `locals`) are only accessed by the thread holding the RUNNING
// bit of `state` (for a started green thread that is always its owner
// worker, which also is the only thread that creates or drops its
// coroutine), or by the unique join handle after COMPLETE. `stack` is also
// touched by the owner worker's loop while the task is suspended (never
// from another thread). The job holds `Send` data only.
unsafe impl Send for Task {}
// SAFETY: as above; shared access from other threads touches only atomics,
// the mutex-protected join waker, and immutable fields.
unsafe impl Sync for Task {}

impl Task {
    pub(crate) fn new_green<F, T>(
        scheduler: Arc<dyn Schedule>,
        name: Option<Box<str>>,
        stack_size: usize,
        f: F,
    ) -> Arc<Task>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let job: JobBox = smallbox::smallbox!(GreenJob {
            f: Some(f),
            out: None,
        });
        Task::new(scheduler, name, stack_size, Kind::Green, job)
    }

    pub(crate) fn new_async<Fut>(
        scheduler: Arc<dyn Schedule>,
        name: Option<Box<str>>,
        fut: Fut,
    ) -> Arc<Task>
    where
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let job: JobBox = smallbox::smallbox!(AsyncJob {
            fut: Some(fut),
            out: None,
        });
        Task::new(scheduler, name, 0, Kind::Async, job)
    }

    fn new(
        scheduler: Arc<dyn Schedule>,
        name: Option<Box<str>>,
        stack_size: usize,
        kind: Kind,
        job: JobBox,
    ) -> Arc<Task> {
        let id = TaskId::next();
        let span = match &name {
            Some(n) => tracing::info_span!("task", id = id.0, name = &**n),
            None => tracing::info_span!("task", id = id.0),
        };
        tracing::trace!(task.id = id.0, task.name = name.as_deref(), "spawn");
        // Points into the boxed name, which moves with `name` unchanged.
        let stack = TaskStack::new(id.as_u64(), name.as_deref());
        Arc::new(Task {
            state: State::new_scheduled(),
            id,
            name,
            kind,
            stack_size,
            owner: AtomicUsize::new(NO_OWNER),
            scheduler,
            span: (!span.is_disabled()).then(|| Box::new(span)),
            join: AtomicU8::new(JOIN_ATTACHED),
            join_waker: parking_lot::Mutex::new(None),
            join_waiting: std::sync::atomic::AtomicBool::new(false),
            job: UnsafeCell::new(ManuallyDrop::new(job)),
            coroutine: UnsafeCell::new(None),
            yielder: Cell::new(std::ptr::null()),
            cancel: AtomicU8::new(cancel::NONE),
            stack,
            slot: AtomicUsize::new(usize::MAX),
            wait: WaitRecord::new(),
            park_backtrace: parking_lot::Mutex::new(None),
            locals: Cell::new(std::ptr::null()),
        })
    }

    /// Enters the task's `tracing` span, if it has one, until the guard
    /// drops.
    #[inline]
    pub(crate) fn enter_span(&self) -> Option<tracing::span::Entered<'_>> {
        self.span.as_deref().map(tracing::Span::enter)
    }

    /// Whether this is a started green thread (pinned to its worker).
    pub(crate) fn owner(&self) -> Option<usize> {
        match self.owner.load(Ordering::Relaxed) {
            NO_OWNER => None,
            w => Some(w),
        }
    }

    /// The coroutine's entry point: runs the closure, turning a panic into
    /// the task's `JoinError` (the cancellation payload into a
    /// cancellation, see [`cancel`]).
    pub(crate) fn green_entry(this: *const Task, yielder: &GreenYielder) {
        // SAFETY: the task owns the coroutine that runs this function, so it
        // outlives it.
        let task = unsafe { &*this };
        task.yielder.set(yielder);
        // SAFETY: we hold RUNNING (we are being resumed by the owner worker).
        let job = unsafe { &mut *task.job.get() };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Cancelled before it ever ran: unwind at once, the closure is
            // dropped unrun.
            task.check_cancel();
            job.call()
        }));
        if let Err(payload) = result {
            let err = if payload.is::<Cancelled>() {
                JoinError::cancelled(task.id)
            } else {
                JoinError::panic(task.id, payload)
            };
            job.fail(err);
        }
    }

    /// Publishes completion (the output is already stored) and wakes the
    /// joiner. Called by the thread holding RUNNING.
    pub(crate) fn finish(&self) {
        tracing::trace!(task.id = self.id.0, "exit");
        self.state.complete();
        // Pairs with the join handle's SeqCst store of `join_waiting` and
        // load of the state: either it sees COMPLETE, or we see its flag.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.join_waiting.load(Ordering::SeqCst) {
            let waker = self.join_waker.lock().take();
            if let Some(w) = waker {
                w.wake();
            }
        }
        if self.join.swap(JOIN_FINISHED, Ordering::AcqRel) == JOIN_DETACHED {
            self.report_unjoined();
        }
    }

    /// The join handle went away.
    pub(crate) fn detach(&self) {
        if self.join.swap(JOIN_DETACHED, Ordering::AcqRel) == JOIN_FINISHED {
            self.report_unjoined();
        }
    }

    /// Logs a panic that no join handle will report.
    fn report_unjoined(&self) {
        // SAFETY: COMPLETE is published and the join protocol picked this
        // caller, so the handle is gone and no worker touches the job.
        let job = unsafe { &*self.job.get() };
        if let Some(err) = job.error() {
            if err.is_panic() {
                tracing::error!(
                    task.id = self.id.0,
                    task.name = self.name.as_deref(),
                    "{err} (nobody joined it)"
                );
            }
        }
    }
}

/// A `Waker` whose data pointer is an `Arc<Task>`'s pointer, so a running
/// green thread can lend one without touching the reference count.
static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// SAFETY (all four): `ptr` comes from `Arc::as_ptr`/`Arc::into_raw` of an
/// `Arc<Task>`; a borrowed waker never drops its (uncounted) reference,
/// an owned one (made by `waker_clone`) holds one count.
unsafe fn waker_clone(ptr: *const ()) -> RawWaker {
    // SAFETY: see above; the new waker owns the count added here.
    unsafe { Arc::increment_strong_count(ptr as *const Task) };
    RawWaker::new(ptr, &WAKER_VTABLE)
}

unsafe fn waker_wake(ptr: *const ()) {
    // SAFETY: an owned waker: its count moves into the Arc.
    let task = unsafe { Arc::from_raw(ptr as *const Task) };
    Wake::wake(task);
}

unsafe fn waker_wake_by_ref(ptr: *const ()) {
    // SAFETY: borrowed for the call only; the count is not touched.
    let task = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(ptr as *const Task) });
    Wake::wake_by_ref(&*task);
}

unsafe fn waker_drop(ptr: *const ()) {
    // SAFETY: an owned waker gives back its count.
    drop(unsafe { Arc::from_raw(ptr as *const Task) });
}

impl Task {
    /// A waker for this task that does not own a reference: valid only while
    /// the caller can guarantee the task stays alive (a green thread lending
    /// it from its own stack). Clones made from it are ordinary owned wakers.
    pub(crate) fn borrowed_waker(&self) -> std::mem::ManuallyDrop<std::task::Waker> {
        let raw = RawWaker::new(self as *const Task as *const (), &WAKER_VTABLE);
        // SAFETY: the vtable's contract holds for `self`'s pointer, which is
        // an `Arc<Task>`'s (tasks only live in Arcs); `ManuallyDrop` keeps the
        // uncounted waker from ever running `waker_drop`.
        std::mem::ManuallyDrop::new(unsafe { std::task::Waker::from_raw(raw) })
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        let job = self.job.get_mut();
        // Dropped in place, not moved out first: an async task's future
        // may still be there (pinned; see `AsyncJob`).
        // SAFETY: the task is being dropped, so nothing else holds the job,
        // and it is dropped exactly once, here (a panic of its destructor
        // leaves it dropped as far as it got, and it is not touched again).
        contain(|| unsafe { ManuallyDrop::drop(job) }, self.id, "output");
    }
}

impl Task {
    /// The state transition of a wake: `State::wake_held` when the caller
    /// is a green thread running on this task's owner worker (it is that
    /// worker's thread, and the task is pinned there), else `State::wake`.
    /// Only started green threads have an owner, so equal owners of the
    /// same scheduler mean both are pinned to the worker running now.
    #[inline]
    fn wake_state(&self) -> state::WakeAction {
        let owner = self.owner.load(Ordering::Relaxed);
        let here = owner != NO_OWNER
            && current::with_task(|t| {
                t.is_some_and(|t| {
                    t.owner.load(Ordering::Relaxed) == owner
                        && std::ptr::addr_eq(
                            Arc::as_ptr(&t.scheduler),
                            Arc::as_ptr(&self.scheduler),
                        )
                })
            });
        if here {
            self.state.wake_held()
        } else {
            self.state.wake()
        }
    }
}

impl StackOwner for Task {
    #[inline]
    fn task_stack(&self) -> &TaskStack {
        &self.stack
    }
}

impl Wake for Task {
    #[inline]
    fn wake(self: Arc<Self>) {
        if self.wake_state() == state::WakeAction::Schedule {
            let scheduler: *const dyn Schedule = Arc::as_ptr(&self.scheduler);
            // SAFETY: `self` keeps the scheduler alive until it is handed
            // over, and `Schedule::schedule` keeps itself alive from then
            // to the end of the call (see the trait).
            unsafe { (*scheduler).schedule(self, Reason::Wake) };
        }
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.wake_state() == state::WakeAction::Schedule {
            self.scheduler.schedule(self.clone(), Reason::Wake);
        }
    }
}
