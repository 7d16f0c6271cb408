//! Timers: `sleep`, the [`Sleep`] future, and deadlines for blocking calls.
//!
//! A green thread's timers live in its worker's timer heap (see the
//! `timer` leaf module, which also holds [`Sleep`]), fired at scheduler ticks and bounding how long the worker
//! sleeps; timers set from other threads go to a process-wide timer thread.
//! The same [`Sleep`] future serves green threads (through [`sleep`]), async
//! tasks and other executors.

mod after;

use std::task::Poll;
use std::time::{Duration, Instant};

pub use crate::timer::Sleep;
pub(crate) use crate::timer::{deadline_after, deadline_in};
pub use after::{after, Ticker};

/// Puts the current green thread to sleep for `dur` (its worker runs other
/// tasks meanwhile). On a plain OS thread it sleeps the thread.
///
/// ```
/// use std::time::{Duration, Instant};
/// fibra::run(|| {
///     let start = Instant::now();
///     fibra::time::sleep(Duration::from_millis(5));
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

/// Like [`sleep`], until `deadline`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(2);
/// fibra::run(move || fibra::time::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    crate::park::wait_deadline_as(crate::park::record::WaitOn::Sleep, Some(deadline), |_| {
        Poll::<()>::Pending
    });
}
