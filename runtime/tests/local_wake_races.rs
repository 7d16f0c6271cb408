//! A wake made by a green thread on its partner's own worker hands the
//! partner its `RUNNING` bit directly (`task::state`, `State::wake_held`).
//! These tests race such wakes with wakes from elsewhere - a timer firing
//! in the worker loop, a sender on another worker, a cancellation asked
//! from a plain OS thread - and check that no wake-up is lost, no value is
//! lost or duplicated, and a cancelled partner still unwinds.

use std::time::Duration;

use fibra_runtime::chan::{channel, RecvTimeoutError};

mod bounded;
use bounded::{runtime, within_a_minute};

/// Partners ping-pong over rendezvous channels while the pinger waits with
/// a very short timeout, so timer wakes from the worker loop race the
/// partner's local hand-off wakes.
#[test]
fn local_hand_offs_race_timer_wakes() {
    let total = within_a_minute(|| {
        runtime(2).run(|| {
            let pairs: Vec<_> = (0..8u64)
                .map(|p| {
                    fibra_runtime::spawn(move || {
                        let (ping_tx, ping_rx) = channel::<u64>(0);
                        let (pong_tx, pong_rx) = channel::<u64>(0);
                        // Spawned by the pinger: starts beside it.
                        let echo = fibra_runtime::spawn(move || {
                            while let Ok(v) = ping_rx.recv() {
                                pong_tx.send(v + 1).unwrap();
                            }
                        });
                        let mut sum = 0;
                        for i in 0..5_000u64 {
                            ping_tx.send(p * 1_000_000 + i).unwrap();
                            loop {
                                match pong_rx.recv_timeout(Duration::from_micros(20)) {
                                    Ok(v) => {
                                        assert_eq!(v, p * 1_000_000 + i + 1);
                                        sum += 1;
                                        break;
                                    }
                                    Err(RecvTimeoutError::Timeout) => continue,
                                    Err(e) => panic!("unexpected {e:?}"),
                                }
                            }
                        }
                        drop(ping_tx);
                        echo.join().unwrap();
                        sum
                    })
                })
                .collect();
            pairs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        })
    });
    assert_eq!(total, 8 * 5_000);
}

/// Many senders on every worker feed one receiver, which hands each value
/// on to a local partner: local wakes race wakes arriving from other
/// workers for the same tasks.
#[test]
fn local_and_remote_wakes_of_the_same_task() {
    let got = within_a_minute(|| {
        runtime(3).run(|| {
            let (tx, rx) = channel::<u64>(0);
            let (fwd_tx, fwd_rx) = channel::<u64>(0);
            let sink = fibra_runtime::spawn(move || fwd_rx.iter().sum::<u64>());
            let relay = fibra_runtime::spawn(move || {
                for v in rx.iter() {
                    fwd_tx.send(v).unwrap();
                }
            });
            let senders: Vec<_> = (0..6u64)
                .map(|s| {
                    let tx = tx.clone();
                    fibra_runtime::spawn(move || {
                        for i in 0..3_000u64 {
                            tx.send(s * 10_000 + i).unwrap();
                            if i % 64 == 0 {
                                fibra_runtime::yield_now();
                            }
                        }
                    })
                })
                .collect();
            drop(tx);
            for h in senders {
                h.join().unwrap();
            }
            relay.join().unwrap();
            sink.join().unwrap()
        })
    });
    let want: u64 = (0..6u64)
        .map(|s| (0..3_000u64).map(|i| s * 10_000 + i).sum::<u64>())
        .sum();
    assert_eq!(got, want);
}

/// A plain OS thread cancels green threads that are busy ping-ponging
/// with a partner on their worker: whether the cancellation lands while
/// the task is parked, runnable after a local hand-off, or running, it
/// unwinds, and its partner sees the channel close.
#[test]
fn cancellation_from_a_thread_races_local_hand_offs() {
    let outcomes = within_a_minute(|| {
        runtime(2).run(|| {
            let mut handles = Vec::new();
            let mut echoes = Vec::new();
            for _ in 0..16 {
                let (ping_tx, ping_rx) = channel::<u64>(0);
                let (pong_tx, pong_rx) = channel::<u64>(0);
                let pinger = fibra_runtime::spawn(move || {
                    let mut i = 0u64;
                    while ping_tx.send(i).is_ok() {
                        assert_eq!(pong_rx.recv().unwrap(), i);
                        i += 1;
                    }
                });
                echoes.push(fibra_runtime::spawn(move || {
                    let mut n = 0u64;
                    while let Ok(v) = ping_rx.recv() {
                        if pong_tx.send(v).is_err() {
                            break;
                        }
                        n += 1;
                    }
                    n
                }));
                handles.push(pinger);
            }
            fibra_runtime::time::sleep(Duration::from_millis(5));
            // The handles go to a plain OS thread, which cancels them and
            // hands them back.
            let (back_tx, back_rx) = channel(1);
            std::thread::spawn(move || {
                for (i, h) in handles.iter().enumerate() {
                    if i % 4 == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    h.cancel();
                }
                back_tx.send(handles).unwrap();
            });
            let handles: Vec<fibra_runtime::JoinHandle<()>> = back_rx.recv().unwrap();
            let cancelled = handles
                .into_iter()
                .map(|h| h.join().unwrap_err().is_cancelled())
                .filter(|&c| c)
                .count();
            for e in echoes {
                e.join().unwrap();
            }
            cancelled
        })
    });
    assert_eq!(outcomes, 16);
}
