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
//!    cancelled at once instead of queued;
//! 4. it cancels the blocking-pool jobs that have not started (running
//!    ones finish on their own threads) and shuts the netpoller down:
//!    sockets registered with it fail from then on, and plain threads
//!    waiting on one are woken to see the error.
//!
//! Every join handle then resolves: a value, a panic, or a cancellation.
//! A task that never returns to the scheduler (a loop that makes no fibra
//! call) keeps its worker from reaching step 2, and the drop waits for it.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

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
    /// The stall detector and fallback netpoll (stopped first on drop).
    monitor: Option<crate::monitor::Monitor>,
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
    max_blocking_threads: Option<usize>,
    thread_keep_alive: Option<std::time::Duration>,
    deadlock_grace: Option<Option<Duration>>,
    dump_on_sigquit: Option<bool>,
    #[cfg(feature = "tokio")]
    tokio_handle: Option<tokio::runtime::Handle>,
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

    /// Most threads the blocking pool ([`spawn_blocking`](crate::spawn_blocking),
    /// hostname resolution) may run at once; further jobs queue. Default:
    /// `FIBRA_MAX_BLOCKING_THREADS`, else 512.
    ///
    /// ```
    /// let rt = fibra_runtime::Runtime::builder().max_blocking_threads(4).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn max_blocking_threads(mut self, n: usize) -> Builder {
        self.max_blocking_threads = Some(n);
        self
    }

    /// How long an idle blocking-pool thread waits for a job before it
    /// exits (default 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = fibra_runtime::Runtime::builder()
    ///     .thread_keep_alive(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn thread_keep_alive(mut self, keep_alive: std::time::Duration) -> Builder {
        self.thread_keep_alive = Some(keep_alive);
        self
    }

    /// How long every green thread must stay parked on fibra primitives,
    /// with nothing else pending, before [`Runtime::run`] reports "all green
    /// threads are asleep - deadlock!" (default 1 s; `None` turns the check
    /// off). See [`debug`](crate::debug) for what it cannot see.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = fibra_runtime::Runtime::builder()
    ///     .deadlock_grace(Some(Duration::from_secs(5)))
    ///     .build()
    ///     .unwrap();
    /// let patient = fibra_runtime::Runtime::builder().deadlock_grace(None).build().unwrap();
    /// ```
    pub fn deadlock_grace(mut self, grace: Option<Duration>) -> Builder {
        self.deadlock_grace = Some(grace);
        self
    }

    /// Whether SIGQUIT (Ctrl-\) writes a dump of every task to stderr
    /// while the program keeps running (default: yes). The handler is
    /// installed once per process, by the first runtime that asks.
    pub fn dump_on_sigquit(mut self, on: bool) -> Builder {
        self.dump_on_sigquit = Some(on);
        self
    }

    /// The tokio runtime whose context green threads and async tasks poll
    /// futures in (feature `tokio`). Default: the caller's tokio runtime if
    /// `build` runs inside one, else a one-thread tokio runtime started on
    /// first use.
    ///
    /// ```
    /// let tokio_rt = tokio::runtime::Runtime::new().unwrap();
    /// let rt = fibra_runtime::Runtime::builder()
    ///     .tokio_handle(tokio_rt.handle().clone())
    ///     .build()
    ///     .unwrap();
    /// rt.run(|| fibra_runtime::block_on(tokio::time::sleep(std::time::Duration::from_millis(1))));
    /// ```
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn tokio_handle(mut self, handle: tokio::runtime::Handle) -> Builder {
        self.tokio_handle = Some(handle);
        self
    }

    /// Starts the worker threads.
    pub fn build(self) -> io::Result<Runtime> {
        #[cfg(feature = "tokio")]
        let tokio_handle = self
            .tokio_handle
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok());
        #[allow(unused_mut)]
        let mut config = Config::resolve(
            self.workers,
            self.stack_size,
            self.thread_name,
            self.max_blocking_threads,
            self.thread_keep_alive,
            self.deadlock_grace,
            self.dump_on_sigquit,
        )?;
        #[cfg(feature = "tokio")]
        {
            config.tokio_handle = tokio_handle;
        }
        if config.dump_on_sigquit {
            crate::debug::install_sigquit_dump();
        }
        let deques: Vec<Deque<_>> = (0..config.workers).map(|_| Deque::new_fifo()).collect();
        let stealers = deques.iter().map(|d| d.stealer()).collect();
        let io = Arc::new(crate::net::driver::Driver::new()?);
        let shared = Arc::new(Shared::new(config, stealers, io));
        crate::sched::register_runtime(&shared);
        let mut rt = Runtime {
            shared: shared.clone(),
            threads: Vec::with_capacity(deques.len()),
            monitor: None,
        };
        for (index, deque) in deques.into_iter().enumerate() {
            let shared = shared.clone();
            let name = format!("{}-{index}", shared.config.thread_name);
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || Worker::new(index, shared, deque).run())?;
            rt.threads.push(thread);
        }
        rt.monitor = Some(crate::monitor::Monitor::start(shared)?);
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

    /// Figures of this runtime (see [`RuntimeStats`](crate::RuntimeStats)).
    ///
    /// ```
    /// let rt = fibra_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.metrics().workers.len(), 1);
    /// ```
    pub fn metrics(&self) -> crate::RuntimeStats {
        let mut out = crate::RuntimeStats::default();
        self.shared.collect_stats(&mut out);
        out.stacks = crate::stack::stats();
        out.gc = crate::sched::metrics::gc_summary();
        out
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
        match self.wait_main(handle) {
            Ok(()) => out.expect("main green thread stored its value"),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("fibra: the main green thread did not finish: {err}"),
        }
    }

    /// Waits for the main green thread, checking for a deadlock once per
    /// grace period (see [`debug`](crate::debug)).
    fn wait_main(&self, mut handle: JoinHandle<()>) -> Result<(), crate::JoinError> {
        let Some(grace) = self.shared.config.deadlock_grace else {
            return handle.join();
        };
        let tw = Arc::new(crate::sched::parker::ThreadWaker {
            parker: crate::sched::parker::Parker::new(),
        });
        let waker = std::task::Waker::from(tw.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        loop {
            let before = crate::debug::activity(&self.shared);
            let deadline = std::time::Instant::now() + grace;
            loop {
                if let std::task::Poll::Ready(r) = std::pin::Pin::new(&mut handle).poll(&mut cx) {
                    return r;
                }
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                tw.parker.park(Some(deadline - now));
            }
            if crate::debug::is_deadlocked(&self.shared, before) {
                let mut dump = String::new();
                crate::debug::dump_runtime(&self.shared, &mut dump);
                panic!("all green threads are asleep - deadlock!\n\n{dump}");
            }
        }
    }

    /// A text dump of every live task of this runtime (see
    /// [`debug::dump`](crate::debug::dump)).
    ///
    /// ```
    /// let rt = fibra_runtime::Runtime::new().unwrap();
    /// assert!(rt.dump().contains("workers"));
    /// ```
    pub fn dump(&self) -> String {
        let mut out = String::new();
        crate::debug::dump_runtime(&self.shared, &mut out);
        out
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

    /// Runs `f` on this runtime's blocking pool, from any thread (see
    /// [`spawn_blocking`](crate::spawn_blocking)).
    ///
    /// ```
    /// let rt = fibra_runtime::Runtime::new().unwrap();
    /// let h = rt.spawn_blocking(|| std::fs::metadata("/").is_ok());
    /// assert!(h.join().unwrap());
    /// ```
    pub fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::blocking::spawn_on(&self.shared, f)
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
        let on_own_worker =
            context::with_worker(|w| w.is_some_and(|w| Arc::ptr_eq(&w.shared, &self.shared)));
        assert!(
            !on_own_worker,
            "fibra: a Runtime was dropped from one of its own green threads; drop it from outside"
        );
        if let Some(mut monitor) = self.monitor.take() {
            monitor.stop();
        }
        self.shared.begin_shutdown();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a fibra worker thread panicked");
            }
        }
        self.shared.finish_shutdown();
        self.shared.blocking.shutdown();
        self.shared.io.shutdown();
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
