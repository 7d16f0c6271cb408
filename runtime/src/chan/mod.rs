//! Go channels: typed, multi-producer multi-consumer, buffered or
//! unbuffered, with `close`, and [`select!`](crate::select) over several of
//! them.
//!
//! ```
//! use fibra::chan;
//! let total = fibra::run(|| {
//!     let (tx, rx) = chan::channel::<u64>(0); // unbuffered: a rendezvous
//!     for i in 0..4 {
//!         let tx = tx.clone();
//!         fibra::spawn(move || tx.send(i).unwrap());
//!     }
//!     drop(tx); // the channel closes when the last sender goes
//!     rx.iter().sum::<u64>()
//! });
//! assert_eq!(total, 6);
//! ```
//!
//! Semantics are Go's, with Rust's answers where Go panics:
//!
//! - `channel(0)` is a rendezvous: `send` returns once a receiver took the
//!   value. `channel(n)` buffers up to `n` values.
//! - `close` (or dropping the last [`Sender`]) ends the stream: receivers
//!   still get every buffered value, then [`RecvError`]. A send on a closed
//!   channel returns [`SendError`] with the value (Go panics). Dropping the
//!   last [`Receiver`] also closes the channel, so senders do not block
//!   forever, and drops what was buffered.
//! - Every operation parks a green thread, blocks a plain OS thread, and has
//!   an async form ([`Sender::send_async`], [`Receiver::recv_async`]) for
//!   async tasks and other executors.
//! - Timeouts: [`Sender::send_timeout`], [`Receiver::recv_timeout`],
//!   `default(d)` in [`select!`](crate::select), or a
//!   [`time::after`](crate::time::after) channel as a select arm.
//!
//! The implementation follows Go's `hchan` (see `core` and `waiter`): one
//! lock per channel, a ring buffer, FIFO queues of parked senders and
//! receivers, and direct hand-off of a value between a sender and a parked
//! receiver.

mod core;
mod error;
mod future;
#[cfg(all(test, loom))]
mod loom_tests;
pub(crate) mod select;
mod stream;
mod waiter;

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use future::{RecvFuture, SendFuture};

#[doc(hidden)]
pub mod __private {
    pub use super::select::{select, Mode, Operation, RecvArm, Registered, SendArm};
    pub use super::waiter::Token;
}

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::core::{Chan, Polled, Waiter};
use crate::park;

/// Creates a channel buffering up to `cap` values; `cap == 0` makes an
/// unbuffered (rendezvous) channel, as in Go.
///
/// ```
/// let (tx, rx) = fibra::chan::channel(2);
/// tx.send("a").unwrap();
/// tx.send("b").unwrap();
/// assert_eq!(rx.recv(), Ok("a"));
/// assert_eq!(rx.capacity(), 2);
/// ```
pub fn channel<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    handles(Chan::new(cap))
}

/// The first sender and receiver of `chan`.
fn handles<T>(chan: Chan<T>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(chan);
    (
        Sender {
            chan: chan.clone(),
            pending: stream::Pending::none(),
        },
        Receiver {
            chan,
            pending: stream::Pending::none(),
        },
    )
}

/// A channel that stays open when its last `Sender` goes (the timer
/// channels of `time::after` and `time::Ticker`, which Go never closes).
pub(crate) fn channel_never_closed<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let mut chan = Chan::new(cap);
    chan.keep_open = true;
    handles(chan)
}

/// The sending side of a channel. Clone it for more producers.
///
/// ```
/// let (tx, rx) = fibra::chan::channel(1);
/// let tx2 = tx.clone();
/// tx2.send(1).unwrap();
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
    /// The value in flight of this handle's `Sink` (see `stream`).
    pending: stream::Pending<T>,
}

/// The receiving side of a channel. Clone it for more consumers: each value
/// goes to exactly one of them. It is also a `futures_core::Stream` of the
/// values (ending when the channel is closed and drained), and the
/// [`Sender`] a `futures_sink::Sink` whose flush waits until the channel
/// took the value (backpressure from bounded and rendezvous channels).
///
/// ```
/// let (tx, rx) = fibra::chan::channel(4);
/// let rx2 = rx.clone();
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(rx.recv().unwrap() + rx2.recv().unwrap(), 3);
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// This handle's registered `Stream::poll_next` (see `stream`).
    pending: stream::Pending<T>,
}

/// Undoes a blocking operation's registration if its wait is abandoned by
/// unwinding (a cancelled green thread's stack is unwound while parked).
struct SendGuard<'a, T> {
    chan: &'a Chan<T>,
    w: Waiter<T>,
}

impl<T> Drop for SendGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.w.registered {
            self.chan.cancel_send(&mut self.w);
        }
    }
}

struct RecvGuard<'a, T> {
    chan: &'a Chan<T>,
    w: Waiter<T>,
}

impl<T> Drop for RecvGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.w.registered {
            self.chan.cancel_recv(&mut self.w);
        }
    }
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full (unbuffered: until
    /// a receiver takes it). Fails, giving the value back, if the channel is
    /// closed.
    ///
    /// ```
    /// let (tx, rx) = fibra::chan::channel(0);
    /// let out = fibra::run(move || {
    ///     fibra::spawn(move || tx.send(42).unwrap());
    ///     rx.recv().unwrap()
    /// });
    /// assert_eq!(out, 42);
    /// ```
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        // Try before setting up a wait when that is likely to succeed: on a
        // buffered channel, or when a receiver is parked (the hint may be
        // stale either way; the wait's first poll tries again).
        let value = if self.chan.cap > 0 || self.chan.recv_waiting.load(Relaxed) > 0 {
            match self.chan.try_send(value, std::ptr::null()) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(v)) => return Err(SendError(v)),
                Err(TrySendError::Full(v)) => v,
            }
        } else {
            value
        };
        let mut g = SendGuard {
            chan: &self.chan,
            w: Waiter::new(Some(value)),
        };
        // SAFETY: `g.w` stays in place until `g` drops, and the guard's drop
        // cancels a registration left behind.
        park::wait_as(self.chan.waiting_to_send(), |cx| unsafe {
            g.chan.poll_send(&mut g.w, cx.waker())
        })
        .map_err(SendError)
    }

    /// Sends without waiting.
    ///
    /// ```
    /// use fibra::chan::{channel, TrySendError};
    /// let (tx, _rx) = channel(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value, std::ptr::null())
    }

    /// Like [`send`](Self::send), giving up after `timeout`
    /// (`Duration::MAX`: never).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = fibra::chan::channel(1);
    /// assert!(tx.send_timeout(1, Duration::from_millis(1)).is_ok());
    /// assert!(tx.send_timeout(2, Duration::from_millis(1)).unwrap_err().is_timeout());
    /// # drop(rx);
    /// ```
    #[track_caller]
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(value, crate::timer::deadline_in(timeout))
    }

    /// Like [`send`](Self::send), giving up at `deadline`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, _rx) = fibra::chan::channel(0);
    /// let r = tx.send_deadline(1, Instant::now() + Duration::from_millis(1));
    /// assert!(r.unwrap_err().is_timeout());
    /// ```
    #[track_caller]
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        let mut g = SendGuard {
            chan: &self.chan,
            w: Waiter::new(Some(value)),
        };
        // SAFETY: as in `send`.
        let r = park::wait_deadline_as(self.chan.waiting_to_send(), Some(deadline), |cx| unsafe {
            g.chan.poll_send(&mut g.w, cx.waker())
        });
        match r {
            Some(Ok(())) => Ok(()),
            Some(Err(v)) => Err(SendTimeoutError::Disconnected(v)),
            None => match g.chan.cancel_send(&mut g.w) {
                Some(Ok(())) => Ok(()),
                Some(Err(v)) => Err(SendTimeoutError::Disconnected(v)),
                None => Err(SendTimeoutError::Timeout(
                    g.w.take_slot().expect("an unsent value stays in its slot"),
                )),
            },
        }
    }

    /// Sends from async code: the future completes when the value was
    /// taken or buffered (or with the value back if the channel is closed).
    /// Dropping the future before it completes withdraws the value.
    ///
    /// ```
    /// let (tx, rx) = fibra::chan::channel(0);
    /// let out = fibra::run(move || {
    ///     fibra::spawn_async(async move { tx.send_async(7).await.unwrap() });
    ///     rx.recv().unwrap()
    /// });
    /// assert_eq!(out, 7);
    /// ```
    pub fn send_async(&self, value: T) -> SendFuture<'_, T> {
        SendFuture::new(&self.chan, value)
    }

    /// Closes the channel: receivers get what is buffered, then
    /// [`RecvError`]; waiting and later sends fail with [`SendError`].
    /// Closing twice is harmless (Go panics).
    ///
    /// ```
    /// let (tx, rx) = fibra::chan::channel(2);
    /// tx.send(1).unwrap();
    /// tx.close();
    /// assert!(tx.send(2).is_err());
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn close(&self) {
        self.chan.close();
    }

    /// Whether the channel is closed.
    ///
    /// ```
    /// let (tx, rx) = fibra::chan::channel::<()>(0);
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Values buffered now.
    ///
    /// ```
    /// let (tx, _rx) = fibra::chan::channel(3);
    /// tx.send(()).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether nothing is buffered.
    ///
    /// ```
    /// let (tx, _rx) = fibra::chan::channel::<()>(3);
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the buffer is full (always true when unbuffered).
    ///
    /// ```
    /// let (tx, _rx) = fibra::chan::channel(1);
    /// tx.send(()).unwrap();
    /// assert!(tx.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() == self.chan.cap
    }

    /// The buffer's capacity (0 for an unbuffered channel).
    ///
    /// ```
    /// let (tx, _rx) = fibra::chan::channel::<u8>(16);
    /// assert_eq!(tx.capacity(), 16);
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.cap
    }

    /// Whether both handles belong to the same channel.
    ///
    /// ```
    /// let (tx, _rx) = fibra::chan::channel::<u8>(0);
    /// assert!(tx.same_channel(&tx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }
}

impl<T> Receiver<T> {
    /// Receives a value, waiting until one is there. Fails once the channel
    /// is closed and drained.
    ///
    /// ```
    /// let (tx, rx) = fibra::chan::channel(1);
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert!(rx.recv().is_err());
    /// ```
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        if self.chan.cap > 0 || self.chan.send_waiting.load(Relaxed) > 0 {
            match self.chan.try_recv(std::ptr::null()) {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Disconnected) => return Err(RecvError),
                Err(TryRecvError::Empty) => {}
            }
        }
        let mut g = RecvGuard {
            chan: &self.chan,
            w: Waiter::new(None),
        };
        // SAFETY: `g.w` stays in place until `g` drops, and the guard's drop
        // cancels a registration left behind.
        match park::wait_as(self.chan.waiting_to_recv(), |cx| unsafe {
            g.chan.poll_recv(&mut g.w, cx.waker())
        }) {
            Polled::Done(v) => Ok(v),
            Polled::Closed => Err(RecvError),
        }
    }

    /// Receives without waiting.
    ///
    /// ```
    /// use fibra::chan::{channel, TryRecvError};
    /// let (tx, rx) = channel(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(5).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(5));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv(std::ptr::null())
    }

    /// Like [`recv`](Self::recv), giving up after `timeout`
    /// (`Duration::MAX`: never).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_tx, rx) = fibra::chan::channel::<u8>(1);
    /// assert!(rx.recv_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(crate::timer::deadline_in(timeout))
    }

    /// Like [`recv`](Self::recv), giving up at `deadline`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = fibra::chan::channel(1);
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.recv_deadline(Instant::now() + Duration::from_secs(1)), Ok(1));
    /// ```
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        let mut g = RecvGuard {
            chan: &self.chan,
            w: Waiter::new(None),
        };
        // SAFETY: as in `recv`.
        let r = park::wait_deadline_as(self.chan.waiting_to_recv(), Some(deadline), |cx| unsafe {
            g.chan.poll_recv(&mut g.w, cx.waker())
        });
        let r = match r {
            Some(r) => r,
            None => match g.chan.cancel_recv(&mut g.w) {
                Some(r) => r,
                None => return Err(RecvTimeoutError::Timeout),
            },
        };
        match r {
            Polled::Done(v) => Ok(v),
            Polled::Closed => Err(RecvTimeoutError::Disconnected),
        }
    }

    /// Receives from async code.
    ///
    /// Cancellation: dropping the future before a value was handed to it
    /// withdraws it cleanly. A value handed over directly by a sender (an
    /// unbuffered channel, or a buffered one that was empty) in the moment
    /// between the hand-off and the next poll is dropped with the future,
    /// as in `tokio::select!` over non-cancel-safe operations.
    ///
    /// ```
    /// let (tx, rx) = fibra::chan::channel(1);
    /// tx.send(3).unwrap();
    /// let v = fibra::block_on(rx.recv_async());
    /// assert_eq!(v, Ok(3));
    /// ```
    pub fn recv_async(&self) -> RecvFuture<'_, T> {
        RecvFuture::new(&self.chan)
    }

    /// A blocking iterator over received values; ends when the channel is
    /// closed and drained.
    ///
    /// ```
    /// let (tx, rx) = fibra::chan::channel(3);
    /// for i in 0..3 { tx.send(i).unwrap(); }
    /// drop(tx);
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the values available now.
    ///
    /// ```
    /// let (tx, rx) = fibra::chan::channel(3);
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Whether the channel is closed (values may still be buffered).
    ///
    /// ```
    /// let (tx, rx) = fibra::chan::channel::<()>(0);
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Values buffered now.
    ///
    /// ```
    /// let (tx, rx) = fibra::chan::channel(3);
    /// tx.send(()).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether nothing is buffered.
    ///
    /// ```
    /// let (_tx, rx) = fibra::chan::channel::<()>(3);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the buffer is full (always true when unbuffered).
    ///
    /// ```
    /// let (_tx, rx) = fibra::chan::channel::<()>(0);
    /// assert!(rx.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() == self.chan.cap
    }

    /// The buffer's capacity (0 for an unbuffered channel).
    ///
    /// ```
    /// let (_tx, rx) = fibra::chan::channel::<u8>(16);
    /// assert_eq!(rx.capacity(), 16);
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.cap
    }

    /// Whether both handles belong to the same channel.
    ///
    /// ```
    /// let (_tx, rx) = fibra::chan::channel::<u8>(0);
    /// assert!(rx.same_channel(&rx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Chan::<T>::acquire(&self.chan.senders);
        Sender {
            chan: self.chan.clone(),
            pending: stream::Pending::none(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.cancel_pending();
        if Chan::<T>::release(&self.chan.senders) && !self.chan.keep_open {
            self.chan.close();
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Chan::<T>::acquire(&self.chan.receivers);
        Receiver {
            chan: self.chan.clone(),
            pending: stream::Pending::none(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.cancel_pending();
        if Chan::<T>::release(&self.chan.receivers) {
            self.chan.disconnect_receivers();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.chan.cap)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.chan.cap)
            .finish_non_exhaustive()
    }
}

/// Blocking iterator returned by [`Receiver::iter`].
///
/// ```
/// let (tx, rx) = fibra::chan::channel(1);
/// tx.send(1).unwrap();
/// drop(tx);
/// let mut it = rx.iter();
/// assert_eq!(it.next(), Some(1));
/// assert_eq!(it.next(), None);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator returned by [`Receiver::try_iter`].
///
/// ```
/// let (_tx, rx) = fibra::chan::channel::<u8>(1);
/// assert_eq!(rx.try_iter().next(), None);
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owning blocking iterator (`for v in rx`).
///
/// ```
/// let (tx, rx) = fibra::chan::channel(2);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// drop(tx);
/// let v: Vec<i32> = rx.into_iter().collect();
/// assert_eq!(v, [1, 2]);
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
