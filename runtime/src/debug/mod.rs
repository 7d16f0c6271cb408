//! Seeing inside a running program: task dumps, the deadlock report, and
//! the SIGQUIT handler.
//!
//! Every parked task carries a `wait` record (what it waits on, where the
//! user called the blocking function, since when). A dump walks each
//! runtime's task registries (started green threads per worker, async tasks
//! per runtime) and the queue depths; it takes each registry's lock briefly
//! and never stops the world.
//!
//! # Deadlock report
//!
//! `fibra::run`/`Runtime::run` wait for the main green thread in slices of
//! the grace period (default 1 s). When a whole slice passes in which no
//! task ran, every worker is asleep, every queue is empty, no timer is
//! armed, no socket is registered, no `spawn_blocking` job is pending, no
//! plain OS thread is blocked in a fibra call, no async task is alive, and
//! every green thread is parked on a fibra primitive (join, channel,
//! select, sync), then nothing inside the process can wake anyone.
//!
//! `run` then takes the dump, cancels the main green thread (it unwinds
//! from its park on its own worker, running its destructors, see
//! `task::cancel`), waits until it has unwound - `run`'s closure may
//! borrow the caller's frame, so `run` must not unwind before - and panics
//! with "all green threads are asleep - deadlock!" and the dump. If the
//! main green thread was woken in the meantime and returns, `run` returns
//! its value instead. If it cannot unwind (a destructor parks and the
//! runtime stays deadlocked for another grace period), the process aborts
//! with the report, as Go's fatal error does.
//!
//! What it cannot see: a channel end or a lock held by a plain OS thread
//! that is *not* blocked in a fibra call (it may send later, after the
//! grace period), or a waker held by foreign code. Such a thread finds the
//! main green thread's ends dropped (a send fails) - never a dead frame.
//! Raise the grace period (`Builder::deadlock_grace`) or turn detection
//! off (`None`) for programs built that way.

pub(crate) use crate::park::record::WaitOn;

pub use crate::safepoint::preemptions;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::sched::Shared;
use crate::task::{Kind, Task};

use crate::park::record::BLOCKED_THREADS;

/// A text dump of every live task of the current runtime (or of every
/// runtime, outside one): id, name, state, what it waits on, for how long,
/// and where the blocking call was made.
///
/// ```
/// fibra::run(|| {
///     let sleeper = fibra::spawn(|| fibra::time::sleep(std::time::Duration::from_millis(50)));
///     fibra::time::sleep(std::time::Duration::from_millis(5));
///     let dump = fibra::debug::dump();
///     assert!(dump.contains("sleep"), "{dump}");
///     sleeper.join().unwrap();
/// });
/// ```
pub fn dump() -> String {
    let mut out = String::new();
    match crate::context::current_runtime() {
        Some(shared) => dump_runtime(&shared, &mut out),
        None => {
            for shared in crate::sched::live_runtimes() {
                dump_runtime(&shared, &mut out);
            }
        }
    }
    out
}

pub(crate) fn dump_runtime(shared: &Shared, out: &mut String) {
    let workers = shared.remotes.len();
    let _ = writeln!(
        out,
        "fibra runtime: {workers} workers, {} asleep, {} tasks queued in the injector",
        shared.idle.num_sleeping(),
        shared.injector.len()
    );
    for (i, r) in shared.remotes.iter().enumerate() {
        let running = r.running.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "worker {i}: {}, {} movable tasks queued, {} pinned wake-ups pending",
            if running == 0 {
                "idle".to_string()
            } else {
                format!("running task #{running}")
            },
            r.stealer.len(),
            r.inbox.len()
        );
    }
    for (i, r) in shared.remotes.iter().enumerate() {
        for task in r.started.lock().tasks() {
            describe(&task, Some(i), out);
        }
    }
    for task in shared.async_tasks.lock().tasks() {
        describe(&task, None, out);
    }
}

fn describe(task: &Task, worker: Option<usize>, out: &mut String) {
    let kind = match task.kind {
        Kind::Green => "green thread",
        Kind::Async => "async task",
    };
    let name = task
        .name
        .as_deref()
        .map(|n| format!(" '{n}'"))
        .unwrap_or_default();
    let place = worker.map(|w| format!(", worker {w}")).unwrap_or_default();
    let (on, site, since) = task.wait.read();
    let state = task.state.describe();
    let _ = write!(out, "\ntask {}{name} [{kind}{place}]: {state}", task.id);
    if state == "parked" && on != WaitOn::Nothing {
        let _ = write!(out, " on {on} for {since:?}");
    }
    if let Some(site) = site {
        if state == "parked" {
            let _ = write!(
                out,
                "\n    at {}:{}:{}",
                site.file(),
                site.line(),
                site.column()
            );
        }
    }
    out.push('\n');
    if let Some(bt) = task.park_backtrace.lock().as_ref() {
        let _ = writeln!(out, "    parked at:\n{bt}");
    }
}

/// A fingerprint of scheduler activity: it changes whenever any task runs.
pub(crate) fn activity(shared: &Shared) -> u64 {
    shared
        .remotes
        .iter()
        .map(|r| r.switches.load(std::sync::atomic::Ordering::Relaxed))
        .sum::<u64>()
        .wrapping_add(shared.injector.len() as u64)
}

/// Checks the deadlock conditions (see the module docs); `before` is the
/// activity fingerprint at the start of the grace period.
pub(crate) fn is_deadlocked(shared: &Shared, before: u64) -> bool {
    if activity(shared) != before {
        return false;
    }
    let quiet = shared.idle.num_sleeping() == shared.remotes.len()
        && shared.injector.is_empty()
        && shared.remotes.iter().all(|r| {
            r.inbox.is_empty()
                && r.stealer.is_empty()
                && r.spawned.is_empty()
                && r.metrics.timer_armed.get() == 0
        })
        && !shared.io.has_sources()
        && shared.blocking.jobs() == 0
        && BLOCKED_THREADS.load(Ordering::SeqCst) == 0
        && shared.async_tasks.lock().len() == 0;
    if !quiet {
        return false;
    }
    let all_parked_on_fibra = shared.remotes.iter().all(|r| {
        r.started.lock().tasks().iter().all(|t| {
            let (on, _, _) = t.wait.read();
            t.state.describe() == "parked" && on.is_fibra_primitive()
        })
    });
    all_parked_on_fibra && activity(shared) == before
}

/// Prints the dump of every runtime to stderr on SIGQUIT (installed once per
/// process by the first runtime that asks for it).
pub(crate) fn install_sigquit_dump() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGQUIT])
        {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!("cannot install the SIGQUIT task dump: {err}");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("fibra-sigquit".into())
            .spawn(move || {
                for _ in signals.forever() {
                    let mut out = String::from("SIGQUIT: fibra task dump\n");
                    for shared in crate::sched::live_runtimes() {
                        dump_runtime(&shared, &mut out);
                    }
                    eprintln!("{out}");
                }
            });
        if let Err(err) = spawned {
            tracing::warn!("cannot start the SIGQUIT dump thread: {err}");
        }
    });
}
