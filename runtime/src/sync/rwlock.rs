//! `RwLock`: many readers or one writer, parking green threads.
//!
//! # States (under one internal lock)
//!
//! `readers` (count of read guards), `writer` (a write guard exists) and a
//! FIFO queue of waiters, each a reader or a writer.
//!
//! # Transitions
//!
//! - read: proceeds if there is no writer and nobody queues (a queued
//!   writer blocks new readers, so writers do not starve); else queues.
//! - write: proceeds if there are no readers, no writer and nobody queues;
//!   else queues.
//! - unlock: when the lock becomes free (last reader, or the writer), the
//!   front of the queue is granted: one writer, or every reader up to the
//!   next queued writer. Granted waiters wake up holding the lock.
//!
//! # Invariant
//!
//! `writer` implies `readers == 0`; a waiter is queued only while it could
//! not proceed, and every transition that frees the lock grants the front,
//! so no waiter is forgotten. Poisoning as in std: a writer that panics
//! poisons the lock.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::{LockResult, TryLockError, TryLockResult};
use std::task::{Context, Poll};

use super::poison::Poison;
use super::wait_queue::{self, Parkable, WaitFuture, WaitQueue, Waiter, GRANTED};

const READ: usize = 0;
const WRITE: usize = 1;

/// A reader-writer lock for green threads, OS threads and async tasks.
///
/// ```
/// use std::sync::Arc;
/// use fibra::sync::RwLock;
/// fibra::run(|| {
///     let lock = Arc::new(RwLock::new(0));
///     let w = {
///         let lock = lock.clone();
///         fibra::spawn(move || *lock.write().unwrap() += 1)
///     };
///     w.join().unwrap();
///     let a = lock.read().unwrap();
///     let b = lock.read().unwrap(); // readers share
///     assert_eq!(*a + *b, 2);
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    state: crate::loom::Mutex<State>,
    /// Marked when a holder panicked (std's poisoning).
    poison: Poison,
    data: UnsafeCell<T>,
}

struct State {
    readers: usize,
    writer: bool,
    queue: WaitQueue,
}

// SAFETY: the lock protocol gives shared access to readers and exclusive
// access to one writer, like std's RwLock.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above; readers on several threads share `&T`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]'s value.
///
/// ```
/// let l = fibra::sync::RwLock::new(3);
/// assert_eq!(*l.read().unwrap(), 3);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

/// Exclusive access to an [`RwLock`]'s value.
///
/// ```
/// let l = fibra::sync::RwLock::new(3);
/// *l.write().unwrap() = 4;
/// assert_eq!(*l.read().unwrap(), 4);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    panicking: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing a guard shares `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// A new unlocked lock.
    ///
    /// ```
    /// let _l = fibra::sync::RwLock::new(vec![1, 2]);
    /// ```
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            state: crate::loom::Mutex::new(State {
                readers: 0,
                writer: false,
                queue: WaitQueue::default(),
            }),
            poison: Poison::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning the value (`Err` if poisoned).
    ///
    /// ```
    /// assert_eq!(fibra::sync::RwLock::new(1).into_inner().unwrap(), 1);
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        self.poison.wrap(self.data.into_inner())
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, waiting while a writer holds or waits.
    ///
    /// ```
    /// let l = fibra::sync::RwLock::new(1);
    /// let (a, b) = (l.read().unwrap(), l.read().unwrap());
    /// assert_eq!(*a, *b);
    /// ```
    #[track_caller]
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        if !self.try_take(READ) {
            wait_queue::block(crate::park::record::SyncKind::RwLock, self, READ, None);
        }
        self.read_guard()
    }

    /// Locks for writing, waiting while anyone holds it.
    ///
    /// ```
    /// let l = fibra::sync::RwLock::new(1);
    /// *l.write().unwrap() += 1;
    /// assert_eq!(*l.read().unwrap(), 2);
    /// ```
    #[track_caller]
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        if !self.try_take(WRITE) {
            wait_queue::block(crate::park::record::SyncKind::RwLock, self, WRITE, None);
        }
        self.write_guard()
    }

    /// Locks for reading from async code.
    ///
    /// ```
    /// let l = fibra::sync::RwLock::new(1);
    /// assert_eq!(*fibra::block_on(l.read_async()).unwrap(), 1);
    /// ```
    pub async fn read_async(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        if !self.try_take(READ) {
            WaitFuture::new(self, READ).await;
        }
        self.read_guard()
    }

    /// Locks for writing from async code.
    ///
    /// ```
    /// let l = fibra::sync::RwLock::new(1);
    /// *fibra::block_on(l.write_async()).unwrap() = 2;
    /// assert_eq!(*l.read().unwrap(), 2);
    /// ```
    pub async fn write_async(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        if !self.try_take(WRITE) {
            WaitFuture::new(self, WRITE).await;
        }
        self.write_guard()
    }

    /// Locks for reading without waiting.
    ///
    /// ```
    /// let l = fibra::sync::RwLock::new(1);
    /// let w = l.write().unwrap();
    /// assert!(l.try_read().is_err());
    /// drop(w);
    /// assert!(l.try_read().is_ok());
    /// ```
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if self.try_take(READ) {
            self.read_guard().map_err(TryLockError::from)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Locks for writing without waiting.
    ///
    /// ```
    /// let l = fibra::sync::RwLock::new(1);
    /// let r = l.read().unwrap();
    /// assert!(l.try_write().is_err());
    /// drop(r);
    /// assert!(l.try_write().is_ok());
    /// ```
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if self.try_take(WRITE) {
            self.write_guard().map_err(TryLockError::from)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Whether a writer panicked.
    ///
    /// ```
    /// assert!(!fibra::sync::RwLock::new(0).is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison flag.
    ///
    /// ```
    /// let l = fibra::sync::RwLock::new(0);
    /// l.clear_poison();
    /// ```
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// The value through a unique borrow.
    ///
    /// ```
    /// let mut l = fibra::sync::RwLock::new(0);
    /// *l.get_mut().unwrap() = 5;
    /// assert_eq!(*l.read().unwrap(), 5);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.poison.wrap(self.data.get_mut())
    }

    fn read_guard(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let g = RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        };
        self.poison.wrap(g)
    }

    fn write_guard(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let g = RwLockWriteGuard {
            lock: self,
            panicking: std::thread::panicking(),
            _not_send: PhantomData,
        };
        self.poison.wrap(g)
    }

    fn try_take(&self, kind: usize) -> bool {
        crate::loom::lock(&self.state).try_take(kind)
    }

    fn unlock(&self, kind: usize) {
        let mut st = crate::loom::lock(&self.state);
        if kind == WRITE {
            st.writer = false;
        } else {
            st.readers -= 1;
        }
        let wakers = st.grant();
        drop(st);
        wait_queue::wake_all(wakers);
    }
}

impl State {
    fn try_take(&mut self, kind: usize) -> bool {
        if !self.queue.is_empty() || self.writer {
            return false;
        }
        if kind == WRITE {
            if self.readers > 0 {
                return false;
            }
            self.writer = true;
        } else {
            self.readers += 1;
        }
        true
    }

    /// Grants the lock to the front of the queue if it is free.
    fn grant(&mut self) -> Vec<Option<std::task::Waker>> {
        let mut wakers = Vec::new();
        while let Some(front) = self.queue.front() {
            if self.writer {
                break;
            }
            if front.arg == WRITE {
                if self.readers > 0 {
                    break;
                }
                self.writer = true;
            } else {
                self.readers += 1;
            }
            let w = self.queue.pop_front().expect("front exists");
            // SAFETY: popped under the lock.
            wakers.push(unsafe { Waiter::release(w, GRANTED) });
        }
        wakers
    }
}

impl<T: ?Sized> Parkable for RwLock<T> {
    type Output = ();

    unsafe fn poll_wait(&self, w: &Waiter, queued: &mut bool, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            wait_queue::poll_granted(
                &self.state,
                w,
                queued,
                cx,
                |st| st.try_take(w.arg),
                |st| &mut st.queue,
            )
        }
    }

    fn abandon(&self, w: &Waiter) {
        let mut st = crate::loom::lock(&self.state);
        if !st.queue.remove(w) {
            // Granted meanwhile: release what we were given.
            if w.arg == WRITE {
                st.writer = false;
            } else {
                st.readers -= 1;
            }
        }
        // A writer leaving the front may let readers behind it through.
        let wakers = st.grant();
        drop(st);
        wait_queue::wake_all(wakers);
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard proves no writer exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock(READ);
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.poison.mark_if_panicked(self.panicking);
        self.lock.unlock(WRITE);
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(e)) => d.field("data", &&*e.into_inner()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}
