//! Green threads and async code on one set of workers: fibra futures driven
//! by tokio-test and tokio, tokio futures and streams used from green
//! threads.
#![cfg(feature = "tokio")]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use fibra_runtime::io::SyncIo;
use fibra_runtime::time::Sleep;
use tokio_test::{assert_pending, assert_ready};

#[test]
fn join_handle_under_tokio_test() {
    let rt = fibra_runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let handle = rt.spawn(move || {
        rx.recv().unwrap();
        7
    });
    let mut task = tokio_test::task::spawn(handle);
    assert_pending!(task.poll());
    assert!(!task.is_woken());
    tx.send(()).unwrap();
    let start = Instant::now();
    while !task.is_woken() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "join handle never woke its waker"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(assert_ready!(task.poll()).unwrap(), 7);
}

#[test]
fn sleep_future_under_tokio_test() {
    let mut sleep = tokio_test::task::spawn(Sleep::new(Duration::from_millis(20)));
    assert_pending!(sleep.poll());
    let start = Instant::now();
    while !sleep.is_woken() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sleep never woke its waker"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert_ready!(sleep.poll());
}

#[test]
fn sync_io_reads_and_writes_exactly_what_the_mock_expects() {
    fibra_runtime::run(|| {
        let mock = tokio_test::io::Builder::new()
            .read(b"hello ")
            .wait(Duration::from_millis(5))
            .read(b"world")
            .write(b"HELLO WORLD")
            .read_error(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "gone",
            ))
            .build();
        let mut io = SyncIo::new(mock);
        let mut got = Vec::new();
        let mut buf = [0u8; 32];
        while got.len() < 11 {
            let n = io.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"hello world");
        io.write_all(&got.to_ascii_uppercase()).unwrap();
        let err = io.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    });
}

#[test]
fn tokio_sockets_and_timers_from_green_threads() {
    fibra_runtime::run(|| {
        let listener =
            fibra_runtime::block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = fibra_runtime::spawn(move || {
            let (stream, _) = fibra_runtime::block_on(listener.accept()).unwrap();
            let mut io = SyncIo::new(stream);
            let mut buf = [0u8; 4];
            io.read_exact(&mut buf).unwrap();
            io.write_all(&buf).unwrap();
        });
        let stream = fibra_runtime::block_on(tokio::net::TcpStream::connect(addr)).unwrap();
        let mut io = SyncIo::new(stream);
        io.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        io.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        server.join().unwrap();

        let start = Instant::now();
        fibra_runtime::block_on(tokio::time::sleep(Duration::from_millis(10)));
        assert!(start.elapsed() >= Duration::from_millis(10));
    });
}

#[test]
fn fibra_join_handles_awaited_from_tokio() {
    let rt = fibra_runtime::Runtime::builder()
        .workers(2)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..100u64).map(|i| rt.spawn(move || i * 3)).collect();
    let tokio_rt = tokio::runtime::Runtime::new().unwrap();
    let sum = tokio_rt.block_on(async move {
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 3 * 4950);
}

#[test]
fn async_tasks_can_await_tokio_futures() {
    fibra_runtime::run(|| {
        let h = fibra_runtime::spawn_async(async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            tokio::task::yield_now().await;
            9
        });
        assert_eq!(h.join().unwrap(), 9);
    });
}

#[test]
fn a_busy_async_task_does_not_starve_green_threads() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let rt = fibra_runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    rt.run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        // Always ready after waking itself: it must still yield the worker.
        let spinner = fibra_runtime::spawn_async(async move {
            let mut polls = 0u64;
            while !s.load(Ordering::SeqCst) {
                polls += 1;
                tokio::task::yield_now().await;
            }
            polls
        });
        let green = fibra_runtime::spawn(|| {
            for _ in 0..100 {
                fibra_runtime::yield_now();
            }
        });
        green.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        assert!(spinner.join().unwrap() > 0);
    });
}
