//! `Mutex`: a lock that parks green threads, after Go's `sync.Mutex`.
//!
//! # States
//!
//! One word: `LOCKED` (someone owns the lock) and `PARKED` (the wait queue
//! may be non-empty, so unlocking must look at it). The queue lives behind
//! a small internal lock (Go's semaphore); see `sync::wait_queue`.
//!
//! # Transitions
//!
//! - lock, fast: `0 -> LOCKED` by compare-and-swap.
//! - lock, slow: spin briefly while the owner is likely running, trying to
//!   set `LOCKED` whenever it is clear. Then, under the queue lock, either
//!   take the lock (it was released meanwhile) or set `PARKED` (a CAS from a
//!   `LOCKED` state) and queue. Compare-and-swapping from the `LOCKED` value
//!   is what orders this against the fast unlock below.
//! - unlock, fast: `LOCKED -> 0` by CAS; it fails if `PARKED` is set.
//! - unlock, slow (under the queue lock): pop the first waiter. *Normal
//!   mode*: clear `LOCKED` and wake it to compete with running threads
//!   (barging keeps throughput high; a waiter that loses queues again at the
//!   front). *Starvation mode*: if that waiter has waited for 1 ms or more,
//!   the lock is handed to it directly: `LOCKED` stays set, so nobody can
//!   barge in, and it wakes up owning the lock. `PARKED` is cleared when the
//!   queue empties.
//!
//! # Invariant
//!
//! While a waiter is queued, `PARKED` is set, so every unlock takes the slow
//! path and looks at the queue: no wake-up is lost, and a waiter waits at
//! most about 1 ms plus one critical section once it reaches the front of
//! the queue.
//!
//! # Poisoning
//!
//! As in std: a guard dropped while its thread panics poisons the mutex;
//! `lock` then returns `Err(PoisonError)` carrying the guard.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::{LockResult, TryLockError, TryLockResult};
use std::task::{Context, Poll};
use std::time::Duration;

#[cfg(not(loom))]
use crossbeam_utils::Backoff;

use super::poison::Poison;
use super::wait_queue::{self, Parkable, WaitFuture, WaitQueue, Waiter, GRANTED, WAITING, WOKEN};
use crate::loom::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

const LOCKED: usize = 1;
const PARKED: usize = 2;

/// A waiter that has waited this long is handed the lock directly.
#[cfg_attr(loom, allow(dead_code))]
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// Rounds of exponential spinning before parking (about 127 pauses).
#[cfg(not(loom))]
const SPINS: usize = 7;

/// A mutual exclusion lock for green threads (parks them instead of
/// blocking the worker), OS threads and async tasks ([`lock_async`]).
///
/// [`lock_async`]: Mutex::lock_async
///
/// ```
/// use std::sync::Arc;
/// use fibra::sync::Mutex;
/// let n = fibra::run(|| {
///     let m = Arc::new(Mutex::new(0));
///     let hs: Vec<_> = (0..8)
///         .map(|_| {
///             let m = m.clone();
///             fibra::spawn(move || {
///                 for _ in 0..100 {
///                     *m.lock().unwrap() += 1;
///                 }
///             })
///         })
///         .collect();
///     hs.into_iter().for_each(|h| h.join().unwrap());
///     let n = *m.lock().unwrap();
///     n
/// });
/// assert_eq!(n, 800);
/// ```
pub struct Mutex<T: ?Sized> {
    /// `LOCKED | PARKED`.
    state: AtomicUsize,
    /// Parked waiters.
    queue: crate::loom::Mutex<WaitQueue>,
    /// Marked when a holder panicked (std's poisoning).
    poison: Poison,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives exclusive access to `data`, like std's Mutex.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Proof of holding a [`Mutex`]; unlocks when dropped.
///
/// ```
/// let m = fibra::sync::Mutex::new(vec![1]);
/// m.lock().unwrap().push(2);
/// assert_eq!(*m.lock().unwrap(), [1, 2]);
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
    /// Whether the thread was already panicking when it locked.
    panicking: bool,
    /// Not `Send`, as std's guard.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    ///
    /// ```
    /// let m = fibra::sync::Mutex::new(5);
    /// assert_eq!(*m.lock().unwrap(), 5);
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicUsize::new(0),
            queue: crate::loom::Mutex::new(WaitQueue::default()),
            poison: Poison::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex, returning the value (`Err` if poisoned).
    ///
    /// ```
    /// let m = fibra::sync::Mutex::new(1);
    /// assert_eq!(m.into_inner().unwrap(), 1);
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        self.poison.wrap(self.data.into_inner())
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the green thread (or blocking the OS thread) while
    /// another holder has it.
    ///
    /// ```
    /// let m = fibra::sync::Mutex::new(1);
    /// *m.lock().unwrap() += 1;
    /// assert_eq!(*m.lock().unwrap(), 2);
    /// ```
    #[track_caller]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        if self
            .state
            .compare_exchange(0, LOCKED, Acquire, Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        self.guard()
    }

    /// Locks without waiting.
    ///
    /// ```
    /// let m = fibra::sync::Mutex::new(());
    /// let g = m.lock().unwrap();
    /// assert!(m.try_lock().is_err());
    /// drop(g);
    /// assert!(m.try_lock().is_ok());
    /// ```
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        if self.try_acquire() {
            self.guard().map_err(TryLockError::from)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Locks from async code.
    ///
    /// ```
    /// let m = fibra::sync::Mutex::new(1);
    /// let v = fibra::block_on(async { *m.lock_async().await.unwrap() });
    /// assert_eq!(v, 1);
    /// ```
    pub async fn lock_async(&self) -> LockResult<MutexGuard<'_, T>> {
        if !self.try_acquire() {
            WaitFuture::new(self, 0).await;
        }
        self.guard()
    }

    /// Whether a holder panicked.
    ///
    /// ```
    /// let m = fibra::sync::Mutex::new(0);
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison flag.
    ///
    /// ```
    /// let m = fibra::sync::Mutex::new(0);
    /// m.clear_poison();
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// The value, through a unique borrow (no locking needed).
    ///
    /// ```
    /// let mut m = fibra::sync::Mutex::new(1);
    /// *m.get_mut().unwrap() = 2;
    /// assert_eq!(*m.lock().unwrap(), 2);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.poison.wrap(self.data.get_mut())
    }

    fn guard(&self) -> LockResult<MutexGuard<'_, T>> {
        let g = MutexGuard {
            lock: self,
            panicking: std::thread::panicking(),
            _not_send: PhantomData,
        };
        self.poison.wrap(g)
    }

    /// Sets `LOCKED` if it is clear (barging past parked waiters).
    #[inline]
    fn try_acquire(&self) -> bool {
        let mut s = self.state.load(Relaxed);
        while s & LOCKED == 0 {
            match self
                .state
                .compare_exchange_weak(s, s | LOCKED, Acquire, Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
        false
    }

    #[cold]
    #[track_caller]
    fn lock_slow(&self) {
        // Spin a little (as Go does) when the holder may be running on
        // another worker and about to release; with one worker it cannot be.
        #[cfg(not(loom))]
        if crate::context::with_worker(|w| !matches!(w, Some(w) if w.shared.remotes.len() <= 1)) {
            let backoff = Backoff::new();
            for _ in 0..SPINS {
                backoff.spin();
                if self.try_acquire() {
                    return;
                }
            }
        }
        wait_queue::block(crate::park::record::SyncKind::Mutex, self, 0, None);
    }

    /// Unlocks (the guard's drop).
    #[inline]
    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Release, Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut q = crate::loom::lock(&self.queue);
        // `LOCKED` is set and we hold the queue lock: nobody else changes
        // the state word now (parkers need the queue lock, barging needs
        // `LOCKED` clear).
        let waker = match q.pop_front() {
            None => {
                self.state.store(0, Release);
                None
            }
            Some(w) => {
                let parked = if q.is_empty() { 0 } else { PARKED };
                // SAFETY: `w` was just popped under the lock, so it is valid.
                let starving = is_starving(unsafe { &*w });
                if starving {
                    self.state.store(LOCKED | parked, Release);
                    // SAFETY: popped under the lock.
                    unsafe { Waiter::release(w, GRANTED) }
                } else {
                    self.state.store(parked, Release);
                    // SAFETY: popped under the lock.
                    unsafe { Waiter::release(w, WOKEN) }
                }
            }
        };
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Whether a waiter has waited long enough to be handed the lock.
#[cfg(not(loom))]
fn is_starving(w: &Waiter) -> bool {
    w.since.elapsed() >= STARVATION_THRESHOLD
}

// loom needs deterministic models: the mode is chosen by the model.
#[cfg(loom)]
thread_local! {
    pub(crate) static LOOM_HANDOFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(loom)]
fn is_starving(_: &Waiter) -> bool {
    LOOM_HANDOFF.with(|h| h.get())
}

impl<T: ?Sized> Parkable for Mutex<T> {
    type Output = ();

    unsafe fn poll_wait(&self, w: &Waiter, queued: &mut bool, cx: &mut Context<'_>) -> Poll<()> {
        let mut front = false;
        if *queued {
            match w.state() {
                GRANTED => {
                    *queued = false;
                    return Poll::Ready(());
                }
                WOKEN => {
                    *queued = false;
                    // SAFETY: a woken waiter was popped.
                    unsafe { w.reset() };
                    // Lost the race before? Queue at the front (Go's LIFO
                    // for waiters that already waited).
                    front = true;
                }
                _ => {
                    let _q = crate::loom::lock(&self.queue);
                    if w.state() == WAITING {
                        // SAFETY: we hold the queue lock.
                        unsafe { w.set_waker(cx.waker()) };
                    }
                    return Poll::Pending;
                }
            }
        }
        let mut q = crate::loom::lock(&self.queue);
        let mut s = self.state.load(Relaxed);
        loop {
            if s & LOCKED == 0 {
                match self
                    .state
                    .compare_exchange_weak(s, s | LOCKED, Acquire, Relaxed)
                {
                    Ok(_) => return Poll::Ready(()),
                    Err(actual) => s = actual,
                }
                continue;
            }
            match self
                .state
                .compare_exchange_weak(s, s | PARKED, Relaxed, Relaxed)
            {
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        // SAFETY: we hold the queue lock; `w` stays in place while queued
        // (the caller's contract).
        unsafe {
            w.set_waker(cx.waker());
            if front {
                q.push_front(w);
            } else {
                q.push_back(w);
            }
        }
        *queued = true;
        Poll::Pending
    }

    fn abandon(&self, w: &Waiter) {
        let mut q = crate::loom::lock(&self.queue);
        if q.remove(w) {
            if q.is_empty() {
                self.state.fetch_and(!PARKED, Relaxed);
            }
            return;
        }
        drop(q);
        match w.state() {
            // We own the lock: pass it on.
            GRANTED => self.unlock(),
            // We were woken to compete: wake the next waiter instead, if
            // the lock is still free.
            WOKEN => self.wake_next_if_unlocked(),
            s => unreachable!("abandoned mutex waiter in state {s}"),
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    fn wake_next_if_unlocked(&self) {
        let mut q = crate::loom::lock(&self.queue);
        if self.state.load(Relaxed) & LOCKED != 0 {
            return; // its unlock will look at the queue
        }
        let Some(w) = q.pop_front() else {
            return;
        };
        if q.is_empty() {
            self.state.fetch_and(!PARKED, Relaxed);
        }
        // SAFETY: popped under the lock.
        let waker = unsafe { Waiter::release(w, WOKEN) };
        drop(q);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Unlocks a mutex whose guard was forgotten by `Condvar::wait`.
    pub(crate) fn raw_unlock(&self) {
        self.unlock();
    }

    /// Relocks after `Condvar::wait`, building a new guard.
    pub(crate) fn relock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.lock()
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for `Condvar`).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.lock
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock, uniquely.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.poison.mark_if_panicked(self.panicking);
        self.lock.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(e)) => d.field("data", &&*e.into_inner()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(v: T) -> Self {
        Mutex::new(v)
    }
}
