//! `select!` picks uniformly among ready arms, honours `default`, and has
//! crossbeam's grammar.

use std::time::{Duration, Instant};

use fibra_runtime::chan::{channel, RecvError, SendError};
use fibra_runtime::{select, Runtime};

#[test]
fn ready_arms_are_chosen_uniformly() {
    // Three ready arms, the two on `a` adjacent: a random start offset
    // alone would favour one of them; a permutation does not.
    let (tx_a, rx_a) = channel::<u8>(20_000);
    let (tx_b, rx_b) = channel::<u8>(10_000);
    let n = 6_000;
    for _ in 0..n {
        tx_a.send(0).unwrap();
        tx_a.send(0).unwrap();
        tx_b.send(0).unwrap();
    }
    let mut counts = [0u32; 3];
    for _ in 0..n {
        let i = select! {
            recv(rx_a) -> _ => 0,
            recv(rx_a) -> _ => 1,
            recv(rx_b) -> _ => 2,
        };
        counts[i] += 1;
    }
    // Expect n/3 = 2000 each; 5 sigma of a binomial(6000, 1/3) is ~183.
    for c in counts {
        assert!((1800..2200).contains(&c), "unfair choice: {counts:?}");
    }
}

#[test]
fn default_runs_when_nothing_is_ready() {
    let (_tx, rx) = channel::<u8>(0);
    let (tx2, _rx2) = channel::<u8>(0);
    let r = select! {
        recv(rx) -> _ => "recv",
        send(tx2, 1) -> _ => "send",
        default => "default",
    };
    assert_eq!(r, "default");
}

#[test]
fn ready_arm_beats_default() {
    let (tx, rx) = channel::<u8>(1);
    tx.send(4).unwrap();
    let r = select! {
        recv(rx) -> v => v.unwrap(),
        default => 0,
    };
    assert_eq!(r, 4);
}

#[test]
fn default_timeout_waits_then_gives_up() {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let (_tx, rx) = channel::<u8>(0);
                let start = Instant::now();
                let r = select! {
                    recv(rx) -> _ => false,
                    default(Duration::from_millis(30)) => true,
                };
                assert!(r);
                assert!(start.elapsed() >= Duration::from_millis(30));
            });
    }
    // And from a plain OS thread.
    let (_tx, rx) = channel::<u8>(0);
    let start = Instant::now();
    let r = select! {
        recv(rx) -> _ => false,
        default(Duration::from_millis(10)) => true,
    };
    assert!(r && start.elapsed() >= Duration::from_millis(10));
}

#[test]
fn default_timeout_is_beaten_by_a_late_sender() {
    Runtime::builder().workers(2).build().unwrap().run(|| {
        let (tx, rx) = channel::<u8>(0);
        fibra_runtime::spawn(move || {
            fibra_runtime::time::sleep(Duration::from_millis(10));
            tx.send(3).unwrap();
        });
        let r = select! {
            recv(rx) -> v => v.unwrap(),
            default(Duration::from_secs(10)) => 0,
        };
        assert_eq!(r, 3);
    });
}

#[test]
fn closed_channels_make_arms_ready() {
    let (tx, rx) = channel::<u8>(0);
    drop(tx);
    let r = select! {
        recv(rx) -> v => v,
    };
    assert_eq!(r, Err(RecvError));
    let (tx, rx) = channel::<u8>(0);
    drop(rx);
    let r = select! {
        send(tx, 5) -> r => r,
    };
    assert_eq!(r, Err(SendError(5)));
}

#[test]
fn blocking_select_parks_until_one_arm_completes() {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let (tx1, rx1) = channel::<u32>(0);
                let (tx2, rx2) = channel::<u32>(0);
                let (out_tx, out_rx) = channel::<u32>(0);
                let h = fibra_runtime::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..3 {
                        select! {
                            recv(rx1) -> v => got.push(v.unwrap()),
                            recv(rx2) -> v => got.push(v.unwrap() + 100),
                            send(out_tx, 7) -> r => { r.unwrap(); got.push(1000) }
                        }
                    }
                    got
                });
                fibra_runtime::time::sleep(Duration::from_millis(5));
                tx2.send(1).unwrap();
                fibra_runtime::time::sleep(Duration::from_millis(5));
                assert_eq!(out_rx.recv(), Ok(7));
                fibra_runtime::time::sleep(Duration::from_millis(5));
                tx1.send(2).unwrap();
                assert_eq!(h.join().unwrap(), [101, 1000, 2]);
            });
    }
}

#[test]
fn grammar_blocks_expressions_and_control_flow() {
    let (tx, rx) = channel::<i32>(8);
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    tx.close();
    let mut sum = 0;
    loop {
        select! {
            recv(rx) -> v => {
                match v {
                    Ok(v) if v == 3 => continue,
                    Ok(v) => sum += v,
                    Err(_) => break,
                }
            }
            default => unreachable!("a closed channel is always ready"),
        }
    }
    assert_eq!(sum, 0 + 1 + 2 + 4);

    // Receivers by value or by reference, same channel in several arms,
    // a trailing comma, and a value.
    let (tx, rx) = channel::<i32>(1);
    let rxr = &rx;
    tx.send(1).unwrap();
    let v: i32 = select! {
        recv(rxr) -> v => v.unwrap(),
        recv(rx) -> v => v.unwrap(),
        send(tx, 2) -> _ => -1,
    };
    assert!(v == 1 || v == -1);
}

#[test]
fn empty_select_with_default() {
    let r = select! { default => 5 };
    assert_eq!(r, 5);
}
