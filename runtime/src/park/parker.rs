//! Parking an OS thread (a worker with nothing to do, or a plain thread
//! blocked in a fibra call) until someone unparks it.
//!
//! # Protocol
//!
//! One state word: `EMPTY`, `PARKED`, `POLLING` or `NOTIFIED`, with the
//! semantics of `std::thread::park`: an `unpark` before `park` is remembered
//! as a token, so `park` returns immediately.
//!
//! - `park`: consume a token if present (`NOTIFIED -> EMPTY`). Otherwise take
//!   the lock, move `EMPTY -> PARKED`, and wait on the condition variable
//!   until the state is `NOTIFIED`; then reset to `EMPTY`.
//! - `unpark`: swap the state to `NOTIFIED`. Only if it was `PARKED` take the
//!   lock (so the sleeper is either before its wait, and will see the state,
//!   or inside it, and gets the signal) and notify.
//!
//! The lock is touched only when a thread really sleeps, so `unpark` of a
//! running thread costs one atomic swap.
//!
//! # Parking in the netpoller (added with the netpoller)
//!
//! A worker that holds the runtime's netpoller sleeps in `epoll_wait`
//! instead of on the condition variable ([`Parker::park_polling`]):
//!
//! - `park_polling`: consume a token if present; otherwise move
//!   `EMPTY -> POLLING`, block in the poll, then reset to `EMPTY`.
//! - `unpark` that swaps out `POLLING` calls the parker's *interrupt* (the
//!   driver's `mio::Waker`, which makes the poll's eventfd readable).
//!
//! No wake-up is lost: the interrupt is a level in the kernel, so an
//! `unpark` that sees `POLLING` either finds the thread inside
//! `epoll_wait` (which returns) or just before it (which then returns at
//! once). An interrupt that lands after the poll returned only makes the
//! next poll return early; the parked worker re-checks its queues after
//! every park in any case, so resetting a `NOTIFIED` that arrived meanwhile
//! to `EMPTY` loses nothing - exactly as the timed condvar park already
//! did. The `loom_tests` below model this with a fake poll.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use crate::loom::{AtomicUsize, Condvar, Mutex};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;
const POLLING: usize = 3;

/// Wakes a thread blocked in the netpoller.
pub(crate) type Interrupt = Arc<dyn Fn() + Send + Sync>;

/// A one-token park/unpark pair for one OS thread.
pub(crate) struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
    /// Reaches the thread while it parks in the netpoller.
    interrupt: Option<Interrupt>,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
            interrupt: None,
        }
    }

    /// A parker whose thread may also park in a poll that `interrupt`
    /// wakes.
    pub(crate) fn with_interrupt(interrupt: Interrupt) -> Parker {
        Parker {
            interrupt: Some(interrupt),
            ..Parker::new()
        }
    }

    /// Parks inside `poll` (a netpoller wait bounded by its argument)
    /// until `poll` returns; an [`unpark`](Self::unpark) meanwhile calls the
    /// interrupt, which must make `poll` return.
    pub(crate) fn park_polling(
        &self,
        timeout: Option<Duration>,
        poll: impl FnOnce(Option<Duration>),
    ) {
        debug_assert!(
            self.interrupt.is_some(),
            "park_polling without an interrupt"
        );
        match self.state.compare_exchange(EMPTY, POLLING, SeqCst, SeqCst) {
            Ok(_) => {}
            Err(NOTIFIED) => {
                self.state.store(EMPTY, SeqCst);
                return;
            }
            Err(other) => unreachable!("parker state {other}"),
        }
        poll(timeout);
        self.state.swap(EMPTY, SeqCst);
    }

    /// Blocks until [`unpark`](Self::unpark) is called (or was called since
    /// the last park), or until `timeout` passes.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
            .is_ok()
        {
            return;
        }
        let mut guard = self.lock.lock().unwrap();
        match self.state.compare_exchange(EMPTY, PARKED, SeqCst, SeqCst) {
            Ok(_) => {}
            Err(NOTIFIED) => {
                self.state.store(EMPTY, SeqCst);
                return;
            }
            Err(other) => unreachable!("parker state {other}"),
        }
        match timeout {
            None => loop {
                guard = self.cvar.wait(guard).unwrap();
                if self
                    .state
                    .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                    .is_ok()
                {
                    return;
                }
            },
            Some(dur) => {
                let (_guard, _) = self.cvar.wait_timeout(guard, dur).unwrap();
                // Either notified, timed out, or spurious: all end the park.
                self.state.swap(EMPTY, SeqCst);
            }
        }
    }

    /// Wakes the parked thread, or makes its next park return at once.
    pub(crate) fn unpark(&self) {
        match self.state.swap(NOTIFIED, SeqCst) {
            PARKED => {
                // Taking the lock orders this notify after the sleeper's wait.
                drop(self.lock.lock().unwrap());
                self.cvar.notify_one();
            }
            POLLING => {
                if let Some(interrupt) = &self.interrupt {
                    interrupt();
                }
            }
            _ => {}
        }
    }
}

/// A `Waker` that unparks a plain OS thread blocked in a fibra call.
pub(crate) struct ThreadWaker {
    pub(crate) parker: Parker,
}

impl std::task::Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.parker.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.parker.unpark();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn unpark_before_park_is_remembered() {
        let p = Parker::new();
        p.unpark();
        p.park(None);
    }

    #[test]
    fn unpark_from_another_thread_wakes() {
        let p = Arc::new(Parker::new());
        let p2 = p.clone();
        let t = std::thread::spawn(move || p2.park(None));
        std::thread::sleep(Duration::from_millis(20));
        p.unpark();
        t.join().unwrap();
    }

    #[test]
    fn park_timeout_returns() {
        let p = Parker::new();
        p.park(Some(Duration::from_millis(5)));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    #[test]
    fn unpark_is_never_lost() {
        loom::model(|| {
            let p = Arc::new(Parker::new());
            let p2 = p.clone();
            let t = loom::thread::spawn(move || p2.unpark());
            p.park(None);
            t.join().unwrap();
        });
    }

    /// The eventfd behind the netpoller's waker: a level that a poll
    /// consumes, modelled with a lock and a condition variable.
    struct FakePoll {
        ready: loom::sync::Mutex<bool>,
        cvar: loom::sync::Condvar,
    }

    impl FakePoll {
        fn new() -> FakePoll {
            FakePoll {
                ready: loom::sync::Mutex::new(false),
                cvar: loom::sync::Condvar::new(),
            }
        }
        fn poll(&self) {
            let mut ready = self.ready.lock().unwrap();
            while !*ready {
                ready = self.cvar.wait(ready).unwrap();
            }
            *ready = false;
        }
        fn wake(&self) {
            *self.ready.lock().unwrap() = true;
            self.cvar.notify_one();
        }
    }

    fn polling_parker() -> (Arc<Parker>, Arc<FakePoll>) {
        let fake = Arc::new(FakePoll::new());
        let f2 = fake.clone();
        let interrupt: Interrupt = std::sync::Arc::new(move || f2.wake());
        (Arc::new(Parker::with_interrupt(interrupt)), fake)
    }

    #[test]
    fn unpark_reaches_a_poller() {
        loom::model(|| {
            let (p, fake) = polling_parker();
            let p2 = p.clone();
            let t = loom::thread::spawn(move || p2.unpark());
            p.park_polling(None, |_| fake.poll());
            t.join().unwrap();
        });
    }

    #[test]
    fn polling_and_condvar_parks_mix() {
        loom::model(|| {
            let (p, fake) = polling_parker();
            let p2 = p.clone();
            let t = loom::thread::spawn(move || p2.unpark());
            p.park_polling(None, |_| fake.poll());
            t.join().unwrap();
            let p3 = p.clone();
            let t = loom::thread::spawn(move || p3.unpark());
            p.park(None);
            t.join().unwrap();
        });
    }

    #[test]
    fn two_rounds() {
        loom::model(|| {
            let p = Arc::new(Parker::new());
            let p2 = p.clone();
            let t = loom::thread::spawn(move || {
                p2.unpark();
                p2.unpark();
            });
            p.park(None);
            t.join().unwrap();
        });
    }
}
