//! One worker: its queues, its loop, and how it runs, parks and cancels
//! tasks. See the module docs of `sched` for the protocol.
//!
//! # Netpoller and monitor hooks
//!
//! The worker owns one poller of the runtime's netpoller (`netpoll`): the
//! epoll set of the sockets its green threads wait on. Following Go's
//! `findrunnable`: every 64 ticks a busy worker polls it without blocking;
//! a worker out of local work polls it (and any peer's poller nobody has
//! polled for a millisecond) without blocking before it steals; a
//! lingering worker polls it every few microseconds; and a worker going to
//! sleep parks *in* it (`Parker::park_polling`, bounded by its next timer)
//! instead of on a condition variable, so its parker's `unpark` (inbox
//! pushes, notifications) reaches it through the poller's waker, its timers
//! through the poll's timeout, and IO through the poll itself. Only the
//! parking call differs from a condvar sleep: the registration in `Idle`
//! before the final re-check, and the unregister after waking, are
//! untouched, so the no-lost-wake-up argument of `sched::idle` holds as
//! is; the poller dispatches its events only after unregistering.
//! `run_task` also publishes a switch counter (one relaxed store) beside
//! the running task's id, for the monitor thread's stall detector.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use corosensei::{Coroutine, CoroutineResult};

use crossbeam_deque::{Steal, Worker as Deque};

use super::context;
use super::{steal_one, Reason, Shared};
use crate::safepoint;
use crate::stack::StackPool;
use crate::task::state::ParkAction;
use crate::task::{current, GreenCoroutine, JoinError, Kind, Suspend, Task};
use crate::timer::heap::{fire_all, TimerHeap};

/// Every this many ticks (a power of two, so the check is one AND) a busy
/// worker does its periodic work (`maintain`): due timers, a requested
/// stack shrink, and every fourth time the netpoller and the injector.
const MAINTENANCE_INTERVAL: u32 = 16;
/// Ticks between looks at the injector and the netpoller while busy (Go
/// looks at its global queue every 61).
const INJECTOR_INTERVAL: u32 = 4 * MAINTENANCE_INTERVAL;
/// Most consecutive runs from `runnext` before the queues get a turn.
const RUNNEXT_STREAK: u32 = 16;
/// Rounds of stealing before a searching worker gives up. They run back
/// to back, as Go's do: a pause between them only burned the CPU that a
/// client or another process on the machine needed (5% of examples/http's
/// CPU per request).
const SPIN_ROUNDS: usize = 4;
/// How long a searching worker with parked green threads watches for their
/// wake-ups before it sleeps.
const LINGER: std::time::Duration = std::time::Duration::from_micros(50);
/// Most idle episodes a worker skips lingering after lingers that caught
/// no wake-up (see `Linger`).
const LINGER_MAX_SKIP: u32 = 63;
/// While lingering, poll the worker's netpoller every this many rounds of
/// 64 spins (a few microseconds).
const LINGER_POLL_ROUNDS: u32 = 4;
/// A peer's poller that nobody polled for this long (ms) is polled by a
/// worker out of work.
const STALE_POLL_MS: u64 = 1;
/// Most pinned wake-ups moved from the inbox per tick.
const INBOX_BATCH: usize = 32;

/// Movable work a worker saw waiting on a peer (see `owner_cpu_wait`).
#[derive(Clone, Copy, Default)]
struct Sighting {
    /// When that work may be stolen by the wall clock (its key: a new
    /// backlog or slot occupant has another).
    at: u64,
    /// The peer thread's CPU clock when this worker first saw it.
    cpu: std::time::Duration,
    /// When this worker last read the peer thread's kernel state for it.
    state_read_at: u64,
    /// Whether the peer thread was asleep in the kernel at that read.
    asleep: bool,
    /// Its CPU clock at that read.
    state_cpu: std::time::Duration,
    /// Whether it was asleep at two reads in a row and barely ran in
    /// between (blocked in a system call, not a brief page fault or lock).
    blocked: bool,
}

/// Where a peer's movable work waits.
#[derive(Clone, Copy)]
enum Pool {
    /// Its deque.
    Deque = 0,
    /// Its spawn slot.
    Slot = 1,
}

/// CPU time a peer's thread must have run, while its movable work waited,
/// before that work is stolen (see `owner_cpu_wait`).
const OWNER_CPU: std::time::Duration = super::spawn_slot::GRACE;

/// What a worker about to sleep sees in the queues it could take from.
enum Outlook {
    /// Work it may take now (or shutdown): do not sleep.
    Work,
    /// Nothing: sleep until woken.
    Nothing,
    /// Peers' movable work that may be stolen after this long.
    Later(std::time::Duration),
}

/// A worker thread's own state. Lives on the worker thread's stack; tasks
/// reach it through `context::with_worker`.
pub(crate) struct Worker {
    /// Position in `Shared::remotes`.
    pub(crate) index: usize,
    /// The runtime.
    pub(crate) shared: Arc<Shared>,
    /// A woken pinned task that runs next (message-passing locality).
    runnext: Cell<Option<Arc<Task>>>,
    /// Consecutive `runnext` runs, bounded by `RUNNEXT_STREAK`.
    runnext_streak: Cell<u32>,
    /// Runnable started green threads of this worker (never stolen).
    pinned: RefCell<VecDeque<Arc<Task>>>,
    /// Runnable movable tasks; peers steal from its other end.
    deque: Deque<Arc<Task>>,
    /// Stacks for green threads that start here.
    stacks: RefCell<StackPool<Task>>,
    /// Timers set by tasks running on this worker.
    timers: RefCell<TimerHeap>,
    /// Scheduler ticks, for the injector interval and queue alternation.
    tick: Cell<u32>,
    /// Whether this worker counts in `Idle::num_spinning`.
    spinning: Cell<bool>,
    /// xorshift state for victim selection.
    rng: Cell<u64>,
    /// Task runs so far (published to the monitor).
    switches: Cell<u64>,
    /// The next green thread spawned here starts on the next worker in
    /// turn (set after an `accept`, cleared after each task run).
    spread_next: Cell<bool>,
    /// Per peer: the movable work this worker last saw waiting there, and
    /// the peer's CPU clock then (see `owner_cpu_wait`).
    sightings: RefCell<Vec<Sighting>>,
    /// Set when this worker put a task in its spawn slot, cleared when it
    /// looks there: saves the shared slot's cache line on ticks when the
    /// slot cannot hold anything of ours (a thief may have emptied it).
    spawn_pending: Cell<bool>,
    /// Whether lingering has been paying off (see `linger`).
    linger: Linger,
}

/// The linger's record: lingering pays only when a wake-up from another
/// worker (its inbox) arrives while it spins. Where none do (sockets wake
/// the worker through its poller, and partners live on one worker), the
/// spin only takes the CPU from other threads, so after each fruitless
/// linger the worker skips the next 1, 3, 7 ... up to `LINGER_MAX_SKIP`
/// idle episodes. A linger that catches a wake-up, or a sleep that a
/// wake-up from another worker ends, makes it linger again at once.
#[derive(Default)]
struct Linger {
    /// Fruitless lingers in a row, as the skip they earned.
    backoff: Cell<u32>,
    /// Idle episodes still to skip.
    skip: Cell<u32>,
}

impl Linger {
    /// Whether to linger this time (counts a skipped episode).
    fn admit(&self) -> bool {
        match self.skip.get() {
            0 => true,
            n => {
                self.skip.set(n - 1);
                false
            }
        }
    }

    fn paid(&self) {
        self.backoff.set(0);
        self.skip.set(0);
    }

    fn missed(&self) {
        let backoff = (self.backoff.get() * 2 + 1).min(LINGER_MAX_SKIP);
        self.backoff.set(backoff);
        self.skip.set(backoff);
    }
}

impl Worker {
    pub(crate) fn new(index: usize, shared: Arc<Shared>, deque: Deque<Arc<Task>>) -> Worker {
        let stack_size = shared.config.stack_size;
        let wake = {
            let shared = shared.clone();
            move || shared.remotes[index].parker.unpark()
        };
        Worker {
            index,
            shared,
            runnext: Cell::new(None),
            runnext_streak: Cell::new(0),
            pinned: RefCell::new(VecDeque::new()),
            deque,
            stacks: RefCell::new(StackPool::new(stack_size, wake)),
            timers: RefCell::new(TimerHeap::default()),
            tick: Cell::new(0),
            spinning: Cell::new(false),
            rng: Cell::new(
                0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            ),
            switches: Cell::new(0),
            spread_next: Cell::new(false),
            spawn_pending: Cell::new(false),
            sightings: RefCell::new(Vec::new()),
            linger: Linger::default(),
        }
    }

    /// The worker loop. Returns after shutdown, with every task it owned
    /// cancelled.
    pub(crate) fn run(&self) {
        context::set_worker(self);
        crate::timer::set_local(&self.timers);
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        self.remote().tid.store(tid, Ordering::Relaxed);
        *self.sightings.borrow_mut() = vec![Sighting::default(); 2 * self.shared.remotes.len()];
        let stop = safepoint::WorkerStop::register(self.shared.clone(), self.index);
        let _span = tracing::debug_span!("worker", index = self.index).entered();
        tracing::debug!("worker started");
        loop {
            if self.shared.shutdown.load(Ordering::Acquire) {
                break;
            }
            stop.poll();
            if let Some(task) = self.next_local() {
                // A worker woken as a searcher may find its work locally
                // (its inbox): it must stop counting as spinning before it
                // runs, or notifiers would rely on a searcher that is busy.
                self.found_work();
                self.run_task(task);
                continue;
            }
            self.shrink_if_requested();
            if self.fire_timers() > 0 {
                continue;
            }
            // Sockets that are ready come before work to steal. With none
            // to steal, the worker will sleep in its poller, which returns
            // at once with any event: a non-blocking poll first would be
            // one more system call, and it usually finds nothing.
            if (self.movable_work_anywhere() && self.shared.io.poll_now(self.index) > 0)
                || self.shared.io.poll_stale(self.index, STALE_POLL_MS) > 0
            {
                continue;
            }
            if let Some(task) = self.search() {
                self.metrics().steals.add(1);
                self.found_work();
                self.run_task(task);
                continue;
            }
            if let Some(task) = self.linger() {
                self.found_work();
                self.run_task(task);
                continue;
            }
            self.sleep(&stop);
        }
        if self.spinning.replace(false) {
            self.shared.idle.stop_spinning();
        }
        self.cancel_all();
        self.timers.borrow_mut().clear();
        tracing::debug!("worker stopped");
        drop(stop);
        crate::timer::clear_local();
        context::clear_worker();
    }

    // ----- queues -----

    /// Puts a task in this worker's queues (called on this worker's thread).
    #[inline]
    pub(crate) fn schedule_local(&self, task: Arc<Task>, reason: Reason) {
        match task.owner() {
            Some(owner) if owner != self.index => {
                self.metrics().remote_wakes.add(1);
                self.shared.schedule_remote(task)
            }
            Some(_) if reason == Reason::Wake => {
                if let Some(old) = self.runnext.replace(Some(task)) {
                    self.pinned.borrow_mut().push_back(old);
                }
            }
            Some(_) => self.pinned.borrow_mut().push_back(task),
            None if reason == Reason::Spawn
                && task.kind == Kind::Green
                && crate::park::in_green_thread() =>
            {
                self.place_spawn(task)
            }
            None => {
                if self.push_movable(task) {
                    self.shared.notify_work();
                }
            }
        }
    }

    /// Pushes a movable task on this worker's deque; returns whether it
    /// starts a backlog (the deque was empty), whose time it records: only
    /// then is an idle worker notified, to take the backlog once it is
    /// `STEAL_AGE` old (more pushes add to a backlog it already knows of).
    fn push_movable(&self, task: Arc<Task>) -> bool {
        let starts = self.deque.is_empty();
        if starts {
            self.stamp_backlog();
        }
        self.deque.push(task);
        starts
    }

    /// Pops a movable task from this worker's deque, recording the time
    /// (the owner working through its backlog keeps it from peers, see
    /// `Remote::deque_stealable_at`).
    fn pop_movable(&self) -> Option<Arc<Task>> {
        let task = self.deque.pop()?;
        self.remote()
            .last_pop
            .store(self.shared.now_ns(), Ordering::Relaxed);
        Some(task)
    }

    /// Records that the deque starts holding tasks now.
    fn stamp_backlog(&self) {
        self.remote()
            .backlog_since
            .store(self.shared.now_ns(), Ordering::Relaxed);
    }

    /// A green thread spawned by a green thread of this worker: beside its
    /// spawner (the spawn slot), or on the next worker in turn after an
    /// `accept` (see `sched::spread_next_spawn`).
    fn place_spawn(&self, task: Arc<Task>) {
        if self.spread_next.replace(false) {
            let target = self.shared.next_placement();
            if target != self.index {
                self.shared.place_on(target, task);
                return;
            }
        }
        // A peer is notified when the slot fills or a backlog starts, not
        // for every spawn of a burst: it cannot take them sooner anyway.
        let notify = match self.remote().spawned.put(task, self.shared.now_ns()) {
            Some(old) => self.push_movable(old),
            None => true,
        };
        self.spawn_pending.set(true);
        if notify {
            self.shared.notify_work();
        }
    }

    /// Takes this worker's spawn slot occupant (see `spawn_pending`).
    #[inline]
    fn take_spawned(&self) -> Option<Arc<Task>> {
        if !self.spawn_pending.replace(false) {
            return None;
        }
        self.remote().spawned.take()
    }

    /// See `sched::spread_next_spawn`.
    pub(crate) fn spread_next_spawn(&self) {
        self.spread_next.set(true);
    }

    /// The next task from this worker's own queues (the hot path of every
    /// switch: inlined into the loop).
    #[inline(always)]
    fn next_local(&self) -> Option<Arc<Task>> {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        if tick.is_multiple_of(MAINTENANCE_INTERVAL) {
            if let Some(t) = self.maintain(tick) {
                return Some(t);
            }
        }
        if self.runnext_streak.get() < RUNNEXT_STREAK {
            if let Some(t) = self.runnext.take().or_else(|| self.take_spawned()) {
                self.runnext_streak.set(self.runnext_streak.get() + 1);
                return Some(t);
            }
        }
        self.runnext_streak.set(0);
        self.drain_inbox();
        // Started green threads (woken or yielded) get three turns for each
        // turn of the movable queue: a woken task should not wait behind a
        // burst of spawns, yet spawns are never starved.
        let t = if tick & 3 != 0 {
            self.pinned
                .borrow_mut()
                .pop_front()
                .or_else(|| self.pop_movable())
        } else {
            self.pop_movable()
                .or_else(|| self.pinned.borrow_mut().pop_front())
        };
        t.or_else(|| self.runnext.take())
            .or_else(|| self.take_spawned())
            .or_else(|| self.steal_injector())
    }

    /// The periodic work of a busy worker (see `MAINTENANCE_INTERVAL`);
    /// may return a task from the injector.
    #[cold]
    #[inline(never)]
    fn maintain(&self, tick: u32) -> Option<Arc<Task>> {
        if !self.timers.borrow().is_empty() {
            self.fire_timers();
        }
        self.shrink_if_requested();
        if tick.is_multiple_of(INJECTOR_INTERVAL) {
            self.shared.io.poll_now(self.index);
            crate::park::record::refresh_clock();
            return self.steal_injector();
        }
        None
    }

    /// Shrinks the stacks of the worker's suspended green threads if the
    /// collector asked for it.
    fn shrink_if_requested(&self) {
        if self.stacks.borrow().shrink_requested() {
            self.stacks
                .borrow_mut()
                .shrink_all(self.remote().started.lock().iter());
        }
    }

    /// Fires due timers; returns how many fired.
    fn fire_timers(&self) -> usize {
        let due = {
            let mut timers = self.timers.borrow_mut();
            if timers.is_empty() {
                return 0;
            }
            timers.take_expired(std::time::Instant::now())
        };
        fire_all(due)
    }

    /// How long the worker may sleep before its next timer is due.
    fn sleep_timeout(&self) -> Option<std::time::Duration> {
        let deadline = self.timers.borrow_mut().next_deadline()?;
        Some(deadline.saturating_duration_since(std::time::Instant::now()))
    }

    #[inline]
    fn drain_inbox(&self) {
        if self.remote().inbox_ready.load(Ordering::Relaxed) {
            self.drain_inbox_slow();
        }
    }

    #[cold]
    fn drain_inbox_slow(&self) {
        let remote = self.remote();
        // A push stores the flag after the item, so seeing it (acquire)
        // means the items before it are visible; a push racing with this
        // drain sets it again for the next tick.
        if !remote.inbox_ready.swap(false, Ordering::Acquire) {
            return;
        }
        let mut pinned = self.pinned.borrow_mut();
        for _ in 0..INBOX_BATCH {
            match steal_one(&remote.inbox) {
                Some(t) => pinned.push_back(t),
                None => return,
            }
        }
        // Batch limit reached: look again next tick.
        remote.inbox_ready.store(true, Ordering::Relaxed);
    }

    fn steal_injector(&self) -> Option<Arc<Task>> {
        loop {
            let was_empty = self.deque.is_empty();
            match self.shared.injector.steal_batch_and_pop(&self.deque) {
                Steal::Success(t) => {
                    if was_empty && !self.deque.is_empty() {
                        self.stamp_backlog();
                    }
                    return Some(t);
                }
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// Spinning: steal from peers, the injector and the inbox for a few
    /// rounds, back to back. Refused (returns `None` at once) when enough workers already
    /// search.
    fn search(&self) -> Option<Arc<Task>> {
        if !self.spinning.get() {
            if !self.shared.idle.try_start_spinning() {
                return None;
            }
            self.spinning.set(true);
        }
        let n = self.shared.remotes.len();
        for _ in 0..SPIN_ROUNDS {
            // Between tasks the worker cannot touch the heap: a stop need
            // not wait for the search to end.
            safepoint::poll();
            let start = self.next_random() as usize % n;
            let now = self.shared.now_ns();
            for i in 0..n {
                let victim = (start + i) % n;
                if victim == self.index || self.steal_wait(victim, Pool::Deque, now) != Some(0) {
                    continue;
                }
                let stealer = &self.shared.remotes[victim].stealer;
                loop {
                    let was_empty = self.deque.is_empty();
                    match stealer.steal_batch_and_pop(&self.deque) {
                        Steal::Success(t) => {
                            if was_empty && !self.deque.is_empty() {
                                self.stamp_backlog();
                            }
                            return Some(t);
                        }
                        Steal::Empty => break,
                        Steal::Retry => continue,
                    }
                }
            }
            if let Some(t) = self.steal_injector() {
                return Some(t);
            }
            self.drain_inbox();
            if let Some(t) = self.pinned.borrow_mut().pop_front() {
                return Some(t);
            }
        }
        self.steal_spawned()
    }

    /// Takes a peer's spawn slot occupant that has sat there for its grace
    /// (the peer is busy; see `spawn_slot`).
    fn steal_spawned(&self) -> Option<Arc<Task>> {
        let n = self.shared.remotes.len();
        let start = self.next_random() as usize % n;
        let now = self.shared.now_ns();
        (0..n)
            .map(|i| (start + i) % n)
            .filter(|&victim| victim != self.index)
            .filter(|&victim| self.steal_wait(victim, Pool::Slot, now) == Some(0))
            .find_map(|victim| self.shared.remotes[victim].spawned.steal(now))
    }

    /// How long (ns; 0: take it now) this worker must leave peer
    /// `victim`'s movable work in `pool` alone, or `None` if there is none:
    /// until it is old enough by the wall clock (`STEAL_AGE`, `GRACE`),
    /// and then until `owner_cpu_wait` allows.
    fn steal_wait(&self, victim: usize, pool: Pool, now: u64) -> Option<u64> {
        let remote = &self.shared.remotes[victim];
        let at = match pool {
            Pool::Deque => remote.deque_stealable_at(),
            Pool::Slot => remote.spawned.stealable_at(),
        }?;
        if at > now {
            return Some(at - now);
        }
        Some(self.owner_cpu_wait(victim, pool, at, now))
    }

    /// How long (ns, 0: none) this worker should still leave peer
    /// `victim`'s movable work in `pool` (stealable by the wall clock from
    /// `at`) for its owner, by the owner's CPU clock: the work is taken
    /// only if the owner thread also ran for `OWNER_CPU` since this worker
    /// first saw it old enough, or is blocked in the kernel. An owner that
    /// computes (a spawner that does not block, a long task ahead of a
    /// backlog) runs that long and loses the work; an owner the kernel
    /// descheduled (the machine is loaded) does not, and runs the work
    /// itself, beside its partners, once it is back. One CPU clock read (a
    /// system call) per check, made only for work old enough by the wall
    /// clock; the kernel state (a few system calls) at most once per
    /// `OWNER_CPU`.
    fn owner_cpu_wait(&self, victim: usize, pool: Pool, at: u64, now: u64) -> u64 {
        let tid = self.shared.remotes[victim].tid.load(Ordering::Relaxed);
        if tid == 0 {
            return 0;
        }
        let Some(cpu) = crate::safepoint::probe::cpu_time(tid) else {
            return 0;
        };
        let mut sightings = self.sightings.borrow_mut();
        let Some(seen) = sightings.get_mut(2 * victim + pool as usize) else {
            return 0;
        };
        if seen.at != at {
            *seen = Sighting {
                at,
                cpu,
                ..Sighting::default()
            };
        }
        let wait = OWNER_CPU.saturating_sub(cpu.saturating_sub(seen.cpu));
        if wait.is_zero() {
            return 0;
        }
        let read_due =
            seen.state_read_at == 0 || now >= seen.state_read_at + OWNER_CPU.as_nanos() as u64;
        if read_due {
            let asleep = matches!(
                crate::safepoint::probe::kernel_state(tid),
                Some(crate::safepoint::probe::KernelState::Sleeping { .. })
            );
            // Asleep at the last read too, and (almost) no CPU used since:
            // a thread that blocks and wakes now and then (a sleep loop)
            // counts, one that faulted or waited on a lock for a moment
            // does not.
            let between = now.saturating_sub(seen.state_read_at);
            let used = cpu.saturating_sub(seen.state_cpu).as_nanos() as u64;
            seen.blocked = asleep && seen.asleep && used < between / 8;
            seen.asleep = asleep;
            seen.state_cpu = cpu;
            seen.state_read_at = now;
        }
        if seen.blocked {
            return 0;
        }
        wait.as_nanos() as u64
    }

    /// Whether any queue this worker could steal from holds work, old
    /// enough to take or not (a cheap look: no clocks).
    fn movable_work_anywhere(&self) -> bool {
        let shared = &self.shared;
        !shared.injector.is_empty()
            || shared
                .remotes
                .iter()
                .enumerate()
                .any(|(i, r)| i != self.index && (!r.stealer.is_empty() || !r.spawned.is_empty()))
    }

    /// Whether a peer has movable work this worker may take now.
    fn peer_work_stealable(&self) -> bool {
        let now = self.shared.now_ns();
        (0..self.shared.remotes.len())
            .filter(|&i| i != self.index)
            .any(|i| {
                self.steal_wait(i, Pool::Deque, now) == Some(0)
                    || self.steal_wait(i, Pool::Slot, now) == Some(0)
            })
    }

    /// Before sleeping, a spinning worker that owns parked green threads
    /// watches for their wake-ups a little longer: in a ping-pong with a
    /// task on another worker the answer usually comes within
    /// microseconds, and catching it here saves two futex round trips (the
    /// sleep and the wake). It watches its inbox, its netpoller, the
    /// injector and the peers' deques (it still counts as spinning, so
    /// notifiers rely on it to find movable work). Only a worker admitted
    /// as a spinner lingers (Go's rule: at most half the busy workers
    /// spin), for at most `LINGER`, and only while lingering catches
    /// wake-ups (see `Linger`), so an idle runtime, or one whose wake-ups
    /// come from sockets, goes to sleep almost at once.
    fn linger(&self) -> Option<Arc<Task>> {
        let remote = self.remote();
        if !self.spinning.get()
            || remote.pinned_count.load(Ordering::Relaxed) == 0
            || !self.linger.admit()
        {
            return None;
        }
        let start = std::time::Instant::now();
        let mut rounds = 0u32;
        loop {
            safepoint::poll();
            for _ in 0..64 {
                if remote.inbox_ready.load(Ordering::Relaxed) {
                    self.drain_inbox();
                    if let Some(t) = self.pinned.borrow_mut().pop_front() {
                        self.linger.paid();
                        return Some(t);
                    }
                }
                std::hint::spin_loop();
            }
            rounds = rounds.wrapping_add(1);
            // Anything else ends the linger but does not count for it: the
            // worker would have found it as quickly without spinning.
            if rounds.is_multiple_of(LINGER_POLL_ROUNDS) && self.shared.io.poll_now(self.index) > 0
            {
                self.linger.missed();
                return self.next_local();
            }
            if !self.shared.injector.is_empty() {
                self.linger.missed();
                return self.steal_injector();
            }
            if self.peer_work_stealable() {
                self.linger.missed();
                return self.search();
            }
            if start.elapsed() >= LINGER {
                self.linger.missed();
                return None;
            }
        }
    }

    /// A spinning worker found work: stop spinning, and if it was the last
    /// searcher, wake another (rule 2 of `idle`).
    fn found_work(&self) {
        if self.spinning.replace(false) && self.shared.idle.stop_spinning() {
            self.shared.notify_work();
        }
    }

    /// What the queues this worker could take from hold, for a worker
    /// about to sleep.
    fn outlook(&self) -> Outlook {
        let shared = &self.shared;
        let own = &shared.remotes[self.index];
        if shared.shutdown.load(Ordering::SeqCst)
            || !shared.injector.is_empty()
            || !own.inbox.is_empty()
            || !own.stealer.is_empty()
            || !own.spawned.is_empty()
        {
            return Outlook::Work;
        }
        let now = shared.now_ns();
        let wait = (0..shared.remotes.len())
            .filter(|&i| i != self.index)
            .flat_map(|i| [(i, Pool::Deque), (i, Pool::Slot)])
            .filter_map(|(i, pool)| self.steal_wait(i, pool, now))
            .min();
        match wait {
            None => Outlook::Nothing,
            Some(0) => Outlook::Work,
            Some(wait) => Outlook::Later(std::time::Duration::from_nanos(wait)),
        }
    }

    fn sleep(&self, stop: &safepoint::WorkerStop) {
        if self.spinning.replace(false) {
            self.shared.idle.stop_spinning();
        }
        self.shared.idle.register_sleeper(self.index);
        let young = match self.outlook() {
            Outlook::Work => {
                self.spinning.set(self.shared.idle.unregister(self.index));
                return;
            }
            Outlook::Nothing => None,
            Outlook::Later(wait) => Some(wait),
        };
        let release_stacks_at = self.stacks.borrow_mut().idle();
        // A peer's backlog too young to steal: wake up when it is old
        // enough (its owner may well have run it by then).
        let timer = self.sleep_timeout();
        let metrics = self.metrics();
        metrics.timers.set(self.timers.borrow().len() as u64);
        metrics.timer_armed.set(timer.is_some() as u64);
        let timeout = match (timer, young) {
            (Some(t), Some(y)) => Some(t.min(y)),
            (t, y) => t.or(y),
        };
        // Wake up to give unused stacks back (see `stack::pool`).
        let timeout = match release_stacks_at {
            Some(at) => {
                let due = at.saturating_duration_since(std::time::Instant::now());
                Some(timeout.map_or(due, |t| t.min(due)))
            }
            None => timeout,
        };
        let mut poller = None;
        if timeout != Some(std::time::Duration::ZERO) {
            metrics.sleeps.add(1);
            let start = std::time::Instant::now();
            let parker = &self.shared.remotes[self.index].parker;
            // Only this worker blocks in its poller; anyone else holds it
            // for a non-blocking poll at most.
            let p = poller.insert(self.shared.io.poller(self.index));
            stop.idle(|| {
                // Let a thread that shares this CPU (a client on the same
                // machine, another process) run first: it may produce the
                // next batch of events before this worker sleeps, instead
                // of the first event waking it for a batch of one. Returns
                // at once when nothing else is runnable here. Idle for the
                // safepoint, so a stop does not wait for it.
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
                parker.park_polling(timeout, |t| p.poll(t))
            });
            metrics.idle_ns.add(start.elapsed().as_nanos() as u64);
            // Woken for a task another worker woke: lingering next time
            // may catch the next one without this sleep.
            if self.remote().inbox_ready.load(Ordering::Relaxed) {
                self.linger.paid();
            }
            crate::park::record::refresh_clock();
        }
        self.spinning.set(self.shared.idle.unregister(self.index));
        if let Some(mut p) = poller {
            p.dispatch();
        }
    }

    fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    // ----- running -----

    #[inline]
    fn remote(&self) -> &super::Remote {
        &self.shared.remotes[self.index]
    }

    /// Removes a started green thread from the worker's registry.
    fn forget_started(&self, task: &Task) {
        let remote = self.remote();
        if remote.started.lock().remove(task) {
            remote.pinned_count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn metrics(&self) -> &super::metrics::WorkerMetrics {
        &self.remote().metrics
    }

    fn run_task(&self, task: Arc<Task>) {
        let remote = self.remote();
        let switch = self.switches.get().wrapping_add(1);
        self.switches.set(switch);
        remote.switches.store(switch, Ordering::Relaxed);
        remote.running.store(task.id.as_u64(), Ordering::Relaxed);
        match task.kind {
            Kind::Green => self.run_green(task),
            Kind::Async => self.run_async(task),
        }
        remote.running.store(0, Ordering::Relaxed);
        self.spread_next.set(false);
    }

    /// Resumes a green thread until it suspends or returns: the path of
    /// every switch, kept small (starting, abandoning and finishing a
    /// green thread are out of line).
    #[inline]
    fn run_green(&self, task: Arc<Task>) {
        // A yielded green thread, or one woken by a green thread of this
        // worker, holds RUNNING already (see `task::state`); anything else
        // was scheduled and must be claimed.
        if !task.state.is_held() && !task.state.start_running() {
            return;
        }
        // SAFETY: we hold RUNNING, and a started coroutine is only ever
        // touched by its owner, which is this worker.
        let slot = unsafe { &mut *task.coroutine.get() };
        let coroutine = match slot {
            Some(coroutine) => coroutine,
            None => match self.start_green(&task, slot) {
                Some(coroutine) => coroutine,
                None => return,
            },
        };
        match resume(&task, coroutine) {
            CoroutineResult::Yield(Suspend::Yield) => {
                // Keeps RUNNING: no atomic operation on a yield.
                self.pinned.borrow_mut().push_back(task);
            }
            CoroutineResult::Yield(Suspend::Park) => {
                self.stacks.borrow_mut().parked(&task);
                if task.state.park() == ParkAction::Reschedule {
                    self.pinned.borrow_mut().push_back(task);
                }
            }
            CoroutineResult::Yield(Suspend::Abandon) => self.abandon_green(&task, slot),
            CoroutineResult::Return(()) => self.finish_green(&task, slot),
        }
    }

    /// A green thread's first run: gives it a stack and its coroutine and
    /// pins it to this worker. `None` if no stack could be had (the task
    /// then failed).
    #[cold]
    #[inline(never)]
    fn start_green<'a>(
        &self,
        task: &Arc<Task>,
        slot: &'a mut Option<GreenCoroutine>,
    ) -> Option<&'a mut GreenCoroutine> {
        let stack = match self.stacks.borrow_mut().take(task.stack_size) {
            Ok(stack) => stack,
            Err(err) => {
                report_no_stack(task, &err);
                // SAFETY: we hold RUNNING.
                let job = unsafe { &mut *task.job.get() };
                job.fail(JoinError::no_stack(task.id, err.to_string()));
                task.finish();
                return None;
            }
        };
        let ptr = Arc::as_ptr(task);
        task.stack.start(&stack);
        *slot = Some(Coroutine::with_stack(stack, move |yielder, ()| {
            Task::green_entry(ptr, yielder)
        }));
        task.owner.store(self.index, Ordering::Relaxed);
        self.remote().started.lock().insert(task);
        self.remote().pinned_count.fetch_add(1, Ordering::Relaxed);
        slot.as_mut()
    }

    /// A green thread's cancellation unwind aborted (see `park::abort`).
    #[cold]
    #[inline(never)]
    fn abandon_green(&self, task: &Arc<Task>, slot: &mut Option<GreenCoroutine>) {
        let coroutine = slot.take().expect("abandoned coroutine");
        self.remote().started.lock().remove(task);
        report_abort(task);
        abandon(task, coroutine);
        // SAFETY: we hold RUNNING.
        let job = unsafe { &mut *task.job.get() };
        job.fail(JoinError::cancelled(task.id));
        task.finish();
    }

    /// A green thread returned: its stack goes back to the pool.
    #[inline(never)]
    fn finish_green(&self, task: &Arc<Task>, slot: &mut Option<GreenCoroutine>) {
        let coroutine = slot.take().expect("finished coroutine");
        self.stacks
            .borrow_mut()
            .give(&task.stack, coroutine.into_stack());
        self.forget_started(task);
        task.finish();
    }

    #[inline(never)]
    fn run_async(&self, task: Arc<Task>) {
        if !task.state.start_running() {
            return;
        }
        if task.take_cancel() {
            // SAFETY: we hold RUNNING.
            let job = unsafe { &mut *task.job.get() };
            // Drops the future in place (see `AsyncJob`).
            job.fail(JoinError::cancelled(task.id));
            self.shared.async_tasks.lock().remove(&task);
            task.finish();
            return;
        }
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        // SAFETY: we hold RUNNING.
        let job = unsafe { &mut *task.job.get() };
        let prev = current::set_task(Arc::as_ptr(&task));
        let result = {
            let _enter = task.enter_span();
            catch_unwind(AssertUnwindSafe(|| {
                super::coop::with_budget(|| {
                    #[cfg(feature = "tokio")]
                    {
                        super::tokio_context::enter(|| job.poll(&mut cx))
                    }
                    #[cfg(not(feature = "tokio"))]
                    {
                        job.poll(&mut cx)
                    }
                })
            }))
        };
        current::set_task(prev);
        match result {
            Ok(Poll::Pending) => {
                if task.state.park() == ParkAction::Reschedule {
                    self.schedule_local(task, Reason::Yield);
                }
            }
            Ok(Poll::Ready(())) => {
                self.shared.async_tasks.lock().remove(&task);
                task.finish();
            }
            Err(payload) => {
                job.fail(JoinError::panic(task.id, payload));
                self.shared.async_tasks.lock().remove(&task);
                task.finish();
            }
        }
    }

    // ----- shutdown -----

    /// Cancels every task this worker owns or holds in its queues, until
    /// cancellations (whose destructors may spawn or wake) leave none.
    fn cancel_all(&self) {
        loop {
            let mut progress = false;
            let started = self.remote().started.lock().drain();
            self.remote()
                .pinned_count
                .fetch_sub(started.len(), Ordering::Relaxed);
            for task in started {
                progress = true;
                self.cancel_started(task);
            }
            while let Some(task) = self.pop_any() {
                progress = true;
                if task.owner().is_some() {
                    self.cancel_started(task);
                } else {
                    self.shared.cancel_unstarted(task);
                }
            }
            if !progress {
                break;
            }
        }
    }

    fn pop_any(&self) -> Option<Arc<Task>> {
        self.runnext
            .take()
            .or_else(|| self.remote().spawned.take())
            .or_else(|| self.pinned.borrow_mut().pop_front())
            .or_else(|| self.deque.pop())
            .or_else(|| steal_one(&self.shared.remotes[self.index].inbox))
            .or_else(|| steal_one(&self.shared.injector))
    }

    /// Unwinds a started green thread's stack (running its destructors on
    /// it, see `task::cancel`) and resolves its join handle as cancelled.
    /// A green thread whose unwind cannot finish - a destructor parks and
    /// is not woken within `STUCK_UNWIND` (this worker's timers and the
    /// netpoller still fire meanwhile), or keeps yielding - is abandoned:
    /// its stack is leaked.
    fn cancel_started(&self, task: Arc<Task>) {
        /// Yields in a row while unwinding before the task counts as stuck.
        const MAX_YIELDS: u32 = 1000;
        if !task.state.claim_own_for_cancel() {
            return;
        }
        self.forget_started(&task);
        // SAFETY: we hold RUNNING and are the owner worker.
        let coroutine = unsafe { (*task.coroutine.get()).take() };
        if let Some(mut coroutine) = coroutine {
            task.request_cancel_owned();
            let mut yields = 0;
            loop {
                match resume(&task, &mut coroutine) {
                    CoroutineResult::Return(()) => {
                        self.stacks
                            .borrow_mut()
                            .give(&task.stack, coroutine.into_stack());
                        // The entry point stored the cancellation.
                        task.finish();
                        return;
                    }
                    CoroutineResult::Yield(Suspend::Abandon) => {
                        report_abort(&task);
                        abandon(&task, coroutine);
                        break;
                    }
                    CoroutineResult::Yield(Suspend::Yield) if yields < MAX_YIELDS => yields += 1,
                    CoroutineResult::Yield(Suspend::Park) => {
                        yields = 0;
                        if task.state.park() == ParkAction::Reschedule {
                            task.state.start_running();
                        } else if !self.await_wake(&task) {
                            tracing::error!(
                                task.id = task.id.as_u64(),
                                "a destructor blocked while the green thread was cancelled at \
                                 shutdown: its unwind stops there and its stack is leaked"
                            );
                            task.state.claim_own_for_cancel();
                            abandon(&task, coroutine);
                            break;
                        }
                    }
                    CoroutineResult::Yield(Suspend::Yield) => {
                        tracing::error!(
                            task.id = task.id.as_u64(),
                            "a destructor kept yielding while the green thread was cancelled \
                             at shutdown: its unwind stops there and its stack is leaked"
                        );
                        abandon(&task, coroutine);
                        break;
                    }
                }
            }
        }
        // SAFETY: we hold RUNNING.
        let job = unsafe { &mut *task.job.get() };
        job.fail(JoinError::cancelled(task.id));
        task.finish();
    }
}

impl Worker {
    /// While a task parked during its cancellation unwind at shutdown:
    /// fires this worker's timers and polls the netpoller (nothing else
    /// does any more) for up to `STUCK_UNWIND`, and claims the task once
    /// it is woken (by them or by another thread). Returns whether it was.
    fn await_wake(&self, task: &Task) -> bool {
        /// How long a destructor may wait during the shutdown unwind.
        const STUCK_UNWIND: std::time::Duration = std::time::Duration::from_millis(200);
        let start = std::time::Instant::now();
        loop {
            self.fire_timers();
            self.shared.io.poll_now(self.index);
            if task.state.claim_woken() {
                return true;
            }
            if start.elapsed() >= STUCK_UNWIND {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

/// Resumes a started green thread on this worker, with the task, its span
/// (and the tokio context) entered.
fn resume(task: &Arc<Task>, coroutine: &mut GreenCoroutine) -> CoroutineResult<Suspend, ()> {
    let prev = current::set_task(Arc::as_ptr(task));
    let prev_stack = crate::stack::set_running(&task.stack);
    let result = {
        let _enter = task.enter_span();
        #[cfg(feature = "tokio")]
        {
            super::tokio_context::enter(|| coroutine.resume(()))
        }
        #[cfg(not(feature = "tokio"))]
        {
            coroutine.resume(())
        }
    };
    crate::stack::set_running(prev_stack);
    current::set_task(prev);
    result
}

/// Gives up a green thread whose cancellation unwind cannot finish (see
/// `task::cancel`): its coroutine is never resumed or dropped (dropping it
/// would unwind it again), so its stack stays mapped for good.
fn abandon(task: &Task, coroutine: GreenCoroutine) {
    tracing::debug!(task.id = task.id.as_u64(), "green thread abandoned");
    std::mem::forget(coroutine);
}

/// A green thread's cancellation unwind aborted (a destructor panicked,
/// see `park::abort`, which wrote the stderr line).
fn report_abort(task: &Task) {
    tracing::error!(
        task.id = task.id.as_u64(),
        task.name = task.name.as_deref().unwrap_or(""),
        "a destructor panicked while the green thread was cancelled: its unwind stops there \
         and its stack is leaked"
    );
}

/// A green thread could not get its stack when first run (it was spawned
/// before the mapping limit was reached): an error event every time, and
/// the first one of the process on stderr too, naming the task and the fix
/// (the error's message), since a program may have no `tracing` subscriber.
fn report_no_stack(task: &Task, err: &std::io::Error) {
    static ON_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let name = task.name.as_deref().unwrap_or("");
    tracing::error!(
        task.id = task.id.as_u64(),
        task.name = name,
        "cannot start green thread: {err}"
    );
    if !ON_STDERR.swap(true, Ordering::Relaxed) {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!(
                "fibra: cannot start green thread {} '{name}': {err} \
                 (its join handle reports it; further failures are logged through tracing only)\n",
                task.id
            )
            .as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{Linger, LINGER_MAX_SKIP};

    /// How many of the next `n` idle episodes may linger.
    fn admitted(linger: &Linger, n: u32) -> u32 {
        (0..n).filter(|_| linger.admit()).count() as u32
    }

    #[test]
    fn lingering_backs_off_while_it_catches_nothing_and_resumes_when_it_does() {
        let linger = Linger::default();
        assert!(linger.admit(), "a new worker lingers");
        // Misses in a row skip 1, 3, 7 ... episodes, up to the cap.
        for skip in [1, 3, 7, 15, 31, 63, 63] {
            linger.missed();
            assert_eq!(admitted(&linger, skip), 0, "skips {skip}");
            assert!(linger.admit(), "then lingers once more");
        }
        assert_eq!(linger.backoff.get(), LINGER_MAX_SKIP);
        // A caught wake-up (or a sleep a peer's wake-up ended) resets it.
        linger.missed();
        linger.paid();
        assert_eq!(admitted(&linger, 10), 10);
        linger.missed();
        assert_eq!(admitted(&linger, 2), 1, "one miss skips one episode");
    }
}
