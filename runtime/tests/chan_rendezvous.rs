//! Unbuffered channels are rendezvous points, as in Go: a send completes
//! only once a receiver took the value.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibra_runtime::chan::{channel, TryRecvError, TrySendError};
use fibra_runtime::Runtime;

fn runtimes() -> impl Iterator<Item = Runtime> {
    [1, 2]
        .into_iter()
        .map(|w| Runtime::builder().workers(w).build().unwrap())
}

#[test]
fn send_waits_for_a_receiver() {
    for rt in runtimes() {
        rt.run(|| {
            let (tx, rx) = channel::<u32>(0);
            let sent = Arc::new(AtomicBool::new(false));
            let s = sent.clone();
            let h = fibra_runtime::spawn(move || {
                tx.send(7).unwrap();
                s.store(true, Ordering::SeqCst);
            });
            fibra_runtime::time::sleep(Duration::from_millis(20));
            assert!(
                !sent.load(Ordering::SeqCst),
                "send completed without a receiver"
            );
            assert_eq!(rx.recv(), Ok(7));
            h.join().unwrap();
            assert!(sent.load(Ordering::SeqCst));
        });
    }
}

#[test]
fn recv_waits_for_a_sender() {
    for rt in runtimes() {
        rt.run(|| {
            let (tx, rx) = channel::<u32>(0);
            let h = fibra_runtime::spawn(move || rx.recv().unwrap());
            fibra_runtime::time::sleep(Duration::from_millis(10));
            assert!(!h.is_finished());
            tx.send(9).unwrap();
            assert_eq!(h.join().unwrap(), 9);
        });
    }
}

#[test]
fn try_ops_on_unbuffered_need_a_parked_partner() {
    let (tx, rx) = channel::<u32>(0);
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    Runtime::builder().workers(1).build().unwrap().run(move || {
        let rx2 = rx.clone();
        let h = fibra_runtime::spawn(move || rx2.recv().unwrap());
        // Wait until the receiver is parked, then try_send hands over.
        loop {
            match tx.try_send(5) {
                Ok(()) => break,
                Err(TrySendError::Full(_)) => fibra_runtime::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(h.join().unwrap(), 5);
    });
}

#[test]
fn ping_pong_keeps_order() {
    for rt in runtimes() {
        rt.run(|| {
            let (ping_tx, ping_rx) = channel::<u64>(0);
            let (pong_tx, pong_rx) = channel::<u64>(0);
            let h = fibra_runtime::spawn(move || {
                for v in ping_rx.iter() {
                    pong_tx.send(v * 2).unwrap();
                }
            });
            for i in 0..10_000 {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv(), Ok(i * 2));
            }
            drop(ping_tx);
            h.join().unwrap();
        });
    }
}

#[test]
fn os_thread_senders_meet_green_receivers() {
    for rt in runtimes() {
        let (tx, rx) = channel::<usize>(0);
        let got = Arc::new(AtomicUsize::new(0));
        let g = got.clone();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        tx.send(t * 1000 + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let sum = rt.run(move || {
            let hs: Vec<_> = (0..3)
                .map(|_| {
                    let rx = rx.clone();
                    let g = g.clone();
                    fibra_runtime::spawn(move || {
                        let mut s = 0;
                        for v in rx.iter() {
                            s += v;
                            g.fetch_add(1, Ordering::Relaxed);
                        }
                        s
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
        });
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(got.load(Ordering::Relaxed), 2000);
        let expect: usize = (0..4)
            .map(|t| (0..500).map(|i| t * 1000 + i).sum::<usize>())
            .sum();
        assert_eq!(sum, expect);
    }
}

#[test]
fn green_sender_meets_os_thread_receiver() {
    for rt in runtimes() {
        let (tx, rx) = channel::<u32>(0);
        let t = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
        rt.run(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
            }
        });
        assert_eq!(t.join().unwrap(), (0..100).collect::<Vec<_>>());
    }
}
