//! Per-worker netpollers and placement: sockets follow the green threads
//! that wait on them, a worker asleep in its poller is woken by inbox
//! pushes, timers and IO alike, shutdown reaches workers asleep in their
//! pollers, connections spread across workers, and a spawn held back by a
//! busy spawner is still taken by an idle worker.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use fibra_runtime::chan::channel;
use fibra_runtime::net::{TcpListener, TcpStream};
use fibra_runtime::{spawn, JoinHandle, Runtime};

/// How long any wait in these tests may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(20);

/// Spawns `f` as a green thread on another worker than the caller's: the
/// caller keeps its worker busy (spinning, never yielding) until an idle
/// worker has taken the new green thread (from the caller's spawn slot,
/// once its grace has passed). Retries if the caller was preempted and ran
/// it itself.
fn spawn_elsewhere<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + Clone + 'static,
) -> JoinHandle<T> {
    const WAIT: u8 = 0;
    const RUN: u8 = 1;
    const SKIP: u8 = 2;
    let me = std::thread::current().id();
    for _ in 0..20 {
        let started: Arc<Mutex<Option<ThreadId>>> = Arc::default();
        let go = Arc::new(AtomicU8::new(WAIT));
        let (s, g, f) = (started.clone(), go.clone(), f.clone());
        let h = spawn(move || {
            *s.lock().unwrap() = Some(std::thread::current().id());
            loop {
                match g.load(Ordering::Acquire) {
                    RUN => return Some(f()),
                    SKIP => return None,
                    _ => fibra_runtime::yield_now(),
                }
            }
        });
        let deadline = Instant::now() + HANG;
        let on = loop {
            if let Some(on) = *started.lock().unwrap() {
                break on;
            }
            assert!(Instant::now() < deadline, "no idle worker took the spawn");
            std::hint::spin_loop();
        };
        if on != me {
            go.store(RUN, Ordering::Release);
            return spawn(move || h.join().unwrap().expect("ran f"));
        }
        // Ran here after all (the caller was preempted): retry.
        go.store(SKIP, Ordering::Release);
        assert!(h.join().unwrap().is_none());
    }
    panic!("could not start a green thread on another worker");
}

/// Sockets in each worker's poller, by worker.
fn sockets_per_worker(stats: fibra_runtime::RuntimeStats) -> Vec<usize> {
    stats.workers.iter().map(|w| w.sockets).collect()
}

/// A plain-thread peer that answers every line `ping N` with `pong N`,
/// after `delay` (so that the green thread's read has to wait).
fn delayed_pong_peer(addr: SocketAddr, delay: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let mut buf = [0u8; 16];
        loop {
            match c.read(&mut buf[..8]) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    assert_eq!(n, 8, "one message per read in this test");
                    std::thread::sleep(delay);
                    buf[..4].copy_from_slice(b"pong");
                    c.write_all(&buf[..8]).unwrap();
                }
            }
        }
    })
}

/// Writes `ping` + `i` and reads the peer's `pong` + `i`.
fn round_trip(conn: &mut TcpStream, i: u32) {
    let mut msg = *b"ping\0\0\0\0";
    msg[4..].copy_from_slice(&i.to_le_bytes());
    conn.write_all(&msg).unwrap();
    let mut reply = [0u8; 8];
    conn.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[..4], b"pong");
    assert_eq!(u32::from_le_bytes(reply[4..].try_into().unwrap()), i);
}

#[test]
fn a_socket_waited_on_worker_a_serves_a_green_thread_on_worker_b() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = delayed_pong_peer(listener.local_addr().unwrap(), Duration::from_millis(5));
        let (mut conn, _) = listener.accept().unwrap();
        drop(listener);
        // A wait here puts the connection in this worker's poller.
        conn.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let err = conn.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        conn.set_read_timeout(None).unwrap();
        let here = sockets_per_worker(fibra_runtime::stats());
        assert_eq!(here.iter().sum::<usize>(), 1);

        let conn = Arc::new(Mutex::new(Some(conn)));
        let c2 = conn.clone();
        let h = spawn_elsewhere(move || {
            let mut conn = c2.lock().unwrap().take().unwrap();
            for i in 0..10 {
                round_trip(&mut conn, i);
            }
            conn
        });
        let conn = h.join().unwrap();
        // The green thread on the other worker waited on it more than
        // once: the connection moved to that worker's poller.
        let there = sockets_per_worker(fibra_runtime::stats());
        assert_eq!(there.iter().sum::<usize>(), 1);
        assert_ne!(here, there, "the connection stayed in the first poller");
        drop(conn);
        peer.join().unwrap();
        assert_eq!(fibra_runtime::stats().sockets, 0);
    });
}

#[test]
fn a_socket_handed_back_and_forth_between_workers_keeps_working() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = delayed_pong_peer(listener.local_addr().unwrap(), Duration::from_millis(1));
        let (conn, _) = listener.accept().unwrap();
        let (to_b, from_a) = channel::<(TcpStream, u32)>(0);
        let (to_a, from_b) = channel::<(TcpStream, u32)>(0);
        let b = spawn_elsewhere(move || {
            let mut hops = 0;
            while let Ok((mut conn, i)) = from_a.recv() {
                // Two round trips per visit: each visit's second wait
                // moves the socket here.
                round_trip(&mut conn, i);
                round_trip(&mut conn, i + 1);
                hops += 1;
                to_a.send((conn, i + 2)).unwrap();
            }
            hops
        });
        let mut conn = conn;
        let mut i = 0;
        for _ in 0..20 {
            round_trip(&mut conn, i);
            round_trip(&mut conn, i + 1);
            to_b.send((conn, i + 2)).unwrap();
            (conn, i) = from_b.recv().unwrap();
        }
        drop(to_b);
        assert_eq!(b.join().unwrap(), 20);
        assert_eq!(i, 80);
        drop(conn);
        peer.join().unwrap();
    });
}

/// Waits until every worker of `rt` sleeps (in its poller).
fn until_all_workers_sleep(rt: &Runtime) {
    let deadline = Instant::now() + HANG;
    while rt.metrics().sleeping_workers < rt.workers() {
        assert!(Instant::now() < deadline, "the workers never went to sleep");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_worker_asleep_in_its_poller_wakes_for_an_inbox_push() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = channel::<u32>(0);
    // A parked green thread whose wake comes from a plain thread: it goes
    // to its worker's inbox, and the unpark must reach the worker inside
    // its poller.
    let h = rt.spawn(move || rx.recv().unwrap() + 1);
    for round in 0..5 {
        until_all_workers_sleep(&rt);
        if round < 4 {
            // A wake through a timer in between (the worker's heap).
            let t = rt.spawn(|| fibra_runtime::time::sleep(Duration::from_millis(2)));
            t.join().unwrap();
        }
    }
    tx.send(41).unwrap();
    assert_eq!(h.join().unwrap(), 42);
}

#[test]
fn a_worker_asleep_in_its_poller_wakes_for_its_timers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    for d in [
        Duration::from_micros(300),
        Duration::from_millis(3),
        Duration::from_millis(30),
    ] {
        until_all_workers_sleep(&rt);
        let h = rt.spawn(move || {
            let start = Instant::now();
            fibra_runtime::time::sleep(d);
            start.elapsed()
        });
        let slept = h.join().unwrap();
        assert!(slept >= d, "{d:?} sleep returned after {slept:?}");
    }
}

#[test]
fn a_worker_asleep_in_its_poller_wakes_for_io() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let listener = rt
        .block_on(async { TcpListener::bind("127.0.0.1:0") })
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let h = rt.spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        buf
    });
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    until_all_workers_sleep(&rt);
    c.write_all(b"hello").unwrap();
    assert_eq!(&h.join().unwrap(), b"hello");
}

#[test]
fn shutdown_reaches_workers_asleep_in_their_pollers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let listener = rt
        .block_on(async { TcpListener::bind("127.0.0.1:0") })
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let clients: Vec<_> = (0..8)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let acceptor = rt.spawn(move || {
        let mut readers = Vec::new();
        for _ in 0..8 {
            let (mut c, _) = listener.accept().unwrap();
            readers.push(spawn(move || {
                let mut buf = [0u8; 1];
                let _ = c.read(&mut buf);
            }));
        }
        // Waits on accept again, forever.
        let _ = listener.accept();
        readers
    });
    let sleeper = rt.spawn(|| fibra_runtime::time::sleep(Duration::from_secs(3600)));
    let deadline = Instant::now() + HANG;
    while sockets_per_worker(rt.metrics()).iter().sum::<usize>() < 9 {
        assert!(Instant::now() < deadline, "the readers never waited");
        std::thread::sleep(Duration::from_millis(1));
    }
    until_all_workers_sleep(&rt);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(HANG)
        .expect("dropping the runtime hung with its workers asleep in their pollers");
    assert!(acceptor.join().unwrap_err().is_cancelled());
    assert!(sleeper.join().unwrap_err().is_cancelled());
    drop(clients);
}

#[test]
fn accepted_connections_spread_across_workers() {
    const CONNS: usize = 8;
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let clients = std::thread::spawn(move || {
            (0..CONNS)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect::<Vec<_>>()
        });
        let (tx, rx) = channel::<ThreadId>(CONNS);
        let mut handlers = Vec::new();
        for _ in 0..CONNS {
            let (mut c, _) = listener.accept().unwrap();
            let tx = tx.clone();
            handlers.push(spawn(move || {
                tx.send(std::thread::current().id()).unwrap();
                let mut buf = [0u8; 1];
                let _ = c.read(&mut buf);
            }));
        }
        let mut threads: Vec<ThreadId> = (0..CONNS).map(|_| rx.recv().unwrap()).collect();
        threads.sort_unstable_by_key(|t| format!("{t:?}"));
        threads.dedup();
        assert_eq!(threads.len(), 2, "every handler started on one worker");
        drop(clients.join().unwrap());
        for h in handlers {
            h.join().unwrap();
        }
    });
}

#[test]
fn an_idle_worker_takes_a_spawn_its_busy_spawner_holds_back() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let h = spawn_elsewhere(|| 7);
        assert_eq!(h.join().unwrap(), 7);
    });
}

#[test]
fn many_connections_across_workers_stress() {
    const CONNS: usize = 200;
    const ROUNDS: usize = 50;
    let rt = Runtime::builder().workers(3).build().unwrap();
    rt.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(move || {
            for _ in 0..CONNS {
                let (mut c, _) = listener.accept().unwrap();
                spawn(move || {
                    let mut buf = [0u8; 64];
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => c.write_all(&buf[..n]).unwrap(),
                        }
                    }
                });
            }
        });
        let connected = Arc::new(fibra_runtime::sync::WaitGroup::new());
        connected.add(CONNS as isize);
        let (release_tx, release_rx) = channel::<()>(0);
        let clients: Vec<_> = (0..CONNS)
            .map(|k| {
                let connected = connected.clone();
                let release = release_rx.clone();
                spawn(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    connected.done();
                    let mut buf = [0u8; 32];
                    for r in 0..ROUNDS {
                        let msg = [(k + r) as u8; 32];
                        c.write_all(&msg).unwrap();
                        c.read_exact(&mut buf).unwrap();
                        assert_eq!(buf, msg);
                        if r % 7 == 0 {
                            fibra_runtime::yield_now();
                        }
                    }
                    // Keep the connection until the spread is checked.
                    let _ = release.recv();
                })
            })
            .collect();
        connected.wait();
        // Handlers went to the workers in turn: every worker polls some.
        let deadline = Instant::now() + HANG;
        while sockets_per_worker(fibra_runtime::stats()).contains(&0) {
            assert!(Instant::now() < deadline, "a worker polls no socket");
            fibra_runtime::time::sleep(Duration::from_millis(1));
        }
        release_tx.close();
        for c in clients {
            c.join().unwrap();
        }
        server.join().unwrap();
    });
}
