//! `Semaphore`: counted permits, FIFO among waiters.
//!
//! State (under one internal lock): the free permits and a queue of waiters,
//! each asking for `n` permits. An acquire takes permits at once only if
//! nobody queues ahead of it (so a large request is not starved by small
//! ones). A release adds permits, then hands permits to waiters from the
//! front while the front's request fits (`GRANTED`: the permits are theirs
//! when they wake). A waiter that gives up removes itself, or returns the
//! permits it was just granted.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::wait_queue::{self, Parkable, WaitFuture, WaitQueue, Waiter, GRANTED};

/// A counting semaphore that parks green threads.
///
/// ```
/// use std::sync::Arc;
/// use fibra::sync::Semaphore;
/// fibra::run(|| {
///     let sem = Arc::new(Semaphore::new(2)); // at most two at a time
///     let hs: Vec<_> = (0..6)
///         .map(|_| {
///             let sem = sem.clone();
///             fibra::spawn(move || {
///                 let _permit = sem.acquire();
///                 fibra::yield_now();
///             })
///         })
///         .collect();
///     hs.into_iter().for_each(|h| h.join().unwrap());
///     assert_eq!(sem.available_permits(), 2);
/// });
/// ```
pub struct Semaphore {
    state: crate::loom::Mutex<State>,
}

struct State {
    permits: usize,
    queue: WaitQueue,
}

/// Permits held; given back when dropped.
///
/// ```
/// let sem = fibra::sync::Semaphore::new(1);
/// let p = sem.acquire();
/// assert_eq!(sem.available_permits(), 0);
/// drop(p);
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "the permit is released when dropped"]
#[derive(Debug)]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: usize,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    ///
    /// ```
    /// assert_eq!(fibra::sync::Semaphore::new(3).available_permits(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: crate::loom::Mutex::new(State {
                permits,
                queue: WaitQueue::default(),
            }),
        }
    }

    /// Takes one permit, waiting while none is free.
    ///
    /// ```
    /// let sem = fibra::sync::Semaphore::new(1);
    /// let _p = sem.acquire();
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_many(1)
    }

    /// Takes `n` permits at once, waiting until they are free.
    ///
    /// ```
    /// let sem = fibra::sync::Semaphore::new(3);
    /// let p = sem.acquire_many(3);
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(p);
    /// ```
    #[track_caller]
    pub fn acquire_many(&self, n: usize) -> SemaphorePermit<'_> {
        if !self.try_take(n) {
            wait_queue::block(crate::park::record::SyncKind::Semaphore, self, n, None);
        }
        SemaphorePermit { sem: self, n }
    }

    /// Like [`acquire`](Self::acquire), giving up after `dur`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = fibra::sync::Semaphore::new(0);
    /// assert!(sem.acquire_timeout(Duration::from_millis(1)).is_none());
    /// ```
    #[track_caller]
    pub fn acquire_timeout(&self, dur: Duration) -> Option<SemaphorePermit<'_>> {
        if self.try_take(1) {
            return Some(SemaphorePermit { sem: self, n: 1 });
        }
        wait_queue::block(
            crate::park::record::SyncKind::Semaphore,
            self,
            1,
            Instant::now().checked_add(dur),
        )?;
        Some(SemaphorePermit { sem: self, n: 1 })
    }

    /// Takes one permit from async code.
    ///
    /// ```
    /// let sem = fibra::sync::Semaphore::new(1);
    /// let p = fibra::block_on(sem.acquire_async());
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(p);
    /// ```
    pub async fn acquire_async(&self) -> SemaphorePermit<'_> {
        if !self.try_take(1) {
            WaitFuture::new(self, 1).await;
        }
        SemaphorePermit { sem: self, n: 1 }
    }

    /// Takes one permit if one is free and nobody waits.
    ///
    /// ```
    /// let sem = fibra::sync::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// drop(p);
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody waits.
    ///
    /// ```
    /// let sem = fibra::sync::Semaphore::new(2);
    /// assert!(sem.try_acquire_many(3).is_none());
    /// assert!(sem.try_acquire_many(2).is_some());
    /// ```
    pub fn try_acquire_many(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        self.try_take(n).then(|| SemaphorePermit { sem: self, n })
    }

    /// Adds `n` permits (wakes waiters they satisfy).
    ///
    /// ```
    /// let sem = fibra::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        let mut st = crate::loom::lock(&self.state);
        st.permits = st
            .permits
            .checked_add(n)
            .expect("fibra: semaphore permit count overflow");
        let wakers = st.grant();
        drop(st);
        wait_queue::wake_all(wakers);
    }

    /// Free permits now.
    ///
    /// ```
    /// assert_eq!(fibra::sync::Semaphore::new(4).available_permits(), 4);
    /// ```
    pub fn available_permits(&self) -> usize {
        crate::loom::lock(&self.state).permits
    }

    fn try_take(&self, n: usize) -> bool {
        let mut st = crate::loom::lock(&self.state);
        if st.queue.is_empty() && st.permits >= n {
            st.permits -= n;
            true
        } else {
            false
        }
    }
}

impl State {
    /// Hands permits to the waiters at the front while their requests fit.
    fn grant(&mut self) -> Vec<Option<std::task::Waker>> {
        let mut wakers = Vec::new();
        while let Some(front) = self.queue.front() {
            if front.arg > self.permits {
                break;
            }
            self.permits -= front.arg;
            let w = self.queue.pop_front().expect("front exists");
            // SAFETY: popped under the lock.
            wakers.push(unsafe { Waiter::release(w, GRANTED) });
        }
        wakers
    }
}

impl Parkable for Semaphore {
    type Output = ();

    unsafe fn poll_wait(&self, w: &Waiter, queued: &mut bool, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            wait_queue::poll_granted(
                &self.state,
                w,
                queued,
                cx,
                |st| {
                    if st.queue.is_empty() && st.permits >= w.arg {
                        st.permits -= w.arg;
                        true
                    } else {
                        false
                    }
                },
                |st| &mut st.queue,
            )
        }
    }

    fn abandon(&self, w: &Waiter) {
        let mut st = crate::loom::lock(&self.state);
        if !st.queue.remove(w) {
            // Granted meanwhile: give the permits back.
            st.permits += w.arg;
        }
        // Removing a large request at the front may let others through.
        let wakers = st.grant();
        drop(st);
        wait_queue::wake_all(wakers);
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permits taken for good (they are not given back).
    ///
    /// ```
    /// let sem = fibra::sync::Semaphore::new(1);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn forget(mut self) {
        self.n = 0;
    }

    /// How many permits this holds.
    ///
    /// ```
    /// let sem = fibra::sync::Semaphore::new(2);
    /// assert_eq!(sem.acquire_many(2).num_permits(), 2);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.n
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.add_permits(self.n);
        }
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .finish_non_exhaustive()
    }
}
