//! [`scope`]: green threads that borrow from their caller, as
//! `std::thread::scope` does for OS threads.
//!
//! # Why it is sound
//!
//! A scoped green thread's closure may borrow anything that outlives the
//! scope (`'env`), so nothing it touches may end before it does. The
//! argument is std's, with two additions for green threads:
//!
//! 1. **Counted members.** [`Scope::spawn`] counts the thread in
//!    `ScopeData::running` before it creates the task. The count drops only
//!    when the thread's *whole* share of the scope is gone: its closure (run
//!    or not), its reference to the result packet (and with it the result,
//!    if the handle was dropped first) - see `Member`, whose fields drop in
//!    that order, even when one of the destructors panics. Every path a
//!    task takes (it runs; it is cancelled before it starts; the runtime
//!    drops it unrun) ends in that drop, or in none at all (a task whose
//!    stack is abandoned at shutdown, see `task::cancel`), never in a
//!    decrement with borrowed data still reachable.
//! 2. **The scope never returns or unwinds early.** [`scope`] runs the body
//!    under `catch_unwind`, then waits until the count is zero, and only then
//!    returns or resumes the body's panic. Code that can spawn into the scope
//!    runs inside the body or inside a scoped thread (it needs a
//!    `&'scope Scope`), and both are counted, so the count cannot rise again
//!    once it has reached zero.
//! 3. **Waiting cannot fail.** Before the body runs, `scope` refuses what
//!    could not wait (an async task, a green thread that may not suspend)
//!    with a panic. If the waiting green thread is cancelled
//!    (`JoinHandle::cancel`, shutdown, the deadlock report), its park
//!    unwinds with the cancellation: the wait catches it, cancels every
//!    scoped thread (they unwind at their parks), waits again - a
//!    cancellation unwinds only once, so these parks are ordinary - and
//!    resumes the cancellation afterwards. Any other unwind out of the wait
//!    would free what the scoped threads borrow, so it aborts the process.
//! 4. **Handles may be leaked.** A [`ScopedJoinHandle`] only shares the
//!    result packet; forgetting it leaks the result and nothing waits on
//!    it. The handle's type names `'scope`, so it is dropped, if at all,
//!    inside the body or inside a scoped thread: before the count reaches
//!    zero.
//!
//! A scoped thread that panics and is not joined makes `scope` panic with
//! that payload once every thread has finished (the body's own panic comes
//! first); a joined one reports it through [`ScopedJoinHandle::join`] only.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::context;
use crate::park::record::WaitOn;
use crate::task::cancel::Cancelled;
use crate::task::{JoinError, JoinHandle, Kind, Task, TaskId};

/// Runs `f` with a [`Scope`] whose green threads may borrow from the
/// caller's stack; returns once every green thread spawned in it has
/// finished.
///
/// Like [`std::thread::scope`]: the scoped threads are joined before
/// `scope` returns, even if `f` panics (the panic is then resumed); a
/// scoped thread that panicked and was not joined makes `scope` panic with
/// its payload.
///
/// It may be called from a green thread (which parks while it waits), or
/// from a plain thread inside a runtime (`Runtime::block_on`), which
/// blocks. If the calling green thread is cancelled while it waits, the
/// scoped threads are cancelled too, and the cancellation goes on once
/// they have unwound. (At shutdown a worker unwinds its green threads one
/// at a time: a caller whose scoped threads share its worker waits for
/// them in vain and is abandoned after the shutdown's grace - its stack
/// is leaked, never freed under them - see `JoinHandle::cancel`.)
///
/// # Panics
///
/// At once, before `f` runs, in an async task (it would block its
/// worker) and in a green thread that may not park right now. `s.spawn`
/// panics outside a runtime, as [`spawn`](crate::spawn) does.
///
/// ```
/// let mut numbers = vec![1, 2, 3];
/// let total = fibra::run(|| {
///     fibra::scope(|s| {
///         let first = s.spawn(|| numbers.iter().sum::<i32>());
///         let second = s.spawn(|| numbers.len());
///         (first.join().unwrap(), second.join().unwrap())
///     })
/// });
/// assert_eq!(total, (6, 3));
///
/// // Mutable borrows work as with std: each thread gets its own part.
/// fibra::run(|| {
///     fibra::scope(|s| {
///         for n in numbers.iter_mut() {
///             s.spawn(move || *n *= 10);
///         }
///     })
/// });
/// assert_eq!(numbers, [10, 20, 30]);
/// ```
#[track_caller]
pub fn scope<'env, F, R>(f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    refuse_unable_to_wait();
    let scope = Scope {
        data: Arc::new(ScopeData::default()),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    if result
        .as_ref()
        .is_err_and(|payload| payload.is::<Cancelled>())
    {
        // The caller is being cancelled: the scoped threads go with it.
        scope.data.cancel_members();
    }
    let cancelled = scope.data.wait_all();
    let result = match (result, cancelled) {
        (Err(payload), _) | (Ok(_), Some(payload)) => resume_unwind(payload),
        (Ok(value), None) => value,
    };
    if let Some(payload) = scope.data.members.lock().panic.take() {
        resume_unwind(payload);
    }
    result
}

/// Panics before the scope's body runs if its end could not be waited
/// for (see the module docs, point 3).
#[track_caller]
fn refuse_unable_to_wait() {
    match context::with_task(|t| t.map(|t| t.kind)) {
        Some(Kind::Async) => panic!(
            "fibra::scope was called from an async task, which must not block its worker; \
             call it from a green thread (spawn one and await its JoinHandle)"
        ),
        Some(Kind::Green) => {
            if let Some(why) = crate::park::suspend_forbidden() {
                panic!("fibra::scope cannot wait for its scoped threads {why}");
            }
        }
        None => {}
    }
}

/// A scope to spawn green threads in; see [`scope`].
///
/// The two lifetimes are std's: `'scope` is the scope itself (every
/// scoped thread ends inside it), `'env` what the threads may borrow.
///
/// ```
/// let greeting = String::from("hello");
/// fibra::run(|| {
///     fibra::scope(|s| {
///         s.spawn(|| assert_eq!(greeting, "hello"));
///     });
/// });
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    /// The count and members, shared with every scoped thread.
    data: Arc<ScopeData>,
    /// Invariant in `'scope`, as std's (a scope is not a shorter scope).
    scope: PhantomData<&'scope mut &'scope ()>,
    /// Invariant in `'env`, as std's.
    env: PhantomData<&'env mut &'env ()>,
}

/// What a scope shares with its scoped threads.
#[derive(Default)]
struct ScopeData {
    /// Scoped threads whose share of the scope is not gone yet (see the
    /// module docs, point 1).
    running: AtomicUsize,
    /// Everything else, behind one lock.
    members: parking_lot::Mutex<Members>,
}

/// The part of [`ScopeData`] behind its lock.
#[derive(Default)]
struct Members {
    /// Whoever waits for `running` to reach zero.
    waiter: Option<Waker>,
    /// The scoped threads' tasks, for cancelling them (finished ones are
    /// pruned as the list grows).
    tasks: Vec<Arc<Task>>,
    /// Set once the scope's caller is cancelled: later spawns are
    /// cancelled at once.
    cancelled: bool,
    /// The first panic of a scoped thread that nobody joined.
    panic: Option<Box<dyn Any + Send + 'static>>,
}

impl ScopeData {
    /// One scoped thread's share is gone; wakes the waiter at zero.
    fn leave(&self) {
        if self.running.fetch_sub(1, SeqCst) == 1 {
            // Taken under the lock the waiter stores it under, after the
            // decrement: either the waiter sees zero, or we see its waker.
            let waiter = self.members.lock().waiter.take();
            if let Some(w) = waiter {
                w.wake();
            }
        }
    }

    /// Ready once no scoped thread is left.
    fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.running.load(SeqCst) == 0 {
            return Poll::Ready(());
        }
        {
            let mut m = self.members.lock();
            match &m.waiter {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => m.waiter = Some(cx.waker().clone()),
            }
        }
        if self.running.load(SeqCst) == 0 {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Waits until every scoped thread is gone. Returns the cancellation
    /// payload if the caller was cancelled meanwhile (see the module docs,
    /// point 3); never unwinds.
    fn wait_all(&self) -> Option<Box<dyn Any + Send + 'static>> {
        let mut cancelled = None;
        loop {
            let threads = self.running.load(SeqCst) as u64;
            let on = WaitOn::Scope { threads };
            let waited = catch_unwind(AssertUnwindSafe(|| {
                crate::park::wait_as(on, |cx| self.poll_done(cx))
            }));
            match waited {
                Ok(()) => return cancelled,
                Err(payload) if payload.is::<Cancelled>() => {
                    self.cancel_members();
                    cancelled = Some(payload);
                }
                Err(_) => {
                    eprintln!(
                        "fatal error: fibra::scope could not wait for its scoped threads, and \
                         returning would free what they borrow"
                    );
                    std::process::abort();
                }
            }
        }
    }

    /// Cancels every scoped thread, now and spawned later.
    fn cancel_members(&self) {
        let tasks = {
            let mut m = self.members.lock();
            m.cancelled = true;
            std::mem::take(&mut m.tasks)
        };
        tracing::debug!(
            running = self.running.load(SeqCst),
            "the scope's caller is cancelled: cancelling its scoped threads"
        );
        for task in tasks {
            task.request_cancel();
        }
    }

    /// Records a spawned task (or cancels it, if the scope's caller is
    /// being cancelled).
    fn add(&self, task: &Arc<Task>) {
        let mut m = self.members.lock();
        if m.cancelled {
            drop(m);
            task.request_cancel();
            return;
        }
        if m.tasks.len() == m.tasks.capacity() {
            m.tasks.retain(|t| !t.state.is_complete());
        }
        m.tasks.push(task.clone());
    }

    /// Keeps the first unjoined panic, for `scope` to resume.
    fn record_panic(&self, payload: Box<dyn Any + Send + 'static>) {
        let mut m = self.members.lock();
        if m.panic.is_none() {
            m.panic = Some(payload);
            return;
        }
        drop(m);
        // Only the first one is resumed; a payload whose destructor panics
        // is forgotten rather than let unwind the thread leaving the scope.
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns a green thread that may borrow from outside the scope
    /// (anything living for `'scope`); it is joined before [`scope`]
    /// returns, if not before through its handle.
    ///
    /// Scoped threads may spawn more scoped threads.
    ///
    /// # Panics
    ///
    /// Outside a runtime, or when no stack can be mapped, as
    /// [`spawn`](crate::spawn) does.
    ///
    /// ```
    /// let words = ["a", "bb", "ccc"];
    /// let lens = fibra::run(|| {
    ///     fibra::scope(|s| {
    ///         let handles: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
    ///         handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    ///     })
    /// });
    /// assert_eq!(lens, [1, 2, 3]);
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        // Counted before anything that could unwind; `member` gives the
        // count back if the spawn fails below.
        self.data.running.fetch_add(1, SeqCst);
        let packet = Arc::new(Packet {
            result: parking_lot::Mutex::new(None),
            scope: self.data.clone(),
            _scope: PhantomData,
        });
        let member = Member {
            f: Some(f),
            packet: packet.clone(),
            _leave: Leave(self.data.clone()),
        };
        let body: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || member.run());
        // SAFETY: `body` may borrow for `'scope` only, but the task needs
        // `'static`. It is not used once `'scope` has ended: `scope` does
        // not return or unwind before `running` is back to zero, and that
        // happens only when `body` has been run or dropped (the decrement is
        // `Leave`, the last field `body` owns). What stays in the task
        // afterwards is its `()` output.
        let body: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(body) };
        let Some(shared) = context::current_runtime() else {
            panic!("{}", context::OUTSIDE_RUNTIME);
        };
        if let Err(err) = crate::stack::check_mapping_budget() {
            panic!("{err}");
        }
        let handle = shared.spawn_green(None, 0, body);
        self.data.add(handle.task());
        ScopedJoinHandle {
            handle,
            packet,
            _scope: PhantomData,
        }
    }
}

/// A scoped thread's share of its scope: the closure, the result packet,
/// and the count, dropped in that order (fields drop in declaration order,
/// and the later ones still drop if an earlier destructor panics).
struct Member<'scope, F, T> {
    /// The closure, until it runs.
    f: Option<F>,
    /// Where the result goes.
    packet: Arc<Packet<'scope, T>>,
    /// Gives the count back, last.
    _leave: Leave,
}

impl<F, T> Member<'_, F, T>
where
    F: FnOnce() -> T,
{
    /// Runs the closure on the scoped green thread and stores its result
    /// (a panic or cancellation as the matching `JoinError`).
    fn run(mut self) {
        let f = self.f.take().expect("a scoped thread runs once");
        let result = catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
            let id = context::with_task(|t| t.map(|t| t.id))
                .expect("a scoped thread runs as a green thread");
            if payload.is::<Cancelled>() {
                JoinError::cancelled(id)
            } else {
                JoinError::panic(id, payload)
            }
        });
        *self.packet.result.lock() = Some(result);
    }
}

/// Drops a count of [`ScopeData::running`].
struct Leave(Arc<ScopeData>);

impl Drop for Leave {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// A scoped thread's result, shared by the thread and its handle.
struct Packet<'scope, T> {
    /// The value, or why there is none; `None` until the thread ends.
    result: parking_lot::Mutex<Option<Result<T, JoinError>>>,
    /// Where an unjoined panic is reported.
    scope: Arc<ScopeData>,
    /// The result may borrow for `'scope`.
    _scope: PhantomData<&'scope ()>,
}

impl<T> Drop for Packet<'_, T> {
    /// Drops an unjoined result: a panic goes to the scope, as does a
    /// panic of the value's destructor.
    fn drop(&mut self) {
        let result = self.result.get_mut().take();
        let unjoined = match result {
            Some(Err(err)) if err.is_panic() => Some(err.into_panic()),
            other => catch_unwind(AssertUnwindSafe(move || drop(other))).err(),
        };
        if let Some(payload) = unjoined {
            self.scope.record_panic(payload);
        }
    }
}

/// An owned permission to join a scoped green thread (see
/// [`Scope::spawn`]). Dropping it does not detach the thread - [`scope`]
/// joins it anyway - and a panic it did not report makes `scope` panic.
///
/// ```
/// let v = vec![1, 2, 3];
/// fibra::run(|| {
///     fibra::scope(|s| {
///         let h = s.spawn(|| v.len());
///         assert_eq!(h.join().unwrap(), 3);
///     });
/// });
/// ```
pub struct ScopedJoinHandle<'scope, T> {
    /// The green thread (its own output is `()`).
    handle: JoinHandle<()>,
    /// The thread's result.
    packet: Arc<Packet<'scope, T>>,
    /// Lives no longer than the scope.
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the thread and returns its value, or why there is none (a
    /// panic, a cancellation).
    ///
    /// ```
    /// fibra::run(|| {
    ///     fibra::scope(|s| {
    ///         let h = s.spawn(|| panic!("oops"));
    ///         assert!(h.join().unwrap_err().is_panic());
    ///     });
    /// });
    /// ```
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        let ScopedJoinHandle { handle, packet, .. } = self;
        handle.join()?;
        let result = packet.result.lock().take();
        result.expect("a scoped thread that returned stored its result")
    }

    /// Cancels the thread, as [`JoinHandle::cancel`] does.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (_tx, rx) = fibra::chan::channel::<u8>(0);
    ///     fibra::scope(|s| {
    ///         let h = s.spawn(|| rx.recv());
    ///         fibra::yield_now(); // let it park
    ///         h.cancel();
    ///         assert!(h.join().unwrap_err().is_cancelled());
    ///     });
    /// });
    /// ```
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Whether the thread has finished.
    ///
    /// ```
    /// fibra::run(|| {
    ///     fibra::scope(|s| {
    ///         let h = s.spawn(|| ());
    ///         while !h.is_finished() {
    ///             fibra::yield_now();
    ///         }
    ///     });
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The id of the thread's task.
    ///
    /// ```
    /// fibra::run(|| {
    ///     fibra::scope(|s| {
    ///         let h = s.spawn(|| ());
    ///         assert!(h.id().as_u64() > 0);
    ///     });
    /// });
    /// ```
    pub fn id(&self) -> TaskId {
        self.handle.id()
    }
}

impl<T> std::fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("id", &self.handle.id())
            .field("finished", &self.handle.is_finished())
            .finish()
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.running.load(SeqCst))
            .finish()
    }
}
