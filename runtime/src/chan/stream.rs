//! `Stream` for [`Receiver`] and `Sink` for [`Sender`] (the `futures`
//! traits), so channels plug into `StreamExt`/`SinkExt` combinators.
//!
//! Both hold at most one pending operation in a boxed [`Waiter`] (a stable
//! address, so the handle itself stays `Unpin`), registered in the channel
//! exactly like a parked green thread's or a `recv_async` future's:
//!
//! - `poll_next` tries to receive; when nothing is ready it registers the
//!   waiter and returns `Pending` until a sender hands it a value or the
//!   channel closes (then `None`, after what was buffered).
//! - The sink keeps one value in flight: `start_send` stores it,
//!   `poll_flush` (and `poll_ready`, before taking the next one) drives
//!   the send until the channel took it - into the buffer, or into a
//!   receiver's hands for a rendezvous channel - so a full channel holds
//!   the producer back. A closed channel fails the flush with
//!   [`SendError`] carrying the value. `poll_close` flushes; the channel
//!   closes when every `Sender` is dropped or on [`Sender::close`].
//!
//! Dropping a handle with a registered operation cancels it, as dropping a
//! `recv_async`/`send_async` future does.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;

use super::core::{Polled, Waiter};
use super::{Receiver, SendError, Sender};

/// A handle's pending stream or sink operation.
pub(crate) struct Pending<T>(Option<Box<Waiter<T>>>);

impl<T> Pending<T> {
    pub(crate) const fn none() -> Pending<T> {
        Pending(None)
    }
}

// SAFETY: the waiter is only touched through `&mut` of the handle that
// owns it (poll and drop) and by the channel under its own protocol (as
// for a `recv_async` future, which is `Send`); `&Pending` gives no access.
unsafe impl<T: Send> Sync for Pending<T> {}

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let w = this
            .pending
            .0
            .get_or_insert_with(|| Box::new(Waiter::new(None)));
        // SAFETY: the waiter is boxed (it never moves) and is only dropped
        // after completing or after `cancel_recv` (below and in `Drop`).
        let r = unsafe { this.chan.poll_recv(w, cx.waker()) };
        match r {
            Poll::Pending => Poll::Pending,
            Poll::Ready(polled) => {
                this.pending.0 = None;
                Poll::Ready(match polled {
                    Polled::Done(v) => Some(v),
                    Polled::Closed => None,
                })
            }
        }
    }
}

impl<T> Sender<T> {
    /// Drives the value in flight, if any, until the channel took it.
    fn poll_in_flight(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        let Some(w) = self.pending.0.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        // SAFETY: as in `poll_next`, with `cancel_send`.
        let r = unsafe { self.chan.poll_send(w, cx.waker()) };
        match r {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.pending.0 = None;
                Poll::Ready(r.map_err(SendError))
            }
        }
    }
}

impl<T> Sink<T> for Sender<T> {
    type Error = SendError<T>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        self.get_mut().poll_in_flight(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), SendError<T>> {
        let this = self.get_mut();
        assert!(
            this.pending.0.is_none(),
            "fibra: Sink::start_send without poll_ready returning Ready(Ok)"
        );
        this.pending.0 = Some(Box::new(Waiter::new(Some(item))));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        self.get_mut().poll_in_flight(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        self.get_mut().poll_in_flight(cx)
    }
}

impl<T> Receiver<T> {
    /// Cancels a registered `poll_next` (on drop).
    pub(crate) fn cancel_pending(&mut self) {
        if let Some(mut w) = self.pending.0.take() {
            // A value handed over meanwhile is dropped with the handle, as
            // with a dropped `recv_async` future.
            drop(self.chan.cancel_recv(&mut w));
        }
    }
}

impl<T> Sender<T> {
    /// Cancels a value in flight (on drop).
    pub(crate) fn cancel_pending(&mut self) {
        if let Some(mut w) = self.pending.0.take() {
            drop(self.chan.cancel_send(&mut w));
        }
    }
}
