//! A select parked on several channels is completed by exactly one of them;
//! the losing arms leave no waiter behind and consume no wake-up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibra_runtime::chan::{channel, TryRecvError, TrySendError};
use fibra_runtime::{select, Runtime};

#[test]
fn losing_send_arms_leave_no_value_behind() {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let (tx_a, rx_a) = channel::<u32>(0);
                let (tx_b, rx_b) = channel::<u32>(0);
                let _keep_open = tx_b.clone();
                let h = fibra_runtime::spawn(move || {
                    select! {
                        send(tx_a, 1) -> r => { r.unwrap(); 'a' }
                        send(tx_b, 2) -> r => { r.unwrap(); 'b' }
                    }
                });
                fibra_runtime::time::sleep(Duration::from_millis(10));
                assert_eq!(rx_a.recv(), Ok(1));
                assert_eq!(h.join().unwrap(), 'a');
                // The losing arm's value was not sent.
                assert_eq!(rx_b.try_recv(), Err(TryRecvError::Empty));
            });
    }
}

#[test]
fn losing_recv_arms_do_not_swallow_values() {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let (tx_a, rx_a) = channel::<u32>(0);
                let (tx_b, rx_b) = channel::<u32>(0);
                let _keep_open = rx_b.clone();
                let h = fibra_runtime::spawn(move || {
                    select! {
                        recv(rx_a) -> v => v.unwrap(),
                        recv(rx_b) -> v => v.unwrap() + 100,
                    }
                });
                fibra_runtime::time::sleep(Duration::from_millis(10));
                tx_a.send(1).unwrap();
                assert_eq!(h.join().unwrap(), 1);
                // The select's stale entry on `b` must not take this value.
                assert_eq!(tx_b.try_send(5), Err(TrySendError::Full(5)));
            });
    }
}

#[test]
fn stale_entry_does_not_consume_a_wakeup() {
    // A select waits on `a` and `b`; a plain receiver also waits on `b`.
    // After the select wins on `a`, a send on `b` must reach the receiver.
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let (tx_a, rx_a) = channel::<u32>(0);
                let (tx_b, rx_b) = channel::<u32>(0);
                let rx_b2 = rx_b.clone();
                let sel = fibra_runtime::spawn(move || {
                    select! {
                        recv(rx_a) -> v => v.unwrap(),
                        recv(rx_b) -> v => v.unwrap() + 100,
                    }
                });
                fibra_runtime::time::sleep(Duration::from_millis(5));
                let plain = fibra_runtime::spawn(move || rx_b2.recv().unwrap());
                fibra_runtime::time::sleep(Duration::from_millis(5));
                tx_a.send(1).unwrap();
                assert_eq!(sel.join().unwrap(), 1);
                tx_b.send(2).unwrap();
                assert_eq!(plain.join().unwrap(), 2);
            });
    }
}

#[test]
fn many_selects_racing_senders_each_value_once() {
    // Many selecting receivers over two channels, many senders: every value
    // arrives exactly once, nobody hangs.
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let (tx_a, rx_a) = channel::<u64>(0);
                let (tx_b, rx_b) = channel::<u64>(2);
                let per = 2_000u64;
                let senders: Vec<_> = (0..4u64)
                    .map(|s| {
                        let (tx_a, tx_b) = (tx_a.clone(), tx_b.clone());
                        fibra_runtime::spawn(move || {
                            for i in 0..per {
                                let v = s * per + i;
                                if i % 2 == 0 {
                                    tx_a.send(v).unwrap();
                                } else {
                                    tx_b.send(v).unwrap();
                                }
                            }
                        })
                    })
                    .collect();
                drop((tx_a, tx_b));
                let seen = Arc::new(
                    (0..4 * per)
                        .map(|_| AtomicUsize::new(0))
                        .collect::<Vec<_>>(),
                );
                let receivers: Vec<_> = (0..4)
                    .map(|_| {
                        let (rx_a, rx_b, seen) = (rx_a.clone(), rx_b.clone(), seen.clone());
                        fibra_runtime::spawn(move || {
                            let (mut a_open, mut b_open) = (true, true);
                            while a_open || b_open {
                                let v = if a_open && b_open {
                                    select! {
                                        recv(rx_a) -> v => v.map_err(|_| 'a'),
                                        recv(rx_b) -> v => v.map_err(|_| 'b'),
                                    }
                                } else if a_open {
                                    rx_a.recv().map_err(|_| 'a')
                                } else {
                                    rx_b.recv().map_err(|_| 'b')
                                };
                                match v {
                                    Ok(v) => {
                                        seen[v as usize].fetch_add(1, Ordering::Relaxed);
                                    }
                                    Err('a') => a_open = false,
                                    Err(_) => b_open = false,
                                }
                            }
                        })
                    })
                    .collect();
                for h in senders {
                    h.join().unwrap();
                }
                for h in receivers {
                    h.join().unwrap();
                }
                for (v, c) in seen.iter().enumerate() {
                    assert_eq!(c.load(Ordering::Relaxed), 1, "value {v}");
                }
            });
    }
}

#[test]
fn select_on_both_ends_of_one_channel_does_not_meet_itself() {
    Runtime::builder().workers(1).build().unwrap().run(|| {
        let (tx, rx) = channel::<u32>(0);
        let (tx2, rx2) = (tx.clone(), rx.clone());
        let h = fibra_runtime::spawn(move || {
            select! {
                send(tx2, 1) -> _ => "sent",
                recv(rx2) -> _ => "received",
            }
        });
        fibra_runtime::time::sleep(Duration::from_millis(10));
        assert!(!h.is_finished(), "a select must not complete with itself");
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(h.join().unwrap(), "sent");
        drop(tx);
    });
}

#[test]
fn timed_out_select_leaves_no_waiter() {
    Runtime::builder().workers(1).build().unwrap().run(|| {
        let (tx, rx) = channel::<u32>(0);
        let r = select! {
            recv(rx) -> _ => false,
            default(Duration::from_millis(5)) => true,
        };
        assert!(r);
        assert_eq!(
            tx.try_send(1),
            Err(TrySendError::Full(1)),
            "no stale receiver"
        );
    });
}

#[test]
fn cancelled_task_parked_in_select_is_unregistered() {
    let (tx, rx) = channel::<u32>(0);
    let rt = Runtime::builder().workers(1).build().unwrap();
    let rx2 = rx.clone();
    rt.spawn(move || {
        select! {
            recv(rx2) -> _ => {}
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    drop(rt); // unwinds the parked select
    assert_eq!(
        tx.try_send(1),
        Err(TrySendError::Full(1)),
        "no stale receiver"
    );
    drop(rx);
}
