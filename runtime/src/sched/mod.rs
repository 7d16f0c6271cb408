//! The M:N work-stealing scheduler.
//!
//! # Vocabulary
//!
//! - A [`Worker`] is one OS thread running tasks. It owns a `runnext` slot,
//!   a queue of *pinned* tasks (started green threads, which never move), a
//!   stealable crossbeam deque of *movable* tasks (unstarted green threads
//!   and async tasks), and a stack pool.
//! - [`Shared`] is what all workers (and outside threads) see: the global
//!   injector, per-worker [`Remote`]s (stealer, inbox for pinned wake-ups,
//!   parker) and the [`idle`] protocol.
//!
//! # Where a task goes
//!
//! | event | on its own worker | from elsewhere |
//! |---|---|---|
//! | spawn by a green thread | the spawn slot (`runnext` for spawns, stealable after 50 µs; its previous occupant to the local deque), notify if the slot or the deque was empty | - |
//! | first spawn after an `accept` | the next worker in turn (its inbox, or the spawn slot) | - |
//! | other spawn | local deque, then notify an idle worker if the deque was empty | injector, then notify |
//! | wake of a pinned green thread | `runnext` | owner's inbox, unpark owner |
//! | wake of a movable task | local deque, notify if it was empty | injector, notify |
//! | yield / woken while running | back of the pinned queue (or deque) | - |
//!
//! # The worker loop (after Go's `schedule`/`findrunnable`)
//!
//! runnext, then the spawn slot (together at most 16 in a row) → inbox →
//! pinned queue / local deque (alternating) → the injector every 64 ticks
//! so it cannot starve → when all are empty, fire due timers and poll its
//! own netpoller without blocking (and a peer's that nobody polled for a
//! millisecond) → *spin*: steal half of a random victim's deque, the
//! injector, the inbox, a few rounds, then a peer's spawn slot that stays
//! occupied for its grace → *linger* (a spinner that owns green threads
//! watches its inbox and its poller for up to 50 µs, as Go's spinning Ms
//! do, so that a wake-up from another worker rarely needs a futex) →
//! *sleep* by the [`idle`] protocol, blocking in its own netpoller (see
//! `netpoll`), which inbox pushes, timers and IO all wake. A busy worker
//! also polls its netpoller without blocking every 64 ticks.
//!
//! # Placement: stealing only what waits
//!
//! A green thread starts, and is pinned, on the worker that first runs it,
//! so where unstarted work is taken decides which green threads share a
//! worker for good. Partners that talk (a ring of channel stages, ping-pong
//! pairs, a request and its helpers) are usually spawned together by one
//! green thread, which then blocks on them: its worker runs them within
//! microseconds, one after another, and every message between them stays
//! on that worker. A peer that stole part of such a burst the moment it
//! appeared would pin the partners apart and make every message a
//! cross-worker wake-up. So peers take a worker's movable work only once
//! it has waited:
//!
//! - its deque only once it has held tasks, with the owner taking none of
//!   them, for [`STEAL_AGE`] (1 ms; `Remote::backlog_since` records when
//!   it last went from empty to holding tasks, `Remote::last_pop` when the
//!   owner last took one), or without a break for [`BACKLOG_AGE`] (4 ms)
//!   even while the owner works through it (a burst of partners is
//!   started one after another, and a steal from its front would split a
//!   pair the owner has half started); its spawn slot once the occupant
//!   has sat there for `spawn_slot::GRACE` (50 µs);
//! - and only if the owner's thread has also run on a CPU for 50 µs since
//!   the thief first saw that work waiting (its CPU clock), or is asleep
//!   in the kernel (a task's blocking call): an owner the kernel has
//!   descheduled on a loaded machine runs the work itself once it is back
//!   rather than lose it (see `Worker::owner_cpu_wait`).
//!
//! A worker out of work that sees only work too young to take sleeps until
//! it is old enough (a timed sleep in its poller) instead of spinning, and
//! producers notify an idle worker only when a backlog starts (the deque or
//! the slot was empty), not for every spawn of a burst. No wake-up can be
//! lost by this: movable work in a worker's own queues is always run by
//! that worker, which is awake; peers are notified only for parallelism,
//! and the monitor also notifies for a worker stuck on one task with work
//! waiting. A backlog behind a long task thus spreads after about a
//! millisecond, a burst of short-lived or blocking partners stays where it
//! was spawned.
//!
//! # Pinning
//!
//! A started green thread is resumed only by the worker that first ran it:
//! code on its stack may hold thread-local addresses across a suspension.
//! Only its owner pops it (it never enters a stealable deque), and a wake
//! from another thread goes to the owner's inbox.

pub(crate) mod blocking_pool;
pub(crate) mod context;
pub(crate) mod coop;
pub(crate) mod idle;
pub(crate) mod metrics;
pub(crate) mod netpoll;
mod registry;
mod spawn_slot;
#[cfg(feature = "tokio")]
pub(crate) mod tokio_context;
mod worker;

pub(crate) use worker::Worker;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_deque::{Injector, Stealer};

use crate::config::Config;
use crate::park::parker::Parker;
use crate::task::{JoinError, JoinHandle, Reason, Schedule, Task};
use idle::Idle;
use netpoll::Driver;
use registry::Registry;

/// What peers and outside threads use to reach one worker.
pub(crate) struct Remote {
    /// Steals movable tasks from the worker's deque.
    pub(crate) stealer: Stealer<Arc<Task>>,
    /// Pinned tasks woken by other threads (and green threads placed here
    /// to start, see [`Shared::place_on`]).
    pub(crate) inbox: Injector<Arc<Task>>,
    /// A green thread spawned by one of the worker's green threads, run
    /// next here; peers take it only after a grace period.
    pub(crate) spawned: spawn_slot::SpawnSlot,
    /// When the worker's deque last went from empty to holding tasks (the
    /// runtime's clock, [`Shared::now_ns`]): peers steal from it only once
    /// that backlog is [`STEAL_AGE`] old.
    pub(crate) backlog_since: std::sync::atomic::AtomicU64,
    /// When the worker last took a task from its deque (same clock).
    pub(crate) last_pop: std::sync::atomic::AtomicU64,
    /// The worker's kernel thread id (0 until it runs): peers read its CPU
    /// clock to tell a busy owner from a descheduled one before stealing.
    pub(crate) tid: std::sync::atomic::AtomicI32,
    /// Started green threads pinned to the worker (the `started` registry's
    /// length, readable without its lock).
    pub(crate) pinned_count: AtomicUsize,
    /// Set (release) after every push to `inbox`; the owner swaps it off
    /// (acquire) before draining, so checking for wake-ups costs one load.
    pub(crate) inbox_ready: AtomicBool,
    /// Wakes the worker when it sleeps.
    pub(crate) parker: Parker,
    /// Counters the worker publishes.
    pub(crate) metrics: metrics::WorkerMetrics,
    /// Started green threads pinned to the worker. Only the worker inserts
    /// and removes; dumps read under the lock.
    pub(crate) started: parking_lot::Mutex<Registry>,
    /// Id of the task the worker is running (0: none).
    pub(crate) running: std::sync::atomic::AtomicU64,
    /// Task runs the worker has started: the monitor's stall detector and
    /// the `tasks_run` figure read it.
    pub(crate) switches: std::sync::atomic::AtomicU64,
}

/// How long a worker's deque must have held tasks, with its owner taking
/// none of them, before a peer steals from it (see "Placement" in the
/// module docs).
pub(crate) const STEAL_AGE: std::time::Duration = std::time::Duration::from_millis(1);
/// How long a worker's deque may hold tasks without a break, even while
/// its owner works through them, before a peer steals from it.
pub(crate) const BACKLOG_AGE: std::time::Duration = std::time::Duration::from_millis(4);

impl Remote {
    /// When a peer may first steal from this worker's deque by the wall
    /// clock ([`Shared::now_ns`]); `None` if it is empty.
    pub(crate) fn deque_stealable_at(&self) -> Option<u64> {
        if self.stealer.is_empty() {
            return None;
        }
        let since = self.backlog_since.load(Ordering::Relaxed);
        let progress = self.last_pop.load(Ordering::Relaxed).max(since);
        Some((progress + STEAL_AGE.as_nanos() as u64).min(since + BACKLOG_AGE.as_nanos() as u64))
    }
}

/// State shared by all workers of one runtime.
pub(crate) struct Shared {
    /// Configuration read once by the builder.
    pub(crate) config: Config,
    /// Tasks spawned or woken from outside the runtime's workers.
    pub(crate) injector: Injector<Arc<Task>>,
    /// One entry per worker.
    pub(crate) remotes: Box<[Remote]>,
    /// Sleep/spin bookkeeping.
    pub(crate) idle: Idle,
    /// Set once when the runtime shuts down.
    pub(crate) shutdown: AtomicBool,
    /// Set once every worker has exited: later arrivals are cancelled at
    /// once instead of queued.
    pub(crate) terminated: AtomicBool,
    /// Async tasks alive (they have no owner worker to cancel them).
    pub(crate) async_tasks: parking_lot::Mutex<Registry>,
    /// Tasks spawned from outside the workers (workers count their own).
    pub(crate) spawned_remote: AtomicUsize,
    /// Round-robin counter of [`Shared::next_placement`].
    next_placement: AtomicUsize,
    /// Zero of the runtime's clock ([`Shared::now_ns`]).
    epoch: std::time::Instant,
    /// The netpoller (its source count tells the deadlock detector whether
    /// a socket may still wake someone).
    pub(crate) io: Arc<Driver>,
    /// Threads for `spawn_blocking` (and its count of pending jobs).
    pub(crate) blocking: blocking_pool::Pool,
}

impl Schedule for Shared {
    #[inline]
    fn schedule(&self, task: Arc<Task>, reason: Reason) {
        Shared::schedule(self, task, reason)
    }
}

impl Shared {
    /// The runtime `task` schedules on: every task's scheduler is a
    /// runtime's `Shared`.
    pub(crate) fn of(task: &Task) -> Arc<Shared> {
        let scheduler: Arc<dyn std::any::Any + Send + Sync> = task.scheduler.clone();
        match scheduler.downcast() {
            Ok(shared) => shared,
            Err(_) => unreachable!("every task schedules on a runtime's `Shared`"),
        }
    }

    pub(crate) fn new(
        config: Config,
        stealers: Vec<Stealer<Arc<Task>>>,
        io: Arc<Driver>,
    ) -> Shared {
        let workers = stealers.len();
        let blocking = blocking_pool::Pool::new(
            config.max_blocking_threads,
            config.blocking_keep_alive,
            format!("{}-blocking", config.thread_name),
        );
        Shared {
            injector: Injector::new(),
            remotes: stealers
                .into_iter()
                .enumerate()
                .map(|(index, stealer)| {
                    // The worker sleeps in its own poller: unpark reaches
                    // it through that poller's waker.
                    let waker = io.waker(index);
                    Remote {
                        stealer,
                        inbox: Injector::new(),
                        spawned: spawn_slot::SpawnSlot::default(),
                        backlog_since: std::sync::atomic::AtomicU64::new(0),
                        last_pop: std::sync::atomic::AtomicU64::new(0),
                        tid: std::sync::atomic::AtomicI32::new(0),
                        pinned_count: AtomicUsize::new(0),
                        inbox_ready: AtomicBool::new(false),
                        parker: Parker::with_interrupt(Arc::new(move || {
                            if let Err(err) = waker.wake() {
                                tracing::error!("fibra: cannot wake the netpoller: {err}");
                            }
                        })),
                        metrics: metrics::WorkerMetrics::default(),
                        started: parking_lot::Mutex::new(Registry::default()),
                        running: std::sync::atomic::AtomicU64::new(0),
                        switches: std::sync::atomic::AtomicU64::new(0),
                    }
                })
                .collect(),
            idle: Idle::new(workers),
            shutdown: AtomicBool::new(false),
            terminated: AtomicBool::new(false),
            async_tasks: parking_lot::Mutex::new(Registry::default()),
            spawned_remote: AtomicUsize::new(0),
            next_placement: AtomicUsize::new(0),
            epoch: std::time::Instant::now(),
            io,
            blocking,
            config,
        }
    }

    pub(crate) fn spawn_green<F, T>(
        self: &Arc<Self>,
        name: Option<Box<str>>,
        stack_size: usize,
        f: F,
    ) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let task = Task::new_green(self.clone(), name, stack_size, f);
        let handle = JoinHandle::new(task.clone());
        self.schedule(task, Reason::Spawn);
        handle
    }

    pub(crate) fn spawn_async<Fut>(
        self: &Arc<Self>,
        name: Option<Box<str>>,
        fut: Fut,
    ) -> JoinHandle<Fut::Output>
    where
        Fut: std::future::Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let task = Task::new_async(self.clone(), name, fut);
        let handle = JoinHandle::new(task.clone());
        self.async_tasks.lock().insert(&task);
        self.schedule(task, Reason::Spawn);
        handle
    }

    /// The name of live task `id`, found in the registries of worker `index`
    /// (started green threads) and of the runtime (async tasks).
    pub(crate) fn task_name(&self, index: usize, id: u64) -> Option<String> {
        let find = |tasks: Vec<Arc<Task>>| {
            tasks
                .into_iter()
                .find(|t| t.id.as_u64() == id)
                .map(|t| t.name.as_deref().map(str::to_owned))
        };
        find(self.remotes[index].started.lock().tasks())
            .or_else(|| find(self.async_tasks.lock().tasks()))
            .flatten()
    }

    /// Puts a task whose `SCHEDULED` bit the caller set into a run queue.
    #[inline]
    pub(crate) fn schedule(&self, task: Arc<Task>, reason: Reason) {
        context::with_worker(|w| match w {
            Some(w) if std::ptr::eq(Arc::as_ptr(&w.shared), self) => {
                if reason == Reason::Spawn {
                    self.remotes[w.index].metrics.spawned.add(1);
                }
                w.schedule_local(task, reason)
            }
            _ => {
                // `self` may be borrowed from `task` (see `Schedule`), and
                // no worker of ours holds it here.
                let _keep = task.scheduler.clone();
                if reason == Reason::Spawn {
                    self.spawned_remote.fetch_add(1, Ordering::Relaxed);
                }
                self.schedule_remote(task)
            }
        })
    }

    /// Schedules from a thread that is not one of this runtime's workers.
    pub(crate) fn schedule_remote(&self, task: Arc<Task>) {
        if self.terminated.load(Ordering::Acquire) {
            self.cancel_unstarted(task);
            return;
        }
        match task.owner() {
            Some(owner) => {
                let deferred = defer_unpark(self, &task, owner);
                let remote = &self.remotes[owner];
                remote.inbox.push(task);
                remote.inbox_ready.store(true, Ordering::Release);
                if !deferred {
                    remote.parker.unpark();
                }
            }
            None => {
                self.injector.push(task);
                self.notify_work();
            }
        }
    }

    /// Starts unstarted green thread `task` on worker `index`: through its
    /// inbox, so no peer steals it (placement for balance, see
    /// [`spread_next_spawn`]).
    pub(crate) fn place_on(&self, index: usize, task: Arc<Task>) {
        let remote = &self.remotes[index];
        remote.inbox.push(task);
        remote.inbox_ready.store(true, Ordering::Release);
        remote.parker.unpark();
    }

    /// The runtime's clock: nanoseconds since it was built.
    pub(crate) fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The worker for the next green thread placed for balance (round
    /// robin: a placed green thread only starts later, so counts of
    /// started ones would send a burst of placements to one worker).
    pub(crate) fn next_placement(&self) -> usize {
        self.next_placement.fetch_add(1, Ordering::Relaxed) % self.remotes.len()
    }

    /// Movable work was published: wake a sleeping worker to search for it,
    /// unless one is already searching.
    pub(crate) fn notify_work(&self) {
        if let Some(index) = self.idle.worker_to_notify() {
            self.remotes[index].parker.unpark();
        }
    }

    /// Cancels a task that never started (or an async task between polls).
    pub(crate) fn cancel_unstarted(&self, task: Arc<Task>) {
        if !task.state.claim_for_cancel() {
            return;
        }
        // SAFETY: `claim_for_cancel` gave us the RUNNING bit.
        let job = unsafe { &mut *task.job.get() };
        job.fail(JoinError::cancelled(task.id));
        if task.kind == crate::task::Kind::Async {
            self.async_tasks.lock().remove(&task);
        }
        task.finish();
    }

    /// Starts shutdown: every worker stops at its next tick.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for remote in self.remotes.iter() {
            remote.parker.unpark();
        }
    }

    /// After all workers exited: cancel whatever is left.
    pub(crate) fn finish_shutdown(&self) {
        self.terminated.store(true, Ordering::SeqCst);
        loop {
            let mut progress = false;
            while let Some(task) = steal_one(&self.injector) {
                progress = true;
                self.cancel_unstarted(task);
            }
            for remote in self.remotes.iter() {
                while let Some(task) = steal_one(&remote.inbox) {
                    progress = true;
                    if task.owner().is_none() {
                        // Placed there to start, after its worker exited.
                        self.cancel_unstarted(task);
                    } else {
                        // Its owner already cancelled it; this only drops
                        // the queue's reference.
                        drop(task);
                    }
                }
                if let Some(task) = remote.spawned.take() {
                    progress = true;
                    self.cancel_unstarted(task);
                }
            }
            let left = self.async_tasks.lock().drain();
            for task in left {
                progress = true;
                self.cancel_unstarted(task);
            }
            if !progress {
                break;
            }
        }
    }
}

impl Shared {
    /// Adds this runtime's figures to `out`.
    pub(crate) fn collect_stats(&self, out: &mut metrics::RuntimeStats) {
        out.runtimes += 1;
        for (index, r) in self.remotes.iter().enumerate() {
            let m = &r.metrics;
            out.workers.push(metrics::WorkerStats {
                tasks_run: r.switches.load(Ordering::Relaxed),
                steals: m.steals.get(),
                sleeps: m.sleeps.get(),
                remote_wakes: m.remote_wakes.get(),
                idle_ns: m.idle_ns.get(),
                green_threads: r.pinned_count.load(Ordering::Relaxed) as u64,
                local_queue: r.stealer.len(),
                inbox: r.inbox.len(),
                timers: m.timers.get(),
                sockets: self.io.armed(index),
            });
        }
        out.tasks_spawned += self.spawned_remote.load(Ordering::Relaxed) as u64
            + self
                .remotes
                .iter()
                .map(|r| r.metrics.spawned.get())
                .sum::<u64>();
        out.async_tasks += self.async_tasks.lock().len();
        out.injector += self.injector.len();
        out.sleeping_workers += self.idle.num_sleeping();
        out.blocking_threads += self.blocking.threads();
        out.sockets += self.io.sources();
    }
}

/// Every live runtime in the process, for [`crate::stats`].
static RUNTIMES: parking_lot::Mutex<Vec<std::sync::Weak<Shared>>> =
    parking_lot::Mutex::new(Vec::new());

pub(crate) fn register_runtime(shared: &Arc<Shared>) {
    let mut all = RUNTIMES.lock();
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(shared));
}

/// Every live runtime.
pub(crate) fn live_runtimes() -> Vec<Arc<Shared>> {
    RUNTIMES.lock().iter().filter_map(|w| w.upgrade()).collect()
}

/// Figures of the current runtime, or of every live runtime when called
/// outside one.
///
/// ```
/// fibra::run(|| {
///     let stats = fibra::stats();
///     assert_eq!(stats.runtimes, 1);
///     assert!(!stats.workers.is_empty());
/// });
/// ```
pub fn stats() -> metrics::RuntimeStats {
    let mut out = metrics::RuntimeStats::default();
    match context::current_runtime() {
        Some(shared) => shared.collect_stats(&mut out),
        None => {
            for shared in live_runtimes() {
                shared.collect_stats(&mut out);
            }
        }
    }
    out.stacks = crate::stack::stats();
    out.gc = metrics::gc_summary();
    out
}

/// Makes the next green thread spawned by the calling green thread start
/// on the next worker in turn instead of beside its spawner: called after
/// `accept`, so that connections spread across workers (their handlers
/// never talk to the acceptor). No effect outside a worker.
pub(crate) fn spread_next_spawn() {
    context::with_worker(|w| {
        if let Some(w) = w {
            w.spread_next_spawn();
        }
    });
}

/// Workers to unpark at the end of a [`batch_wakes`]: (runtime, index).
type Deferred = Vec<(Arc<Shared>, usize)>;

thread_local! {
    /// While [`batch_wakes`] runs on this thread: the workers whose inbox
    /// got woken green threads from it, each to unpark once at the end.
    static DEFERRED_UNPARKS: std::cell::RefCell<Option<Deferred>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `wake`, which wakes many tasks at once (a channel closing, a
/// `Condvar::notify_all`, a `WaitGroup` reaching zero). Every worker that
/// receives pinned green threads from it is unparked once, when `wake`
/// returns or unwinds, instead of once per task: N woken green threads
/// cost N inbox pushes and one cross-thread wake per worker.
///
/// No wake-up is lost: each task is in its owner's inbox, flagged, before
/// `wake` returns, and the owner is unparked after that (a worker that is
/// awake finds the inbox on its own).
pub(crate) fn batch_wakes<R>(wake: impl FnOnce() -> R) -> R {
    /// Unparks the deferred workers, if this call opened the batch.
    struct Flush(bool);
    impl Drop for Flush {
        fn drop(&mut self) {
            if !self.0 {
                return;
            }
            let deferred = DEFERRED_UNPARKS
                .try_with(|d| d.borrow_mut().take())
                .ok()
                .flatten();
            for (shared, index) in deferred.into_iter().flatten() {
                shared.remotes[index].parker.unpark();
            }
        }
    }
    let outer = DEFERRED_UNPARKS
        .try_with(|d| {
            let mut d = d.borrow_mut();
            if d.is_some() {
                return false;
            }
            *d = Some(Vec::new());
            true
        })
        .unwrap_or(false);
    let _flush = Flush(outer);
    wake()
}

/// Wakes every waker (taken under a lock, called after it was released)
/// in one [`batch_wakes`]. A waker that panics does not stop the others:
/// all are woken, then the first panic continues.
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = std::task::Waker>) {
    batch_wakes(|| {
        let mut panic = None;
        for waker in wakers {
            let woke = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
            if let Err(payload) = woke {
                panic.get_or_insert(payload);
            }
        }
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
    });
}

/// Inside [`batch_wakes`]: records that worker `owner` of `shared` (the
/// runtime of `task`) must be unparked when the batch ends, and returns
/// true; outside one, false.
fn defer_unpark(shared: &Shared, task: &Arc<Task>, owner: usize) -> bool {
    DEFERRED_UNPARKS
        .try_with(|d| {
            let mut d = d.borrow_mut();
            let Some(list) = d.as_mut() else {
                return false;
            };
            let known = list
                .iter()
                .any(|(s, i)| *i == owner && std::ptr::eq(Arc::as_ptr(s), shared));
            if !known {
                list.push((Shared::of(task), owner));
            }
            true
        })
        .unwrap_or(false)
}

/// Pops one task from an injector, retrying on contention.
pub(crate) fn steal_one(q: &Injector<Arc<Task>>) -> Option<Arc<Task>> {
    loop {
        match q.steal() {
            crossbeam_deque::Steal::Success(t) => return Some(t),
            crossbeam_deque::Steal::Empty => return None,
            crossbeam_deque::Steal::Retry => continue,
        }
    }
}
