//! Adversarial soundness suite, runtime side: programs written only in safe
//! code that attack cancellation, shutdown and `Runtime::run`'s borrows.
//!
//! A reproducer that, when broken, corrupts memory, aborts or hangs runs in
//! a child process (`tests/common/child.rs`), killed after a bound; the
//! test checks its exit and the marker line it prints when every value it
//! checked was right.

mod common;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child;
use fibra::chan::channel;
use fibra::Runtime;

/// In the child, runs `body` (and prints the marker); in the parent, runs
/// the child and checks it passed within `limit`.
fn case(name: &str, limit: Duration, body: fn()) {
    case_with_env(name, limit, &[], body)
}

/// [`case`], with extra environment variables for the child.
fn case_with_env(name: &str, limit: Duration, envs: &[(&str, &str)], body: fn()) {
    if child::is_child(name) {
        body();
        println!("case passed: {name}");
        return;
    }
    let out = child::run(name, envs, limit);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("case passed: {name}")),
        "case {name} failed: {}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

// ----- futures dropped in place -----

/// Async tasks parked in `recv_async` when the runtime shuts down: their
/// futures are dropped where they lie, so the channel's waiter queue never
/// keeps an entry into freed task memory.
#[test]
fn shutdown_drops_parked_recv_async_futures_in_place() {
    case(
        "shutdown_drops_parked_recv_async_futures_in_place",
        Duration::from_secs(20),
        || {
            for round in 0..5 {
                let handles = fibra::run(|| {
                    let handles: Vec<_> = (0..4)
                        .map(|_| {
                            fibra::spawn_async(async {
                                let (_t, r) = channel::<u8>(0);
                                let _ = r.recv_async().await;
                            })
                        })
                        .collect();
                    fibra::time::sleep(Duration::from_millis(20));
                    handles
                });
                for h in handles {
                    let err = h.join().expect_err("the runtime was dropped");
                    assert!(err.is_cancelled(), "round {round}: {err}");
                }
            }
            // A channel that outlives the runtime: the waiters of the
            // cancelled tasks are gone from its queue (their tasks, kept
            // alive by the handles, still hold the old bytes a ghost entry
            // would point to), and a value sent later reaches a live
            // receiver.
            let (tx, rx) = channel::<u64>(0);
            let rt = Runtime::builder().workers(2).build().unwrap();
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let rx = rx.clone();
                    rt.spawn_async(async move {
                        let _ = rx.recv_async().await;
                    })
                })
                .collect();
            rt.run(|| fibra::time::sleep(Duration::from_millis(20)));
            drop(rt);
            let taker = std::thread::spawn(move || rx.recv_timeout(Duration::from_secs(3)));
            std::thread::sleep(Duration::from_millis(20));
            let sent = tx.send_timeout(41, Duration::from_secs(3));
            assert_eq!(taker.join().unwrap(), Ok(41), "the value went to a ghost");
            assert!(sent.is_ok());
            for h in handles {
                assert!(h.join().unwrap_err().is_cancelled());
            }
        },
    );
}

/// An async task parked in `Mutex::lock_async` when the runtime is dropped:
/// its waiter leaves the lock's queue, so unlocking hands the lock to no
/// freed memory and the next `lock()` gets it.
#[test]
fn shutdown_drops_parked_lock_async_in_place() {
    case(
        "shutdown_drops_parked_lock_async_in_place",
        Duration::from_secs(20),
        || {
            let m = Arc::new(fibra::sync::Mutex::new(0u64));
            for round in 0..5u64 {
                let guard = m.lock().unwrap();
                let rt = Runtime::builder().workers(2).build().unwrap();
                let handles: Vec<_> = (0..3)
                    .map(|_| {
                        let m = m.clone();
                        rt.spawn_async(async move {
                            *m.lock_async().await.unwrap() += 100;
                        })
                    })
                    .collect();
                rt.run(|| fibra::time::sleep(Duration::from_millis(20)));
                drop(rt);
                for h in handles {
                    assert!(h.join().unwrap_err().is_cancelled());
                }
                drop(guard);
                let relock = {
                    let m = m.clone();
                    std::thread::spawn(move || {
                        let mut g = m.lock().unwrap();
                        *g += 1;
                        *g
                    })
                };
                assert_eq!(relock.join().unwrap(), round + 1);
            }
        },
    );
}

/// Polls two futures side by side (as `futures::join` does), keeping both
/// inline: a panic in the second leaves the first, registered and pinned,
/// inside the task's future, which the task must then drop where it lies.
struct Join2<A: Future, B: Future> {
    a: A,
    a_out: Option<A::Output>,
    b: B,
}

impl<A: Future, B: Future> Future for Join2<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        // SAFETY: structural pinning of `a` and `b`: they are never moved
        // out of a pinned `Join2` (no `Drop` impl, no `Unpin`), only polled
        // in place; `a_out` is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        if this.a_out.is_none() {
            // SAFETY: see above.
            let a = unsafe { std::pin::Pin::new_unchecked(&mut this.a) };
            if let std::task::Poll::Ready(v) = a.poll(cx) {
                this.a_out = Some(v);
            }
        }
        // SAFETY: see above.
        let b = unsafe { std::pin::Pin::new_unchecked(&mut this.b) }.poll(cx);
        match (b, this.a_out.is_some()) {
            (std::task::Poll::Ready(b), true) => {
                std::task::Poll::Ready((this.a_out.take().unwrap(), b))
            }
            _ => std::task::Poll::Pending,
        }
    }
}

/// A future that panics while a receive polled beside it is registered:
/// the task's future is dropped in place, so the receive's destructor
/// unlinks its real waiter and a later send is not handed to a ghost.
#[test]
fn a_future_panicking_with_a_registered_recv_is_dropped_in_place() {
    case(
        "a_future_panicking_with_a_registered_recv_is_dropped_in_place",
        Duration::from_secs(20),
        || {
            let (tx, rx) = channel::<u64>(0);
            // Keeps the channel open after the task's receiver is dropped.
            let spare = rx.clone();
            let rt = Runtime::builder().workers(1).build().unwrap();
            let h = rt.spawn_async(Join2 {
                a: async move { rx.recv_async().await },
                a_out: None,
                b: std::future::poll_fn(|_| -> std::task::Poll<()> {
                    panic!("panics beside a registered receive")
                }),
            });
            while !h.is_finished() {
                std::thread::sleep(Duration::from_millis(1));
            }
            // No receiver waits any more: the send times out instead of
            // "succeeding" into the dropped receive's waiter (whose bytes
            // the unjoined task still holds).
            let r = tx.send_timeout(7, Duration::from_millis(200));
            assert!(r.is_err(), "a send was taken by a dropped receive");
            let taker = std::thread::spawn(move || spare.recv_timeout(Duration::from_secs(3)));
            tx.send_timeout(8, Duration::from_secs(3)).unwrap();
            assert_eq!(taker.join().unwrap(), Ok(8));
            assert!(h.join().unwrap_err().is_panic());
            drop(rt);
        },
    );
}

/// Runs the child like [`case`], expecting it to abort; returns its stderr.
fn aborting_case(name: &str, limit: Duration, body: fn()) -> Option<String> {
    if child::is_child(name) {
        body();
        println!("case returned: {name}");
        return None;
    }
    let out = child::run(name, &[], limit);
    use std::os::unix::process::ExitStatusExt;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
    Some(stderr)
}

// ----- Runtime::run never outlives its borrows -----

static MAIN_SUM: AtomicU64 = AtomicU64::new(u64::MAX);

fn run_borrowing(rt: &Runtime, rx: fibra::chan::Receiver<u64>) -> u64 {
    let data: Vec<u64> = (0..1000).collect();
    rt.run(|| {
        let v = rx.recv().unwrap_or(0);
        let sum = data.iter().sum::<u64>() + v;
        MAIN_SUM.store(sum, Ordering::SeqCst);
        sum
    })
}

/// A deadlock report while the main green thread borrows the caller's
/// frame: `run` unwinds the main green thread first, so a plain thread that
/// sends after the grace period gets an error, and nothing reads the dead
/// frame.
#[test]
fn deadlock_report_unwinds_the_borrowing_main_green_thread_first() {
    case(
        "deadlock_report_unwinds_the_borrowing_main_green_thread_first",
        Duration::from_secs(20),
        || {
            let rt = Runtime::builder()
                .workers(1)
                .deadlock_grace(Some(Duration::from_millis(200)))
                .build()
                .unwrap();
            let (tx, rx) = channel::<u64>(0);
            let late = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(900));
                tx.send(1).is_err()
            });
            let r = catch_unwind(AssertUnwindSafe(|| run_borrowing(&rt, rx)));
            let message = panic_text(&*r.expect_err("a deadlock is reported"));
            assert!(
                message.contains("all green threads are asleep - deadlock!"),
                "{message}"
            );
            assert!(message.contains("main"), "{message}");
            // Reuse the memory the dead frame and its vector had.
            let scribble: Vec<Vec<u64>> = (0..64).map(|_| vec![u64::MAX / 3; 1000]).collect();
            assert!(late.join().unwrap(), "the late send found a receiver");
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(
                MAIN_SUM.load(Ordering::SeqCst),
                u64::MAX,
                "main read a dead frame"
            );
            drop(scribble);
            // The runtime still works.
            assert_eq!(rt.run(|| fibra::spawn(|| 5).join().unwrap()), 5);
        },
    );
}

/// Parks in its destructor on a channel nobody sends on.
struct ParksOnDrop<'a>(&'a fibra::chan::Receiver<u64>);

impl Drop for ParksOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.recv();
    }
}

/// A deadlocked main green thread that cannot unwind (its destructor parks
/// again, and nothing can wake it): `run` neither returns nor unwinds past
/// the frame it borrows; the process aborts with the report, as Go's fatal
/// error does.
#[test]
fn a_deadlocked_main_that_cannot_unwind_aborts_with_the_report() {
    let stderr = aborting_case(
        "a_deadlocked_main_that_cannot_unwind_aborts_with_the_report",
        Duration::from_secs(20),
        || {
            let rt = Runtime::builder()
                .workers(1)
                .deadlock_grace(Some(Duration::from_millis(100)))
                .build()
                .unwrap();
            let (_tx, rx) = channel::<u64>(0);
            let _ = catch_unwind(AssertUnwindSafe(|| {
                rt.run(|| {
                    let _stuck = ParksOnDrop(&rx);
                    let _ = rx.recv();
                })
            }));
        },
    );
    if let Some(stderr) = stderr {
        assert!(
            stderr.contains("fatal error: all green threads are asleep - deadlock!"),
            "{stderr}"
        );
        assert!(stderr.contains("cannot finish unwinding"), "{stderr}");
    }
}

/// The main green thread woken in time (before the grace period ends)
/// returns its value as usual.
#[test]
fn a_main_green_thread_woken_within_the_grace_returns_its_value() {
    let rt = Runtime::builder()
        .workers(1)
        .deadlock_grace(Some(Duration::from_secs(2)))
        .build()
        .unwrap();
    let (tx, rx) = channel::<u64>(0);
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        tx.send(1).unwrap();
    });
    let data: Vec<u64> = (0..10).collect();
    let sum = rt.run(|| data.iter().sum::<u64>() + rx.recv().unwrap());
    assert_eq!(sum, 46);
    sender.join().unwrap();
}

static INNER_BAD: AtomicBool = AtomicBool::new(false);
static INNER_READS: AtomicU64 = AtomicU64::new(0);

/// `Runtime::run` from a green thread of another runtime, which shuts down
/// while the inner main green thread still reads the borrowed frame: the
/// inner one is cancelled and unwound before that frame goes.
#[test]
fn run_from_a_green_thread_of_another_runtime_outlives_its_shutdown() {
    case(
        "run_from_a_green_thread_of_another_runtime_outlives_its_shutdown",
        Duration::from_secs(20),
        || {
            let outer = Runtime::builder().workers(1).build().unwrap();
            let inner = Arc::new(Runtime::builder().workers(1).build().unwrap());
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            let inner2 = inner.clone();
            let h = outer.spawn(move || {
                let data = vec![3u64; 1000];
                inner2.run(|| {
                    started_tx.send(()).unwrap();
                    for _ in 0..200 {
                        fibra::time::sleep(Duration::from_millis(5));
                        if data.iter().sum::<u64>() != 3000 {
                            INNER_BAD.store(true, Ordering::SeqCst);
                        }
                        INNER_READS.fetch_add(1, Ordering::SeqCst);
                    }
                });
            });
            started_rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(30));
            drop(outer);
            assert!(h.join().unwrap_err().is_cancelled());
            let reads = INNER_READS.load(Ordering::SeqCst);
            let scribble: Vec<Vec<u64>> = (0..64).map(|_| vec![7u64; 1000]).collect();
            std::thread::sleep(Duration::from_millis(200));
            drop(scribble);
            assert!(
                !INNER_BAD.load(Ordering::SeqCst),
                "the inner main read a dead frame"
            );
            assert!(reads < 200, "the inner main ran to its end ({reads} reads)");
            assert_eq!(INNER_READS.load(Ordering::SeqCst), reads, "it ran on");
            assert_eq!(inner.run(|| fibra::spawn(|| 9).join().unwrap()), 9);
        },
    );
}

/// `Runtime::run` from one of the same runtime's green threads (with the
/// default deadlock grace) runs the closure there instead of hanging; from
/// an async task it panics at once.
#[test]
fn run_from_a_green_thread_of_the_same_runtime_runs_in_place() {
    case(
        "run_from_a_green_thread_of_the_same_runtime_runs_in_place",
        Duration::from_secs(20),
        || {
            for workers in [1, 2] {
                let rt = Arc::new(Runtime::builder().workers(workers).build().unwrap());
                let data = [1u64, 2, 3];
                let v = rt.run(|| {
                    let inner = rt.run(|| {
                        let h = fibra::spawn(|| 10u64);
                        data.iter().sum::<u64>() + h.join().unwrap()
                    });
                    inner * 2
                });
                assert_eq!(v, 32);
                let rt2 = rt.clone();
                let h = rt.spawn(move || rt2.run(|| 4));
                assert_eq!(h.join().unwrap(), 4);
                let rt3 = rt.clone();
                let h = rt.spawn_async(async move { rt3.run(|| 1) });
                let err = h.join().unwrap_err();
                assert!(err.is_panic());
                assert!(err.to_string().contains("async task"), "{err}");
            }
        },
    );
}

// ----- Duration::MAX means forever -----

#[test]
fn duration_max_waits_forever_and_is_interrupted() {
    case(
        "duration_max_waits_forever_and_is_interrupted",
        Duration::from_secs(20),
        || {
            let rt = Runtime::builder()
                .workers(2)
                .deadlock_grace(Some(Duration::MAX))
                .build()
                .unwrap();
            rt.run(|| {
                // recv_timeout(MAX) in a green thread, woken by a send.
                let (tx, rx) = channel::<u32>(0);
                let h = fibra::spawn(move || rx.recv_timeout(Duration::MAX));
                fibra::time::sleep(Duration::from_millis(10));
                tx.send(5).unwrap();
                assert_eq!(h.join().unwrap(), Ok(5));
                // ... and by a close.
                let (tx, rx) = channel::<u32>(0);
                let h = fibra::spawn(move || rx.recv_timeout(Duration::MAX).is_err());
                fibra::time::sleep(Duration::from_millis(10));
                drop(tx);
                assert!(h.join().unwrap());
                // send_timeout(MAX) on a full channel, taken later.
                let (tx, rx) = channel::<u32>(1);
                tx.send(1).unwrap();
                let h = fibra::spawn(move || tx.send_timeout(2, Duration::MAX).is_ok());
                fibra::time::sleep(Duration::from_millis(10));
                assert_eq!(rx.recv(), Ok(1));
                assert!(h.join().unwrap());
                assert_eq!(rx.recv(), Ok(2));
                // after(MAX) never fires; the other arm wins.
                let (tx, rx) = channel::<u32>(1);
                tx.send(3).unwrap();
                let v = fibra::select! {
                    recv(fibra::time::after(Duration::MAX)) -> _ => 0,
                    recv(rx) -> v => v.unwrap(),
                };
                assert_eq!(v, 3);
                let t = fibra::time::Ticker::new(Duration::MAX);
                t.stop();
                // Semaphore and Sleep future.
                let s = Arc::new(fibra::sync::Semaphore::new(0));
                let s2 = s.clone();
                let h = fibra::spawn(move || s2.acquire_timeout(Duration::MAX).is_some());
                fibra::time::sleep(Duration::from_millis(10));
                s.add_permits(1);
                assert!(h.join().unwrap());
                drop(fibra::time::Sleep::new(Duration::MAX));
            });
            // A plain thread: recv_timeout(MAX) interrupted by a send.
            let (tx, rx) = channel::<u32>(0);
            let h = std::thread::spawn(move || rx.recv_timeout(Duration::MAX));
            std::thread::sleep(Duration::from_millis(10));
            tx.send(6).unwrap();
            assert_eq!(h.join().unwrap(), Ok(6));
            // A socket read with a MAX timeout, interrupted by the peer.
            rt.run(|| {
                use std::io::{Read, Write};
                let listener = fibra::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let h = fibra::spawn(move || {
                    let (mut s, _) = listener.accept().unwrap();
                    s.set_read_timeout(Some(Duration::MAX)).unwrap();
                    let mut buf = [0u8; 4];
                    s.read_exact(&mut buf).unwrap();
                    buf
                });
                let mut c = fibra::net::TcpStream::connect(addr).unwrap();
                fibra::time::sleep(Duration::from_millis(10));
                c.write_all(b"ping").unwrap();
                assert_eq!(&h.join().unwrap(), b"ping");
            });
            // sleep(MAX), cancelled by the runtime's shutdown.
            let h = rt.spawn(|| fibra::time::sleep(Duration::MAX));
            std::thread::sleep(Duration::from_millis(20));
            drop(rt);
            assert!(h.join().unwrap_err().is_cancelled());
        },
    );
}

// ----- a runtime dropped from its own green thread -----

fn threads_and_fds() -> (usize, usize) {
    let count = |dir: &str| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    (count("/proc/self/task"), count("/proc/self/fd"))
}

#[test]
fn a_runtime_dropped_from_its_own_green_thread_shuts_down() {
    case(
        "a_runtime_dropped_from_its_own_green_thread_shuts_down",
        Duration::from_secs(20),
        || {
            // A first runtime sets up the process-wide parts (GC hooks,
            // signal threads) so that they are not counted as a leak.
            fibra::run(|| ());
            let before = threads_and_fds();
            for _ in 0..3 {
                let rt = Arc::new(Runtime::builder().workers(2).build().unwrap());
                let (tx, rx) = channel::<()>(0);
                let mine = rt.clone();
                let h = rt.spawn(move || {
                    rx.recv().unwrap();
                    drop(mine);
                    7
                });
                drop(rt);
                tx.send(()).unwrap();
                // It returns its value, or is cancelled at its end by the
                // shutdown it started; it must not panic.
                if let Err(err) = h.join() {
                    assert!(err.is_cancelled(), "{err}");
                }
            }
            let start = Instant::now();
            loop {
                let now = threads_and_fds();
                if now.0 <= before.0 && now.1 <= before.1 {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "threads and fds before {before:?}, now {now:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        },
    );
}

// ----- Runtime::block_on inside a green thread -----

#[test]
fn runtime_block_on_in_a_green_thread() {
    let a = Runtime::builder().workers(1).build().unwrap();
    let b = Runtime::builder().workers(1).build().unwrap();
    let v = a.run(|| {
        // Its own runtime: parks only this green thread.
        let v = a.block_on(async { fibra::spawn(|| 20).await.unwrap() });
        // Another runtime's: refused, nothing entered.
        let r = catch_unwind(AssertUnwindSafe(|| b.block_on(async { 1 })));
        let message = panic_text(&*r.expect_err("refused"));
        assert!(message.contains("another runtime"), "{message}");
        // Other green threads on this worker still see their own runtime.
        let h = fibra::spawn(|| fibra::spawn(|| 2).join().unwrap());
        v + h.join().unwrap()
    });
    assert_eq!(v, 22);
    assert_eq!(b.block_on(async { 3 }), 3);
}

// ----- cancellation meets a destructor that cannot finish -----

static DROPPED_AFTER: AtomicU64 = AtomicU64::new(0);

struct CountsDrop;

impl Drop for CountsDrop {
    fn drop(&mut self) {
        DROPPED_AFTER.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits, in its destructor, for a value nobody sends.
struct BlocksOnDrop(fibra::chan::Receiver<()>);

impl Drop for BlocksOnDrop {
    fn drop(&mut self) {
        let _ = self.0.recv();
    }
}

/// Sleeps in its destructor, then counts itself.
struct SleepsOnDrop;

static SLEPT_ON_DROP: AtomicU64 = AtomicU64::new(0);

impl Drop for SleepsOnDrop {
    fn drop(&mut self) {
        fibra::time::sleep(Duration::from_millis(20));
        SLEPT_ON_DROP.fetch_add(1, Ordering::SeqCst);
    }
}

/// Shutdown cancels green threads whose destructors park with nothing left
/// to wake them: the process neither aborts nor hangs, their handles
/// resolve as cancelled (their stacks are leaked), the other green threads
/// are unwound as usual (a destructor that sleeps finishes its sleep), and
/// the next runtime works.
///
/// The abandoned stacks are leaked by design, so LeakSanitizer is off in
/// this child (under `scripts/memcheck.sh --asan`).
#[test]
fn shutdown_survives_a_destructor_that_blocks_during_cancellation() {
    case_with_env(
        "shutdown_survives_a_destructor_that_blocks_during_cancellation",
        Duration::from_secs(20),
        &[("ASAN_OPTIONS", "detect_leaks=0")],
        || {
            let rt = Runtime::builder().workers(2).build().unwrap();
            let (never_tx, never_rx) = channel::<()>(0);
            let (_tx, rx) = channel::<()>(0);
            let handles: Vec<_> = (0..6u64)
                .map(|i| {
                    let (rx, never_rx) = (rx.clone(), never_rx.clone());
                    rt.spawn(move || {
                        let _normal = CountsDrop;
                        let _sleeps = SleepsOnDrop;
                        let _stuck = (i % 2 == 0).then(|| BlocksOnDrop(never_rx));
                        let _ = rx.recv();
                    })
                })
                .collect();
            rt.run(|| fibra::time::sleep(Duration::from_millis(30)));
            drop(rt);
            for h in handles {
                assert!(h.join().unwrap_err().is_cancelled());
            }
            // The three without a blocking destructor were fully unwound
            // (the others stop before reaching `_normal`).
            assert_eq!(DROPPED_AFTER.load(Ordering::SeqCst), 3);
            assert_eq!(SLEPT_ON_DROP.load(Ordering::SeqCst), 3);
            drop(never_tx);
            let v = fibra::run(|| fibra::spawn(|| 11).join().unwrap());
            assert_eq!(v, 11);
        },
    );
}

// ----- cancellation meets a destructor that panics -----

/// Panics in its destructor.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a destructor panics during the cancellation unwind");
    }
}

static DROPPED_BEFORE_PANIC: AtomicU64 = AtomicU64::new(0);
static DROPPED_AFTER_PANIC: AtomicU64 = AtomicU64::new(0);

struct CountsInto(&'static AtomicU64);

impl Drop for CountsInto {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `JoinHandle::cancel` of a green thread whose destructor panics while it
/// unwinds: Rust would abort the process; fibra stops that unwind, reports
/// it, and the task's worker (the only one) and every other task go on.
/// The destructors dropped before the panicking one ran, those after it
/// never run (its stack is leaked, so LeakSanitizer is off in the child).
#[test]
fn cancel_survives_a_destructor_that_panics() {
    if !child::is_child("cancel_survives_a_destructor_that_panics") {
        let out = child::run(
            "cancel_survives_a_destructor_that_panics",
            &[("ASAN_OPTIONS", "detect_leaks=0")],
            Duration::from_secs(20),
        );
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success() && stdout.contains("case passed"),
            "{}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains("aborted during its cancellation unwind")
                && stderr.contains("the process goes on"),
            "{stderr}"
        );
        return;
    }
    let rt = Runtime::builder().workers(1).build().unwrap();
    let v = rt.run(|| {
        let (tx, rx) = channel::<()>(0);
        let victim = fibra::spawn(move || {
            let _after = CountsInto(&DROPPED_AFTER_PANIC);
            let _panics = PanicsOnDrop;
            let _before = CountsInto(&DROPPED_BEFORE_PANIC);
            let _ = rx.recv();
        });
        // A partner on the same worker, parked across the abandonment.
        let (ptx, prx) = channel::<u32>(0);
        let partner = fibra::spawn(move || prx.recv().unwrap() * 2);
        fibra::time::sleep(Duration::from_millis(20));
        victim.cancel();
        let err = victim.join().unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        assert_eq!(DROPPED_BEFORE_PANIC.load(Ordering::SeqCst), 1);
        assert_eq!(DROPPED_AFTER_PANIC.load(Ordering::SeqCst), 0);
        ptx.send(21).unwrap();
        let doubled = partner.join().unwrap();
        // The worker still parks, wakes, sleeps and spawns.
        fibra::time::sleep(Duration::from_millis(5));
        let spawned: u32 = (0..100)
            .map(|i| fibra::spawn(move || i).join().unwrap())
            .sum();
        drop(tx);
        doubled + spawned
    });
    assert_eq!(v, 42 + 4950);
    drop(rt);
    // A later cancellation of the same kind is handled the same way.
    let again = fibra::run(|| {
        let (_tx, rx) = channel::<()>(0);
        let (started_tx, started) = channel::<()>(1);
        let h = fibra::spawn(move || {
            let _panics = PanicsOnDrop;
            started_tx.send(()).unwrap();
            let _ = rx.recv();
        });
        started.recv().unwrap();
        h.cancel();
        h.join().unwrap_err().is_cancelled()
    });
    assert!(again);
    println!("case passed");
}

/// Shutdown cancels a green thread whose destructor panics: the runtime
/// shuts down, the handle reports cancelled, the next runtime works.
#[test]
fn shutdown_survives_a_destructor_that_panics() {
    case_with_env(
        "shutdown_survives_a_destructor_that_panics",
        Duration::from_secs(20),
        &[("ASAN_OPTIONS", "detect_leaks=0")],
        || {
            let rt = Runtime::builder().workers(2).build().unwrap();
            let (_tx, rx) = channel::<()>(0);
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let rx = rx.clone();
                    rt.spawn(move || {
                        let _panics = PanicsOnDrop;
                        let _ = rx.recv();
                    })
                })
                .collect();
            rt.run(|| fibra::time::sleep(Duration::from_millis(20)));
            drop(rt);
            for h in handles {
                assert!(h.join().unwrap_err().is_cancelled());
            }
            assert_eq!(fibra::run(|| fibra::spawn(|| 3).join().unwrap()), 3);
        },
    );
}

/// Only a cancellation unwind is spared: a destructor that panics while a
/// green thread unwinds from its own panic aborts, as in any Rust thread.
#[test]
fn a_destructor_that_panics_during_a_panic_still_aborts() {
    aborting_case(
        "a_destructor_that_panics_during_a_panic_still_aborts",
        Duration::from_secs(20),
        || {
            fibra::run(|| {
                let h = fibra::spawn(|| {
                    let _panics = PanicsOnDrop;
                    panic!("first");
                });
                let _ = h.join();
            });
        },
    );
}

/// `std::process::abort` outside a cancellation unwind, in a green thread,
/// still aborts the process.
#[test]
fn abort_in_a_green_thread_still_aborts() {
    let stderr = aborting_case(
        "abort_in_a_green_thread_still_aborts",
        Duration::from_secs(20),
        || {
            fibra::run(|| {
                let (_tx, rx) = channel::<()>(0);
                let (started_tx, started) = channel::<()>(1);
                let h = fibra::spawn(move || {
                    started_tx.send(()).unwrap();
                    // A caught cancellation is over: a later abort is real.
                    let _ = catch_unwind(AssertUnwindSafe(|| rx.recv()));
                    std::process::abort();
                });
                started.recv().unwrap();
                h.cancel();
                let _ = h.join();
            });
        },
    );
    if let Some(stderr) = stderr {
        assert!(!stderr.contains("the process goes on"), "{stderr}");
    }
}
