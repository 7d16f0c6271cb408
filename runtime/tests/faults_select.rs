//! Fault injection: a panic inside a `select!` arm. The arm's operation
//! has completed (its value was taken or delivered exactly once); the
//! panic unwinds the task like any other, the losing arms leave nothing
//! registered, and the channels keep working for everyone else.

use std::time::Duration;

use fibra_runtime::chan::{channel, TryRecvError};
use fibra_runtime::{select, spawn, Runtime};

#[test]
fn a_panicking_recv_arm_fails_its_task_and_leaves_the_channels_usable() {
    for workers in [1, 2] {
        let rt = Runtime::builder().workers(workers).build().unwrap();
        rt.run(|| {
            let (tx_a, rx_a) = channel::<u32>(0);
            let (tx_b, rx_b) = channel::<u32>(0);
            let (ra, rb) = (rx_a.clone(), rx_b.clone());
            let h = spawn(move || -> u32 {
                select! {
                    recv(ra) -> v => panic!("arm a failed on purpose with {v:?}"),
                    recv(rb) -> v => v.unwrap(),
                }
            });
            fibra_runtime::time::sleep(Duration::from_millis(5));
            tx_a.send(7).unwrap();
            let err = h.join().unwrap_err();
            assert!(err.is_panic());
            assert!(
                err.to_string()
                    .contains("arm a failed on purpose with Ok(7)"),
                "{err}"
            );
            // The select's entry on `b` is gone: a send on `b` needs a new
            // receiver, and nothing consumed it.
            let sender = spawn(move || tx_b.send(9));
            assert_eq!(rx_b.recv(), Ok(9));
            sender.join().unwrap().unwrap();
            // `a` still works.
            let again = spawn(move || tx_a.send(8));
            assert_eq!(rx_a.recv(), Ok(8));
            again.join().unwrap().unwrap();
            // Every sender of `a` is gone now, and nothing is left in it.
            assert_eq!(rx_a.try_recv(), Err(TryRecvError::Disconnected));
        });
    }
}

#[test]
fn a_panicking_send_arm_delivers_its_value_exactly_once() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let (tx_a, rx_a) = channel::<u32>(1);
        let (tx_b, rx_b) = channel::<u32>(0);
        let _keep_b = tx_b.clone();
        let h = spawn(move || {
            select! {
                send(tx_a, 1) -> r => { r.unwrap(); panic!("sent, then failed") },
                send(tx_b, 2) -> r => r.unwrap(),
            }
        });
        assert!(h.join().unwrap_err().is_panic());
        assert_eq!(rx_a.recv(), Ok(1));
        assert_eq!(rx_a.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx_b.try_recv(), Err(TryRecvError::Empty));
    });
}

#[test]
fn many_selecting_tasks_panic_and_no_value_is_lost_or_duplicated() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let n = 2000u64;
    let (received, panicked) = rt.run(move || {
        let (tx, rx) = channel::<u64>(16);
        let (done_tx, done_rx) = channel::<u64>(n as usize);
        let consumers: Vec<_> = (0..8)
            .map(|_| {
                let (rx, done_tx) = (rx.clone(), done_tx.clone());
                spawn(move || {
                    let mut panics = 0u64;
                    loop {
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            select! {
                                recv(rx) -> v => match v {
                                    Ok(v) if v % 7 == 0 => {
                                        done_tx.send(v).unwrap();
                                        panic!("value {v}")
                                    }
                                    Ok(v) => { done_tx.send(v).unwrap(); true }
                                    Err(_) => false,
                                },
                            }
                        }));
                        match r {
                            Ok(true) => {}
                            Ok(false) => return panics,
                            Err(_) => panics += 1,
                        }
                    }
                })
            })
            .collect();
        drop(rx);
        drop(done_tx);
        for i in 0..n {
            tx.send(i).unwrap();
        }
        drop(tx);
        let panicked: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
        let mut got: Vec<u64> = done_rx.iter().collect();
        got.sort_unstable();
        (got, panicked)
    });
    assert_eq!(received, (0..n).collect::<Vec<_>>());
    assert_eq!(panicked, (0..n).filter(|v| v % 7 == 0).count() as u64);
}
