//! `Condvar`: wait for a condition under a [`Mutex`], parking green threads.
//!
//! A waiter queues itself (under the condvar's queue lock) *before* it
//! releases the mutex, so a notification sent after the release always
//! finds it. `notify_one` pops the first waiter, `notify_all` every waiter;
//! a popped waiter wakes and locks the mutex again. A waiter that times out
//! or unwinds removes itself; if a notification reached it first, it counts
//! as notified (the wait reports no timeout).

use std::sync::LockResult;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::mutex::MutexGuard;
use super::wait_queue::{self, Parkable, WaitQueue, Waiter, WAITING, WOKEN};

/// A condition variable for [`Mutex`](super::Mutex).
///
/// ```
/// use std::sync::Arc;
/// use fibra::sync::{Condvar, Mutex};
/// fibra::run(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let p2 = pair.clone();
///     fibra::spawn(move || {
///         *p2.0.lock().unwrap() = true;
///         p2.1.notify_one();
///     });
///     let (lock, cv) = &*pair;
///     let ready = cv.wait_while(lock.lock().unwrap(), |r| !*r).unwrap();
///     assert!(*ready);
/// });
/// ```
pub struct Condvar {
    queue: crate::loom::Mutex<WaitQueue>,
}

/// Whether a timed wait timed out.
///
/// ```
/// use std::time::Duration;
/// use fibra::sync::{Condvar, Mutex};
/// let (m, cv) = (Mutex::new(()), Condvar::new());
/// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(1)).unwrap();
/// assert!(r.timed_out());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended by timeout rather than a notification.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use fibra::sync::{Condvar, Mutex};
    /// # let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::ZERO).unwrap();
    /// assert!(r.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// The condvar wait of one thread: queues, then releases the mutex.
struct Wait<'a, 'g, T: ?Sized> {
    cv: &'a Condvar,
    /// Present until the waiter queued and released the mutex.
    guard: std::cell::Cell<Option<MutexGuard<'g, T>>>,
}

impl<T: ?Sized> Parkable for Wait<'_, '_, T> {
    type Output = ();

    unsafe fn poll_wait(&self, w: &Waiter, queued: &mut bool, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = crate::loom::lock(&self.cv.queue);
        if !*queued {
            // SAFETY: we hold the queue lock; the caller keeps `w` in place.
            unsafe {
                w.set_waker(cx.waker());
                q.push_back(w);
            }
            *queued = true;
            drop(q);
            // Release the mutex only now that a notification can find us.
            let guard = self.guard.take().expect("the guard is held until queued");
            let mutex = guard.mutex();
            std::mem::forget(guard);
            mutex.raw_unlock();
            return Poll::Pending;
        }
        if w.state() != WAITING {
            *queued = false;
            return Poll::Ready(());
        }
        // SAFETY: we hold the queue lock and are still queued.
        unsafe { w.set_waker(cx.waker()) };
        Poll::Pending
    }

    fn abandon(&self, w: &Waiter) {
        crate::loom::lock(&self.cv.queue).remove(w);
    }
}

impl Condvar {
    /// A new condition variable.
    ///
    /// ```
    /// let _cv = fibra::sync::Condvar::new();
    /// ```
    pub fn new() -> Condvar {
        Condvar {
            queue: crate::loom::Mutex::new(WaitQueue::default()),
        }
    }

    /// Releases the guard's mutex, waits for a notification (spurious
    /// wake-ups are possible, as with std), and locks it again.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fibra::sync::{Condvar, Mutex};
    /// fibra::run(|| {
    ///     let pair = Arc::new((Mutex::new(0), Condvar::new()));
    ///     let p2 = pair.clone();
    ///     fibra::spawn(move || {
    ///         *p2.0.lock().unwrap() = 1;
    ///         p2.1.notify_all();
    ///     });
    ///     let mut g = pair.0.lock().unwrap();
    ///     while *g == 0 {
    ///         g = pair.1.wait(g).unwrap();
    ///     }
    /// });
    /// ```
    #[track_caller]
    pub fn wait<'g, T: ?Sized>(&self, guard: MutexGuard<'g, T>) -> LockResult<MutexGuard<'g, T>> {
        self.wait_deadline(guard, None)
            .map(|(g, _)| g)
            .map_err(|e| {
                let (g, _) = e.into_inner();
                std::sync::PoisonError::new(g)
            })
    }

    /// Waits until `condition` is false, re-checking after each wake-up.
    ///
    /// ```
    /// use fibra::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(true), Condvar::new());
    /// let g = cv.wait_while(m.lock().unwrap(), |pending| !*pending).unwrap();
    /// assert!(*g);
    /// ```
    #[track_caller]
    pub fn wait_while<'g, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'g, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<MutexGuard<'g, T>> {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`wait`](Self::wait), giving up after `dur`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fibra::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(2)).unwrap();
    /// assert!(r.timed_out());
    /// ```
    #[track_caller]
    pub fn wait_timeout<'g, T: ?Sized>(
        &self,
        guard: MutexGuard<'g, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'g, T>, WaitTimeoutResult)> {
        self.wait_deadline(guard, Instant::now().checked_add(dur))
    }

    #[track_caller]
    fn wait_deadline<'g, T: ?Sized>(
        &self,
        guard: MutexGuard<'g, T>,
        deadline: Option<Instant>,
    ) -> LockResult<(MutexGuard<'g, T>, WaitTimeoutResult)> {
        let mutex = guard.mutex();
        let wait = Wait {
            cv: self,
            guard: std::cell::Cell::new(Some(guard)),
        };
        let notified =
            wait_queue::block(crate::park::record::SyncKind::Condvar, &wait, 0, deadline).is_some();
        // If the wait never queued (impossible: the first poll queues), the
        // guard would still be here; otherwise relock.
        let relocked = match wait.guard.take() {
            Some(g) => Ok(g),
            None => mutex.relock(),
        };
        let r = WaitTimeoutResult(!notified);
        match relocked {
            Ok(g) => Ok((g, r)),
            Err(e) => Err(std::sync::PoisonError::new((e.into_inner(), r))),
        }
    }

    /// Wakes one waiter.
    ///
    /// ```
    /// fibra::sync::Condvar::new().notify_one(); // nobody waits: no effect
    /// ```
    pub fn notify_one(&self) {
        let mut q = crate::loom::lock(&self.queue);
        let waker = q.pop_front().and_then(|w| {
            // SAFETY: popped under the queue lock.
            unsafe { Waiter::release(w, WOKEN) }
        });
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Wakes every waiter.
    ///
    /// ```
    /// fibra::sync::Condvar::new().notify_all();
    /// ```
    pub fn notify_all(&self) {
        let mut q = crate::loom::lock(&self.queue);
        let mut wakers = Vec::with_capacity(q.len());
        while let Some(w) = q.pop_front() {
            // SAFETY: popped under the queue lock.
            wakers.push(unsafe { Waiter::release(w, WOKEN) });
        }
        drop(q);
        wait_queue::wake_all(wakers);
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
