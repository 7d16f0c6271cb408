//! Safepoints: how the garbage collector stops every worker for a moment.
//!
//! # States
//!
//! Every worker thread registers a `WorkerStop` whose state is one of
//! `RUNNING` (it may be touching the heap), `IDLE` (sleeping, running no
//! task) or `STOPPED` (parked at a safepoint).
//!
//! # Handshake
//!
//! The stopper sets the process-wide `REQUESTED` flag (SeqCst), then waits
//! until no registered worker is `RUNNING`. A running worker polls the flag
//! at every safepoint (each scheduler tick, i.e. at every task switch, and
//! wherever the GC's allocator or barrier calls [`poll`]); seeing it set, it
//! moves to `STOPPED` and waits until the world restarts. A worker leaving
//! `IDLE` stores `RUNNING` and then re-reads `REQUESTED` (both SeqCst, with a
//! SeqCst fence between, as between the stopper's store and its reads): if a
//! stop is in progress it steps back to `IDLE` and waits. By the SeqCst
//! total order, either the stopper sees it `RUNNING` (and waits for its next
//! poll) or it sees the request (and stays out) - so when
//! [`stop_the_world`] returns, no worker runs a task. A worker still
//! `RUNNING` whose preemption signal has been pending for
//! [`PENDING_PROOF`] is not waited for: it is off the CPUs, and the
//! handler stops it before it runs its task again.
//!
//! Stopping touches each worker once: O(workers), never O(tasks) or O(heap).
//! Plain OS threads are not stopped; the collector must cover them with its
//! barriers.
//!
//! # Time to safepoint
//!
//! A worker still `RUNNING` after [`PREEMPT_AFTER`] is sent a preemption
//! signal (see `preempt`), which stops a task that runs
//! without reaching a safepoint where it is; the signal is repeated every
//! [`RESIGNAL_EVERY`] while the worker stays `RUNNING` (the signal may
//! land in a section that must not be stopped; such a section stops at
//! its end, see [`set_preemption_check`]).
//!
//! A stop that takes longer than [`SLOW_STOP`] is explained: for the
//! worker that kept it waiting longest, the stopper samples (without
//! allocating, see `probe`) its CPU clock and its kernel state while it
//! waits, and after the restart a `debug` event (target
//! `fibra_runtime::safepoint`, message `slow stop`) says which worker and
//! task held it, for how long, and in what state: running user code, in
//! a section that refused preemption, descheduled by the OS (its CPU clock
//! advanced less than half the wall time), asleep in a system call (and
//! which), between tasks in the scheduler, or already out of the way
//! while the stopper itself was late to notice. Past [`WATCHDOG`] the
//! event is a warning (logging while the world stops could wait on a lock
//! a stopped task holds, hence after the restart).
//!
//! # Who stops the world
//!
//! The collector asks through [`run_stopped`], which hands the stop to the
//! first worker that polls a safepoint (see `handoff`), so that the stop
//! does not begin with a worker's CPU taken by the collector's thread.
//!
//! The handshake's steps (`try_run`, `request_stop`, `out_of_the_way`) are
//! checked by a loom model at the end of this file.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::loom::fence;
use crate::sched::Shared;

mod doorbell;
mod handoff;
mod preempt;

pub(crate) mod probe;

pub use handoff::CLAIM_WAIT;
pub use preempt::{preemptions, set_preemption_check};

/// How long the stopper waits for a running worker before signalling it.
pub const PREEMPT_AFTER: Duration = Duration::from_micros(5);
/// How long the stopper spins after a signal before it sleeps.
pub const SIGNAL_SPIN: Duration = Duration::from_micros(20);
/// How often the signal is repeated while the worker keeps running.
pub const RESIGNAL_EVERY: Duration = Duration::from_micros(200);
/// A worker whose preemption signal is still pending (and not blocked)
/// this long after it was sent is not running: a running thread takes a
/// signal within microseconds (the kernel interrupts its CPU). The OS has
/// descheduled it, or it is in the kernel; either way it runs no
/// instruction of its task before the handler, which stops it if the
/// world is still stopped then. So the stop does not wait for it: a
/// worker the OS keeps off the CPUs no longer holds every other worker
/// stopped. A worker that refused a signal during this stop is waited
/// for. One descheduled inside a section that will refuse (the
/// collector's regions, see [`set_preemption_check`]) finishes that
/// section during the stop: a region read its phase before the stop,
/// and the collector's grace period after each phase change waits for it.
pub const PENDING_PROOF: Duration = Duration::from_micros(50);
/// A worker that keeps the world waiting longer than this is reported.
pub const WATCHDOG: Duration = Duration::from_millis(1);
/// A stop that takes longer than this is explained in a debug event.
pub const SLOW_STOP: Duration = Duration::from_micros(100);

/// When the stop in progress was requested (ns since [`epoch`]; 0: none),
/// for the monitor threads, which report a stop that never completes.
static STOP_SINCE: AtomicU64 = AtomicU64::new(0);

/// The base of `STOP_SINCE` (set by the first stop, before any signal).
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Now, in ns since [`epoch`] (at least 1).
fn since_epoch_ns() -> u64 {
    (epoch().elapsed().as_nanos() as u64).max(1)
}

const RUNNING: u8 = 0;
const IDLE: u8 = 1;
const STOPPED: u8 = 2;

/// Set while a stop-the-world is requested or in effect.
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// Registered workers (all workers of all runtimes).
static WORKERS: Mutex<Vec<Arc<StopState>>> = Mutex::new(Vec::new());
/// Serializes stoppers.
static STOPPER: Mutex<()> = Mutex::new(());
/// Stopped workers wait here for the world to restart.
static RESTART: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Arc<StopState>>> = const { std::cell::RefCell::new(None) };
}

struct StopState {
    state: AtomicU8,
    /// The worker thread's kernel id (the target of preemption signals).
    tid: libc::pid_t,
    /// The runtime and index of the worker, to name its task.
    owner: Option<(Arc<Shared>, usize)>,
    /// Preemption signals this worker's handler refused (it was in a
    /// section that must not be stopped), ever.
    refused: AtomicU32,
    /// When it last left `RUNNING` while a stop was requested (ns since
    /// [`epoch`]), to tell a late stopper from a late worker.
    stepped_aside_ns: AtomicU64,
}

/// A worker thread's registration with the stop-the-world handshake.
/// Unregisters on drop.
pub(crate) struct WorkerStop {
    inner: Arc<StopState>,
}

impl WorkerStop {
    /// Registers the calling worker thread, worker `index` of `shared`.
    pub(crate) fn register(shared: Arc<Shared>, index: usize) -> WorkerStop {
        preempt::install();
        let inner = Arc::new(StopState {
            state: AtomicU8::new(IDLE),
            tid: preempt::thread_id(),
            owner: Some((shared, index)),
            refused: AtomicU32::new(0),
            stepped_aside_ns: AtomicU64::new(0),
        });
        WORKERS.lock().push(inner.clone());
        CURRENT.with(|c| *c.borrow_mut() = Some(inner.clone()));
        preempt::set_current(Arc::as_ptr(&inner));
        let m = WorkerStop { inner };
        m.leave_idle();
        m
    }

    /// The safepoint poll of the worker loop.
    #[inline]
    pub(crate) fn poll(&self) {
        if REQUESTED.load(std::sync::atomic::Ordering::Relaxed) {
            self.stop_here();
        } else if handoff::wanted() {
            handoff::claim_on_worker();
        }
    }

    /// Runs `f` (a sleep) with this worker counted as idle.
    pub(crate) fn idle<R>(&self, f: impl FnOnce() -> R) -> R {
        self.inner.step_aside(IDLE);
        let r = f();
        self.leave_idle();
        r
    }

    fn leave_idle(&self) {
        self.inner.leave_idle();
    }

    #[cold]
    fn stop_here(&self) {
        self.inner.stop_here();
    }
}

/// A SeqCst cell of the handshake. The handshake's steps below are written
/// against these traits so that the loom model (at the end of this file)
/// runs them on loom's atomics: the modelled code is the code that ships.
trait StateCell {
    fn get(&self) -> u8;
    fn set(&self, v: u8);
}

/// The `REQUESTED` flag, as the handshake reads and raises it.
trait RequestFlag {
    fn is_set(&self) -> bool;
    fn raise(&self);
}

impl StateCell for AtomicU8 {
    fn get(&self) -> u8 {
        self.load(SeqCst)
    }
    fn set(&self, v: u8) {
        self.store(v, SeqCst)
    }
}

impl RequestFlag for AtomicBool {
    fn is_set(&self) -> bool {
        self.load(SeqCst)
    }
    fn raise(&self) {
        self.store(true, SeqCst)
    }
}

/// WorkerStop side of the handshake: leaves `IDLE` for `RUNNING` unless a stop
/// is requested, in which case it is `IDLE` again on return (`false`) and
/// must wait for the restart before trying again.
///
/// Each side stores its own cell, then reads the other's (a store-load
/// pair on two locations): the `SeqCst` fences make it order even where
/// SeqCst accesses alone are modelled more weakly (loom), at the cost of
/// one fence per wake-up of an idle worker.
fn try_run(state: &impl StateCell, requested: &impl RequestFlag) -> bool {
    state.set(RUNNING);
    fence(SeqCst);
    if !requested.is_set() {
        return true;
    }
    state.set(IDLE);
    false
}

/// Stopper side: raises `REQUESTED`; then it waits until every worker is
/// [`out_of_the_way`].
fn request_stop(requested: &impl RequestFlag) {
    requested.raise();
    fence(SeqCst);
}

/// Stopper side, once `REQUESTED` is set: whether this worker is out of
/// the way (idle or stopped) - and, by `try_run`'s order, stays out until
/// the restart.
fn out_of_the_way(state: &impl StateCell) -> bool {
    state.get() != RUNNING
}

impl StopState {
    fn leave_idle(&self) {
        while !try_run(&self.state, &REQUESTED) {
            doorbell::ring();
            wait_for_restart();
        }
    }

    fn stop_here(&self) {
        self.step_aside(STOPPED);
        wait_for_restart();
        self.leave_idle();
    }

    /// Leaves `RUNNING` for `state` (`IDLE` or `STOPPED`), waking a stopper
    /// that sleeps waiting for this worker. Async-signal-safe (the clock
    /// is read through the vDSO, and `epoch` is set before any stop).
    fn step_aside(&self, state: u8) {
        self.state.store(state, SeqCst);
        if REQUESTED.load(std::sync::atomic::Ordering::Relaxed) {
            self.stepped_aside_ns
                .store(since_epoch_ns(), std::sync::atomic::Ordering::Relaxed);
        }
        doorbell::ring();
    }
}

impl Drop for WorkerStop {
    fn drop(&mut self) {
        self.inner.step_aside(IDLE);
        preempt::set_current(std::ptr::null());
        WORKERS.lock().retain(|m| !Arc::ptr_eq(m, &self.inner));
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

fn wait_for_restart() {
    let (lock, cvar) = &RESTART;
    let mut guard = lock.lock();
    while REQUESTED.load(SeqCst) {
        cvar.wait(&mut guard);
    }
}

/// A safepoint poll for code running on a worker (the GC's allocation and
/// barrier slow paths call it): if a stop-the-world is pending, waits here
/// until it is over. Does nothing on other threads.
///
/// ```
/// fibra::gc_seam::poll();
/// ```
#[inline]
pub fn poll() {
    if REQUESTED.load(std::sync::atomic::Ordering::Relaxed) || handoff::wanted() {
        poll_slow();
    }
}

#[cold]
fn poll_slow() {
    let me = CURRENT.with(|c| c.borrow().clone());
    if let Some(me) = me {
        if REQUESTED.load(SeqCst) {
            me.stop_here();
        } else {
            handoff::claim_on_worker();
        }
    }
}

/// Runs `f`, a blocking wait that does not touch the heap, with the calling
/// worker (if it is one) counted as stopped, so that a stop-the-world the
/// wait depends on can proceed. Afterwards the worker waits for any
/// stop-the-world in progress to end. On other threads it just runs `f`.
///
/// ```
/// let v = fibra::gc_seam::blocking(|| 1 + 1);
/// assert_eq!(v, 2);
/// ```
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    struct Resume(Option<Arc<StopState>>);
    impl Drop for Resume {
        fn drop(&mut self) {
            if let Some(me) = &self.0 {
                me.leave_idle();
            }
        }
    }
    let me = CURRENT.with(|c| c.borrow().clone());
    if let Some(me) = &me {
        me.step_aside(IDLE);
    }
    let _resume = Resume(me);
    f()
}

/// Proof that the world is stopped: while it lives, no worker of any
/// runtime runs a task. Dropping it restarts the world.
#[must_use = "the world restarts when this guard drops"]
pub struct WorldStopped {
    stopping: Duration,
    started: Instant,
    /// The worker that kept the world waiting longest, past [`SLOW_STOP`].
    straggler: Option<Straggler>,
    /// Workers left with the preemption signal pending (see [`PENDING_PROOF`]).
    left_pending: u32,
    /// The stopper itself, if it is a worker: idle while it waits its turn
    /// and while the world is stopped, running again afterwards.
    me: Option<Arc<StopState>>,
    _serial: parking_lot::MutexGuard<'static, ()>,
}

impl WorldStopped {
    /// Time from the request until the last worker reached a safepoint
    /// (the time to safepoint).
    pub fn stopping_time(&self) -> Duration {
        self.stopping
    }

    /// Time since the world was requested to stop.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// How many workers the stop did not wait for because the OS kept
    /// them off the CPUs with the preemption signal pending (see
    /// [`PENDING_PROOF`]).
    pub fn left_pending(&self) -> u32 {
        self.left_pending
    }
}

impl WorldStopped {
    /// Restarts the world and says how long the stop took; the worker
    /// that kept it waiting, if one did past `SLOW_STOP`, is reported
    /// when the returned value drops (so that a worker that made the stop
    /// for the collector leaves the logging to the collector's thread).
    fn finish(mut self, on_worker: bool) -> StopReport {
        let straggler = self.straggler.take();
        let stopping = self.stopping;
        let left_pending = self.left_pending;
        let total = self.started.elapsed();
        drop(self);
        StopReport {
            stopping,
            total,
            on_worker,
            left_pending,
            straggler,
        }
    }
}

/// How a stop made by [`run_stopped`] went. Dropping it logs the worker
/// that kept the stop waiting, if one did past 100 µs.
#[must_use = "dropping the report logs a slow stop"]
pub struct StopReport {
    stopping: Duration,
    total: Duration,
    on_worker: bool,
    left_pending: u32,
    straggler: Option<Straggler>,
}

impl StopReport {
    /// Time from the request until the last worker reached a safepoint.
    pub fn stopping_time(&self) -> Duration {
        self.stopping
    }

    /// The whole stop, from the request to the restart.
    pub fn elapsed(&self) -> Duration {
        self.total
    }

    /// Whether a running worker made the stop (else the caller did).
    pub fn on_worker(&self) -> bool {
        self.on_worker
    }

    /// Workers the stop did not wait for: the OS kept them off the CPUs
    /// with the preemption signal pending (see [`PENDING_PROOF`]).
    pub fn left_pending(&self) -> u32 {
        self.left_pending
    }
}

impl Drop for StopReport {
    fn drop(&mut self) {
        if let Some(straggler) = self.straggler.take() {
            straggler.report(self.stopping);
        }
    }
}

/// Runs `step` with the world stopped and returns how long the stop took.
/// The stop is handed to a running worker (see `handoff`): the first to
/// reach a safepoint within [`CLAIM_WAIT`] makes it, so that the stop
/// never begins with a worker's CPU taken by the caller; otherwise, or
/// when no worker runs, the caller makes it. The collector's seam, not a
/// user API.
///
/// # Safety
///
/// As for [`stop_the_world`]: `step` must not allocate on the GC heap,
/// touch a `GcCell`, park, join, or wait for anything a task could provide
/// or a lock a stopped task may hold. The caller must not be a worker.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// let flipped = AtomicBool::new(false);
/// // SAFETY: the step only stores to an atomic.
/// let report = unsafe { fibra::gc_seam::run_stopped(&|| flipped.store(true, Ordering::SeqCst)) };
/// assert!(flipped.load(Ordering::SeqCst));
/// assert!(report.stopping_time() <= report.elapsed());
/// ```
#[doc(hidden)]
pub unsafe fn run_stopped(step: &(dyn Fn() + Sync)) -> StopReport {
    assert!(
        CURRENT.with(|c| c.borrow().is_none()),
        "run_stopped called on a worker"
    );
    // SAFETY: forwarded from the caller.
    unsafe { handoff::stop_and_run(step) }
}

/// Whether some registered worker is `RUNNING` (one may poll a safepoint
/// soon and make a stop handed to it).
fn any_worker_running() -> bool {
    WORKERS.lock().iter().any(|m| !out_of_the_way(&m.state))
}

impl Drop for WorldStopped {
    fn drop(&mut self) {
        let (lock, cvar) = &RESTART;
        let mut generation = lock.lock();
        REQUESTED.store(false, SeqCst);
        *generation += 1;
        cvar.notify_all();
        drop(generation);
        preempt::restarted();
        if let Some(me) = &self.me {
            me.state.store(RUNNING, SeqCst);
        }
        if let Some(straggler) = self.straggler.take() {
            straggler.report(self.stopping);
        }
    }
}

/// Why a worker kept a stop waiting (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holdup {
    /// Running a task that reached no safepoint and was not yet stopped by
    /// a signal (a long loop; signals blocked or preemption off).
    UserCode,
    /// Its handler refused the signal: a section that must not be stopped.
    RefusedPreemption,
    /// Runnable, but the OS ran other threads on the CPUs.
    Descheduled,
    /// Asleep in the kernel, in this system call if known.
    Syscall(Option<i64>),
    /// Between tasks: searching, polling, firing timers.
    Scheduler,
    /// It had stepped aside well before the stopper noticed: the stopper
    /// itself waited for a CPU.
    StopperLate,
}

impl Holdup {
    fn describe(self) -> &'static str {
        match self {
            Holdup::UserCode => "running user code",
            Holdup::RefusedPreemption => "in a section that refuses preemption",
            Holdup::Descheduled => "descheduled by the OS",
            Holdup::Syscall(_) => "in a system call",
            Holdup::Scheduler => "in the scheduler, between tasks",
            Holdup::StopperLate => "already stopped; the stopper was late to notice",
        }
    }
}

/// What the stopper saw of a worker it had waited [`SLOW_STOP`] for.
struct Sample {
    at: Instant,
    /// The worker's CPU clock then (None: unreadable).
    cpu: Option<Duration>,
    kernel: Option<probe::KernelState>,
    refused: u32,
    /// The task it was running (0: none).
    task: u64,
}

impl Sample {
    fn take(m: &StopState, at: Instant) -> Sample {
        let task = match &m.owner {
            Some((shared, index)) => shared.remotes[*index]
                .running
                .load(std::sync::atomic::Ordering::Relaxed),
            None => 0,
        };
        Sample {
            at,
            cpu: probe::cpu_time(m.tid),
            kernel: probe::kernel_state(m.tid),
            refused: m.refused.load(std::sync::atomic::Ordering::Relaxed),
            task,
        }
    }
}

/// The worker that kept a stop waiting longest, as the stopper saw it (no
/// lock taken, nothing logged while the world stops).
struct Straggler {
    state: Arc<StopState>,
    /// The task it was running when sampled (0: none).
    task: u64,
    /// How long the stop waited for this worker alone.
    held: Duration,
    holdup: Holdup,
    /// CPU time it used, and wall time, from the sample until it stopped.
    cpu: Option<Duration>,
    wall: Duration,
    /// Preemption signals the stopper sent it.
    signals: u32,
}

impl Straggler {
    /// Judges a worker that just got out of the way, `held` after the
    /// stopper began waiting for it, from `sample`.
    fn judge(m: &Arc<StopState>, sample: Sample, held: Duration, signals: u32) -> Straggler {
        let now = Instant::now();
        let wall = now.duration_since(sample.at);
        let cpu = sample
            .cpu
            .zip(probe::cpu_time(m.tid))
            .map(|(a, b)| b.saturating_sub(a));
        let stepped = m
            .stepped_aside_ns
            .load(std::sync::atomic::Ordering::Relaxed);
        let noticed_after = Duration::from_nanos(since_epoch_ns().saturating_sub(stepped.max(1)));
        let holdup = if let Some(probe::KernelState::Sleeping { syscall }) = sample.kernel {
            Holdup::Syscall(syscall)
        } else if stepped != 0 && noticed_after * 2 > held {
            Holdup::StopperLate
        } else if cpu.is_some_and(|c| c * 2 < wall) {
            Holdup::Descheduled
        } else if m.refused.load(std::sync::atomic::Ordering::Relaxed) != sample.refused {
            Holdup::RefusedPreemption
        } else if sample.task == 0 {
            Holdup::Scheduler
        } else {
            Holdup::UserCode
        };
        Straggler {
            state: m.clone(),
            task: sample.task,
            held,
            holdup,
            cpu,
            wall,
            signals,
        }
    }

    /// Logs the straggler (after the restart): a warning past
    /// [`WATCHDOG`], else a debug event.
    fn report(self, stopping: Duration) {
        let (worker, name) = match &self.state.owner {
            Some((shared, index)) => (Some(*index), shared.task_name(*index, self.task)),
            None => (None, None),
        };
        let syscall = match self.holdup {
            Holdup::Syscall(nr) => nr,
            _ => None,
        };
        let held_us = self.held.as_micros() as u64;
        let stopping_us = stopping.as_micros() as u64;
        let cpu_us = self.cpu.map(|c| c.as_micros() as u64);
        let wall_us = self.wall.as_micros() as u64;
        let state = self.holdup.describe();
        // One set of fields, at two levels (a `tracing` level is a constant).
        macro_rules! event {
            ($level:ident, $($message:tt)+) => {
                tracing::$level!(
                    target: "fibra_runtime::safepoint",
                    worker,
                    task.id = self.task,
                    task.name = name.as_deref(),
                    state,
                    held_us,
                    stopping_us,
                    cpu_us,
                    wall_us,
                    syscall,
                    signals = self.signals,
                    $($message)+
                )
            };
        }
        if stopping >= WATCHDOG {
            event!(
                warn,
                "a worker kept a stop-the-world waiting over {} µs ({state}; preemption refused \
                 or off: signals blocked, FIBRA_ASYNCPREEMPTOFF=1?)",
                WATCHDOG.as_micros()
            );
        } else {
            event!(debug, "slow stop");
        }
    }
}

/// Stops every worker of every runtime at its next safepoint and returns
/// once all have stopped (or are idle, or are kept off the CPUs by the OS
/// with the preemption signal pending, see [`PENDING_PROOF`]). The calling thread, if it is a
/// worker, counts as stopped. The collector's seam, not a user API.
///
/// # Safety
///
/// While the guard lives the caller must not allocate on the GC heap,
/// touch a `GcCell`, park, join or wait for anything a task could provide
/// (every task is stopped: the wait never ends), nor take a lock a
/// stopped task may hold. It must drop the guard on the thread that made
/// it, promptly. `fibra-gc` is the only intended caller.
///
/// ```
/// // SAFETY: nothing is done while the world is stopped.
/// let world = unsafe { fibra::gc_seam::stop_the_world() };
/// assert!(world.stopping_time() <= world.elapsed());
/// drop(world);
/// ```
#[doc(hidden)]
pub unsafe fn stop_the_world() -> WorldStopped {
    let me = CURRENT.with(|c| c.borrow().clone());
    if let Some(me) = &me {
        // Another stopper may be waiting for us: count as idle meanwhile.
        me.state.store(IDLE, SeqCst);
    }
    let serial = STOPPER.lock();
    let started = Instant::now();
    STOP_SINCE.store(
        (started.duration_since(epoch()).as_nanos() as u64).max(1),
        std::sync::atomic::Ordering::Relaxed,
    );
    request_stop(&REQUESTED);
    let registered: Vec<Arc<StopState>> = WORKERS.lock().clone();
    let mut straggler = None;
    let mut left_pending = 0;
    for m in &registered {
        left_pending += (wait_for(m, started, &mut straggler) == Waited::LeftPending) as u32;
    }
    STOP_SINCE.store(0, std::sync::atomic::Ordering::Relaxed);
    for m in &registered {
        m.stepped_aside_ns
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }
    WorldStopped {
        stopping: started.elapsed(),
        started,
        straggler,
        left_pending,
        me,
        _serial: serial,
    }
}

/// Waits until worker `m` is out of the way: spins for [`PREEMPT_AFTER`],
/// then signals it (again every [`RESIGNAL_EVERY`]), spins for
/// [`SIGNAL_SPIN`] more and then sleeps until it rings the doorbell, leaving the CPU to the thread it waits for (on a
/// busy machine that thread may need it to run its signal handler). Once
/// the stop has waited past [`SLOW_STOP`] it samples `m`, and keeps `m` as
/// the straggler if the stop waited longer for it than for any other.
fn wait_for(m: &Arc<StopState>, started: Instant, straggler: &mut Option<Straggler>) -> Waited {
    let began = Instant::now();
    let mut spins = 0u32;
    let mut signalled: Option<Instant> = None;
    let mut signals = 0u32;
    let mut sample: Option<Sample> = None;
    let mut outcome = Waited::Stepped;
    let refused_before = m.refused.load(std::sync::atomic::Ordering::Relaxed);
    while !out_of_the_way(&m.state) {
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
            continue;
        }
        let now = Instant::now();
        let waited = now.duration_since(started);
        if waited < PREEMPT_AFTER {
            std::hint::spin_loop();
            continue;
        }
        if signalled.is_none_or(|at| now.duration_since(at) >= RESIGNAL_EVERY) {
            if preempt::signal(m.tid) {
                signals += 1;
            }
            signalled = Some(now);
        }
        if signalled.is_some_and(|at| now.duration_since(at) < SIGNAL_SPIN) {
            // A running worker takes the signal within microseconds: a
            // futex sleep and wake-up would cost more than that.
            std::hint::spin_loop();
            continue;
        }
        if signals > 0
            && signalled.is_some_and(|at| now.duration_since(at) >= PENDING_PROOF)
            && m.refused.load(std::sync::atomic::Ordering::Relaxed) == refused_before
            && preempt::pending(m.tid)
        {
            // The OS keeps it off every CPU (or in the kernel): it runs no
            // instruction of its task before the handler, which stops it
            // if the world is still stopped then.
            outcome = Waited::LeftPending;
            break;
        }
        if waited >= SLOW_STOP && sample.is_none() {
            sample = Some(Sample::take(m, now));
            continue;
        }
        let timeout = if signalled.is_some_and(|at| now.duration_since(at) < PENDING_PROOF) {
            PENDING_PROOF
        } else {
            RESIGNAL_EVERY
        };
        doorbell::wait(timeout, || out_of_the_way(&m.state));
    }
    if let Some(sample) = sample {
        let held = began.elapsed();
        if straggler.as_ref().is_none_or(|s| held > s.held) {
            *straggler = Some(Straggler::judge(m, sample, held, signals));
        }
    }
    outcome
}

/// How the stopper's wait for one worker ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waited {
    /// It stepped aside (stopped or idle), or never ran.
    Stepped,
    /// It was left with the preemption signal pending, off the CPUs.
    LeftPending,
}

/// For the monitor: how long the stop in progress has waited, and the
/// workers of `shared` it still waits for (their indices). `None` when no
/// stop is waiting.
pub(crate) fn stop_waiting_for(shared: &Arc<Shared>) -> Option<(Duration, Vec<usize>)> {
    let since = STOP_SINCE.load(std::sync::atomic::Ordering::Relaxed);
    if since == 0 {
        return None;
    }
    let waited = epoch()
        .elapsed()
        .saturating_sub(Duration::from_nanos(since));
    let running = WORKERS
        .lock()
        .iter()
        .filter(|m| !out_of_the_way(&m.state))
        .filter_map(|m| match &m.owner {
            Some((owner, index)) if Arc::ptr_eq(owner, shared) => Some(*index),
            _ => None,
        })
        .collect();
    Some((waited, running))
}

/// The kernel thread ids of `shared`'s registered workers, by index
/// (`None`: not registered yet, or gone), for the monitor's CPU clocks.
pub(crate) fn worker_tids(shared: &Arc<Shared>) -> Vec<Option<libc::pid_t>> {
    let mut tids = vec![None; shared.remotes.len()];
    for m in WORKERS.lock().iter() {
        if let Some((owner, index)) = &m.owner {
            if Arc::ptr_eq(owner, shared) {
                tids[*index] = Some(m.tid);
            }
        }
    }
    tids
}

/// Whether worker `index` of `shared` is `RUNNING` (not stopped at a
/// safepoint, not idle), for the monitor: a worker stopped for the
/// collector sleeps in the kernel through no fault of its task.
pub(crate) fn worker_running(shared: &Arc<Shared>, index: usize) -> bool {
    WORKERS.lock().iter().any(|m| {
        matches!(&m.owner, Some((owner, i)) if Arc::ptr_eq(owner, shared) && *i == index)
            && !out_of_the_way(&m.state)
    })
}

/// Number of registered worker threads in the process (the threads a
/// stop-the-world waits for; the collector calls them mutators).
pub fn mutators() -> usize {
    WORKERS.lock().len()
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::{AtomicBool as LoomBool, AtomicU8 as LoomU8};
    use loom::sync::Arc;

    impl StateCell for LoomU8 {
        fn get(&self) -> u8 {
            self.load(SeqCst)
        }
        fn set(&self, v: u8) {
            self.store(v, SeqCst)
        }
    }

    impl RequestFlag for LoomBool {
        fn is_set(&self) -> bool {
            self.load(SeqCst)
        }
        fn raise(&self) {
            self.store(true, SeqCst)
        }
    }

    struct World {
        requested: LoomBool,
        state: LoomU8,
        /// Set by the stopper while it believes the world is stopped.
        stopped: LoomBool,
        /// Set by the worker while it runs a task.
        in_task: LoomBool,
    }

    /// A worker leaving idle races a stopper: the stopper never believes
    /// the world stopped while the worker runs a task, and the worker
    /// never starts a task while the world is stopped.
    #[test]
    fn no_task_runs_while_the_world_is_stopped() {
        loom::model(|| {
            let w = Arc::new(World {
                requested: LoomBool::new(false),
                state: LoomU8::new(IDLE),
                stopped: LoomBool::new(false),
                in_task: LoomBool::new(false),
            });
            let m = w.clone();
            let mutator = loom::thread::spawn(move || {
                // Leave idle (waiting out a stop), run one task, poll the
                // safepoint, go idle.
                while !try_run(&m.state, &m.requested) {
                    while m.requested.load(SeqCst) {
                        loom::thread::yield_now();
                    }
                }
                assert!(!m.stopped.load(SeqCst), "a task started in a stopped world");
                m.in_task.store(true, SeqCst);
                m.in_task.store(false, SeqCst);
                if m.requested.load(SeqCst) {
                    m.state.set(STOPPED);
                    while m.requested.load(SeqCst) {
                        loom::thread::yield_now();
                    }
                    while !try_run(&m.state, &m.requested) {
                        loom::thread::yield_now();
                    }
                }
                m.state.set(IDLE);
            });
            // The stopper.
            request_stop(&w.requested);
            while !out_of_the_way(&w.state) {
                loom::thread::yield_now();
            }
            w.stopped.store(true, SeqCst);
            assert!(!w.in_task.load(SeqCst), "the world stopped during a task");
            w.stopped.store(false, SeqCst);
            w.requested.store(false, SeqCst);
            mutator.join().unwrap();
        });
    }
}
