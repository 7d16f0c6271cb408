//! The monitor thread (Go's `sysmon`): notices workers stuck in one task
//! and IO readiness nobody collects.
//!
//! # What a worker publishes
//!
//! Each worker's `Remote` holds a [`Running`] record: a switch counter it
//! bumps whenever it starts running a task, and the running task's id (0
//! while it runs none). Two relaxed stores per task run; the monitor only
//! reads numbers, never a task pointer, so it cannot touch a freed task.
//!
//! # What the monitor does, every 5 ms (50 ms once all workers have idled
//! for a while)
//!
//! 1. A worker showing the same switch count and task for 10 ms or more is
//!    *stalled*: a blocking syscall or a long computation holds it. The
//!    monitor logs the task (id, name, how long, which worker) at warn level,
//!    once per stall, and wakes an idle worker so the stalled worker's
//!    movable work (its stealable deque: unstarted green threads and async
//!    tasks) is stolen; it keeps waking one while the stall lasts and that
//!    deque is not empty. Started green threads stay pinned (see `sched`).
//! 2. If the runtime has sockets and nobody has polled the netpoller for
//!    10 ms (every worker busy in long tasks), it polls without blocking and
//!    wakes the ready tasks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::sched::Shared;

/// How long one task may hold a worker before it is reported.
pub(crate) const STALL: Duration = Duration::from_millis(10);
/// Check period while workers run tasks.
const PERIOD: Duration = Duration::from_millis(5);
/// Check period once every worker has been idle for `IDLE_ROUNDS` checks.
const IDLE_PERIOD: Duration = Duration::from_millis(50);
const IDLE_ROUNDS: u32 = 20;
/// Poll the network if nobody did for this long.
const NETPOLL_MS: u64 = 10;

/// What a worker publishes about the task it runs.
#[derive(Default)]
pub(crate) struct Running {
    /// Task runs started by this worker so far.
    switches: AtomicU64,
    /// Id of the running task, 0 when none.
    task: AtomicU64,
}

impl Running {
    /// The worker starts running task `id` (its `switch`-th run).
    #[inline]
    pub(crate) fn begin(&self, id: u64, switch: u64) {
        self.switches.store(switch, Relaxed);
        self.task.store(id, Relaxed);
    }

    /// The task returned to the worker.
    #[inline]
    pub(crate) fn end(&self) {
        self.task.store(0, Relaxed);
    }
}

/// Names of live named tasks, by id: the monitor reports a stalled task
/// by name without ever dereferencing it. Only named tasks (spawned through
/// `task::Builder::name`) pay for an entry.
static NAMES: Mutex<Option<HashMap<u64, Arc<str>>>> = Mutex::new(None);

pub(crate) fn register_name(id: u64, name: &str) {
    NAMES
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert(id, name.into());
}

pub(crate) fn forget_name(id: u64) {
    if let Some(names) = NAMES.lock().as_mut() {
        names.remove(&id);
    }
}

fn name_of(id: u64) -> Option<Arc<str>> {
    NAMES.lock().as_ref()?.get(&id).cloned()
}

/// The running monitor of one runtime; stopped by [`Monitor::stop`].
pub(crate) struct Monitor {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    pub(crate) fn start(shared: Arc<Shared>) -> std::io::Result<Monitor> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let name = format!("{}-monitor", shared.config.thread_name);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(shared, s))?;
        Ok(Monitor {
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn stop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the monitor last saw of one worker.
#[derive(Clone, Copy)]
struct Seen {
    switches: u64,
    task: u64,
    since: Instant,
    reported: bool,
}

fn run(shared: Arc<Shared>, stop: Arc<(Mutex<bool>, Condvar)>) {
    let start = Instant::now();
    let mut seen = vec![
        Seen {
            switches: 0,
            task: 0,
            since: start,
            reported: false,
        };
        shared.remotes.len()
    ];
    let mut idle_rounds = 0u32;
    loop {
        let period = if idle_rounds >= IDLE_ROUNDS {
            IDLE_PERIOD
        } else {
            PERIOD
        };
        {
            let mut stopped = stop.0.lock();
            if !*stopped {
                stop.1.wait_for(&mut stopped, period);
            }
            if *stopped {
                return;
            }
        }
        let now = Instant::now();
        let mut any_running = false;
        for (index, remote) in shared.remotes.iter().enumerate() {
            let task = remote.running.task.load(Relaxed);
            let switches = remote.running.switches.load(Relaxed);
            let s = &mut seen[index];
            if task == 0 || task != s.task || switches != s.switches {
                *s = Seen {
                    switches,
                    task,
                    since: now,
                    reported: false,
                };
                any_running |= task != 0;
                continue;
            }
            any_running = true;
            let stalled = now.duration_since(s.since);
            if stalled < STALL {
                continue;
            }
            if !s.reported {
                s.reported = true;
                let name = name_of(task);
                tracing::warn!(
                    task.id = task,
                    task.name = name.as_deref(),
                    worker = index,
                    stalled_ms = stalled.as_millis() as u64,
                    "a task has held its worker for {} ms without yielding (a blocking call or a \
                     long computation?); its worker's movable tasks are handed to other workers. \
                     Run blocking code with fibra::spawn_blocking",
                    stalled.as_millis()
                );
            }
            if !remote.stealer.is_empty() {
                shared.notify_work();
            }
        }
        idle_rounds = if any_running {
            0
        } else {
            idle_rounds.saturating_add(1)
        };
        if shared.io.has_sources() && shared.io.ms_since_last_poll() >= NETPOLL_MS {
            shared.io.poll_now();
        }
    }
}
