//! `send_timeout` / `recv_timeout` from green threads and OS threads: they
//! give up in time, leave no waiter behind, and still succeed when a partner
//! comes first.

use std::time::{Duration, Instant};

use fibra_runtime::chan::{
    channel, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError,
};
use fibra_runtime::Runtime;

#[test]
fn recv_timeout_expires_and_leaves_no_waiter() {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let (tx, rx) = channel::<u32>(0);
                let start = Instant::now();
                assert_eq!(
                    rx.recv_timeout(Duration::from_millis(20)),
                    Err(RecvTimeoutError::Timeout)
                );
                assert!(start.elapsed() >= Duration::from_millis(20));
                assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
            });
    }
    let (tx, rx) = channel::<u32>(0);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
}

#[test]
fn send_timeout_expires_and_gives_the_value_back() {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let (tx, rx) = channel::<String>(0);
                let r = tx.send_timeout("v".to_string(), Duration::from_millis(10));
                assert_eq!(r, Err(SendTimeoutError::Timeout("v".to_string())));
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            });
    }
}

#[test]
fn timeouts_succeed_when_a_partner_arrives() {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let (tx, rx) = channel::<u32>(0);
                let h = fibra_runtime::spawn(move || {
                    fibra_runtime::time::sleep(Duration::from_millis(5));
                    tx.send(3).unwrap();
                    tx
                });
                assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(3));
                let tx = h.join().unwrap();
                let h = fibra_runtime::spawn(move || {
                    fibra_runtime::time::sleep(Duration::from_millis(5));
                    rx.recv().unwrap()
                });
                assert_eq!(tx.send_timeout(4, Duration::from_secs(10)), Ok(()));
                assert_eq!(h.join().unwrap(), 4);
            });
    }
}

#[test]
fn timeouts_report_closed_channels() {
    let (tx, rx) = channel::<u32>(0);
    drop(tx);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Disconnected)
    );
    let (tx, rx) = channel::<u32>(0);
    drop(rx);
    assert_eq!(
        tx.send_timeout(1, Duration::from_secs(5)),
        Err(SendTimeoutError::Disconnected(1))
    );
}

#[test]
fn many_short_timeouts_race_with_sends() {
    // Racing timeouts with hand-offs: every value is received exactly once
    // or comes back to its sender.
    Runtime::builder().workers(2).build().unwrap().run(|| {
        let (tx, rx) = channel::<u32>(0);
        let receiver = fibra_runtime::spawn(move || {
            let mut got = Vec::new();
            loop {
                match rx.recv_timeout(Duration::from_micros(50)) {
                    Ok(v) => got.push(v),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return got,
                }
            }
        });
        let mut sent = Vec::new();
        for i in 0..2000 {
            match tx.send_timeout(i, Duration::from_micros(30)) {
                Ok(()) => sent.push(i),
                Err(SendTimeoutError::Timeout(v)) => assert_eq!(v, i),
                Err(e) => panic!("{e}"),
            }
        }
        drop(tx);
        assert_eq!(receiver.join().unwrap(), sent);
    });
}
