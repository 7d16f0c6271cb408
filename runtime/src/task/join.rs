//! Join handles and join errors.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{Task, TaskId};

/// Why a task produced no value.
///
/// `Send + Sync`, so `?` turns it into a `Box<dyn Error + Send + Sync>`;
/// its message names the task and, for a panic, the panic's message.
///
/// ```
/// fibra::run(|| {
///     let h = fibra::task::Builder::new()
///         .name("worker")
///         .spawn(|| panic!("boom"))
///         .unwrap();
///     let err = h.join().unwrap_err();
///     assert!(err.is_panic());
///     assert_eq!(err.to_string(), format!("task {} 'worker' panicked: boom", err.id()));
///     assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
/// });
///
/// fn fallible() -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
///     Ok(fibra::run(|| fibra::spawn(|| 7).join())?)
/// }
/// assert_eq!(fallible().unwrap(), 7);
/// ```
pub struct JoinError {
    id: TaskId,
    /// Boxed, so that a task's output slot (`Result<T, JoinError>`) stays
    /// small enough to live inside the task's allocation (see `JobBox`).
    inner: Box<Inner>,
}

struct Inner {
    /// The task's name, if it had one (filled in by the join handle).
    name: Option<Box<str>>,
    repr: Repr,
}

enum Repr {
    Panic {
        payload: Payload,
        /// The payload's message, read when the error was made (the
        /// payload itself is never shared, see [`Payload`]).
        message: Option<String>,
    },
    Cancelled,
    /// The green thread could not get a stack when it was first run.
    NoStack(String),
}

/// A panic payload that is only ever moved, never borrowed: `&JoinError`
/// gives no access to it, which makes `JoinError` `Sync` although the
/// payload (`dyn Any + Send`) is not (as tokio's `JoinError`).
struct Payload(Box<dyn Any + Send + 'static>);

// SAFETY: no `&Payload` method exists and `JoinError` hands the box out
// only by value (`into_panic`, `try_into_panic`), so sharing a
// `&JoinError` between threads never shares the payload.
unsafe impl Sync for Payload {}

impl JoinError {
    pub(crate) fn panic(id: TaskId, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        if let Some(message) = &message {
            hint_missing_tokio(message);
        }
        JoinError {
            id,
            inner: Box::new(Inner {
                name: None,
                repr: Repr::Panic {
                    payload: Payload(payload),
                    message,
                },
            }),
        }
    }

    pub(crate) fn cancelled(id: TaskId) -> JoinError {
        JoinError {
            id,
            inner: Box::new(Inner {
                name: None,
                repr: Repr::Cancelled,
            }),
        }
    }

    /// The green thread could not be started: no stack could be mapped.
    pub(crate) fn no_stack(id: TaskId, reason: String) -> JoinError {
        JoinError {
            id,
            inner: Box::new(Inner {
                name: None,
                repr: Repr::NoStack(reason),
            }),
        }
    }

    /// Attaches the task's name (for messages).
    pub(crate) fn with_name(mut self, name: Option<&str>) -> JoinError {
        self.inner.name = name.map(Box::from);
        self
    }

    /// Whether the task panicked.
    ///
    /// ```
    /// fibra::run(|| {
    ///     assert!(fibra::spawn(|| panic!()).join().unwrap_err().is_panic());
    /// });
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.inner.repr, Repr::Panic { .. })
    }

    /// Whether the task was cancelled (its runtime shut down, or it was
    /// unwound to report a deadlock).
    ///
    /// ```
    /// let rt = fibra::Runtime::builder().workers(1).build().unwrap();
    /// let h = rt.spawn(|| loop { fibra::yield_now() });
    /// drop(rt);
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.inner.repr, Repr::Cancelled)
    }

    /// Whether the green thread never ran because no stack could be mapped
    /// for it when a worker first picked it up (the message says why and
    /// how to raise the limit; see the README on `vm.max_map_count`).
    ///
    /// ```
    /// fibra::run(|| {
    ///     assert!(!fibra::spawn(|| panic!()).join().unwrap_err().is_no_stack());
    /// });
    /// ```
    pub fn is_no_stack(&self) -> bool {
        matches!(self.inner.repr, Repr::NoStack(_))
    }

    /// The id of the task that failed.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let h = fibra::spawn(|| panic!());
    ///     let id = h.id();
    ///     assert_eq!(h.join().unwrap_err().id(), id);
    /// });
    /// ```
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The panic payload. Panics if the task did not panic.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let err = fibra::spawn(|| panic!("x")).join().unwrap_err();
    ///     let payload = err.into_panic();
    ///     assert_eq!(*payload.downcast::<&str>().unwrap(), "x");
    /// });
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(p) => p,
            Err(err) => panic!("JoinError::into_panic on an error that is not a panic: {err}"),
        }
    }

    /// The panic payload, or the error itself if the task did not panic.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let err = fibra::spawn(|| panic!("y")).join().unwrap_err();
    ///     assert!(err.try_into_panic().is_ok());
    /// });
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.inner.repr {
            Repr::Panic { payload, .. } => Ok(payload.0),
            _ => Err(self),
        }
    }

    pub(crate) fn panic_message(&self) -> Option<&str> {
        match &self.inner.repr {
            Repr::Panic { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// `#7` or `#7 'name'`.
    fn task(&self) -> String {
        match &self.inner.name {
            Some(name) => format!("{} '{name}'", self.id),
            None => self.id.to_string(),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.repr {
            Repr::Panic { .. } => write!(
                f,
                "JoinError::Panic({}, {:?})",
                self.task(),
                self.panic_message().unwrap_or("<non-string payload>")
            ),
            Repr::Cancelled => write!(f, "JoinError::Cancelled({})", self.task()),
            Repr::NoStack(reason) => write!(f, "JoinError::NoStack({}, {reason:?})", self.task()),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.repr {
            Repr::Panic { .. } => match self.panic_message() {
                Some(msg) => write!(f, "task {} panicked: {msg}", self.task()),
                None => write!(f, "task {} panicked", self.task()),
            },
            Repr::Cancelled => write!(f, "task {} was cancelled", self.task()),
            Repr::NoStack(reason) => write!(f, "task {} could not start: {reason}", self.task()),
        }
    }
}

impl std::error::Error for JoinError {}

/// An owned permission to wait for a task's result.
///
/// Dropping the handle detaches the task: it keeps running and its result is
/// dropped (a panic is then logged through `tracing`). A handle may be joined
/// from a green thread (parks it), from a plain OS thread (blocks it), or
/// awaited as a future from any executor.
///
/// ```
/// fibra::run(|| {
///     let h = fibra::spawn(|| 6 * 7);
///     assert_eq!(h.join().unwrap(), 42);
/// });
/// ```
pub struct JoinHandle<T> {
    task: Arc<Task>,
    _output: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> JoinHandle<T> {
    pub(crate) fn new(task: Arc<Task>) -> JoinHandle<T> {
        JoinHandle {
            task,
            _output: PhantomData,
        }
    }

    /// Waits for the task and returns its value, or why there is none.
    ///
    /// In a green thread this parks only that green thread; on a plain OS
    /// thread it blocks the thread.
    ///
    /// ```
    /// let h = std::thread::spawn(|| {
    ///     fibra::run(|| fibra::spawn(|| "done").join().unwrap())
    /// });
    /// assert_eq!(h.join().unwrap(), "done");
    /// ```
    #[track_caller]
    pub fn join(mut self) -> Result<T, JoinError> {
        if self.task.state.is_complete() {
            return self.take_output();
        }
        let on = crate::park::record::WaitOn::Join {
            task: self.task.id.as_u64(),
        };
        crate::park::wait_as(on, |cx| std::pin::Pin::new(&mut self).poll(cx))
    }

    /// Cancels the task: a green thread unwinds at its next park (or
    /// resumes from the one it is in to unwind), running its destructors
    /// on its own worker; one that has not started, an async task (its
    /// future is dropped in place) and a `spawn_blocking` job that has not
    /// started never run again. [`join`](Self::join) then gives an error
    /// with [`JoinError::is_cancelled`]. A task that finishes first keeps
    /// its result; cancelling a finished task does nothing. A green thread
    /// that never parks or yields, and a blocking job already running, are
    /// not interrupted.
    ///
    /// A destructor that panics during the unwind would abort the process
    /// (Rust aborts on a panic escaping a destructor while unwinding);
    /// fibra stops that green thread's unwind there instead: its stack is
    /// leaked, its remaining destructors do not run, it still reports
    /// cancelled, an error is logged, and the process goes on.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (_tx, rx) = fibra::chan::channel::<u8>(0);
    ///     let h = fibra::spawn(move || rx.recv());
    ///     fibra::yield_now(); // let it park
    ///     h.cancel();
    ///     assert!(h.join().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self) {
        self.task.request_cancel();
    }

    /// Whether the task has finished (returned, panicked or was cancelled).
    ///
    /// ```
    /// fibra::run(|| {
    ///     let h = fibra::spawn(|| ());
    ///     while !h.is_finished() {
    ///         fibra::yield_now();
    ///     }
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.state.is_complete()
    }

    /// The id of the task.
    pub fn id(&self) -> TaskId {
        self.task.id
    }

    /// The task (for the runtime's own bookkeeping).
    pub(crate) fn task(&self) -> &Arc<Task> {
        &self.task
    }

    fn take_output(&mut self) -> Result<T, JoinError> {
        // SAFETY: the task is COMPLETE (checked by the caller with acquire
        // ordering), so no worker touches its job any more, and this handle
        // is the only other party that may (handles are not Clone).
        let job = unsafe { &mut *self.task.job.get() };
        job.output()
            .downcast_mut::<Option<Result<T, JoinError>>>()
            .expect("join handle output type matches the task")
            .take()
            .expect("task output taken twice")
            .map_err(|err| err.with_name(self.task.name.as_deref()))
    }
}

impl<T: Send + 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.task.state.is_complete() {
            return Poll::Ready(self.take_output());
        }
        self.task
            .join_waiting
            .store(true, std::sync::atomic::Ordering::SeqCst);
        {
            let mut slot = self.task.join_waker.lock();
            match &*slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        // Re-check after registering: `finish` publishes COMPLETE, then
        // (SeqCst) reads `join_waiting` and takes the waker under the lock.
        // With the fence, either it saw our flag or we see COMPLETE.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        if self.task.state.is_complete() {
            return Poll::Ready(self.take_output());
        }
        Poll::Pending
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.task.detach();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.task.id)
            .field("finished", &self.task.state.is_complete())
            .finish()
    }
}

/// A panic message from tokio saying it found no runtime: without fibra's
/// `tokio` feature, tokio's IO and timer futures have no reactor to run
/// on. Says how to fix it, once per process, on stderr and through
/// `tracing`; with the feature on, fibra provides the context and there is
/// nothing to add.
pub(crate) fn hint_missing_tokio(message: &str) {
    #[cfg(not(feature = "tokio"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        if message.contains("no reactor running")
            || message.contains("must be called from the context of a Tokio")
        {
            ONCE.call_once(|| {
                let hint = "fibra: a tokio future ran without a tokio runtime; enable fibra's \
                            `tokio` feature (fibra = { version = \"..\", features = [\"tokio\"] }) \
                            so that fibra's workers provide one";
                tracing::error!("{hint}");
                eprintln!("{hint}");
            });
        }
    }
    #[cfg(feature = "tokio")]
    let _ = message;
}
