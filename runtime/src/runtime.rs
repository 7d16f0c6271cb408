//! `Runtime`, its builder, and the process-level entry points.
//!
//! # Shutdown
//!
//! Dropping a [`Runtime`] (or returning from [`run`]):
//!
//! 1. sets the shutdown flag and unparks every worker;
//! 2. each worker leaves its loop at its next tick and, on its own thread,
//!    unwinds the stacks of the green threads pinned to it (their
//!    destructors run there, where their thread-locals are), then cancels
//!    the tasks left in its queues, repeating while destructors spawn or
//!    wake more;
//! 3. the dropping thread joins the workers, then cancels what is left in
//!    the injector and the async tasks that were idle (no worker owned
//!    them) and marks the runtime terminated, so a late wake or spawn is
//!    cancelled at once instead of queued.
//!
//! Every join handle then resolves: a value, a panic, or a cancellation.
//! A task that never returns to the scheduler (a loop that makes no fibra
//! call) keeps its worker from reaching step 2, and the drop waits for it.

use std::future::Future;
use std::io;
use std::sync::Arc;

use crossbeam_deque::Worker as Deque;

use crate::config::Config;
use crate::context;
use crate::sched::{Shared, Worker};
use crate::task::JoinHandle;

/// A fibra runtime: a set of worker threads running green threads and
/// async tasks.
///
/// ```
/// let rt = fibra_runtime::Runtime::builder().workers(2).build().unwrap();
/// let answer = rt.run(|| {
///     let h = fibra_runtime::spawn(|| 21);
///     h.join().unwrap() * 2
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct Runtime {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = fibra_runtime::Runtime::builder()
///     .workers(1)
///     .stack_size(64 * 1024)
///     .build()
///     .unwrap();
/// assert_eq!(rt.workers(), 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    workers: Option<usize>,
    stack_size: Option<usize>,
    thread_name: Option<String>,
}

impl Builder {
    /// Number of worker threads. Default: `FIBRA_WORKERS`, else the number
    /// of CPUs.
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n);
        self
    }

    /// Usable stack bytes of each green thread (16 KiB ..= 8 MiB, rounded
    /// up to pages). Default: `FIBRA_STACK_SIZE`, else 256 KiB.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Prefix of the worker threads' names (default `fibra-worker`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.thread_name = Some(name.into());
        self
    }

    /// Starts the worker threads.
    pub fn build(self) -> io::Result<Runtime> {
        let config = Config::resolve(self.workers, self.stack_size, self.thread_name)?;
        let deques: Vec<Deque<_>> = (0..config.workers).map(|_| Deque::new_fifo()).collect();
        let stealers = deques.iter().map(|d| d.stealer()).collect();
        let shared = Arc::new(Shared::new(config, stealers));
        let mut rt = Runtime {
            shared: shared.clone(),
            threads: Vec::with_capacity(deques.len()),
        };
        for (index, deque) in deques.into_iter().enumerate() {
            let shared = shared.clone();
            let name = format!("{}-{index}", shared.config.thread_name);
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || Worker::new(index, shared, deque).run())?;
            rt.threads.push(thread);
        }
        tracing::debug!(workers = rt.threads.len(), "runtime started");
        Ok(rt)
    }
}

impl Runtime {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A runtime with the defaults.
    ///
    /// ```
    /// let rt = fibra_runtime::Runtime::new().unwrap();
    /// assert!(rt.workers() >= 1);
    /// ```
    pub fn new() -> io::Result<Runtime> {
        Builder::default().build()
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.remotes.len()
    }

    /// Runs `f` as a green thread (the "main" one) and blocks the calling
    /// thread until it returns; a panic in `f` resumes on the caller. Other
    /// tasks keep running until the runtime is dropped.
    ///
    /// `f` may borrow from the caller: it is finished (or unwound) before
    /// `run` returns.
    ///
    /// ```
    /// let rt = fibra_runtime::Runtime::new().unwrap();
    /// let data = vec![1, 2, 3];
    /// let sum: i32 = rt.run(|| data.iter().sum());
    /// assert_eq!(sum, 6);
    /// ```
    #[track_caller]
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let mut out: Option<T> = None;
        let slot = SendPtr(&mut out as *mut Option<T>);
        let body: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
            let slot = slot;
            let value = f();
            // SAFETY: `out` outlives the task (see below) and nobody else
            // touches it until the task completes.
            unsafe { *slot.0 = Some(value) };
        });
        // SAFETY: `body` borrows from this frame. `run` does not return
        // before the join below observes the task complete, and a complete
        // task has either run `body` to its end, or unwound it (panic or
        // cancellation), or dropped it unstarted - so no borrow is used
        // after this frame ends. The runtime cannot shut down meanwhile:
        // `&self` keeps it alive.
        let body: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(body) };
        let handle = self.shared.spawn_green(Some("main".into()), 0, body);
        match handle.join() {
            Ok(()) => out.expect("main green thread stored its value"),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("fibra: the main green thread did not finish: {err}"),
        }
    }

    /// Runs a future to completion on the calling thread, with this runtime
    /// entered so that `fibra::spawn` and friends work inside it.
    ///
    /// ```
    /// let rt = fibra_runtime::Runtime::new().unwrap();
    /// let v = rt.block_on(async {
    ///     fibra_runtime::spawn(|| 5).await.unwrap()
    /// });
    /// assert_eq!(v, 5);
    /// ```
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let _enter = context::enter(self.shared.clone());
        crate::park::block_on(fut)
    }

    /// Spawns a green thread from any thread.
    ///
    /// ```
    /// let rt = fibra_runtime::Runtime::new().unwrap();
    /// let h = rt.spawn(|| "hi");
    /// assert_eq!(h.join().unwrap(), "hi");
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if let Err(err) = crate::stack::check_mapping_budget() {
            panic!("{err}");
        }
        self.shared.spawn_green(None, 0, f)
    }

    /// Spawns an async task from any thread.
    ///
    /// ```
    /// let rt = fibra_runtime::Runtime::new().unwrap();
    /// let h = rt.spawn_async(async { 3 });
    /// assert_eq!(h.join().unwrap(), 3);
    /// ```
    pub fn spawn_async<Fut>(&self, fut: Fut) -> JoinHandle<Fut::Output>
    where
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.shared.spawn_async(None, fut)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let on_own_worker = context::with_worker(|w| {
            w.is_some_and(|w| Arc::ptr_eq(&w.shared, &self.shared))
        });
        assert!(
            !on_own_worker,
            "fibra: a Runtime was dropped from one of its own green threads; drop it from outside"
        );
        self.shared.begin_shutdown();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a fibra worker thread panicked");
            }
        }
        self.shared.finish_shutdown();
        tracing::debug!("runtime stopped");
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.workers())
            .finish()
    }
}

struct SendPtr<T>(*mut T);
// SAFETY: the pointer is only dereferenced by the main green thread while
// the owning frame in `Runtime::run` waits for it (see there).
unsafe impl<T: Send> Send for SendPtr<T> {}

/// Builds a runtime with the defaults, runs `f` as its main green thread,
/// returns `f`'s value, then shuts the runtime down: tasks still running
/// are cancelled (their stacks unwound, their destructors run).
///
/// May be called many times, and from several OS threads at once.
///
/// ```
/// let v = fibra_runtime::run(|| {
///     let handles: Vec<_> = (0..10).map(|i| fibra_runtime::spawn(move || i * i)).collect();
///     handles.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
/// });
/// assert_eq!(v, 285);
/// ```
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let rt = Runtime::new().unwrap_or_else(|e| panic!("fibra: cannot start a runtime: {e}"));
    rt.run(f)
}

/// Spawns a green thread on the current runtime.
///
/// # Panics
///
/// Outside a runtime (use [`run`] or [`Runtime::spawn`]), or when no stack
/// can be mapped (the message says how to raise the limit); see
/// [`task::Builder::spawn`](crate::task::Builder::spawn) for a fallible form.
///
/// ```
/// fibra_runtime::run(|| {
///     let h = fibra_runtime::spawn(|| 1);
///     assert_eq!(h.join().unwrap(), 1);
/// });
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let Some(shared) = context::current_runtime() else {
        panic!("{}", context::OUTSIDE_RUNTIME);
    };
    if let Err(err) = crate::stack::check_mapping_budget() {
        panic!("{err}");
    }
    shared.spawn_green(None, 0, f)
}

/// Spawns a future as an async task on the current runtime (no stack of
/// its own). Panics outside a runtime.
///
/// ```
/// fibra_runtime::run(|| {
///     let h = fibra_runtime::spawn_async(async { 2 + 2 });
///     assert_eq!(h.join().unwrap(), 4);
/// });
/// ```
#[track_caller]
pub fn spawn_async<Fut>(fut: Fut) -> JoinHandle<Fut::Output>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let Some(shared) = context::current_runtime() else {
        panic!("{}", context::OUTSIDE_RUNTIME);
    };
    shared.spawn_async(None, fut)
}
