//! Safepoints: how the garbage collector stops every worker for a moment.
//!
//! # States
//!
//! Every worker thread registers a [`Mutator`] whose state is one of
//! `RUNNING` (it may be touching the heap), `IDLE` (sleeping, running no
//! task) or `STOPPED` (parked at a safepoint).
//!
//! # Handshake
//!
//! The stopper sets the process-wide `REQUESTED` flag (SeqCst), then waits
//! until no registered mutator is `RUNNING`. A running worker polls the flag
//! at every safepoint (each scheduler tick, i.e. at every task switch, and
//! wherever the GC's allocator or barrier calls [`poll`]); seeing it set, it
//! moves to `STOPPED` and waits until the world restarts. A worker leaving
//! `IDLE` stores `RUNNING` and then re-reads `REQUESTED` (both SeqCst): if a
//! stop is in progress it steps back to `IDLE` and waits. By the SeqCst
//! total order, either the stopper sees it `RUNNING` (and waits for its next
//! poll) or it sees the request (and stays out) - so when
//! [`stop_the_world`] returns, no worker runs a task.
//!
//! Stopping touches each worker once: O(workers), never O(tasks) or O(heap).
//! Plain OS threads are not stopped; the collector must cover them with its
//! barriers.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

const RUNNING: u8 = 0;
const IDLE: u8 = 1;
const STOPPED: u8 = 2;

/// Set while a stop-the-world is requested or in effect.
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// Registered mutators (all workers of all runtimes).
static MUTATORS: Mutex<Vec<Arc<MutatorState>>> = Mutex::new(Vec::new());
/// Serializes stoppers.
static STOPPER: Mutex<()> = Mutex::new(());
/// Mutators wait here for the world to restart.
static RESTART: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Arc<MutatorState>>> = const { std::cell::RefCell::new(None) };
}

struct MutatorState {
    state: AtomicU8,
}

/// A worker thread's registration as a mutator. Unregisters on drop.
pub(crate) struct Mutator {
    inner: Arc<MutatorState>,
}

impl Mutator {
    /// Registers the calling worker thread.
    pub(crate) fn register() -> Mutator {
        let inner = Arc::new(MutatorState {
            state: AtomicU8::new(IDLE),
        });
        MUTATORS.lock().push(inner.clone());
        CURRENT.with(|c| *c.borrow_mut() = Some(inner.clone()));
        let m = Mutator { inner };
        m.leave_idle();
        m
    }

    /// The safepoint poll of the worker loop.
    #[inline]
    pub(crate) fn poll(&self) {
        if REQUESTED.load(std::sync::atomic::Ordering::Relaxed) {
            self.stop_here();
        }
    }

    /// Runs `f` (a sleep) with this worker counted as idle.
    pub(crate) fn idle<R>(&self, f: impl FnOnce() -> R) -> R {
        self.inner.state.store(IDLE, SeqCst);
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

impl MutatorState {
    fn leave_idle(&self) {
        loop {
            self.state.store(RUNNING, SeqCst);
            if !REQUESTED.load(SeqCst) {
                return;
            }
            self.state.store(IDLE, SeqCst);
            wait_for_restart();
        }
    }

    fn stop_here(&self) {
        self.state.store(STOPPED, SeqCst);
        wait_for_restart();
        self.leave_idle();
    }
}

impl Drop for Mutator {
    fn drop(&mut self) {
        self.inner.state.store(IDLE, SeqCst);
        MUTATORS.lock().retain(|m| !Arc::ptr_eq(m, &self.inner));
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
/// fibra_runtime::safepoint::poll();
/// ```
#[inline]
pub fn poll() {
    if REQUESTED.load(std::sync::atomic::Ordering::Relaxed) {
        poll_slow();
    }
}

#[cold]
fn poll_slow() {
    let me = CURRENT.with(|c| c.borrow().clone());
    if let Some(me) = me {
        me.stop_here();
    }
}

/// Runs `f`, a blocking wait that does not touch the heap, with the calling
/// worker (if it is one) counted as stopped, so that a stop-the-world the
/// wait depends on can proceed. Afterwards the worker waits for any
/// stop-the-world in progress to end. On other threads it just runs `f`.
///
/// ```
/// let v = fibra_runtime::safepoint::blocking(|| 1 + 1);
/// assert_eq!(v, 2);
/// ```
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    struct Resume(Option<Arc<MutatorState>>);
    impl Drop for Resume {
        fn drop(&mut self) {
            if let Some(me) = &self.0 {
                me.leave_idle();
            }
        }
    }
    let me = CURRENT.with(|c| c.borrow().clone());
    if let Some(me) = &me {
        me.state.store(IDLE, SeqCst);
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
    /// The stopper itself, if it is a worker: idle while it waits its turn
    /// and while the world is stopped, running again afterwards.
    me: Option<Arc<MutatorState>>,
    _serial: parking_lot::MutexGuard<'static, ()>,
}

impl WorldStopped {
    /// Time from the request until the last worker reached a safepoint.
    pub fn stopping_time(&self) -> Duration {
        self.stopping
    }

    /// Time since the world was requested to stop.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for WorldStopped {
    fn drop(&mut self) {
        let (lock, cvar) = &RESTART;
        let mut generation = lock.lock();
        REQUESTED.store(false, SeqCst);
        *generation += 1;
        cvar.notify_all();
        drop(generation);
        if let Some(me) = &self.me {
            me.state.store(RUNNING, SeqCst);
        }
    }
}

/// Stops every worker of every runtime at its next safepoint and returns
/// once all have stopped (or are idle). The calling thread, if it is a
/// worker, counts as stopped.
///
/// ```
/// let world = fibra_runtime::safepoint::stop_the_world();
/// // ... a short stop-the-world step ...
/// drop(world);
/// ```
pub fn stop_the_world() -> WorldStopped {
    let me = CURRENT.with(|c| c.borrow().clone());
    if let Some(me) = &me {
        // Another stopper may be waiting for us: count as idle meanwhile.
        me.state.store(IDLE, SeqCst);
    }
    let serial = STOPPER.lock();
    let started = Instant::now();
    REQUESTED.store(true, SeqCst);
    let mutators: Vec<Arc<MutatorState>> = MUTATORS.lock().clone();
    for m in &mutators {
        let mut spins = 0u32;
        while m.state.load(SeqCst) == RUNNING {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
    WorldStopped {
        stopping: started.elapsed(),
        started,
        me,
        _serial: serial,
    }
}

/// Number of registered worker threads (mutators) in the process.
pub fn mutators() -> usize {
    MUTATORS.lock().len()
}
