//! Runtime metrics: per-worker counters written only by their worker (a
//! relaxed load and store, no shared read-modify-write on the hot path) and
//! read by anyone.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one worker, owned by it.
#[derive(Default)]
pub(crate) struct WorkerMetrics {
    /// Tasks spawned by tasks running on this worker.
    pub(crate) spawned: Counter,
    /// Successful steals from peers or the injector.
    pub(crate) steals: Counter,
    /// Times the worker went to sleep.
    pub(crate) sleeps: Counter,
    /// Wake-ups of green threads pinned to another worker, sent to that
    /// worker's inbox by tasks running here.
    pub(crate) remote_wakes: Counter,
    /// Nanoseconds spent asleep.
    pub(crate) idle_ns: Counter,
    /// Timers in the worker's heap, cancelled ones included (gauge).
    pub(crate) timers: Counter,
    /// 1 if a live timer was armed when the worker last slept, else 0.
    pub(crate) timer_armed: Counter,
}

/// A single-writer counter.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`; only the owning worker calls this.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub(crate) fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A snapshot of one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Tasks resumed or polled by this worker.
    pub tasks_run: u64,
    /// Successful steals (batches) from peers or the injector.
    pub steals: u64,
    /// Times the worker went to sleep.
    pub sleeps: u64,
    /// Wake-ups of green threads pinned to another worker that tasks
    /// running on this worker sent there (each crosses threads, and may
    /// have to wake the other worker from its sleep).
    pub remote_wakes: u64,
    /// Time spent asleep, in nanoseconds (busy time is uptime minus this).
    pub idle_ns: u64,
    /// Started green threads pinned to this worker (running, runnable or
    /// parked).
    pub green_threads: u64,
    /// Movable tasks waiting in the worker's stealable queue.
    pub local_queue: usize,
    /// Pinned wake-ups from other threads not yet taken.
    pub inbox: usize,
    /// Timers in this worker's heap (cancelled ones are dropped lazily).
    pub timers: u64,
    /// Sockets in this worker's netpoller (the epoll set it polls and
    /// sleeps in): those its green threads wait on.
    pub sockets: usize,
}

/// Figures of the process's garbage-collected heap, as reported by the
/// collector (`fibra::gc::stats()` has the full set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcSummary {
    /// Completed collection cycles.
    pub cycles: u64,
    /// Bytes in the heap's spans now.
    pub heap_bytes: u64,
    /// Bytes found live by the last cycle.
    pub live_bytes: u64,
    /// Stop-the-world pauses so far.
    pub pauses: u64,
    /// Total time of those pauses, in nanoseconds.
    pub pause_total_ns: u64,
    /// Longest pause, in nanoseconds.
    pub pause_max_ns: u64,
}

static GC_SOURCE: std::sync::OnceLock<fn() -> GcSummary> = std::sync::OnceLock::new();

/// Lets the collector make its figures part of [`crate::stats`] (the
/// runtime does not depend on the collector). The collector's seam, not a
/// user API: the first caller wins, and `fibra-gc` calls it when its heap
/// is first used.
///
/// ```
/// fn none() -> fibra::GcSummary {
///     fibra::GcSummary::default()
/// }
/// fibra::gc_seam::set_gc_stats_source(none);
/// ```
#[doc(hidden)]
pub fn set_gc_stats_source(source: fn() -> GcSummary) {
    let _ = GC_SOURCE.set(source);
}

pub(crate) fn gc_summary() -> Option<GcSummary> {
    GC_SOURCE.get().map(|f| f())
}

/// A snapshot of one or more runtimes.
///
/// ```
/// let rt = fibra::Runtime::builder().workers(2).build().unwrap();
/// rt.run(|| {
///     for _ in 0..10 {
///         fibra::spawn(|| ()).join().unwrap();
///     }
/// });
/// let m = rt.metrics();
/// assert_eq!(m.workers.len(), 2);
/// assert!(m.tasks_spawned >= 11);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// Runtimes included in this snapshot.
    pub runtimes: usize,
    /// Per-worker figures.
    pub workers: Vec<WorkerStats>,
    /// Tasks spawned since the runtime(s) started.
    pub tasks_spawned: u64,
    /// Async tasks alive.
    pub async_tasks: usize,
    /// Tasks waiting in the global injector.
    pub injector: usize,
    /// Workers asleep right now.
    pub sleeping_workers: usize,
    /// Threads of the blocking pool(s), busy or idle.
    pub blocking_threads: usize,
    /// Sockets registered with the netpoller(s).
    pub sockets: usize,
    /// Process-wide green-thread stacks.
    pub stacks: crate::stack::StackStats,
    /// The GC heap's figures, once the heap has been used.
    pub gc: Option<GcSummary>,
}
