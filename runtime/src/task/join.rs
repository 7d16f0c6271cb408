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
/// ```
/// fibra_runtime::run(|| {
///     let h = fibra_runtime::spawn(|| panic!("boom"));
///     let err = h.join().unwrap_err();
///     assert!(err.is_panic());
///     assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
/// });
/// ```
pub struct JoinError {
    id: TaskId,
    repr: Repr,
}

enum Repr {
    Panic(Box<dyn Any + Send + 'static>),
    Cancelled,
}

impl JoinError {
    pub(crate) fn panic(id: TaskId, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            id,
            repr: Repr::Panic(payload),
        }
    }

    pub(crate) fn cancelled(id: TaskId) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled,
        }
    }

    /// Whether the task panicked.
    ///
    /// ```
    /// fibra_runtime::run(|| {
    ///     assert!(fibra_runtime::spawn(|| panic!()).join().unwrap_err().is_panic());
    /// });
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// Whether the task was cancelled because its runtime shut down.
    ///
    /// ```
    /// let rt = fibra_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let h = rt.spawn(|| loop { fibra_runtime::yield_now() });
    /// drop(rt);
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The id of the task that failed.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The panic payload. Panics if the task was cancelled instead.
    ///
    /// ```
    /// fibra_runtime::run(|| {
    ///     let err = fibra_runtime::spawn(|| panic!("x")).join().unwrap_err();
    ///     let payload = err.into_panic();
    ///     assert_eq!(*payload.downcast::<&str>().unwrap(), "x");
    /// });
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.repr {
            Repr::Panic(p) => p,
            Repr::Cancelled => panic!("JoinError::into_panic on a cancelled task ({})", self.id),
        }
    }

    /// The panic payload, or the error itself if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p),
            Repr::Cancelled => Err(self),
        }
    }

    pub(crate) fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic(p) => p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str())),
            Repr::Cancelled => None,
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(_) => write!(
                f,
                "JoinError::Panic({}, {:?})",
                self.id,
                self.panic_message().unwrap_or("<non-string payload>")
            ),
            Repr::Cancelled => write!(f, "JoinError::Cancelled({})", self.id),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(_) => match self.panic_message() {
                Some(msg) => write!(f, "task {} panicked: {msg}", self.id),
                None => write!(f, "task {} panicked", self.id),
            },
            Repr::Cancelled => write!(f, "task {} was cancelled", self.id),
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
/// fibra_runtime::run(|| {
///     let h = fibra_runtime::spawn(|| 6 * 7);
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
    ///     fibra_runtime::run(|| fibra_runtime::spawn(|| "done").join().unwrap())
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

    /// Whether the task has finished (returned, panicked or was cancelled).
    ///
    /// ```
    /// fibra_runtime::run(|| {
    ///     let h = fibra_runtime::spawn(|| ());
    ///     while !h.is_finished() {
    ///         fibra_runtime::yield_now();
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
