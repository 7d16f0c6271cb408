//! Go-style channel conformance: the classic programs of Go's own channel
//! tests (test/chan: sieve, fifo, doubleselect, nonblock, select on closed
//! channels, goroutine chains), rewritten against fibra's channels and run
//! on one and two workers. Each checks the values, not the timing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fibra_runtime::chan::{channel, Receiver, Sender, TryRecvError, TrySendError};
use fibra_runtime::{select, spawn, Runtime};

fn runtimes() -> impl Iterator<Item = Runtime> {
    [1, 2]
        .into_iter()
        .map(|n| Runtime::builder().workers(n).build().unwrap())
}

/// The concurrent prime sieve: a chain of filters, one green thread each.
#[test]
fn sieve_of_eratosthenes() {
    fn generate(tx: Sender<u64>) {
        for i in 2.. {
            if tx.send(i).is_err() {
                return;
            }
        }
    }
    fn filter(rx: Receiver<u64>, tx: Sender<u64>, prime: u64) {
        for v in rx {
            if v % prime != 0 && tx.send(v).is_err() {
                return;
            }
        }
    }
    for rt in runtimes() {
        let primes = rt.run(|| {
            let (tx, mut rx) = channel(0);
            spawn(move || generate(tx));
            let mut primes = Vec::new();
            for _ in 0..100 {
                let prime = rx.recv().unwrap();
                primes.push(prime);
                let (tx2, rx2) = channel(0);
                spawn(move || filter(rx, tx2, prime));
                rx = rx2;
            }
            // Dropping the last receiver unwinds the chain: every filter
            // and the generator see a failed send and return.
            primes
        });
        assert_eq!(primes.len(), 100);
        assert_eq!(primes[..10], [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert_eq!(primes[99], 541);
    }
}

/// Go's fifo test: values sent by one sender arrive in order, on buffered
/// and unbuffered channels, also through a chain of relays.
#[test]
fn fifo_order_and_relay_chains() {
    for rt in runtimes() {
        rt.run(|| {
            for cap in [0, 1, 10] {
                let (tx, rx) = channel(cap);
                let h = spawn(move || (0..1000).for_each(|i| tx.send(i).unwrap()));
                assert!(rx.iter().eq(0..1000));
                h.join().unwrap();
            }
            // 200 relays in a chain, each forwarding in order.
            let (first_tx, mut rx) = channel::<u32>(0);
            for _ in 0..200 {
                let (tx2, rx2) = channel(0);
                spawn(move || rx.iter().for_each(|v| tx2.send(v).unwrap()));
                rx = rx2;
            }
            spawn(move || (0..100).for_each(|i| first_tx.send(i).unwrap()));
            assert!(rx.iter().eq(0..100));
        });
    }
}

/// Go's doubleselect: several senders select over the same set of
/// channels, several receivers drain them; every value arrives exactly
/// once.
#[test]
fn doubleselect_each_value_once() {
    const N: u64 = 5000;
    for rt in runtimes() {
        let seen = rt.run(|| {
            let chans: Vec<_> = (0..4).map(|_| channel::<u64>(0)).collect();
            let txs: Vec<_> = chans.iter().map(|(t, _)| t.clone()).collect();
            let rxs: Vec<_> = chans.iter().map(|(_, r)| r.clone()).collect();
            drop(chans);
            let senders: Vec<_> = (0..3)
                .map(|s| {
                    let [a, b, c, d] = <[Sender<u64>; 4]>::try_from(txs.clone()).unwrap();
                    spawn(move || {
                        let mut i = s;
                        while i < N {
                            select! {
                                send(a, i) -> r => r.unwrap(),
                                send(b, i) -> r => r.unwrap(),
                                send(c, i) -> r => r.unwrap(),
                                send(d, i) -> r => r.unwrap(),
                            }
                            i += 3;
                        }
                    })
                })
                .collect();
            drop(txs);
            let seen = Arc::new((0..N).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
            let receivers: Vec<_> = rxs
                .into_iter()
                .map(|rx| {
                    let seen = seen.clone();
                    spawn(move || {
                        rx.iter().for_each(|v| {
                            seen[v as usize].fetch_add(1, Ordering::Relaxed);
                        })
                    })
                })
                .collect();
            senders.into_iter().for_each(|h| h.join().unwrap());
            receivers.into_iter().for_each(|h| h.join().unwrap());
            seen
        });
        assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }
}

/// Go's nonblock test: try operations never park, and succeed exactly
/// when a partner or buffer space is there.
#[test]
fn nonblocking_operations() {
    for rt in runtimes() {
        rt.run(|| {
            let (tx, rx) = channel::<u32>(0);
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
            let (btx, brx) = channel::<u32>(2);
            assert_eq!(btx.try_send(1), Ok(()));
            assert_eq!(btx.try_send(2), Ok(()));
            assert!(matches!(btx.try_send(3), Err(TrySendError::Full(3))));
            assert_eq!(brx.try_recv(), Ok(1));
            // A parked receiver makes an unbuffered try_send succeed.
            let r = spawn(move || rx.recv());
            let mut spins = 0;
            while tx.try_send(5).is_err() {
                fibra_runtime::yield_now();
                spins += 1;
                assert!(spins < 1_000_000, "no receiver ever parked");
            }
            assert_eq!(r.join().unwrap(), Ok(5));
            drop(btx);
            assert_eq!(brx.try_recv(), Ok(2));
            assert_eq!(brx.try_recv(), Err(TryRecvError::Disconnected));
        });
    }
}

/// Go's select on closed channels: a closed channel's receive arm is
/// always ready, so a loop selecting on it spins through the remaining
/// values and then sees closure; a `default` arm runs only when nothing
/// is ready.
#[test]
fn select_on_closed_channels() {
    for rt in runtimes() {
        rt.run(|| {
            let (tx, rx) = channel::<u32>(3);
            (0..3).for_each(|i| tx.send(i).unwrap());
            tx.close();
            let (_idle_tx, idle_rx) = channel::<u32>(0);
            let mut got = Vec::new();
            loop {
                let done = select! {
                    recv(rx) -> v => match v {
                        Ok(v) => { got.push(v); false }
                        Err(_) => true,
                    },
                    recv(idle_rx) -> _ => unreachable!("nobody sends on it"),
                    default => unreachable!("a closed channel is always ready"),
                };
                if done {
                    break;
                }
            }
            assert_eq!(got, [0, 1, 2]);
            let r = select! {
                recv(idle_rx) -> _ => "recv",
                default => "default",
            };
            assert_eq!(r, "default");
        });
    }
}

/// Go's "goroutines exit when their channels close": many green threads
/// blocked in recv all return once the senders are gone.
#[test]
fn closing_releases_every_blocked_receiver() {
    for rt in runtimes() {
        rt.run(|| {
            let (tx, rx) = channel::<u32>(0);
            let waiters: Vec<_> = (0..500)
                .map(|_| {
                    let rx = rx.clone();
                    spawn(move || rx.recv().is_err())
                })
                .collect();
            fibra_runtime::yield_now();
            drop(tx);
            assert!(waiters.into_iter().all(|h| h.join().unwrap()));
        });
    }
}
