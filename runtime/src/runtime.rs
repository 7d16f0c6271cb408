//! [`Runtime`], its [`Builder`], and the process-level entry points
//! ([`run`], [`spawn`], [`spawn_async`]), all also at the crate root.
//!
//! # Shutdown
//!
//! Dropping a [`Runtime`] (or returning from [`run`]):
//!
//! 1. sets the shutdown flag and unparks every worker;
//! 2. each worker leaves its loop at its next tick and, on its own thread,
//!    unwinds the stacks of the green threads pinned to it (it resumes
//!    each into a cancellation unwind, see `task::cancel`; their
//!    destructors run there, where their thread-locals are; one whose
//!    destructor parks with nothing left to wake it is abandoned, its
//!    stack leaked), then cancels the tasks left in its queues (an async
//!    task's future is dropped where it lies), repeating while destructors
//!    spawn or wake more;
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
//!
//! A runtime dropped from one of its own green threads cannot join the
//! worker it runs on: steps 1-4 then run on a new OS thread, and the drop
//! returns at once (the dropping green thread is cancelled with the rest).

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
/// let rt = fibra::Runtime::builder().workers(2).build().unwrap();
/// let answer = rt.run(|| {
///     let h = fibra::spawn(|| 21);
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

/// Configures and builds a [`Runtime`] (`Runtime::builder()`; also at the
/// crate root as `Builder`). Not [`task::Builder`](crate::task::Builder),
/// which configures one green thread.
///
/// ```
/// let rt = fibra::Runtime::builder()
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
    stall_warning: Option<Option<Duration>>,
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
    /// let rt = fibra::Runtime::builder().max_blocking_threads(4).build().unwrap();
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
    /// let rt = fibra::Runtime::builder()
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
    /// off; a grace too long to represent, such as `Duration::MAX`, never
    /// ends, so it is off too). See [`debug`](crate::debug) for what it
    /// cannot see.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = fibra::Runtime::builder()
    ///     .deadlock_grace(Some(Duration::from_secs(5)))
    ///     .build()
    ///     .unwrap();
    /// let patient = fibra::Runtime::builder().deadlock_grace(None).build().unwrap();
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

    /// How much CPU time a task may run without yielding before the
    /// monitor warns that it holds its worker (default 10 ms, or
    /// `FIBRA_STALL_WARN_MS`; `None`: never). Measured on the worker
    /// thread's CPU clock, so a worker the OS has descheduled is not
    /// mistaken for a busy one; a task asleep in a system call is
    /// reported after the same time on the wall clock. At most one warning
    /// a second per runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = fibra::Runtime::builder()
    ///     .stall_warning(Some(Duration::from_millis(50)))
    ///     .build()
    ///     .unwrap();
    /// let quiet = fibra::Runtime::builder().stall_warning(None).build().unwrap();
    /// ```
    pub fn stall_warning(mut self, threshold: Option<Duration>) -> Builder {
        self.stall_warning = Some(threshold);
        self
    }

    /// The tokio runtime whose context green threads and async tasks poll
    /// futures in (feature `tokio`). Default: the caller's tokio runtime if
    /// `build` runs inside one, else a one-thread tokio runtime started on
    /// first use.
    ///
    /// ```
    /// let tokio_rt = tokio::runtime::Runtime::new().unwrap();
    /// let rt = fibra::Runtime::builder()
    ///     .tokio_handle(tokio_rt.handle().clone())
    ///     .build()
    ///     .unwrap();
    /// rt.run(|| fibra::block_on(tokio::time::sleep(std::time::Duration::from_millis(1))));
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
        let mut config = Config::resolve(
            self.workers,
            self.stack_size,
            self.thread_name,
            self.max_blocking_threads,
            self.thread_keep_alive,
            self.deadlock_grace,
            self.dump_on_sigquit,
        )?;
        if let Some(threshold) = self.stall_warning {
            config.stall_warning = threshold;
        }
        config.stack_size = crate::stack::normalize_size(config.stack_size);
        #[cfg(feature = "tokio")]
        {
            config.tokio_handle = tokio_handle;
        }
        if config.dump_on_sigquit {
            crate::debug::install_sigquit_dump();
        }
        crate::park::abort::install_handler();
        crate::task::hook::install();
        // The collector's heap set-up, before the workers exist.
        crate::gc_seam::runtime_starting();
        let deques: Vec<Deque<_>> = (0..config.workers).map(|_| Deque::new_fifo()).collect();
        let stealers = deques.iter().map(|d| d.stealer()).collect();
        let io = Arc::new(crate::sched::netpoll::Driver::new(config.workers)?);
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
    /// let rt = fibra::Runtime::new().unwrap();
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
    /// let rt = fibra::Runtime::builder().workers(1).build().unwrap();
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
    /// `f` may borrow from the caller: `run` never returns or unwinds while
    /// the main green thread can still run - it is finished, or unwound,
    /// first.
    ///
    /// # Where it may be called
    ///
    /// - From a plain thread: blocks it.
    /// - From a green thread of this runtime: `f` runs right there, on the
    ///   calling green thread (it already is one of this runtime's).
    /// - From a green thread of another runtime: parks that green thread.
    ///   If it is cancelled meanwhile (its runtime shuts down), the main
    ///   green thread is cancelled too, and the unwind blocks the OS
    ///   thread until that one has unwound: `f`'s borrows end first.
    /// - From an async task: panics at once (it would block its worker).
    ///
    /// # Deadlock
    ///
    /// When every green thread stays asleep for the grace period
    /// ([`Builder::deadlock_grace`], see [`debug`](crate::debug)), `run`
    /// first cancels the main green thread - it unwinds from its park on
    /// its own worker, its destructors run - waits until it has unwound,
    /// then panics with "all green threads are asleep - deadlock!" and the
    /// dump taken when the deadlock was found. Whatever it waited on (a
    /// channel a plain thread holds, say) sees its end dropped: a late
    /// sender gets an error, never a dead frame. If the main green thread
    /// was woken in the meantime and returns its value, `run` returns it.
    /// If it cannot unwind (a destructor parks and nothing can wake it:
    /// the deadlock persists for another grace period), the process
    /// aborts with the report, like Go's fatal error: `run` never unwinds
    /// past frames the main green thread still uses.
    ///
    /// ```
    /// let rt = fibra::Runtime::new().unwrap();
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
        let caller = context::with_task(|t| {
            t.map(|t| {
                (
                    t.kind,
                    std::ptr::addr_eq(Arc::as_ptr(&t.scheduler), Arc::as_ptr(&self.shared)),
                )
            })
        });
        match caller {
            Some((crate::task::Kind::Async, _)) => panic!(
                "fibra: Runtime::run was called from an async task, which must not block its \
                 worker; spawn a green thread and await its JoinHandle instead"
            ),
            Some((crate::task::Kind::Green, true)) => return f(),
            _ => {}
        }
        let mut out: Option<T> = None;
        let slot = SendPtr(&mut out as *mut Option<T>);
        let body: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
            let slot = slot;
            let value = f();
            // SAFETY: `out` outlives the task (see below) and nobody else
            // touches it until the task completes.
            unsafe { *slot.0 = Some(value) };
        });
        // SAFETY: `body` borrows from this frame. This frame does not end
        // before the main task is complete - having run `body` to its end,
        // or unwound it (panic or cancellation), or dropped it unstarted -
        // so no borrow is used after it: `wait_main` returns only once the
        // join handle is ready (on a deadlock it cancels the task and
        // waits for that, or aborts the process), and should this frame
        // unwind early (the caller is a green thread being cancelled),
        // `MainGuard` cancels the task and blocks until it completes. The
        // runtime cannot shut down meanwhile: `&self` keeps it alive.
        let body: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(body) };
        let mut handle = self.shared.spawn_green(Some("main".into()), 0, body);
        let guard = MainGuard(handle.task().clone());
        let result = self.wait_main(&mut handle);
        drop(guard);
        match result {
            Ok(()) => out.expect("main green thread stored its value"),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("fibra: the main green thread did not finish: {err}"),
        }
    }

    /// Waits for the main green thread, checking for a deadlock once per
    /// grace period (see [`run`](Runtime::run) and
    /// [`debug`](crate::debug)). Returns only once the handle is ready.
    /// The deadlock panic names the user's call of `run`.
    #[track_caller]
    fn wait_main(&self, handle: &mut JoinHandle<()>) -> Result<(), crate::JoinError> {
        let on = crate::debug::WaitOn::Join {
            task: handle.id().as_u64(),
        };
        let Some(grace) = self.shared.config.deadlock_grace else {
            return crate::park::wait_as(on, |cx| std::pin::Pin::new(&mut *handle).poll(cx));
        };
        // The report taken when a deadlock was found and the main green
        // thread was asked to unwind.
        let mut cancelled: Option<String> = None;
        loop {
            let before = crate::debug::activity(&self.shared);
            // `None` (a grace too long to add to now): never check.
            let deadline = std::time::Instant::now().checked_add(grace);
            if let Some(result) = wait_until(handle, on, deadline) {
                return match (result, cancelled) {
                    (Err(_), Some(report)) => {
                        panic!("all green threads are asleep - deadlock!\n\n{report}")
                    }
                    (result, _) => result,
                };
            }
            if !crate::debug::is_deadlocked(&self.shared, before) {
                continue;
            }
            let mut dump = String::new();
            crate::debug::dump_runtime(&self.shared, &mut dump);
            match &cancelled {
                None => {
                    handle.task().request_cancel();
                    cancelled = Some(dump);
                }
                Some(report) => {
                    // The main green thread cannot unwind (a destructor
                    // waits for something nothing will do): returning or
                    // unwinding would free frames it still uses.
                    eprintln!(
                        "fatal error: all green threads are asleep - deadlock!\n\n{report}\n\n\
                         the main green thread was cancelled but cannot finish unwinding:\n\n{dump}"
                    );
                    std::process::abort();
                }
            }
        }
    }

    /// A text dump of every live task of this runtime (see
    /// [`debug::dump`](crate::debug::dump)).
    ///
    /// ```
    /// let rt = fibra::Runtime::new().unwrap();
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
    /// let rt = fibra::Runtime::new().unwrap();
    /// let v = rt.block_on(async {
    ///     fibra::spawn(|| 5).await.unwrap()
    /// });
    /// assert_eq!(v, 5);
    /// ```
    ///
    /// # Panics
    ///
    /// In an async task (`.await` the future instead), and in a green
    /// thread of another runtime: entering a runtime marks the whole OS
    /// thread, which that worker's other green threads share while this
    /// one is parked. In a green thread of this runtime it parks only that
    /// green thread, like [`fibra::block_on`](crate::block_on).
    #[track_caller]
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let caller = context::with_task(|t| {
            t.map(|t| {
                (
                    t.kind,
                    std::ptr::addr_eq(Arc::as_ptr(&t.scheduler), Arc::as_ptr(&self.shared)),
                )
            })
        });
        match caller {
            None => {
                let _enter = context::enter(self.shared.clone());
                crate::bridge::block_on(fut)
            }
            Some((crate::task::Kind::Green, true)) => crate::bridge::block_on(fut),
            Some((crate::task::Kind::Green, false)) => panic!(
                "fibra: Runtime::block_on was called from a green thread of another runtime; \
                 spawn the work on this runtime (`Runtime::spawn`) and join it, or call it \
                 from a plain thread"
            ),
            Some((crate::task::Kind::Async, _)) => panic!(
                "fibra: Runtime::block_on was called from an async task, which must not block \
                 its worker; `.await` the future instead"
            ),
        }
    }

    /// Spawns a green thread from any thread.
    ///
    /// ```
    /// let rt = fibra::Runtime::new().unwrap();
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
    /// let rt = fibra::Runtime::new().unwrap();
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
    /// let rt = fibra::Runtime::new().unwrap();
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
    /// Shuts the runtime down (see the module docs). Dropped from one of
    /// its own green threads, it cannot wait for its workers (the caller
    /// runs on one of them): the shutdown is handed to a new OS thread and
    /// the drop returns at once; the calling green thread is cancelled
    /// like every other at its next park, yield or return.
    fn drop(&mut self) {
        let shutdown = Shutdown {
            shared: self.shared.clone(),
            threads: std::mem::take(&mut self.threads),
            monitor: self.monitor.take(),
        };
        let on_own_worker =
            context::with_worker(|w| w.is_some_and(|w| Arc::ptr_eq(&w.shared, &self.shared)));
        if !on_own_worker {
            shutdown.run();
            return;
        }
        let name = format!("{}-shutdown", self.shared.config.thread_name);
        let handed = std::thread::Builder::new()
            .name(name)
            .spawn(move || shutdown.run());
        if let Err(err) = handed {
            // Without a thread to wait on, the workers are at least told
            // to stop: each cancels its own tasks and exits.
            tracing::error!("fibra: cannot start a thread to shut the runtime down: {err}");
            self.shared.begin_shutdown();
        }
    }
}

/// What dropping a [`Runtime`] takes over to shut it down.
struct Shutdown {
    /// The runtime's shared state.
    shared: Arc<Shared>,
    /// Its worker threads, joined after the shutdown flag is set.
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The stall detector and fallback netpoll (stopped first).
    monitor: Option<crate::monitor::Monitor>,
}

impl Shutdown {
    /// The steps of the module docs' "Shutdown".
    fn run(mut self) {
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

/// Waits for `handle` until `deadline` (`None`: without one): parks a
/// green thread, blocks a plain thread (not counted as blocked in a fibra
/// call: it is the deadlock detector itself). `None` if the deadline
/// passed first.
fn wait_until(
    handle: &mut JoinHandle<()>,
    on: crate::debug::WaitOn,
    deadline: Option<std::time::Instant>,
) -> Option<Result<(), crate::JoinError>> {
    let mut poll = |cx: &mut std::task::Context<'_>| std::pin::Pin::new(&mut *handle).poll(cx);
    if crate::park::in_green_thread() {
        return crate::park::wait_deadline_as(on, deadline, poll);
    }
    let tw = Arc::new(crate::park::parker::ThreadWaker {
        parker: crate::park::parker::Parker::new(),
    });
    let waker = std::task::Waker::from(tw.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(r) = poll(&mut cx) {
            return Some(r);
        }
        let timeout = match deadline {
            Some(deadline) => {
                let now = std::time::Instant::now();
                if now >= deadline {
                    return None;
                }
                Some(deadline - now)
            }
            None => None,
        };
        tw.parker.park(timeout);
    }
}

/// Keeps [`Runtime::run`]'s frame alive while its main green thread may
/// still run: should that frame unwind first (its caller is a green thread
/// of another runtime, cancelled while it waits), the main green thread is
/// cancelled and the OS thread blocks until it has completed.
struct MainGuard(Arc<crate::task::Task>);

impl Drop for MainGuard {
    fn drop(&mut self) {
        if self.0.state.is_complete() {
            return;
        }
        self.0.request_cancel();
        while !self.0.state.is_complete() {
            std::thread::sleep(Duration::from_millis(1));
        }
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
/// let v = fibra::run(|| {
///     let handles: Vec<_> = (0..10).map(|i| fibra::spawn(move || i * i)).collect();
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
/// fibra::run(|| {
///     let h = fibra::spawn(|| 1);
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
/// fibra::run(|| {
///     let h = fibra::spawn_async(async { 2 + 2 });
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

/// Spawning with a [`task::Builder`](crate::task::Builder) (the task core
/// defines the builder; spawning needs the current runtime).
impl crate::task::Builder {
    /// Spawns the green thread on the current runtime.
    ///
    /// Fails if called outside a fibra runtime, or if the process cannot map
    /// another stack (the error says how to raise the limit).
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(shared) = context::current_runtime() else {
            return Err(io::Error::other(context::OUTSIDE_RUNTIME));
        };
        crate::stack::check_mapping_budget()?;
        let stack_size = self
            .stack_size
            .map(crate::stack::normalize_size)
            .unwrap_or(0);
        let name = self.name.map(String::into_boxed_str);
        Ok(shared.spawn_green(name, stack_size, f))
    }

    /// Spawns a future as an async task (no stack of its own) on the
    /// current runtime.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let h = fibra::task::Builder::new().name("fut").spawn_async(async { 5 }).unwrap();
    ///     assert_eq!(h.join().unwrap(), 5);
    /// });
    /// ```
    pub fn spawn_async<Fut>(self, fut: Fut) -> io::Result<JoinHandle<Fut::Output>>
    where
        Fut: std::future::Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let Some(shared) = context::current_runtime() else {
            return Err(io::Error::other(context::OUTSIDE_RUNTIME));
        };
        let name = self.name.map(String::into_boxed_str);
        Ok(shared.spawn_async(name, fut))
    }
}
