//! Timer heaps, timer entries and the [`Sleep`] future: a leaf under the
//! task core, the scheduler and `time` (which re-exports [`Sleep`]).
//!
//! A worker publishes its timer heap for its thread ([`set_local`]) while
//! its loop runs; a timer armed on that thread goes into that heap, fired at
//! the worker's ticks and bounding how long it sleeps. A timer armed on any
//! other thread goes to the process-wide timer thread (`global`).

mod global;
pub(crate) mod heap;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use heap::{TimerEntry, TimerHeap};

thread_local! {
    /// The timer heap of the worker running on this thread, if any.
    static LOCAL: Cell<*const RefCell<TimerHeap>> = const { Cell::new(std::ptr::null()) };
}

/// Makes `heap` this thread's timer heap until [`clear_local`]. The caller
/// (a worker loop) keeps `heap` alive and in place until it clears it.
pub(crate) fn set_local(heap: &RefCell<TimerHeap>) {
    LOCAL.with(|c| c.set(heap));
}

/// Undoes [`set_local`].
pub(crate) fn clear_local() {
    LOCAL.with(|c| c.set(std::ptr::null()));
}

/// Arms `entry` on this thread's worker heap, or on the timer thread.
pub(crate) fn arm(entry: Arc<TimerEntry>) {
    let ptr = LOCAL.with(|c| c.get());
    // SAFETY: the pointer is set by a worker loop to the timer heap of a
    // `Worker` that lives on that loop's stack frame, and cleared before the
    // frame ends; every task polled on this thread runs nested in that loop.
    match unsafe { ptr.as_ref() } {
        Some(heap) => heap.borrow_mut().insert(entry),
        None => global::insert(entry),
    }
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

/// A future that completes at a deadline. Works on any executor.
///
/// ```
/// use std::time::Duration;
/// fibra::run(|| {
///     let h = fibra::spawn_async(async {
///         fibra::time::Sleep::new(Duration::from_millis(1)).await;
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
                arm(entry.clone());
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
