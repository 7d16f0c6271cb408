//! loom models of the channel core: hand-off, close, select registration
//! and cancellation, timeouts racing completion. Blocking calls run on
//! loom's executor (see `park`); a deadline counts as passed after the
//! first poll.

use std::time::{Duration, Instant};

use loom::thread;

use super::{channel, RecvError, RecvTimeoutError, SendError, TrySendError};
use crate::select;

/// An unbuffered send meets a receive: the value arrives exactly once.
#[test]
fn loom_rendezvous_hand_off() {
    model(|| {
        let (tx, rx) = channel::<u32>(0);
        let t = thread::spawn(move || tx.send(7));
        assert_eq!(rx.recv(), Ok(7));
        assert_eq!(t.join().unwrap(), Ok(()));
    });
}

/// A buffered channel keeps order while a sender parks on the full buffer.
#[test]
fn loom_buffered_order_with_parked_sender() {
    model(|| {
        let (tx, rx) = channel::<u32>(1);
        let t = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Err(RecvError));
        t.join().unwrap();
    });
}

/// Close racing a parked receiver and a parked sender: both are released,
/// the sender gets its value back.
#[test]
fn loom_close_releases_waiters() {
    model(|| {
        let (tx, rx) = channel::<u32>(0);
        let tx2 = tx.clone();
        let r = thread::spawn(move || rx.recv());
        let s = thread::spawn(move || tx2.send(5));
        tx.close();
        let got = r.join().unwrap();
        let sent = s.join().unwrap();
        // Either they met before the close, or both saw it.
        match (got, sent) {
            (Ok(5), Ok(())) => {}
            (Err(RecvError), Err(SendError(5))) => {}
            other => panic!("inconsistent outcome {other:?}"),
        }
    });
}

/// A select parked on two channels races two `try_send`s: at most one
/// value is taken, and it is the one the select reports.
#[test]
fn loom_select_completes_once() {
    model(|| {
        let (tx_a, rx_a) = channel::<u32>(0);
        let (tx_b, rx_b) = channel::<u32>(0);
        let sel = thread::spawn(move || {
            select! {
                recv(rx_a) -> v => (0, v.ok()),
                recv(rx_b) -> v => (1, v.ok()),
            }
        });
        let a = thread::spawn(move || tx_a.try_send(1).is_ok());
        let sent_b = tx_b.try_send(2).is_ok();
        drop(tx_b); // both senders gone: a select still waiting sees a close
        let sent_a = a.join().unwrap();
        let (arm, v) = sel.join().unwrap();
        assert!(!(sent_a && sent_b), "two arms completed");
        match (arm, v) {
            (0, Some(1)) => assert!(sent_a),
            (1, Some(2)) => assert!(sent_b),
            (_, None) => assert!(!sent_a && !sent_b, "a sent value was lost"),
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// A select's losing send arm leaves no value behind.
#[test]
fn loom_select_send_arms_cancel() {
    model(|| {
        let (tx_a, rx_a) = channel::<u32>(0);
        let (tx_b, rx_b) = channel::<u32>(0);
        let sel = thread::spawn(move || {
            select! {
                send(tx_a, 1) -> r => r.is_ok(),
                send(tx_b, 2) -> r => r.is_ok(),
            }
        });
        let a = thread::spawn(move || rx_a.try_recv().ok());
        let b = rx_b.try_recv().ok();
        drop(rx_b);
        let a = a.join().unwrap();
        let ok = sel.join().unwrap();
        assert!(a.is_none() || b.is_none(), "both send arms completed");
        assert_eq!(ok, a.is_some() || b.is_some(), "select result disagrees");
    });
}

/// A receive whose deadline passes races a `try_send`: the value is either
/// received or never taken.
#[test]
fn loom_timeout_races_hand_off() {
    model(|| {
        let (tx, rx) = channel::<u32>(0);
        let _keep_open = rx.clone();
        let r = thread::spawn(move || rx.recv_deadline(Instant::now() + Duration::from_secs(1)));
        let sent = tx.try_send(9);
        let got = r.join().unwrap();
        match got {
            Ok(9) => assert_eq!(sent, Ok(())),
            Err(RecvTimeoutError::Timeout) => assert_eq!(sent, Err(TrySendError::Full(9))),
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// `loom::model` with a preemption bound of 3 unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise (unbounded, the select models take hours).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}
