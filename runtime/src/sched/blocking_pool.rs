//! The blocking pool's threads: `spawn_blocking` (in `blocking`) runs a
//! closure on a separate OS thread, so a blocking syscall, a C library call
//! or a long computation does not hold a worker.
//!
//! # Protocol
//!
//! Each runtime owns one [`Pool`] (in `Shared`): a FIFO of jobs, and threads that take
//! jobs from it. Its state (behind one lock) is the queue, the number of
//! threads, the number of *idle* threads (waiting on the condition
//! variable) and the shutdown flag.
//!
//! - Submitting pushes the job and then, if the queue holds more jobs than
//!   there are idle threads, starts a new thread (unless `max_threads` run
//!   already: the job waits in the queue); otherwise it notifies one idle
//!   thread. So every queued job has an idle thread that will take it, or a
//!   thread of its own, or the pool is at its bound.
//! - A thread loops: take a job and run it; with none, wait up to the
//!   keep-alive (10 s by default) and exit if it is still idle.
//! - Shutdown (the runtime drops) sets the flag, cancels the jobs still
//!   queued (their join handles report cancellation) and wakes idle
//!   threads, which exit. Jobs already running are not interrupted: their
//!   threads finish them and exit (nothing is joined, as a job may block
//!   forever).
//!
//! A job is a green-thread `Task` that is never scheduled on a worker: the
//! pool thread takes its `RUNNING` bit, calls its closure with the runtime
//! entered (so `fibra::spawn` works inside), stores the result and
//! completes it, which wakes whoever joins the `JoinHandle`.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{context, Shared};
use crate::task::{JoinError, Task};

/// Queue and thread counts, behind the pool's lock.
struct State {
    /// Jobs not yet taken by a thread.
    queue: VecDeque<Arc<Task>>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for a job.
    idle: usize,
    /// Set once: no new jobs run.
    shutdown: bool,
    /// Names the next thread.
    next_id: usize,
}

struct Inner {
    state: Mutex<State>,
    /// Jobs queued or running (the deadlock detector's "a blocking job may
    /// still wake someone").
    jobs: AtomicUsize,
    /// Idle threads wait here.
    cvar: Condvar,
    max_threads: usize,
    keep_alive: Duration,
    thread_name: String,
}

/// One runtime's blocking pool.
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration, thread_name: String) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    shutdown: false,
                    next_id: 0,
                }),
                jobs: AtomicUsize::new(0),
                cvar: Condvar::new(),
                max_threads: max_threads.max(1),
                keep_alive,
                thread_name,
            }),
        }
    }

    /// Queues `task` (a green-thread task that has not run).
    pub(crate) fn submit(&self, task: Arc<Task>) {
        let mut state = self.inner.state.lock();
        if state.shutdown {
            drop(state);
            Shared::of(&task).cancel_unstarted(task);
            return;
        }
        self.inner.jobs.fetch_add(1, Ordering::SeqCst);
        state.queue.push_back(task);
        if state.queue.len() <= state.idle {
            drop(state);
            self.inner.cvar.notify_one();
            return;
        }
        if state.threads >= self.inner.max_threads {
            // At the bound: the job waits for a thread to finish one.
            return;
        }
        state.threads += 1;
        let id = state.next_id;
        state.next_id += 1;
        drop(state);
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{id}", self.inner.thread_name))
            .spawn(move || inner.run());
        if let Err(err) = spawned {
            let mut state = self.inner.state.lock();
            state.threads -= 1;
            let starved = state.threads == 0;
            let orphans: Vec<_> = if starved {
                state.queue.drain(..).collect()
            } else {
                Vec::new()
            };
            drop(state);
            tracing::error!("fibra: cannot start a blocking-pool thread: {err}");
            // With no thread left, nobody would ever run them.
            for task in orphans {
                fail(
                    task,
                    Box::new(format!("cannot start a blocking thread: {err}")),
                );
            }
        }
    }

    /// Cancels queued jobs and lets idle threads exit.
    pub(crate) fn shutdown(&self) {
        let queued: Vec<_> = {
            let mut state = self.inner.state.lock();
            state.shutdown = true;
            state.queue.drain(..).collect()
        };
        self.inner.cvar.notify_all();
        for task in queued {
            Shared::of(&task).cancel_unstarted(task);
            self.inner.jobs.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Jobs queued or running.
    pub(crate) fn jobs(&self) -> usize {
        self.inner.jobs.load(Ordering::SeqCst)
    }

    /// Threads alive now (for stats and tests).
    pub(crate) fn threads(&self) -> usize {
        self.inner.state.lock().threads
    }
}

/// Fails a job that will never run.
fn fail(task: Arc<Task>, payload: Box<dyn std::any::Any + Send>) {
    if task.state.start_running() {
        // SAFETY: we hold RUNNING.
        let job = unsafe { &mut *task.job.get() };
        job.fail(JoinError::panic(task.id, payload));
        task.finish();
    }
}

impl Inner {
    fn run(self: Arc<Self>) {
        let mut state = self.state.lock();
        loop {
            if let Some(task) = state.queue.pop_front() {
                drop(state);
                run_job(task);
                self.jobs.fetch_sub(1, Ordering::SeqCst);
                state = self.state.lock();
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let timed_out = self.cvar.wait_for(&mut state, self.keep_alive).timed_out();
            state.idle -= 1;
            if timed_out && state.queue.is_empty() {
                break;
            }
        }
        state.threads -= 1;
    }
}

/// Runs one job on the calling pool thread.
fn run_job(task: Arc<Task>) {
    if !task.state.start_running() {
        return;
    }
    let _enter = context::enter(Shared::of(&task));
    let _span = task.enter_span();
    // SAFETY: we hold RUNNING; the task is never put in a run queue.
    let job = unsafe { &mut *task.job.get() };
    if task.take_cancel() {
        job.fail(JoinError::cancelled(task.id));
    } else if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job.call())) {
        job.fail(JoinError::panic(task.id, payload));
    }
    task.finish();
}
