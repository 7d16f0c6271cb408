//! One epoll instance ([`Poller`]): a worker's own readiness source, or the
//! fallback driver's only one. Its lock is the right to poll it
//! ([`PollGuard`]); its registry adds and removes sockets without that
//! lock, so a socket can join the set of a poller that is blocked in
//! `epoll_wait` (the kernel then reports the socket's current readiness at
//! once).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use parking_lot::{Mutex, MutexGuard};

use super::timerfd::TimerFd;
use super::Driver;

/// The token of the poller's `mio::Waker`.
pub(super) const WAKE_TOKEN: Token = Token(usize::MAX);
/// The token of the poller's timer descriptor.
pub(super) const TIMER_TOKEN: Token = Token(usize::MAX - 1);
/// Events taken per `epoll_wait`.
const EVENTS_CAPACITY: usize = 1024;
/// Timeouts shorter than this wait on the timer descriptor (nanosecond
/// precision) instead of `epoll_wait`'s millisecond timeout, whose
/// rounding up would add up to a millisecond to a short sleep.
const PRECISE_BELOW: Duration = Duration::from_millis(20);

/// What one poll round needs; owned by whoever holds the poller's lock.
pub(super) struct PollState {
    poll: mio::Poll,
    events: Events,
    /// Wakers collected by the last dispatch, woken outside the locks.
    wake: Vec<Waker>,
    /// The precise timer, made on the first short timeout.
    pub(super) timer: Option<TimerFd>,
}

/// One epoll instance and its bookkeeping.
pub(crate) struct Poller {
    /// The poll instance; whoever holds this lock polls.
    state: Mutex<PollState>,
    /// Adds and removes sockets without the lock.
    pub(super) registry: mio::Registry,
    /// Interrupts a blocked poll (the owning worker's `Parker` interrupt).
    pub(super) waker: Arc<mio::Waker>,
    /// Sockets in this poller's set (a poll with none is skipped).
    pub(super) armed: AtomicUsize,
    /// When the last poll finished, in ms since the driver's epoch.
    last_poll_ms: AtomicU64,
    /// Set once the precise timer failed (it is then not tried again).
    timer_failed: AtomicBool,
}

impl Poller {
    pub(super) fn new() -> io::Result<Poller> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
        Ok(Poller {
            state: Mutex::new(PollState {
                poll,
                events: Events::with_capacity(EVENTS_CAPACITY),
                wake: Vec::new(),
                timer: None,
            }),
            registry,
            waker,
            armed: AtomicUsize::new(0),
            last_poll_ms: AtomicU64::new(0),
            timer_failed: AtomicBool::new(false),
        })
    }

    /// Takes the right to poll, waiting for its holder.
    pub(super) fn lock<'a>(&'a self, driver: &'a Driver) -> PollGuard<'a> {
        PollGuard {
            driver,
            poller: self,
            state: self.state.lock(),
        }
    }

    /// Takes the right to poll, if nobody holds it.
    pub(super) fn try_lock<'a>(&'a self, driver: &'a Driver) -> Option<PollGuard<'a>> {
        self.state.try_lock().map(|state| PollGuard {
            driver,
            poller: self,
            state,
        })
    }

    /// Milliseconds between the last finished poll and `now_ms`.
    pub(super) fn ms_since_last_poll(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_poll_ms.load(Ordering::Relaxed))
    }
}

/// The right to poll one [`Poller`]: its lock, held while polling and
/// dispatching.
pub(crate) struct PollGuard<'a> {
    driver: &'a Driver,
    poller: &'a Poller,
    pub(super) state: MutexGuard<'a, PollState>,
}

impl PollGuard<'_> {
    /// Waits up to `timeout` (forever if `None`) for events, or until the
    /// poller's waker fires.
    pub(crate) fn poll(&mut self, timeout: Option<Duration>) {
        let timeout = match timeout {
            Some(d) if !d.is_zero() && d < PRECISE_BELOW && self.set_timer(d) => None,
            other => other,
        };
        let state = &mut *self.state;
        match state.poll.poll(&mut state.events, timeout) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => state.events.clear(),
            Err(err) => {
                tracing::error!("fibra: netpoller poll failed: {err}");
                state.events.clear();
            }
        }
        self.poller
            .last_poll_ms
            .store(self.driver.now_ms(), Ordering::Relaxed);
    }

    /// Arms the precise timer to fire `after` from now; `false` if it
    /// cannot be used (the caller then uses the coarse timeout).
    fn set_timer(&mut self, after: Duration) -> bool {
        if self.poller.timer_failed.load(Ordering::Relaxed) {
            return false;
        }
        let state = &mut *self.state;
        if state.timer.is_none() {
            let made = TimerFd::new().and_then(|t| {
                self.poller.registry.register(
                    &mut SourceFd(&t.as_raw_fd()),
                    TIMER_TOKEN,
                    Interest::READABLE,
                )?;
                Ok(t)
            });
            match made {
                Ok(t) => state.timer = Some(t),
                Err(err) => return self.timer_failed(err),
            }
        }
        match state.timer.as_ref().map(|t| t.set(after)) {
            Some(Ok(())) => true,
            Some(Err(err)) => self.timer_failed(err),
            None => false,
        }
    }

    fn timer_failed(&self, err: io::Error) -> bool {
        if !self.poller.timer_failed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "fibra: no timerfd ({err}); short sleeps round up to whole milliseconds"
            );
        }
        false
    }

    /// Delivers the events of the last poll and wakes their tasks; returns
    /// how many wakers were woken.
    pub(crate) fn dispatch(&mut self) -> usize {
        let state = &mut *self.state;
        if state.events.is_empty() {
            return 0;
        }
        self.driver.deliver(&state.events, &mut state.wake);
        state.events.clear();
        let n = state.wake.len();
        for w in state.wake.drain(..) {
            w.wake();
        }
        n
    }
}

/// When a driver was made, for `last_poll_ms`.
pub(super) fn ms_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}
