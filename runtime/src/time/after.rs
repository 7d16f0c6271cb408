//! Timers that deliver on channels: [`after`] and [`Ticker`], as Go's
//! `time.After` and `time.Ticker`, for use in `select!`.
//!
//! Each arms a timer entry (the worker's heap, or the process-wide timer
//! thread off the runtime) whose waker sends the current time on a channel
//! of capacity 1 with `try_send`: a tick nobody has taken yet is not
//! doubled, as in Go. A ticker's waker re-arms the next tick unless the
//! ticker was stopped or reset since.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use crate::chan::{Receiver, Sender};
use crate::timer::heap::TimerEntry;

/// A channel that receives the time once, after `dur` (Go's `time.After`).
/// It is never closed: later receives wait forever, as in Go.
///
/// ```
/// use std::time::Duration;
/// use fibra::{chan::channel, select, time::after};
/// fibra::run(|| {
///     let (_tx, rx) = channel::<u32>(0);
///     let timed_out = select! {
///         recv(rx) -> _ => false,
///         recv(after(Duration::from_millis(5))) -> _ => true,
///     };
///     assert!(timed_out);
/// });
/// ```
pub fn after(dur: Duration) -> Receiver<Instant> {
    let (tx, rx) = crate::chan::channel_never_closed(1);
    arm(super::deadline_in(dur), Arc::new(Once(tx)));
    rx
}

/// Sends the time on the channel when its timer fires.
struct Once(Sender<Instant>);

impl Wake for Once {
    fn wake(self: Arc<Self>) {
        let _ = self.0.try_send(Instant::now());
    }
}

/// Arms a timer firing `waker` at `deadline`, on this worker's heap or on
/// the process-wide timer thread.
fn arm(deadline: Instant, waker: Arc<impl Wake + Send + Sync + 'static>) {
    let entry = TimerEntry::new(deadline, Waker::from(waker));
    crate::timer::arm(entry);
}

/// Delivers the time every `period` on a channel (Go's `time.Ticker`).
/// Derefs to its [`Receiver`], so it can be used in `select!` directly.
/// Ticks a slow receiver misses are dropped. Dropping the ticker stops it.
///
/// ```
/// use std::time::Duration;
/// use fibra::time::Ticker;
/// fibra::run(|| {
///     let ticker = Ticker::new(Duration::from_millis(1));
///     let a = ticker.recv().unwrap();
///     let b = ticker.recv().unwrap();
///     assert!(b > a);
///     ticker.stop();
/// });
/// ```
pub struct Ticker {
    rx: Receiver<Instant>,
    shared: Arc<TickerShared>,
}

struct TickerShared {
    tx: Sender<Instant>,
    /// Period in nanoseconds (changed by `reset`).
    period: AtomicU64,
    /// Bumped by `stop` and `reset`: a timer armed under an older
    /// generation neither sends nor re-arms.
    generation: AtomicU64,
    stopped: AtomicBool,
}

/// One armed tick of a ticker.
struct Tick {
    shared: Arc<TickerShared>,
    generation: u64,
    deadline: Instant,
}

impl Wake for Tick {
    fn wake(self: Arc<Self>) {
        let s = &self.shared;
        if s.stopped.load(Ordering::Acquire)
            || s.generation.load(Ordering::Acquire) != self.generation
        {
            return;
        }
        let now = Instant::now();
        let _ = s.tx.try_send(now);
        let period = Duration::from_nanos(s.period.load(Ordering::Relaxed));
        // Next tick on the original grid, skipping ticks already missed.
        let mut next = super::deadline_after(self.deadline, period);
        if next <= now {
            next = super::deadline_in(period);
        }
        arm(
            next,
            Arc::new(Tick {
                shared: self.shared.clone(),
                generation: self.generation,
                deadline: next,
            }),
        );
    }
}

impl Ticker {
    /// A ticker sending every `period` (which must be non-zero).
    ///
    /// ```
    /// let t = fibra::time::Ticker::new(std::time::Duration::from_millis(10));
    /// t.stop();
    /// ```
    pub fn new(period: Duration) -> Ticker {
        assert!(!period.is_zero(), "fibra: Ticker period must be non-zero");
        let (tx, rx) = crate::chan::channel_never_closed(1);
        let shared = Arc::new(TickerShared {
            tx,
            period: AtomicU64::new(period.as_nanos().min(u64::MAX as u128) as u64),
            generation: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let t = Ticker { rx, shared };
        t.start(0, period);
        t
    }

    fn start(&self, generation: u64, period: Duration) {
        let deadline = super::deadline_in(period);
        arm(
            deadline,
            Arc::new(Tick {
                shared: self.shared.clone(),
                generation,
                deadline,
            }),
        );
    }

    /// Stops the ticks (a tick already delivered stays in the channel).
    ///
    /// ```
    /// let t = fibra::time::Ticker::new(std::time::Duration::from_secs(1));
    /// t.stop();
    /// assert!(t.try_recv().is_err());
    /// ```
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Restarts the ticker with a new period, from now.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = fibra::time::Ticker::new(Duration::from_secs(60));
    /// t.reset(Duration::from_millis(1));
    /// assert!(t.recv().is_ok());
    /// ```
    pub fn reset(&self, period: Duration) {
        assert!(!period.is_zero(), "fibra: Ticker period must be non-zero");
        let s = &self.shared;
        s.period.store(
            period.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
        let generation = s.generation.fetch_add(1, Ordering::AcqRel) + 1;
        s.stopped.store(false, Ordering::Release);
        self.start(generation, period);
    }

    /// The channel the ticks arrive on.
    ///
    /// ```
    /// let t = fibra::time::Ticker::new(std::time::Duration::from_millis(1));
    /// assert!(t.receiver().recv().is_ok());
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }
}

impl Deref for Ticker {
    type Target = Receiver<Instant>;
    fn deref(&self) -> &Receiver<Instant> {
        &self.rx
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker")
            .field(
                "period",
                &Duration::from_nanos(self.shared.period.load(Ordering::Relaxed)),
            )
            .finish_non_exhaustive()
    }
}
