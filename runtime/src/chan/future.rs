//! The async forms of send and receive: futures whose waiter lives inside
//! the (pinned) future, registered in the channel exactly like a parked
//! green thread's (see `waiter` and `core`).

use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::core::{Chan, Polled, Waiter};
use super::{RecvError, SendError};

/// Future returned by [`Sender::send_async`](super::Sender::send_async).
///
/// ```
/// let (tx, rx) = fibra::chan::channel(1);
/// fibra::block_on(tx.send_async(1)).unwrap();
/// assert_eq!(rx.recv(), Ok(1));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a, T> {
    chan: &'a Chan<T>,
    /// Token and value slot; pointed to by the channel's queue while
    /// registered, hence `!Unpin`.
    w: Waiter<T>,
    done: bool,
    _pinned: PhantomPinned,
}

/// Future returned by [`Receiver::recv_async`](super::Receiver::recv_async).
///
/// ```
/// let (tx, rx) = fibra::chan::channel(1);
/// tx.send("x").unwrap();
/// assert_eq!(fibra::block_on(rx.recv_async()), Ok("x"));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct RecvFuture<'a, T> {
    chan: &'a Chan<T>,
    w: Waiter<T>,
    done: bool,
    _pinned: PhantomPinned,
}

impl<'a, T> SendFuture<'a, T> {
    pub(crate) fn new(chan: &'a Chan<T>, value: T) -> Self {
        SendFuture {
            chan,
            w: Waiter::new(Some(value)),
            done: false,
            _pinned: PhantomPinned,
        }
    }
}

impl<'a, T> RecvFuture<'a, T> {
    pub(crate) fn new(chan: &'a Chan<T>) -> Self {
        RecvFuture {
            chan,
            w: Waiter::new(None),
            done: false,
            _pinned: PhantomPinned,
        }
    }
}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: nothing is moved out of the pinned future; the waiter is
        // only used in place.
        let this = unsafe { self.get_unchecked_mut() };
        assert!(!this.done, "fibra: SendFuture polled after completion");
        // SAFETY: the waiter is pinned with the future, and `Drop` cancels a
        // registration left behind.
        let r = unsafe { this.chan.poll_send(&mut this.w, cx.waker()) };
        r.map(|r| {
            this.done = true;
            r.map_err(SendError)
        })
    }
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: as for `SendFuture`.
        let this = unsafe { self.get_unchecked_mut() };
        assert!(!this.done, "fibra: RecvFuture polled after completion");
        // SAFETY: as for `SendFuture`.
        let r = unsafe { this.chan.poll_recv(&mut this.w, cx.waker()) };
        r.map(|r| {
            this.done = true;
            match r {
                Polled::Done(v) => Ok(v),
                Polled::Closed => Err(RecvError),
            }
        })
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        self.chan.cancel_send(&mut self.w);
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        self.chan.cancel_recv(&mut self.w);
    }
}
