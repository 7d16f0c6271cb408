//! The channel core, after Go's `hchan`: one lock per channel guarding a
//! ring buffer, a queue of waiting senders, a queue of waiting receivers and
//! the closed flag.
//!
//! # States (under the lock)
//!
//! - `buf`: up to `cap` values (always empty when `cap == 0`).
//! - `recvq`: receivers (or select arms) parked because there was nothing
//!   to take. `sendq`: senders parked because there was no room.
//! - `closed`: set once by `close`, by the last `Sender` drop or by the last
//!   `Receiver` drop.
//!
//! # Transitions
//!
//! - send: closed → error. Else a claimable receiver in `recvq` gets the
//!   value directly (hand-off, no buffer round trip) and is woken. Else room
//!   in `buf` → push. Else the sender queues itself (or `try_send` fails).
//! - recv: a value in `buf` → take it, and refill the freed place from the
//!   first claimable sender in `sendq` (so FIFO order holds). Else a
//!   claimable sender (unbuffered) hands its value over. Else closed →
//!   error. Else the receiver queues itself.
//! - close: every claimable waiter is completed as "closed" and woken;
//!   receivers then drain `buf` and get `RecvError` when it is empty.
//!
//! # Invariant
//!
//! Outside the lock, no live receiver waits while `buf` holds a value, and
//! no live sender waits while `buf` has room (or, unbuffered, while a live
//! receiver waits): every operation that could complete a waiter does so
//! under the same lock as the waiter's enqueueing. "Live" excludes a
//! select's own entries and stale entries, which claims skip (see
//! `waiter`). Wakers are always called after the lock is released.

use std::collections::VecDeque;
use std::task::Waker;

use super::error::{TryRecvError, TrySendError};
use super::waiter::{Entry, Outcome, Token, WaitQueue};
use crate::loom::{AtomicUsize, Mutex, UnsafeCell};
use std::sync::atomic::Ordering::{AcqRel, Relaxed};

/// Everything the lock guards.
pub(crate) struct Inner<T> {
    /// Buffered values (capacity `Chan::cap`).
    buf: VecDeque<T>,
    /// Parked senders, FIFO.
    sendq: WaitQueue<T>,
    /// Parked receivers, FIFO.
    recvq: WaitQueue<T>,
    /// No more sends; receivers drain `buf`.
    closed: bool,
}

/// One channel, shared by all its `Sender`s and `Receiver`s.
pub(crate) struct Chan<T> {
    inner: Mutex<Inner<T>>,
    /// The channel's number in dumps (`chan #N`), in creation order.
    id: u64,
    /// Buffer capacity; 0 for a rendezvous channel.
    pub(crate) cap: usize,
    /// Live `Sender` handles; the last one to go closes the channel.
    pub(crate) senders: AtomicUsize,
    /// Live `Receiver` handles; the last one to go closes the channel and
    /// drops what is buffered.
    pub(crate) receivers: AtomicUsize,
    /// The last `Sender` going does not close the channel (timer channels).
    pub(crate) keep_open: bool,
    /// Entries in `recvq` when the lock was last released. A hint only
    /// (stale entries count): `send` tries without setting up a wait when
    /// it is non-zero, and its wait tries again anyway.
    pub(crate) recv_waiting: AtomicUsize,
    /// Entries in `sendq` when the lock was last released (a hint).
    pub(crate) send_waiting: AtomicUsize,
}

/// The channel lock held; on release it publishes the queue lengths as
/// hints for the lock-free fast-path checks (`recv_waiting`,
/// `send_waiting`).
pub(crate) struct Guard<'a, T> {
    inner: crate::loom::MutexGuard<'a, Inner<T>>,
    chan: &'a Chan<T>,
}

impl<T> std::ops::Deref for Guard<'_, T> {
    type Target = Inner<T>;
    #[inline]
    fn deref(&self) -> &Inner<T> {
        &self.inner
    }
}

impl<T> std::ops::DerefMut for Guard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Inner<T> {
        &mut self.inner
    }
}

impl<T> Drop for Guard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        let inner = &mut *self.inner;
        if inner.recvq.take_changed() {
            self.chan.recv_waiting.store(inner.recvq.len(), Relaxed);
        }
        if inner.sendq.take_changed() {
            self.chan.send_waiting.store(inner.sendq.len(), Relaxed);
        }
    }
}

/// Calls a waker taken under the lock, after the lock was released.
#[inline]
pub(crate) fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
    }
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: usize) -> Chan<T> {
        /// The next channel's number.
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Chan {
            id: NEXT_ID.fetch_add(1, Relaxed),
            inner: Mutex::new(Inner {
                buf: VecDeque::with_capacity(cap.min(64)),
                sendq: WaitQueue::new(),
                recvq: WaitQueue::new(),
                closed: false,
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            keep_open: false,
            recv_waiting: AtomicUsize::new(0),
            send_waiting: AtomicUsize::new(0),
        }
    }

    /// What a task parked in `send` on this channel waits on (dumps).
    pub(crate) fn waiting_to_send(&self) -> crate::park::record::WaitOn {
        crate::park::record::WaitOn::ChanSend {
            chan: self.id(),
            cap: self.cap as u64,
        }
    }

    /// What a task parked in `recv` on this channel waits on (dumps).
    pub(crate) fn waiting_to_recv(&self) -> crate::park::record::WaitOn {
        crate::park::record::WaitOn::ChanRecv {
            chan: self.id(),
            cap: self.cap as u64,
        }
    }

    /// The channel's identity in dumps: a number, in creation order.
    fn id(&self) -> u64 {
        self.id
    }

    #[inline]
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        Guard {
            inner: crate::loom::lock(&self.inner),
            chan: self,
        }
    }

    // ----- operations that do not wait -----

    /// Sends without waiting. `me` is the calling select's token (its own
    /// entries are skipped), or null.
    #[inline]
    pub(crate) fn try_send(&self, v: T, me: *const Token) -> Result<(), TrySendError<T>> {
        let mut inner = self.lock();
        let r = inner.try_send(v, self.cap, me);
        drop(inner);
        r.map(wake)
    }

    /// Receives without waiting. `me` as for [`try_send`](Self::try_send).
    #[inline]
    pub(crate) fn try_recv(&self, me: *const Token) -> Result<T, TryRecvError> {
        let mut inner = self.lock();
        let r = inner.try_recv(me);
        drop(inner);
        r.map(|(v, w)| {
            wake(w);
            v
        })
    }

    /// Closes the channel: waiters are completed as closed and woken.
    /// Returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        let mut inner = self.lock();
        if inner.closed {
            return false;
        }
        inner.closed = true;
        let mut wakers = Vec::new();
        // SAFETY: each entry was claimed by `drain_claimed` under the lock.
        wakers.extend(
            inner
                .recvq
                .drain_claimed()
                .filter_map(|e| unsafe { e.close() }),
        );
        // SAFETY: as above; a sender keeps its value in its slot.
        wakers.extend(
            inner
                .sendq
                .drain_claimed()
                .filter_map(|e| unsafe { e.close() }),
        );
        drop(inner);
        tracing::trace!(waiters = wakers.len(), "channel closed");
        crate::sched::wake_all(wakers);
        true
    }

    /// The last receiver is gone: close, and drop the buffered values
    /// (outside the lock, since their destructors may use channels).
    pub(crate) fn disconnect_receivers(&self) {
        self.close();
        let buf = std::mem::take(&mut self.lock().buf);
        drop(buf);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().buf.len()
    }

    /// Counts one more handle (`Sender` or `Receiver` clone).
    pub(crate) fn acquire(count: &AtomicUsize) {
        count.fetch_add(1, Relaxed);
    }

    /// Counts one handle less; true if it was the last.
    pub(crate) fn release(count: &AtomicUsize) -> bool {
        count.fetch_sub(1, AcqRel) == 1
    }

    // ----- registration of waiting operations -----

    /// Send readiness check, for a select registering on this channel.
    pub(crate) fn send_ready(inner: &Inner<T>, cap: usize, me: *const Token) -> bool {
        inner.closed || inner.recvq.has_waiting(me) || inner.buf.len() < cap
    }

    /// Receive readiness check, for a select registering on this channel.
    pub(crate) fn recv_ready(inner: &Inner<T>, me: *const Token) -> bool {
        !inner.buf.is_empty() || inner.sendq.has_waiting(me) || inner.closed
    }

    /// Queues a waiting sender whose value is in `slot`.
    ///
    /// # Safety
    /// `token` and `slot` outlive the entry: the owner removes it with
    /// [`unregister_send`](Self::unregister_send) unless a counterpart
    /// completed it.
    pub(crate) unsafe fn register_send(
        inner: &mut Inner<T>,
        token: &Token,
        arm: usize,
        slot: &UnsafeCell<Option<T>>,
    ) {
        inner.sendq.push(Entry::new(token, arm, slot));
    }

    /// Queues a waiting receiver that gets its value in `slot`.
    ///
    /// # Safety
    /// As for [`register_send`](Self::register_send).
    pub(crate) unsafe fn register_recv(
        inner: &mut Inner<T>,
        token: &Token,
        arm: usize,
        slot: &UnsafeCell<Option<T>>,
    ) {
        inner.recvq.push(Entry::new(token, arm, slot));
    }

    pub(crate) fn unregister_send(&self, token: &Token, arm: usize) {
        self.lock().sendq.remove(token, arm);
    }

    pub(crate) fn unregister_recv(&self, token: &Token, arm: usize) {
        self.lock().recvq.remove(token, arm);
    }
}

impl<T> Inner<T> {
    #[inline]
    pub(crate) fn try_send(
        &mut self,
        v: T,
        cap: usize,
        me: *const Token,
    ) -> Result<Option<Waker>, TrySendError<T>> {
        if self.closed {
            return Err(TrySendError::Disconnected(v));
        }
        if let Some(r) = self.recvq.claim(me) {
            // SAFETY: claimed under the lock we hold.
            return Ok(unsafe { r.deliver(v) });
        }
        if self.buf.len() < cap {
            self.buf.push_back(v);
            return Ok(None);
        }
        Err(TrySendError::Full(v))
    }

    #[inline]
    pub(crate) fn try_recv(
        &mut self,
        me: *const Token,
    ) -> Result<(T, Option<Waker>), TryRecvError> {
        if let Some(v) = self.buf.pop_front() {
            let mut waker = None;
            if let Some(s) = self.sendq.claim(me) {
                // SAFETY: claimed under the lock we hold.
                let (sv, w) = unsafe { s.take() };
                self.buf.push_back(sv);
                waker = w;
            }
            return Ok((v, waker));
        }
        if let Some(s) = self.sendq.claim(me) {
            // SAFETY: claimed under the lock we hold.
            return Ok(unsafe { s.take() });
        }
        if self.closed {
            return Err(TryRecvError::Disconnected);
        }
        Err(TryRecvError::Empty)
    }
}

/// A single blocking send or receive: its token and value slot. Lives on
/// the waiting thread's stack or inside a pinned future.
pub(crate) struct Waiter<T> {
    pub(crate) token: Token,
    pub(crate) slot: UnsafeCell<Option<T>>,
    /// Whether an entry was queued (and may still be).
    pub(crate) registered: bool,
}

impl<T> Waiter<T> {
    pub(crate) fn new(value: Option<T>) -> Waiter<T> {
        Waiter {
            token: Token::new(),
            slot: UnsafeCell::new(value),
            registered: false,
        }
    }

    /// Owner: takes the slot's content (after `DONE` or a successful
    /// abort, when no counterpart can touch it).
    pub(crate) fn take_slot(&self) -> Option<T> {
        // SAFETY: see above; the caller observed the final state.
        self.slot.with_mut(|p| unsafe { (*p).take() })
    }
}

/// What a blocked send or receive learns when polled.
pub(crate) enum Polled<T> {
    /// Completed with a value (receive) or delivered (send).
    Done(T),
    /// The channel was closed.
    Closed,
}

impl<T> Chan<T> {
    /// Poll function of a blocking send: the first call tries and, if the
    /// channel is not ready, queues `w`; later calls check for completion.
    /// `Ready(Err(v))` gives the value back when the channel is closed.
    ///
    /// # Safety
    /// `w` must not move or be dropped while registered; if the wait is
    /// abandoned, [`cancel_send`](Self::cancel_send) must be called.
    pub(crate) unsafe fn poll_send(
        &self,
        w: &mut Waiter<T>,
        waker: &Waker,
    ) -> std::task::Poll<Result<(), T>> {
        use std::task::Poll;
        if w.registered {
            return match self.registered_outcome(&w.token, waker) {
                None => Poll::Pending,
                Some(Outcome { closed: false, .. }) => {
                    w.registered = false;
                    Poll::Ready(Ok(()))
                }
                Some(Outcome { closed: true, .. }) => {
                    w.registered = false;
                    Poll::Ready(Err(w.take_slot().expect("a closed send keeps its value")))
                }
            };
        }
        let mut inner = self.lock();
        let v = w.take_slot().expect("a send has a value");
        match inner.try_send(v, self.cap, std::ptr::null()) {
            Ok(waker) => {
                drop(inner);
                wake(waker);
                Poll::Ready(Ok(()))
            }
            Err(TrySendError::Disconnected(v)) => Poll::Ready(Err(v)),
            Err(TrySendError::Full(v)) => {
                // SAFETY: not registered yet: the slot is ours.
                w.slot.with_mut(|p| unsafe { *p = Some(v) });
                w.token.set_waker(waker);
                Chan::register_send(&mut inner, &w.token, 0, &w.slot);
                w.registered = true;
                Poll::Pending
            }
        }
    }

    /// Completion check of a registered operation; if it is still waiting,
    /// makes sure `waker` is the one that will be called.
    #[inline]
    fn registered_outcome(&self, token: &Token, waker: &Waker) -> Option<Outcome> {
        if let Some(o) = token.outcome() {
            return Some(o);
        }
        let _inner = self.lock();
        // Under the lock the token is WAITING or DONE, never half claimed.
        match token.outcome() {
            Some(o) => Some(o),
            None => {
                // SAFETY: we hold the lock of the only channel the token is
                // queued on, and it is not claimed.
                unsafe { token.set_waker(waker) };
                None
            }
        }
    }

    /// Poll function of a blocking receive; see [`poll_send`](Self::poll_send).
    ///
    /// # Safety
    /// As for `poll_send`, with [`cancel_recv`](Self::cancel_recv).
    pub(crate) unsafe fn poll_recv(
        &self,
        w: &mut Waiter<T>,
        waker: &Waker,
    ) -> std::task::Poll<Polled<T>> {
        use std::task::Poll;
        if w.registered {
            return match self.registered_outcome(&w.token, waker) {
                None => Poll::Pending,
                Some(o) => {
                    w.registered = false;
                    Poll::Ready(w.received(o))
                }
            };
        }
        let mut inner = self.lock();
        match inner.try_recv(std::ptr::null()) {
            Ok((v, waker)) => {
                drop(inner);
                wake(waker);
                Poll::Ready(Polled::Done(v))
            }
            Err(TryRecvError::Disconnected) => Poll::Ready(Polled::Closed),
            Err(TryRecvError::Empty) => {
                w.token.set_waker(waker);
                Chan::register_recv(&mut inner, &w.token, 0, &w.slot);
                w.registered = true;
                Poll::Pending
            }
        }
    }

    /// Abandons a registered send (timeout, unwinding, future dropped).
    /// Returns `Some` if a counterpart completed it meanwhile: `Ok` if the
    /// value was delivered, `Err(v)` if the channel closed.
    pub(crate) fn cancel_send(&self, w: &mut Waiter<T>) -> Option<Result<(), T>> {
        if !w.registered {
            return None;
        }
        w.registered = false;
        match w.token.abort() {
            Ok(()) => {
                self.unregister_send(&w.token, 0);
                None
            }
            Err(Outcome { closed: false, .. }) => Some(Ok(())),
            Err(Outcome { closed: true, .. }) => {
                Some(Err(w.take_slot().expect("a closed send keeps its value")))
            }
        }
    }

    /// Abandons a registered receive; `Some` if it completed meanwhile.
    pub(crate) fn cancel_recv(&self, w: &mut Waiter<T>) -> Option<Polled<T>> {
        if !w.registered {
            return None;
        }
        w.registered = false;
        match w.token.abort() {
            Ok(()) => {
                self.unregister_recv(&w.token, 0);
                None
            }
            Err(o) => Some(w.received(o)),
        }
    }
}

impl<T> Waiter<T> {
    fn received(&self, o: Outcome) -> Polled<T> {
        if o.closed {
            Polled::Closed
        } else {
            Polled::Done(self.take_slot().expect("a completed receive has a value"))
        }
    }
}
