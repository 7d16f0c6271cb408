//! The monitor thread (Go's `sysmon`): notices workers stuck in one task
//! and IO readiness nobody collects.
//!
//! # What a worker publishes
//!
//! Each worker's `Remote` holds a switch counter it bumps whenever it starts
//! running a task, and the running task's id (0 while it runs none):
//! relaxed stores per task run. The monitor only reads these numbers; to
//! name a stalled task it looks its id up in the task registries under
//! their locks, so it never dereferences a task that may have been freed.
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
//! 2. Each worker's poller that holds sockets and that nobody has polled
//!    for 10 ms (its worker busy in a long task) is polled without
//!    blocking, and the ready tasks are woken.
//! 3. If a stop-the-world has waited [`STOP_STALL`] for this runtime's
//!    workers, it names their tasks at warn level, once per stop (the
//!    stopper itself reports only after the restart, and a stop that never
//!    completes would otherwise hang silently).

use std::sync::atomic::Ordering::Relaxed;
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
/// A stop-the-world still waiting this long is reported.
const STOP_STALL: Duration = Duration::from_millis(100);
/// Poll the network if nobody did for this long.
const NETPOLL_MS: u64 = 10;

/// Names the tasks of the workers a stop-the-world is still waiting for.
/// (The monitor is not a registered worker: if logging waits on a lock a stopped
/// task holds, only the monitor waits, until the restart.)
#[cold]
fn report_stalled_stop(shared: &Shared, waited: Duration, workers: &[usize]) {
    for &index in workers {
        let task = shared.remotes[index].running.load(Relaxed);
        let name = shared.task_name(index, task);
        tracing::warn!(
            task.id = task,
            task.name = name.as_deref(),
            worker = index,
            waited_ms = waited.as_millis() as u64,
            "a stop-the-world has waited {} ms for this worker to reach a safepoint and is still \
             waiting (preemption refused or off: signals blocked, FIBRA_ASYNCPREEMPTOFF=1?)",
            waited.as_millis()
        );
    }
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
    let mut stop_reported = false;
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
            let task = remote.running.load(Relaxed);
            let switches = remote.switches.load(Relaxed);
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
                let name = shared.task_name(index, task);
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
            if !remote.stealer.is_empty() || !remote.spawned.is_empty() {
                shared.notify_work();
            }
        }
        match crate::safepoint::stop_waiting_for(&shared) {
            Some((waited, running)) if waited >= STOP_STALL && !running.is_empty() => {
                if !stop_reported {
                    stop_reported = true;
                    report_stalled_stop(&shared, waited, &running);
                }
            }
            Some(_) => {}
            None => stop_reported = false,
        }
        idle_rounds = if any_running {
            0
        } else {
            idle_rounds.saturating_add(1)
        };
        shared.io.poll_stale(usize::MAX, NETPOLL_MS);
    }
}
