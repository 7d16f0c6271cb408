//! Adversarial soundness suite, pinning: a started green thread must never
//! resume on another OS thread (compiled code may keep a thread-local's
//! address across a suspension), whatever it blocked on. Each operation
//! below is made to actually park, woken from the other worker or from a
//! plain thread, and the green thread checks its OS thread and the address
//! of a thread-local before and after.

use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibra::chan::channel;
use fibra::gc::{Gc, GcCell};
use fibra::sync::{Condvar, Mutex, RwLock, Semaphore, WaitGroup};

thread_local! {
    static MARK: Cell<usize> = const { Cell::new(0) };
}

/// Where this green thread runs: the OS thread and a thread-local's address.
fn here() -> (std::thread::ThreadId, usize) {
    (
        std::thread::current().id(),
        MARK.with(|m| m as *const Cell<usize> as usize),
    )
}

/// Runs `op` (which must park at least once) and fails if the green thread
/// came back on another thread.
#[track_caller]
fn stays(name: &str, moved: &AtomicUsize, op: impl FnOnce()) {
    let before = here();
    op();
    if here() != before {
        eprintln!("{name}: the green thread resumed on another OS thread");
        moved.fetch_add(1, Ordering::Relaxed);
    }
}

const ROUNDS: usize = 20;

#[test]
fn green_threads_stay_on_their_worker_across_every_blocking_operation() {
    let rt = fibra::Runtime::builder().workers(2).build().unwrap();
    let moved = Arc::new(AtomicUsize::new(0));
    let m = moved.clone();
    rt.run(move || {
        let listener = fibra::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Partners on both workers and on plain threads do the waking.
        let mut handles = Vec::new();
        for worker_hint in 0..4 {
            let m = m.clone();
            let listener = listener.try_clone().unwrap();
            handles.push(fibra::spawn(move || {
                let m = &m;
                for round in 0..ROUNDS {
                    let delay =
                        Duration::from_micros(200 + 50 * (worker_hint + round) as u64 % 400);
                    let wake_later = |f: Box<dyn FnOnce() + Send>| {
                        if round % 2 == 0 {
                            drop(fibra::spawn(move || {
                                fibra::time::sleep(delay);
                                f()
                            }));
                        } else {
                            std::thread::spawn(move || {
                                std::thread::sleep(delay);
                                f()
                            });
                        }
                    };

                    let (tx, rx) = channel::<u32>(0);
                    let t = tx.clone();
                    wake_later(Box::new(move || t.send(1).unwrap()));
                    stays("chan recv", m, || assert_eq!(rx.recv(), Ok(1)));
                    let r = rx.clone();
                    wake_later(Box::new(move || assert_eq!(r.recv(), Ok(2))));
                    stays("chan send", m, || tx.send(2).unwrap());

                    let t = tx.clone();
                    wake_later(Box::new(move || t.send(3).unwrap()));
                    stays("select", m, || {
                        fibra::select! {
                            recv(rx) -> v => assert_eq!(v, Ok(3)),
                        }
                    });

                    let lock = Arc::new(Mutex::new(0u32));
                    let held = lock.clone();
                    let guard_taken = Arc::new(WaitGroup::new());
                    guard_taken.add(1);
                    let g = guard_taken.clone();
                    drop(fibra::spawn(move || {
                        let mut guard = held.lock().unwrap();
                        g.done();
                        fibra::time::sleep(delay);
                        *guard += 1;
                    }));
                    stays("waitgroup", m, || guard_taken.wait());
                    stays("mutex", m, || assert_eq!(*lock.lock().unwrap(), 1));

                    let rw = Arc::new(RwLock::new(0u32));
                    let w = rw.clone();
                    let (ready_tx, ready_rx) = channel::<()>(0);
                    drop(fibra::spawn(move || {
                        let mut guard = w.write().unwrap();
                        ready_tx.send(()).unwrap();
                        fibra::time::sleep(delay);
                        *guard = 5;
                    }));
                    ready_rx.recv().unwrap();
                    stays("rwlock", m, || assert_eq!(*rw.read().unwrap(), 5));

                    let pair = Arc::new((Mutex::new(false), Condvar::new()));
                    let p = pair.clone();
                    wake_later(Box::new(move || {
                        *p.0.lock().unwrap() = true;
                        p.1.notify_all();
                    }));
                    stays("condvar", m, || {
                        let mut ready = pair.0.lock().unwrap();
                        while !*ready {
                            ready = pair.1.wait(ready).unwrap();
                        }
                    });

                    let sem = Arc::new(Semaphore::new(0));
                    let s = sem.clone();
                    wake_later(Box::new(move || s.add_permits(1)));
                    stays("semaphore", m, || drop(sem.acquire()));

                    stays("sleep", m, || fibra::time::sleep(delay));
                    stays("after", m, || {
                        fibra::time::after(delay).recv().unwrap();
                    });
                    stays("yield", m, fibra::yield_now);
                    stays("join", m, || {
                        fibra::spawn(move || std::thread::sleep(delay))
                            .join()
                            .unwrap()
                    });
                    stays("spawn_blocking", m, || {
                        fibra::spawn_blocking(move || std::thread::sleep(delay))
                            .join()
                            .unwrap()
                    });
                    stays("block_on", m, || {
                        let (t, r) = channel::<u8>(1);
                        wake_later(Box::new(move || t.send(9).unwrap()));
                        assert_eq!(fibra::block_on(r.recv_async()), Ok(9));
                    });

                    // Sockets: an accept and a read that wait for a peer.
                    let a = addr;
                    wake_later(Box::new(move || {
                        let mut s = std::net::TcpStream::connect(a).unwrap();
                        std::thread::sleep(Duration::from_micros(300));
                        s.write_all(b"pin").unwrap();
                    }));
                    let mut conn = None;
                    stays("accept", m, || conn = Some(listener.accept().unwrap().0));
                    let mut conn = conn.unwrap();
                    stays("read", m, || {
                        let mut buf = [0u8; 3];
                        conn.read_exact(&mut buf).unwrap();
                        assert_eq!(&buf, b"pin");
                    });

                    // The collector: a full cycle and allocations beside it.
                    let cell = Gc::new(GcCell::new(vec![Gc::new(round as u64)]));
                    stays("collect", m, fibra::gc::collect);
                    assert_eq!(*cell.with(|v| v[0].clone()), round as u64);
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
    });
    assert_eq!(moved.load(Ordering::Relaxed), 0, "green threads migrated");
}
