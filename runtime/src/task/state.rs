//! The task state machine: who may run a task, and how a wake-up is never
//! lost.
//!
//! # States
//!
//! A task's state word holds independent bits:
//!
//! - `SCHEDULED`: the task sits in exactly one run queue (or is being pushed
//!   into one). Only the thread that set the bit pushes it.
//! - `RUNNING`: a worker owns the task's body and is executing it - or, for
//!   a green thread that yielded, holds it in its own pinned queue (a yield
//!   keeps the bit, so it costs no atomic operation); only that worker
//!   touches the body (coroutine or future).
//! - `NOTIFIED`: a wake-up arrived while `RUNNING`; the worker must run the
//!   task again instead of letting it go idle.
//! - `COMPLETE`: the body finished (or was cancelled); the output is
//!   published and no bit changes again.
//!
//! Idle (parked) is the absence of all bits.
//!
//! # Transitions
//!
//! ```text
//!   spawn ─► SCHEDULED ──run──► RUNNING ──park──► idle ──wake──► SCHEDULED
//!                 ▲                │  ▲                              
//!                 └─────yield──────┘  └── wake sets NOTIFIED; park sees it
//!                                      │   and goes back to SCHEDULED
//!                                      └──return──► COMPLETE
//! ```
//!
//! A wake made on a started green thread's own worker, by another green
//! thread running there (a channel hand-off between partners), takes
//! `idle -> RUNNING` instead ([`State::wake_held`]): the worker then holds
//! the task in its queue as it holds a yielded one, and runs it without a
//! second compare-and-swap. Nobody else can run it meanwhile: `RUNNING` is
//! taken by exactly one CAS from idle, and a wake from elsewhere that finds
//! it `RUNNING` sets `NOTIFIED` (one spurious run after its next park, as
//! for any wake that arrives while a task runs).
//!
//! # Invariant
//!
//! Every `wake` that happens after a task started parking causes exactly one
//! future run: either `wake` finds the task idle and schedules it, or it
//! finds it running and sets `NOTIFIED`, which the worker's `park`
//! transition observes (the two are ordered by compare-and-swap on one
//! word). A task is never in two run queues because only the transition that
//! sets `SCHEDULED` may push it, and only `run` clears it.

use crate::loom::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

const SCHEDULED: usize = 1;
const RUNNING: usize = 2;
const NOTIFIED: usize = 4;
const COMPLETE: usize = 8;

/// What a `wake` asks of its caller.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum WakeAction {
    /// The task was idle: the caller must push it to a run queue.
    Schedule,
    /// Nothing to do (already queued, running-and-notified, or complete).
    None,
}

/// What the worker does after a task parked.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum ParkAction {
    /// The task is idle; a later wake will schedule it.
    Idle,
    /// A wake arrived while it ran: push it to a run queue again.
    Reschedule,
}

/// The state word of one task.
pub(crate) struct State(AtomicUsize);

impl State {
    /// A new task, about to be pushed to its first run queue.
    pub(crate) fn new_scheduled() -> State {
        State(AtomicUsize::new(SCHEDULED))
    }

    /// Worker took the task from a queue: `SCHEDULED -> RUNNING`.
    /// Returns `false` if the task already completed (cancelled while queued).
    pub(crate) fn start_running(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            if cur & COMPLETE != 0 {
                return false;
            }
            debug_assert!(cur & SCHEDULED != 0, "running an unscheduled task");
            let next = (cur & !SCHEDULED) | RUNNING;
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Claims an idle or queued task for cancellation, as if running it.
    /// Returns `false` if it is complete or running elsewhere.
    pub(crate) fn claim_for_cancel(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            if cur & (COMPLETE | RUNNING) != 0 {
                return false;
            }
            let next = (cur & !SCHEDULED) | RUNNING;
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Claims a task woken since it parked (`SCHEDULED` only, wherever it
    /// was queued): `SCHEDULED -> RUNNING`. Used by the owner worker while
    /// it unwinds a task at shutdown; the queued reference later finds it
    /// complete.
    pub(crate) fn claim_woken(&self) -> bool {
        self.0
            .compare_exchange(SCHEDULED, RUNNING, AcqRel, Acquire)
            .is_ok()
    }

    /// The running task suspended to wait: `RUNNING -> idle`, or back to
    /// `SCHEDULED` if a wake arrived meanwhile.
    pub(crate) fn park(&self) -> ParkAction {
        let mut cur = self.0.load(Acquire);
        loop {
            debug_assert!(cur & RUNNING != 0);
            let (next, action) = if cur & NOTIFIED != 0 {
                (SCHEDULED, ParkAction::Reschedule)
            } else {
                (0, ParkAction::Idle)
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return action,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The running task consumes a pending wake-up without suspending:
    /// `RUNNING|NOTIFIED -> RUNNING`. Returns whether there was one.
    /// A plain load first: a park without a pending wake-up (the common
    /// case) costs no read-modify-write.
    #[inline]
    pub(crate) fn take_notification(&self) -> bool {
        self.0.load(Relaxed) & NOTIFIED != 0
            && self
                .0
                .compare_exchange(RUNNING | NOTIFIED, RUNNING, AcqRel, Relaxed)
                .is_ok()
    }

    /// Whether the owner holds the task (a yielded green thread in its
    /// pinned queue keeps `RUNNING`). Only meaningful to the owner worker.
    pub(crate) fn is_held(&self) -> bool {
        self.0.load(Acquire) & RUNNING != 0
    }

    /// The owner cancels a task it holds (`RUNNING`, yielded, not
    /// executing) or that is idle or queued. Returns `false` if complete.
    pub(crate) fn claim_own_for_cancel(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            if cur & COMPLETE != 0 {
                return false;
            }
            let next = RUNNING;
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Wakes the task. See [`WakeAction`].
    pub(crate) fn wake(&self) -> WakeAction {
        let mut cur = self.0.load(Acquire);
        loop {
            let (next, action) = if cur & (COMPLETE | SCHEDULED) != 0 {
                return WakeAction::None;
            } else if cur & RUNNING != 0 {
                if cur & NOTIFIED != 0 {
                    return WakeAction::None;
                }
                (cur | NOTIFIED, WakeAction::None)
            } else {
                (SCHEDULED, WakeAction::Schedule)
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return action,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Wakes a started green thread from its owner worker's thread (see
    /// the module docs): an idle task goes straight to `RUNNING`, held by
    /// that worker, and the caller must push it to that worker's queue;
    /// any other state is handled as by [`wake`](Self::wake).
    #[inline]
    pub(crate) fn wake_held(&self) -> WakeAction {
        match self.0.compare_exchange(0, RUNNING, AcqRel, Acquire) {
            Ok(_) => WakeAction::Schedule,
            Err(_) => self.wake(),
        }
    }

    /// The body finished: `RUNNING -> COMPLETE`. Publishes the output
    /// written before this call (release).
    pub(crate) fn complete(&self) {
        let prev = self.0.swap(COMPLETE, AcqRel);
        debug_assert!(prev & RUNNING != 0);
    }

    /// A word for dumps: `running`, `runnable`, `parked` or `finished`.
    pub(crate) fn describe(&self) -> &'static str {
        let cur = self.0.load(Acquire);
        if cur & COMPLETE != 0 {
            "finished"
        } else if cur & RUNNING != 0 {
            "running"
        } else if cur & SCHEDULED != 0 {
            "runnable"
        } else {
            "parked"
        }
    }

    /// Whether the task completed; acquires its output.
    pub(crate) fn is_complete(&self) -> bool {
        self.0.load(Acquire) & COMPLETE != 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn wake_while_idle_schedules_once() {
        let s = State::new_scheduled();
        assert!(s.start_running());
        assert_eq!(s.park(), ParkAction::Idle);
        assert_eq!(s.wake(), WakeAction::Schedule);
        assert_eq!(s.wake(), WakeAction::None);
        assert!(s.start_running());
    }

    #[test]
    fn wake_while_running_reschedules_at_park() {
        let s = State::new_scheduled();
        assert!(s.start_running());
        assert_eq!(s.wake(), WakeAction::None);
        assert_eq!(s.park(), ParkAction::Reschedule);
        assert_eq!(s.wake(), WakeAction::None);
    }

    #[test]
    fn notification_can_be_consumed_without_parking() {
        let s = State::new_scheduled();
        assert!(s.start_running());
        assert!(!s.take_notification());
        s.wake();
        assert!(s.take_notification());
        assert_eq!(s.park(), ParkAction::Idle);
    }

    #[test]
    fn wake_held_takes_running_from_idle_only() {
        let s = State::new_scheduled();
        assert!(s.start_running());
        // Running: a wake is a notification, whoever makes it.
        assert_eq!(s.wake_held(), WakeAction::None);
        assert_eq!(s.park(), ParkAction::Reschedule);
        assert!(s.start_running());
        assert_eq!(s.park(), ParkAction::Idle);
        assert_eq!(s.wake_held(), WakeAction::Schedule);
        assert!(s.is_held(), "the waker's worker holds it");
        assert_eq!(s.wake(), WakeAction::None, "a second wake only notifies");
        assert_eq!(s.park(), ParkAction::Reschedule);
    }

    #[test]
    fn complete_ignores_wakes_and_runs() {
        let s = State::new_scheduled();
        assert!(s.start_running());
        s.complete();
        assert!(s.is_complete());
        assert_eq!(s.wake(), WakeAction::None);
        assert!(!s.claim_for_cancel());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize as Counter;
    use loom::sync::Arc;
    use std::sync::atomic::Ordering::SeqCst;

    /// A wake racing with park causes exactly one further run.
    #[test]
    fn park_wake_race_schedules_exactly_once() {
        loom::model(|| {
            let state = Arc::new(State::new_scheduled());
            let runs = Arc::new(Counter::new(0));
            assert!(state.start_running());

            let (s2, r2) = (state.clone(), runs.clone());
            let waker = loom::thread::spawn(move || {
                if s2.wake() == WakeAction::Schedule {
                    r2.fetch_add(1, SeqCst);
                }
            });
            if state.park() == ParkAction::Reschedule {
                runs.fetch_add(1, SeqCst);
            }
            waker.join().unwrap();
            // Either the wake found the task idle or park saw NOTIFIED -
            // never both, never neither.
            assert_eq!(runs.load(SeqCst), 1);
        });
    }

    /// A wake from the owner worker (taking RUNNING) racing with a wake
    /// from another thread: the task is pushed once, and the other wake
    /// leaves a notification only if it found the task held.
    #[test]
    fn held_and_remote_wakes_push_once() {
        loom::model(|| {
            let state = Arc::new(State::new_scheduled());
            assert!(state.start_running());
            assert_eq!(state.park(), ParkAction::Idle);
            let s2 = state.clone();
            let remote = loom::thread::spawn(move || s2.wake() == WakeAction::Schedule);
            let here = state.wake_held() == WakeAction::Schedule;
            let there = remote.join().unwrap();
            assert!(here ^ there, "exactly one wake pushes the task");
            if here {
                // The owner runs it; the other wake became a notification.
                assert_eq!(state.park(), ParkAction::Reschedule);
            } else {
                assert!(!state.is_held());
                assert!(state.start_running());
                assert_eq!(state.park(), ParkAction::Idle);
            }
        });
    }

    /// Two concurrent wakes of an idle task push it once.
    #[test]
    fn concurrent_wakes_schedule_once() {
        loom::model(|| {
            let state = Arc::new(State::new_scheduled());
            assert!(state.start_running());
            assert_eq!(state.park(), ParkAction::Idle);
            let runs = Arc::new(Counter::new(0));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (s, r) = (state.clone(), runs.clone());
                    loom::thread::spawn(move || {
                        if s.wake() == WakeAction::Schedule {
                            r.fetch_add(1, SeqCst);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(runs.load(SeqCst), 1);
        });
    }
}
