//! Cancelling a started green thread: it unwinds from where it is
//! suspended, on its own worker, and its join handle resolves as
//! cancelled.
//!
//! # States (`Task::cancel`)
//!
//! ```text
//!   NONE ──request──► REQUESTED ──resumed at a park or yield──► UNWINDING ──► (complete)
//!                                                                   │
//!                      a destructor blocks at shutdown, or panics ──┴──► abandoned (leaked)
//! ```
//!
//! - *request*: the runtime asks (a deadlocked main green thread, see
//!   `Runtime::run`; every started green thread at shutdown), or a user
//!   through `JoinHandle::cancel`. A parked task is woken for it; a running
//!   one acts on it at its next park. A green thread or blocking job that
//!   has not started yet, and an async task between polls, take the
//!   request before they would run (`take_cancel`) and fail as cancelled
//!   without running; a blocking job already running is not interrupted.
//! - A green thread checks the state wherever it suspends - right before
//!   it parks and right after it resumes from a park or a yield - and on
//!   `REQUESTED` moves to `UNWINDING` and unwinds with the private
//!   [`Cancelled`] payload (`resume_unwind`: no panic hook, no message).
//!   Its entry point catches that payload and fails the task with
//!   `JoinError::cancelled`. The unwind starts once: a destructor that
//!   parks while the stack unwinds parks normally (raising again inside a
//!   destructor would abort the process), and user code that catches the
//!   payload and goes on is not unwound a second time.
//!
//! # When the unwind cannot finish
//!
//! At shutdown the owner worker resumes each started green thread itself
//! until it has unwound. A destructor may wait during the unwind (a sleep,
//! a join, a channel): the worker fires its timers and polls the
//! netpoller meanwhile. One that is not woken within 200 ms (nothing else
//! runs on that worker any more), or keeps yielding, stops it: the green
//! thread is abandoned - its coroutine is
//! never resumed or dropped and its stack mapping is leaked, so the
//! destructors still pending on it never run, and whatever points into it
//! (a channel's waiter entry) points to memory that stays mapped. The task
//! resolves as cancelled and an error is logged. (std still counts the
//! cancellation unwind as a panic in flight on that worker thread, which
//! exits right after.)
//!
//! A destructor that *panics* during the unwind would abort the process,
//! as Rust does for any panic that escapes a destructor while unwinding.
//! fibra abandons that green thread instead, the same way (see
//! `park::abort`): the task resolves as cancelled, an error is reported
//! and every other task goes on.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::task::Wake;

use super::Task;

/// No cancellation asked.
pub(crate) const NONE: u8 = 0;
/// Asked; acted on at the next park, or when resumed from one.
pub(crate) const REQUESTED: u8 = 1;
/// The unwind has begun.
pub(crate) const UNWINDING: u8 = 2;

/// The payload a cancelled green thread unwinds with. Private, so user code
/// can catch it but not forge it.
pub(crate) struct Cancelled;

impl Task {
    /// Asks a started green thread to unwind (see the module docs), from
    /// any thread; wakes it if it is parked. It may still finish normally
    /// first.
    pub(crate) fn request_cancel(self: &Arc<Self>) {
        if self
            .cancel
            .compare_exchange(NONE, REQUESTED, SeqCst, SeqCst)
            .is_ok()
        {
            // Stored before the wake: the resumed task sees the request (a
            // task running now sees it at its next park, before it
            // suspends, or is woken again by this wake).
            Wake::wake_by_ref(self);
        }
    }

    /// The owner worker asks at shutdown, holding the task (it resumes it
    /// itself, so no wake). Returns whether its unwind had begun already.
    pub(crate) fn request_cancel_owned(&self) -> bool {
        self.cancel
            .compare_exchange(NONE, REQUESTED, SeqCst, SeqCst)
            .is_err_and(|s| s == UNWINDING)
    }

    /// Takes a cancellation asked of a task that is not running now (an
    /// async task between polls, a green thread or blocking job about to
    /// start): whether the caller, holding it, must fail it as cancelled
    /// instead of running it.
    pub(crate) fn take_cancel(&self) -> bool {
        self.cancel.load(SeqCst) == REQUESTED
            && self
                .cancel
                .compare_exchange(REQUESTED, UNWINDING, SeqCst, SeqCst)
                .is_ok()
    }

    /// Called by the running green thread where it suspends (see the
    /// module docs): starts the unwind once, if a cancellation was asked.
    #[inline]
    pub(crate) fn check_cancel(&self) {
        if self.cancel.load(SeqCst) == REQUESTED {
            self.start_unwind();
        }
    }

    /// [`check_cancel`](Self::check_cancel) found a request: starts the
    /// unwind once.
    #[cold]
    #[inline(never)]
    fn start_unwind(&self) {
        if self
            .cancel
            .compare_exchange(REQUESTED, UNWINDING, SeqCst, SeqCst)
            .is_ok()
        {
            tracing::debug!(task.id = self.id.as_u64(), "cancelled where it waited");
            std::panic::resume_unwind(Box::new(Cancelled));
        }
    }
}
