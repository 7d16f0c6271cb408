//! The wait queue of the `sync` primitives: parked waiters, and the one
//! waiting helper (blocking and async) they all wait through.
//!
//! # Protocol
//!
//! A primitive keeps its state and a FIFO [`WaitQueue`] of [`Waiter`]s behind
//! one internal lock. A waiter lives on the parked thread's stack (or in a
//! pinned future):
//!
//! 1. Under the lock, the waiter checks whether it can proceed; if not, it
//!    stores its waker and pushes itself into the queue.
//! 2. A releaser, under the same lock, pops waiters, decides what each gets
//!    (`WOKEN`: retry; `GRANTED`: the resource was handed over), takes the
//!    waker and publishes the grant (release store), and wakes after
//!    unlocking.
//! 3. The waiter returns once it sees a grant (acquire load). A waiter that
//!    gives up (unwinding, future dropped, timeout) takes the lock: if it is
//!    still queued it removes itself; otherwise it was already granted and
//!    passes on what it got (the primitive decides how).
//!
//! Invariant: a queued waiter is only touched under the lock, and a waiter
//! leaves (its memory may go) only when it is no longer in the queue, which
//! it checks under the lock. Hence the raw pointers in the queue are always
//! valid. No wake-up is lost because checking and queueing (1) and
//! releasing and popping (2) are serialized by the lock.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::loom::{AtomicUsize, UnsafeCell};
use std::sync::atomic::Ordering::{Acquire, Release};

/// Still queued.
pub(crate) const WAITING: usize = 0;
/// Popped and woken to try again (no ownership passed).
pub(crate) const WOKEN: usize = 1;
/// Popped and handed the resource it waited for.
pub(crate) const GRANTED: usize = 2;

/// One parked thread or future.
pub(crate) struct Waiter {
    state: AtomicUsize,
    /// Accessed under the primitive's lock only.
    waker: UnsafeCell<Option<Waker>>,
    /// What the waiter asks for (permits, reader or writer, ...).
    pub(crate) arg: usize,
    /// When the waiter first queued (Mutex starvation mode).
    pub(crate) since: Instant,
}

// SAFETY: `waker` is only accessed under the owning primitive's lock (see
// the module docs); `state` is atomic.
unsafe impl Send for Waiter {}
// SAFETY: as above.
unsafe impl Sync for Waiter {}

impl Waiter {
    pub(crate) fn new(arg: usize) -> Waiter {
        Waiter {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
            arg,
            since: Instant::now(),
        }
    }

    /// The state published by a releaser (acquire).
    #[inline]
    pub(crate) fn state(&self) -> usize {
        self.state.load(Acquire)
    }

    /// Back to `WAITING` before queueing again.
    ///
    /// # Safety
    /// The waiter is not in any queue.
    pub(crate) unsafe fn reset(&self) {
        self.state.store(WAITING, Release);
    }

    /// # Safety
    /// The caller holds the primitive's lock.
    pub(crate) unsafe fn set_waker(&self, waker: &Waker) {
        // SAFETY: exclusive under the lock.
        self.waker.with_mut(|w| unsafe {
            match &*w {
                Some(old) if old.will_wake(waker) => {}
                _ => *w = Some(waker.clone()),
            }
        });
    }

    /// Publishes `state` (`WOKEN` or `GRANTED`) for a popped waiter and
    /// returns its waker, to call after unlocking.
    ///
    /// # Safety
    /// The caller holds the primitive's lock and just popped `w`.
    pub(crate) unsafe fn release(w: *const Waiter, state: usize) -> Option<Waker> {
        // SAFETY: a popped waiter stays valid until it sees the new state,
        // and we hold the lock its waker is guarded by.
        let w = unsafe { &*w };
        // SAFETY: `waker` is only accessed under the primitive's lock, which
        // the caller holds.
        let waker = w.waker.with_mut(|p| unsafe { (*p).take() });
        w.state.store(state, Release);
        waker
    }
}

/// FIFO queue of waiters.
#[derive(Default)]
pub(crate) struct WaitQueue {
    q: VecDeque<*const Waiter>,
}

// SAFETY: the queue holds pointers to `Sync` waiters, used under the
// primitive's lock only.
unsafe impl Send for WaitQueue {}

impl WaitQueue {
    /// # Safety
    /// `w` stays valid until it was popped or removed.
    pub(crate) unsafe fn push_back(&mut self, w: &Waiter) {
        self.q.push_back(w);
    }

    /// # Safety
    /// As for [`push_back`](Self::push_back).
    pub(crate) unsafe fn push_front(&mut self, w: &Waiter) {
        self.q.push_front(w);
    }

    pub(crate) fn pop_front(&mut self) -> Option<*const Waiter> {
        self.q.pop_front()
    }

    pub(crate) fn front(&self) -> Option<&Waiter> {
        // SAFETY: queued waiters are valid (module invariant).
        self.q.front().map(|w| unsafe { &**w })
    }

    /// Removes `w` if it is queued; false if a releaser popped it.
    pub(crate) fn remove(&mut self, w: &Waiter) -> bool {
        match self.q.iter().position(|p| std::ptr::eq(*p, w)) {
            Some(i) => {
                self.q.remove(i);
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }
}

/// Wakes the wakers collected under a lock, after it was released.
/// Each worker that gets green threads to run is unparked once, and a
/// panicking waker does not keep the others asleep (see
/// `sched::wake_all`).
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Option<Waker>>) {
    crate::sched::wake_all(wakers.into_iter().flatten());
}

/// A primitive whose waiters queue in a [`WaitQueue`] (the blocking and
/// async forms of its operations share this poll function).
pub(crate) trait Parkable {
    type Output;

    /// Tries to proceed; if it cannot, queues `w` (with `cx`'s waker) and
    /// sets `queued`. Called again after a wake-up while `queued`.
    ///
    /// # Safety
    /// `w` must stay in place while queued, and [`abandon`](Self::abandon)
    /// must be called if the caller stops waiting while `queued` is set.
    unsafe fn poll_wait(
        &self,
        w: &Waiter,
        queued: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<Self::Output>;

    /// Stops waiting: removes `w` from the queue, or passes on whatever a
    /// releaser already handed to it.
    fn abandon(&self, w: &Waiter);
}

/// [`Parkable::poll_wait`] for a primitive whose releasers hand the
/// resource over (`GRANTED`) and whose state, queue included, sits behind
/// one lock (RwLock, Semaphore, WaitGroup): ready once granted; otherwise,
/// on the first poll and under the lock, ready if `try_take` succeeds, else
/// queued at the back; while still `WAITING` the waker is refreshed.
///
/// # Safety
/// As [`Parkable::poll_wait`].
#[inline]
pub(crate) unsafe fn poll_granted<S>(
    state: &crate::loom::Mutex<S>,
    w: &Waiter,
    queued: &mut bool,
    cx: &mut Context<'_>,
    try_take: impl FnOnce(&mut S) -> bool,
    queue: impl FnOnce(&mut S) -> &mut WaitQueue,
) -> Poll<()> {
    if *queued && w.state() == GRANTED {
        *queued = false;
        return Poll::Ready(());
    }
    let mut st = crate::loom::lock(state);
    if !*queued {
        if try_take(&mut st) {
            return Poll::Ready(());
        }
        // SAFETY: under the lock; the caller keeps `w` in place.
        unsafe { queue(&mut st).push_back(w) };
        *queued = true;
    }
    if w.state() == WAITING {
        // SAFETY: under the lock.
        unsafe { w.set_waker(cx.waker()) };
    }
    Poll::Pending
}

/// Waits for `p` (parks a green thread, blocks an OS thread) until
/// `deadline`; `None` if it passed.
#[track_caller]
pub(crate) fn block<P: Parkable + ?Sized>(
    what: crate::park::record::SyncKind,
    p: &P,
    arg: usize,
    deadline: Option<Instant>,
) -> Option<P::Output> {
    let mut g = Abandon {
        p,
        w: Waiter::new(arg),
        queued: false,
    };
    let on = crate::debug::WaitOn::Sync { what };
    crate::park::wait_deadline_as(on, deadline, |cx| {
        // SAFETY: `g.w` stays in place until `g` drops, and dropping `g`
        // abandons a wait left queued (timeout or unwinding).
        unsafe { g.p.poll_wait(&g.w, &mut g.queued, cx) }
    })
}

/// Abandons a queued wait when dropped.
struct Abandon<'a, P: Parkable + ?Sized> {
    p: &'a P,
    w: Waiter,
    queued: bool,
}

impl<P: Parkable + ?Sized> Drop for Abandon<'_, P> {
    fn drop(&mut self) {
        if self.queued {
            self.queued = false;
            self.p.abandon(&self.w);
        }
    }
}

/// The async form of a wait: the waiter lives in the pinned future, and
/// dropping the future abandons a wait left queued.
pub(crate) struct WaitFuture<'a, P: Parkable + ?Sized> {
    wait: Abandon<'a, P>,
    _pinned: std::marker::PhantomPinned,
}

impl<'a, P: Parkable + ?Sized> WaitFuture<'a, P> {
    pub(crate) fn new(p: &'a P, arg: usize) -> Self {
        WaitFuture {
            wait: Abandon {
                p,
                w: Waiter::new(arg),
                queued: false,
            },
            _pinned: std::marker::PhantomPinned,
        }
    }
}

impl<P: Parkable + ?Sized> Future for WaitFuture<'_, P> {
    type Output = P::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<P::Output> {
        // SAFETY: the waiter is used in place, never moved out.
        let this = &mut unsafe { self.get_unchecked_mut() }.wait;
        // SAFETY: the future is pinned, and its drop (`Abandon`'s) abandons.
        unsafe { this.p.poll_wait(&this.w, &mut this.queued, cx) }
    }
}
