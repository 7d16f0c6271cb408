//! Timers: `sleep`, the [`Sleep`] future, and deadlines for blocking calls.
//!
//! A green thread's timers live in its worker's timer heap (see
//! `heap.rs`), fired at scheduler ticks and bounding how long the worker
//! sleeps; timers set from other threads go to a process-wide timer thread.
//! The same [`Sleep`] future serves green threads (through [`sleep`]), async
//! tasks and other executors.

mod after;
mod global;
pub(crate) mod heap;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::context;
use heap::TimerEntry;

pub use after::{after, Ticker};

/// Puts the current green thread to sleep for `dur` (its worker runs other
/// tasks meanwhile). On a plain OS thread it sleeps the thread.
///
/// ```
/// use std::time::{Duration, Instant};
/// fibra_runtime::run(|| {
///     let start = Instant::now();
///     fibra_runtime::time::sleep(Duration::from_millis(5));
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// ```
///
/// `Duration::MAX` (or any wait too long to represent) sleeps forever, as
/// `std::thread::sleep` does.
#[track_caller]
pub fn sleep(dur: Duration) {
    sleep_until(deadline_in(dur))
}

/// How far ahead a deadline saturates: about 30 years, which no wait
/// reaches and every clock can represent.
const FOREVER: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The deadline `dur` from now, saturated (see [`deadline_after`]).
pub(crate) fn deadline_in(dur: Duration) -> Instant {
    deadline_after(Instant::now(), dur)
}

/// `start + dur`, saturated at about 30 years ahead, so that every timeout
/// API treats `Duration::MAX` as "forever" instead of overflowing.
pub(crate) fn deadline_after(start: Instant, dur: Duration) -> Instant {
    let dur = dur.min(FOREVER);
    start.checked_add(dur).unwrap_or(start)
}

/// Like [`sleep`], until `deadline`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(2);
/// fibra_runtime::run(move || fibra_runtime::time::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    crate::park::wait_deadline_as(crate::debug::WaitOn::Sleep, Some(deadline), |_| {
        Poll::<()>::Pending
    });
}

/// A future that completes at a deadline. Works on any executor.
///
/// ```
/// use std::time::Duration;
/// fibra_runtime::run(|| {
///     let h = fibra_runtime::spawn_async(async {
///         fibra_runtime::time::Sleep::new(Duration::from_millis(1)).await;
///         "woke"
///     });
///     assert_eq!(h.join().unwrap(), "woke");
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    entry: Option<Arc<TimerEntry>>,
}

impl Sleep {
    /// A sleep of `dur` from now.
    pub fn new(dur: Duration) -> Sleep {
        Sleep::until(deadline_in(dur))
    }

    /// A sleep until `deadline`.
    pub fn until(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            entry: None,
        }
    }

    /// When this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        self.entry.as_ref().is_some_and(|e| e.is_fired()) || Instant::now() >= self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.entry {
            Some(entry) => {
                if entry.is_fired() {
                    return Poll::Ready(());
                }
                entry.set_waker(cx.waker());
                // Re-check after publishing the waker (see heap.rs).
                if entry.is_fired() {
                    return Poll::Ready(());
                }
                Poll::Pending
            }
            None => {
                if Instant::now() >= self.deadline {
                    return Poll::Ready(());
                }
                let entry = TimerEntry::new(self.deadline, cx.waker().clone());
                context::with_worker(|w| match w {
                    Some(w) => w.add_timer(entry.clone()),
                    None => global::insert(entry.clone()),
                });
                self.entry = Some(entry);
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(entry) = &self.entry {
            entry.cancel();
        }
    }
}

impl std::fmt::Debug for TimerEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerEntry")
            .field("deadline", &self.deadline)
            .field("fired", &self.is_fired())
            .finish()
    }
}
