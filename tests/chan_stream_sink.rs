//! Channels as `futures` streams and sinks: values in order, `None` after
//! close and drain, backpressure from bounded and rendezvous channels, and
//! registrations cancelled when a handle is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use fibra::chan::{channel, SendError, SendTimeoutError};
use futures_core::Stream;
use futures_sink::Sink;

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn noop_cx<R>(f: impl FnOnce(&mut Context<'_>) -> R) -> R {
    let waker = Waker::from(Arc::new(Noop));
    f(&mut Context::from_waker(&waker))
}

fn next<T>(rx: &mut fibra::chan::Receiver<T>) -> Option<T> {
    fibra::block_on(std::future::poll_fn(|cx| Pin::new(&mut *rx).poll_next(cx)))
}

fn send_all<T>(tx: &mut fibra::chan::Sender<T>, item: T) -> Result<(), SendError<T>> {
    let mut item = Some(item);
    fibra::block_on(std::future::poll_fn(|cx| {
        let mut tx = Pin::new(&mut *tx);
        if let Some(v) = item.take() {
            match tx.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => tx.as_mut().start_send(v)?,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    item = Some(v);
                    return Poll::Pending;
                }
            }
        }
        tx.poll_flush(cx)
    }))
}

#[test]
fn handles_are_unpin() {
    fn unpin<T: Unpin>() {}
    unpin::<fibra::chan::Receiver<String>>();
    unpin::<fibra::chan::Sender<String>>();
    fn send_sync<T: Send + Sync>() {}
    send_sync::<fibra::chan::Receiver<String>>();
    send_sync::<fibra::chan::Sender<String>>();
}

#[test]
fn a_stream_yields_values_in_order_then_none_after_close() {
    let (tx, mut rx) = channel::<u32>(4);
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    tx.close();
    assert_eq!(next(&mut rx), Some(0));
    assert_eq!(next(&mut rx), Some(1));
    assert_eq!(next(&mut rx), Some(2));
    assert_eq!(next(&mut rx), None);
}

#[test]
fn a_stream_in_an_async_task_waits_for_green_thread_senders() {
    let total = fibra::run(|| {
        let (tx, rx) = channel::<u64>(0);
        let consumer = fibra::spawn_async(async move {
            let mut rx = rx;
            let mut sum = 0;
            while let Some(v) = std::future::poll_fn(|cx| Pin::new(&mut rx).poll_next(cx)).await {
                sum += v;
            }
            sum
        });
        for p in 0..4u64 {
            let tx = tx.clone();
            fibra::spawn(move || {
                for i in 0..250 {
                    tx.send(p * 1000 + i).unwrap();
                }
            });
        }
        drop(tx);
        consumer.join().unwrap()
    });
    let expected: u64 = (0..4u64)
        .map(|p| (0..250).map(|i| p * 1000 + i).sum::<u64>())
        .sum();
    assert_eq!(total, expected);
}

#[test]
fn a_bounded_sink_holds_the_producer_back_until_there_is_room() {
    let (mut tx, rx) = channel::<u32>(1);
    noop_cx(|cx| {
        let mut sink = Pin::new(&mut tx);
        assert!(matches!(sink.as_mut().poll_ready(cx), Poll::Ready(Ok(()))));
        sink.as_mut().start_send(1).unwrap();
        assert!(matches!(sink.as_mut().poll_flush(cx), Poll::Ready(Ok(()))));
        // The buffer is full: the next value stays in flight.
        assert!(matches!(sink.as_mut().poll_ready(cx), Poll::Ready(Ok(()))));
        sink.as_mut().start_send(2).unwrap();
        assert!(sink.as_mut().poll_flush(cx).is_pending());
        assert!(sink.as_mut().poll_ready(cx).is_pending());
    });
    assert_eq!(rx.recv(), Ok(1));
    noop_cx(|cx| {
        assert!(matches!(
            Pin::new(&mut tx).poll_flush(cx),
            Poll::Ready(Ok(()))
        ));
    });
    assert_eq!(rx.recv(), Ok(2));
}

#[test]
fn a_rendezvous_sink_completes_only_when_a_receiver_takes_the_value() {
    let (mut tx, rx) = channel::<&'static str>(0);
    noop_cx(|cx| {
        let mut sink = Pin::new(&mut tx);
        assert!(matches!(sink.as_mut().poll_ready(cx), Poll::Ready(Ok(()))));
        sink.as_mut().start_send("hand over").unwrap();
        assert!(sink.as_mut().poll_flush(cx).is_pending());
    });
    assert_eq!(rx.recv(), Ok("hand over"));
    noop_cx(|cx| {
        assert!(matches!(
            Pin::new(&mut tx).poll_flush(cx),
            Poll::Ready(Ok(()))
        ));
    });
    // And through a green thread that blocks on the receiving side.
    let got = fibra::run(move || {
        let h = fibra::spawn(move || rx.recv());
        send_all(&mut tx, "second").unwrap();
        h.join().unwrap()
    });
    assert_eq!(got, Ok("second"));
}

#[test]
fn a_closed_channel_fails_the_flush_with_the_value() {
    let (mut tx, rx) = channel::<String>(0);
    drop(rx);
    let r = send_all(&mut tx, "lost".to_string());
    assert_eq!(r, Err(SendError("lost".to_string())));
}

#[test]
fn dropping_handles_cancels_their_registrations() {
    let (tx, rx) = channel::<u32>(0);
    let keep = rx.clone();
    // A stream registered as a receiver, then dropped: a rendezvous send
    // must not hand its value to the dropped registration.
    let mut dropped = rx;
    noop_cx(|cx| assert!(Pin::new(&mut dropped).poll_next(cx).is_pending()));
    drop(dropped);
    assert_eq!(
        tx.send_timeout(7, Duration::from_millis(50)),
        Err(SendTimeoutError::Timeout(7))
    );
    // A sink with a value in flight, then dropped: no receiver gets it.
    let mut sink = tx.clone();
    noop_cx(|cx| {
        let mut s = Pin::new(&mut sink);
        assert!(matches!(s.as_mut().poll_ready(cx), Poll::Ready(Ok(()))));
        s.as_mut().start_send(8).unwrap();
        assert!(s.as_mut().poll_flush(cx).is_pending());
    });
    drop(sink);
    assert_eq!(
        keep.recv_timeout(Duration::from_millis(50)),
        Err(fibra::chan::RecvTimeoutError::Timeout)
    );
    tx.send_timeout(9, Duration::from_millis(0)).unwrap_err();
}
