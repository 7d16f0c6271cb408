//! Where unstarted green threads start on a runtime with two workers:
//! partners spawned by a green thread that then talks to them start on its
//! worker (so their wake-ups never cross workers), while work that waits
//! behind a busy or blocked worker still moves to the idle one.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use fibra_runtime::chan::channel;
use fibra_runtime::{spawn, Runtime};

fn two_workers() -> Runtime {
    Runtime::builder().workers(2).build().unwrap()
}

/// A green thread spawns a partner and at once talks to it, 20 times: the
/// partner starts on the spawner's worker, so their wake-ups stay there.
/// (Rarely, in a debug build on a loaded machine, a partner still waits a
/// millisecond in the spawn slot while the spawner's worker runs on, and
/// the idle worker takes it: one such round is tolerated.)
#[test]
fn a_partner_spawned_before_a_ping_pong_runs_beside_its_spawner() {
    const ROUNDS: usize = 20;
    const TRIPS: u32 = 100;
    let rt = two_workers();
    let apart = rt.run(|| {
        let mut apart = 0;
        for _ in 0..ROUNDS {
            let (ping_tx, ping_rx) = channel::<u32>(0);
            let (pong_tx, pong_rx) = channel::<u32>(0);
            let echo = spawn(move || {
                let on = std::thread::current().id();
                while let Ok(v) = ping_rx.recv() {
                    pong_tx.send(v).unwrap();
                }
                on
            });
            for i in 0..TRIPS {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv().unwrap(), i);
            }
            drop(ping_tx);
            if echo.join().unwrap() != std::thread::current().id() {
                apart += 1;
            }
        }
        apart
    });
    assert!(
        apart <= 1,
        "{apart} of {ROUNDS} partners started on the other worker"
    );
    // Only the rounds apart cross workers (two wake-ups per round trip).
    let remote: u64 = rt.metrics().workers.iter().map(|w| w.remote_wakes).sum();
    assert!(
        remote <= (apart as u64) * (2 * TRIPS as u64 + 2),
        "{remote} wake-ups crossed workers with {apart} rounds apart"
    );
}

#[test]
fn a_ring_spawned_by_one_green_thread_starts_on_its_worker() {
    const RING: usize = 20;
    let rt = two_workers();
    rt.run(|| {
        let on: Arc<Mutex<HashSet<ThreadId>>> = Arc::default();
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..RING).map(|_| channel::<usize>(0)).unzip();
        let (done_tx, done_rx) = channel::<()>(1);
        let ring: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| {
                let (next, done, on) = (txs[(i + 1) % RING].clone(), done_tx.clone(), on.clone());
                spawn(move || {
                    on.lock().unwrap().insert(std::thread::current().id());
                    while let Ok(token) = rx.recv() {
                        if token == 0 {
                            done.send(()).unwrap();
                        } else {
                            next.send(token - 1).unwrap();
                        }
                    }
                })
            })
            .collect();
        txs[0].send(10 * RING).unwrap();
        done_rx.recv().unwrap();
        for tx in &txs {
            tx.close();
        }
        for h in ring {
            h.join().unwrap();
        }
        let on = on.lock().unwrap();
        assert_eq!(
            *on,
            HashSet::from([std::thread::current().id()]),
            "the ring started on {} workers",
            on.len()
        );
    });
}

/// A spawner that spawns CPU-bound tasks and then computes itself for a
/// long time: the idle worker takes the waiting tasks.
#[test]
fn a_backlog_behind_a_computing_spawner_moves_to_the_idle_worker() {
    let rt = two_workers();
    rt.run(|| {
        let me = std::thread::current().id();
        let handles: Vec<_> = (0..4)
            .map(|_| spawn(|| std::thread::current().id()))
            .collect();
        // Compute (without yielding) until one of them ran elsewhere.
        let deadline = Instant::now() + Duration::from_secs(20);
        while handles.iter().all(|h| !h.is_finished()) {
            assert!(Instant::now() < deadline, "the idle worker took nothing");
            std::hint::spin_loop();
        }
        let on: HashSet<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(
            on.iter().any(|&t| t != me),
            "all ran on the spawner's worker"
        );
    });
}

/// A spawner that blocks its worker in a system call (a blocking call in a
/// green thread, which fibra reports but must survive): the idle worker
/// takes the waiting tasks at once instead of waiting for the call to end.
#[test]
fn a_backlog_behind_a_worker_blocked_in_a_system_call_moves_to_the_idle_worker() {
    let rt = two_workers();
    let (ran_on, spawner) = rt.run(|| {
        let (tx, rx) = channel::<ThreadId>(4);
        for _ in 0..4 {
            let tx = tx.clone();
            spawn(move || tx.send(std::thread::current().id()).unwrap());
        }
        let spawner = std::thread::current().id();
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        let blocked = start.elapsed();
        // All four ran while the spawner's worker was blocked.
        let ran_on: Vec<_> = (0..4).map(|_| rx.try_recv().ok()).collect();
        assert!(blocked >= Duration::from_millis(300));
        (ran_on, spawner)
    });
    for on in ran_on {
        let on = on.expect("a task waited behind the blocked worker");
        assert_ne!(on, spawner);
    }
}
