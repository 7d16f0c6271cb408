//! Closing: buffered values are still received, then `recv` fails; sends on
//! a closed channel fail with the value back; waiters are released.

use std::time::Duration;

use fibra_runtime::chan::{channel, RecvError, SendError, TryRecvError, TrySendError};
use fibra_runtime::Runtime;

#[test]
fn buffered_values_survive_close() {
    let (tx, rx) = channel::<u32>(4);
    for i in 0..4 {
        tx.send(i).unwrap();
    }
    tx.close();
    assert!(rx.is_closed());
    assert_eq!(tx.send(9), Err(SendError(9)));
    assert_eq!(tx.try_send(9), Err(TrySendError::Disconnected(9)));
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn dropping_all_senders_closes() {
    let (tx, rx) = channel::<u32>(1);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed(), "a sender is left");
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn dropping_all_receivers_fails_senders_and_drops_buffer() {
    let (tx, rx) = channel::<std::sync::Arc<()>>(2);
    let token = std::sync::Arc::new(());
    tx.send(token.clone()).unwrap();
    assert_eq!(std::sync::Arc::strong_count(&token), 2);
    drop(rx);
    assert_eq!(
        std::sync::Arc::strong_count(&token),
        1,
        "buffered values are dropped"
    );
    assert!(tx.send(token.clone()).is_err());
}

#[test]
fn close_wakes_parked_receivers_and_senders() {
    for workers in [1, 2] {
        let rt = Runtime::builder().workers(workers).build().unwrap();
        rt.run(|| {
            let (tx, rx) = channel::<u32>(0);
            let receivers: Vec<_> = (0..3)
                .map(|_| {
                    let rx = rx.clone();
                    fibra_runtime::spawn(move || rx.recv())
                })
                .collect();
            let (tx2, _rx2) = channel::<u32>(0);
            let senders: Vec<_> = (0..3)
                .map(|i| {
                    let tx2 = tx2.clone();
                    fibra_runtime::spawn(move || tx2.send(i))
                })
                .collect();
            fibra_runtime::time::sleep(Duration::from_millis(20));
            tx.close();
            tx2.close();
            for h in receivers {
                assert_eq!(h.join().unwrap(), Err(RecvError));
            }
            let mut back: Vec<u32> = senders
                .into_iter()
                .map(|h| h.join().unwrap().unwrap_err().into_inner())
                .collect();
            back.sort();
            assert_eq!(back, [0, 1, 2], "each sender got its own value back");
        });
    }
}

#[test]
fn close_is_idempotent_and_len_reports_buffer() {
    let (tx, rx) = channel::<u8>(3);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!((tx.len(), rx.len(), rx.capacity()), (2, 2, 3));
    tx.close();
    tx.close();
    assert_eq!(rx.len(), 2);
    assert!(!rx.is_empty());
    rx.recv().unwrap();
    rx.recv().unwrap();
    assert!(rx.is_empty());
}

#[test]
fn parked_senders_drain_in_fifo_order_after_close() {
    Runtime::builder().workers(1).build().unwrap().run(|| {
        let (tx, rx) = channel::<u32>(1);
        tx.send(0).unwrap();
        // Two senders park on the full buffer, in order.
        let h1 = {
            let tx = tx.clone();
            fibra_runtime::spawn(move || tx.send(1))
        };
        fibra_runtime::time::sleep(Duration::from_millis(5));
        let h2 = {
            let tx = tx.clone();
            fibra_runtime::spawn(move || tx.send(2))
        };
        fibra_runtime::time::sleep(Duration::from_millis(5));
        assert_eq!(rx.recv(), Ok(0));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert!(h1.join().unwrap().is_ok());
        assert!(h2.join().unwrap().is_ok());
    });
}
