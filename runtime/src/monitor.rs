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
//!    *stalled*: a blocking syscall, a long computation, or the OS running
//!    other threads holds it. The monitor wakes an idle worker so the
//!    stalled worker's movable work (its stealable deque: unstarted green
//!    threads and async tasks) is stolen; it keeps waking one while the
//!    stall lasts and that deque is not empty. Started green threads stay
//!    pinned (see `sched`). It warns (task id, name, how long, which
//!    worker; once per stall, at most once a second per runtime, with a
//!    count of the warnings held back) only when the task is to blame: its
//!    worker thread's CPU clock advanced by the stall threshold
//!    (`Config::stall_warning`, 10 ms by default) since the monitor saw the
//!    task start, or the thread has slept in a system call for that long.
//!    A worker the OS descheduled (runnable, its CPU clock still) is not
//!    reported: on a busy machine that is the OS's doing, not the task's.
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

/// How long one task may hold a worker before its movable tasks are
/// handed to other workers.
pub(crate) const STALL: Duration = Duration::from_millis(10);
/// At most one stall warning per runtime in this period.
const WARN_EVERY: Duration = Duration::from_secs(1);
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

/// Warns that the task `task` has held worker `index` for `stalled`.
#[cold]
fn report_stall(
    shared: &Shared,
    index: usize,
    task: u64,
    stalled: Duration,
    verdict: &Blame,
    held_back: u64,
) {
    let name = shared.task_name(index, task);
    let (cpu_ms, syscall, why) = match verdict {
        Blame::Computing(cpu) => (Some(cpu.as_millis() as u64), None, "computing"),
        Blame::Blocking(nr) => (None, *nr, "asleep in a system call"),
    };
    tracing::warn!(
        task.id = task,
        task.name = name.as_deref(),
        worker = index,
        stalled_ms = stalled.as_millis() as u64,
        cpu_ms,
        syscall,
        held_back,
        "a task has held its worker for {} ms without yielding ({why}: a blocking call or a \
         long computation?); its worker's movable tasks are handed to other workers. Run \
         blocking code with fibra::spawn_blocking",
        stalled.as_millis()
    );
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
    /// The worker thread's CPU clock at `since` (None: unknown).
    cpu_since: Option<Duration>,
    reported: bool,
}

/// Why a stalled task is to blame for its stall.
enum Blame {
    /// It used this much CPU time since the monitor saw it start.
    Computing(Duration),
    /// Its worker sleeps in the kernel, in this system call if known.
    Blocking(Option<i64>),
}

/// Judges a task that has held worker thread `tid` for `stalled` (wall
/// time): `None` if it is not to blame yet (under the threshold, or the
/// OS has descheduled the worker).
fn blame(
    tid: Option<libc::pid_t>,
    cpu_since: Option<Duration>,
    stalled: Duration,
    threshold: Duration,
) -> Option<Blame> {
    use crate::safepoint::probe;
    if stalled < threshold {
        return None;
    }
    let Some(tid) = tid else {
        // No thread to look at: judge on the wall clock, as a last resort.
        return Some(Blame::Computing(stalled));
    };
    let cpu = probe::cpu_time(tid)
        .zip(cpu_since)
        .map(|(now, then)| now.saturating_sub(then));
    if let Some(cpu) = cpu.filter(|&cpu| cpu >= threshold) {
        return Some(Blame::Computing(cpu));
    }
    match probe::kernel_state(tid) {
        Some(probe::KernelState::Sleeping { syscall }) => Some(Blame::Blocking(syscall)),
        _ => None,
    }
}

/// Rate-limits stall warnings: at most one per [`WARN_EVERY`].
struct WarnLimit {
    last: Option<Instant>,
    /// Warnings held back since the last one.
    held_back: u64,
}

impl WarnLimit {
    /// Whether a warning may go out now; if not, counts it as held back.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < WARN_EVERY)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

fn run(shared: Arc<Shared>, stop: Arc<(Mutex<bool>, Condvar)>) {
    let start = Instant::now();
    let mut seen = vec![
        Seen {
            switches: 0,
            task: 0,
            since: start,
            cpu_since: None,
            reported: false,
        };
        shared.remotes.len()
    ];
    let mut tids = crate::safepoint::worker_tids(&shared);
    let mut limit = WarnLimit {
        last: None,
        held_back: 0,
    };
    let threshold = shared.config.stall_warning;
    // Checks start once a task may have held its worker this long.
    let gate = threshold.map_or(STALL, |t| t.min(STALL));
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
        if tids.iter().any(Option::is_none) {
            tids = crate::safepoint::worker_tids(&shared);
        }
        let mut any_running = false;
        for (index, remote) in shared.remotes.iter().enumerate() {
            let task = remote.running.load(Relaxed);
            let switches = remote.switches.load(Relaxed);
            let s = &mut seen[index];
            if task == 0 || task != s.task || switches != s.switches {
                let cpu_since = match (task, threshold, tids[index]) {
                    (0, _, _) | (_, None, _) => None,
                    (_, Some(_), tid) => tid.and_then(crate::safepoint::probe::cpu_time),
                };
                *s = Seen {
                    switches,
                    task,
                    since: now,
                    cpu_since,
                    reported: false,
                };
                any_running |= task != 0;
                continue;
            }
            any_running = true;
            let stalled = now.duration_since(s.since);
            if stalled < gate {
                continue;
            }
            // A worker stopped for the collector, or waiting for it in an
            // allocation (`gc_seam::blocking`), is not its task's fault;
            // it is judged again once it runs.
            if !s.reported && crate::safepoint::worker_running(&shared, index) {
                let verdict = threshold.and_then(|t| blame(tids[index], s.cpu_since, stalled, t));
                if let Some(verdict) = verdict {
                    s.reported = true;
                    if let Some(held_back) = limit.admit(now) {
                        report_stall(&shared, index, task, stalled, &verdict, held_back);
                    }
                }
            }
            if stalled >= STALL && (!remote.stealer.is_empty() || !remote.spawned.is_empty()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_limited_to_one_a_second_and_count_the_rest() {
        let mut limit = WarnLimit {
            last: None,
            held_back: 0,
        };
        let t0 = Instant::now();
        assert_eq!(limit.admit(t0), Some(0));
        assert_eq!(limit.admit(t0 + Duration::from_millis(10)), None);
        assert_eq!(limit.admit(t0 + Duration::from_millis(990)), None);
        assert_eq!(limit.admit(t0 + WARN_EVERY), Some(2));
        assert_eq!(limit.admit(t0 + WARN_EVERY * 3), Some(0));
    }

    #[test]
    fn a_thread_asleep_in_the_kernel_is_blamed_and_a_short_stall_is_not() {
        let (sleeper, tid) = crate::safepoint::probe::sleeper(Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(20));
        let tid = Some(tid);
        let cpu = tid.and_then(crate::safepoint::probe::cpu_time);
        let threshold = Duration::from_millis(10);
        // Under the threshold on the wall clock: never blamed.
        assert!(blame(tid, cpu, Duration::from_millis(5), threshold).is_none());
        // Asleep for longer than the threshold, using no CPU: blocking.
        assert!(matches!(
            blame(tid, cpu, Duration::from_millis(50), threshold),
            Some(Blame::Blocking(_))
        ));
        sleeper.join().unwrap();
    }
}
