//! Parking an OS thread (a worker with nothing to do, or a plain thread
//! blocked in a fibra call) until someone unparks it.
//!
//! # Protocol
//!
//! One state word: `EMPTY`, `PARKED` or `NOTIFIED`, with the semantics of
//! `std::thread::park`: an `unpark` before `park` is remembered as a token,
//! so `park` returns immediately.
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

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use crate::loom::{AtomicUsize, Condvar, Mutex};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

/// A one-token park/unpark pair for one OS thread.
pub(crate) struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
        }
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
        if self.state.swap(NOTIFIED, SeqCst) == PARKED {
            // Taking the lock orders this notify after the sleeper's wait.
            drop(self.lock.lock().unwrap());
            self.cvar.notify_one();
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
