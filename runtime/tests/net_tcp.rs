//! TCP on real loopback sockets: many connections, half-close, timeouts,
//! resets, and use from plain threads and async tasks.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibra_runtime::chan::{channel, Sender};
use fibra_runtime::net::{TcpListener, TcpStream};
use fibra_runtime::{spawn, Runtime};

/// An echo server on 127.0.0.1: one green thread per connection.
fn echo_server() -> (SocketAddr, fibra_runtime::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, h)
}

#[test]
fn a_thousand_concurrent_connections_echo() {
    const CONNS: usize = 1000;
    let rt = Runtime::builder().workers(2).build().unwrap();
    let total = rt.run(|| {
        let (addr, _server) = echo_server();
        // Every client connects first, then all talk at once.
        let connected = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..CONNS)
            .map(|i| {
                let connected = connected.clone();
                spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    connected.fetch_add(1, Ordering::SeqCst);
                    while connected.load(Ordering::SeqCst) < CONNS {
                        fibra_runtime::time::sleep(Duration::from_millis(1));
                    }
                    let msg = format!("hello from {i:04}");
                    let mut back = vec![0; msg.len()];
                    for _ in 0..3 {
                        s.write_all(msg.as_bytes()).unwrap();
                        s.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg.as_bytes());
                    }
                    1usize
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(total, CONNS);
}

#[test]
fn half_close_lets_the_peer_finish_its_reply() {
    fibra_runtime::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            // Reads until the client's half-close.
            conn.read_to_end(&mut req).unwrap();
            conn.write_all(&req.iter().rev().copied().collect::<Vec<_>>())
                .unwrap();
        });
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"abcdef").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "fedcba");
        server.join().unwrap();
    });
}

#[test]
fn read_timeout_fires_and_the_stream_stays_usable() {
    fibra_runtime::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let start = Instant::now();
        let err = s.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(start.elapsed() < Duration::from_secs(5));
        conn.write_all(b"late").unwrap();
        let mut buf = [0; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        assert!(s.set_read_timeout(Some(Duration::ZERO)).is_err());
    });
}

#[test]
fn write_timeout_fires_when_the_peer_does_not_read() {
    fibra_runtime::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        let (_conn, _) = listener.accept().unwrap();
        s.set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let chunk = vec![7u8; 1 << 16];
        let mut written = 0usize;
        let err = loop {
            match s.write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break e,
            }
            assert!(written < 1 << 30, "the socket buffers never filled");
        };
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(written > 0);
    });
}

#[test]
fn a_peer_reset_surfaces_as_an_error() {
    fibra_runtime::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let s = TcpStream::connect(addr).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let reader = spawn(move || {
            let mut conn = conn;
            let mut buf = [0; 16];
            conn.read(&mut buf)
        });
        fibra_runtime::time::sleep(Duration::from_millis(20));
        // SO_LINGER 0: close sends RST instead of FIN.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
        let err = reader.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    fibra_runtime::run(|| {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    });
}

#[test]
fn connect_resolves_host_names() {
    fibra_runtime::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = TcpStream::connect(format!("localhost:{port}")).unwrap();
        assert_eq!(s.peer_addr().unwrap().port(), port);
        let err = TcpStream::connect("no-such-host.invalid:80").unwrap_err();
        assert_ne!(err.kind(), ErrorKind::WouldBlock);
    });
}

#[test]
fn a_reader_and_a_writer_share_one_stream() {
    fibra_runtime::run(|| {
        let (addr, _server) = echo_server();
        let s = Arc::new(TcpStream::connect(addr).unwrap());
        let w = s.clone();
        let writer = spawn(move || {
            for i in 0..100u8 {
                (&*w).write_all(&[i; 100]).unwrap();
            }
        });
        let mut got = vec![0u8; 100 * 100];
        (&*s).read_exact(&mut got).unwrap();
        writer.join().unwrap();
        for (i, chunk) in got.chunks(100).enumerate() {
            assert!(chunk.iter().all(|&b| b == i as u8));
        }
    });
}

#[test]
fn try_clone_shares_the_connection_and_timeouts() {
    fibra_runtime::run(|| {
        let (addr, _server) = echo_server();
        let mut a = TcpStream::connect(addr).unwrap();
        let mut b = a.try_clone().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(b.read_timeout().unwrap(), Some(Duration::from_millis(20)));
        a.write_all(b"ping").unwrap();
        let mut buf = [0; 4];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        drop(a);
        b.write_all(b"pong").unwrap();
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
        b.set_nodelay(true).unwrap();
    });
}

#[test]
fn plain_threads_use_fibra_sockets_without_a_runtime() {
    // No runtime anywhere: the fallback poller serves both sides.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0; 5];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"plain").unwrap();
    let mut buf = [0; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"plain");
    server.join().unwrap();
}

#[test]
fn plain_thread_clients_against_a_green_server() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let addr = rt.block_on(async {
        let (tx, rx) = std::sync::mpsc::channel();
        fibra_runtime::spawn(move || {
            let (addr, server) = echo_server();
            tx.send(addr).unwrap();
            server.join().unwrap();
        });
        rx.recv().unwrap()
    });
    let clients: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                for round in 0..50u32 {
                    let msg = (i * 1000 + round).to_le_bytes();
                    s.write_all(&msg).unwrap();
                    let mut back = [0; 4];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn async_tasks_use_readiness_futures_and_async_io() {
    use futures_io::{AsyncRead, AsyncWrite};
    use std::future::poll_fn;
    use std::pin::Pin;

    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let (addr, _server) = echo_server();
        let h = fibra_runtime::spawn_async(async move {
            let mut s = TcpStream::connect_async(addr).await.unwrap();
            s.writable().await.unwrap();
            let n = poll_fn(|cx| Pin::new(&mut s).poll_write(cx, b"async"))
                .await
                .unwrap();
            assert_eq!(n, 5);
            let mut got = Vec::new();
            while got.len() < 5 {
                let mut buf = [0; 8];
                let n = poll_fn(|cx| Pin::new(&mut s).poll_read(cx, &mut buf))
                    .await
                    .unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        assert_eq!(h.join().unwrap(), b"async");
    });
}

#[test]
fn a_blocking_read_in_an_async_task_panics_with_a_hint() {
    fibra_runtime::run(|| {
        let (addr, _server) = echo_server();
        let s = TcpStream::connect(addr).unwrap();
        let h = fibra_runtime::spawn_async(async move {
            let mut s = s;
            let _ = s.read(&mut [0; 4]);
        });
        let err = h.join().unwrap_err();
        assert!(err.is_panic());
        let msg = err.into_panic();
        let msg = msg
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| msg.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        assert!(msg.contains("async"), "{msg}");
    });
}

#[test]
fn a_blocked_reader_and_a_sleeper_do_not_block_a_one_worker_runtime() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let progress = Arc::new(AtomicUsize::new(0));
        let p = progress.clone();
        let reader = spawn(move || {
            let mut conn = conn;
            let mut buf = [0; 1];
            conn.read_exact(&mut buf).unwrap();
            p.load(Ordering::SeqCst)
        });
        let p = progress.clone();
        let sleeper = spawn(move || {
            fibra_runtime::time::sleep(Duration::from_millis(30));
            p.load(Ordering::SeqCst)
        });
        for _ in 0..50 {
            progress.fetch_add(1, Ordering::SeqCst);
            fibra_runtime::yield_now();
        }
        assert_eq!(sleeper.join().unwrap(), 50);
        client.write_all(b"!").unwrap();
        assert_eq!(reader.join().unwrap(), 50);
    });
}

/// What the peer does after the first bytes, which a short read returned.
#[derive(Clone, Copy, Debug)]
enum Then {
    MoreData,
    Fin,
    Reset,
}

/// Reads the first three bytes (one short read, or more if the kernel
/// splits them), says so on `first`, then returns what the next read gives.
fn read_twice(conn: &TcpStream, first: &Sender<()>) -> std::io::Result<Vec<u8>> {
    let mut conn = conn;
    let mut buf = [0; 64];
    let mut got = 0;
    while got < 3 {
        got += conn.read(&mut buf[got..])?;
    }
    assert_eq!(&buf[..3], b"abc");
    let _ = first.try_send(());
    conn.read(&mut buf).map(|n| buf[..n].to_vec())
}

/// `read_twice` as an async task, failing after 5 s instead of hanging.
async fn read_twice_async(conn: TcpStream, first: Sender<()>) -> std::io::Result<Vec<u8>> {
    use std::future::Future;
    let mut limit = std::pin::pin!(fibra_runtime::time::Sleep::new(Duration::from_secs(5)));
    let mut buf = [0; 64];
    let mut got = 0;
    loop {
        let want = if got < 3 { got..64 } else { 0..64 };
        let n = std::future::poll_fn(|cx| {
            if limit.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(Err(ErrorKind::TimedOut.into()));
            }
            conn.poll_read(cx, &mut buf[want.clone()])
        })
        .await?;
        if got >= 3 {
            return Ok(buf[..n].to_vec());
        }
        got += n;
        if got >= 3 {
            assert_eq!(&buf[..3], b"abc");
            let _ = first.try_send(());
        }
    }
}

/// A short read clears the socket's readiness, so the next read waits for
/// an edge instead of asking the kernel: whatever the peer does next (more
/// data, FIN, RST), before that read or after it, the next read must see
/// it and not wait forever. Readers are green threads, async tasks and plain
/// threads; a 5 s limit turns a stranded reader into a failure.
#[test]
fn a_short_read_never_strands_the_next_read() {
    fn case(then: Then, delay: Option<Duration>, reader: &str) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (first_tx, first_rx) = channel::<()>(1);
        let peer = spawn(move || {
            let mut s = s;
            s.write_all(b"abc").unwrap();
            // `None`: at once, so both arrive before the reader's first
            // read. Otherwise `delay` after the reader's short read (a
            // signal, not a guess at how long a loaded machine takes).
            if let Some(delay) = delay {
                first_rx.recv_timeout(Duration::from_secs(5)).ok();
                fibra_runtime::time::sleep(delay);
            }
            match then {
                Then::MoreData => s.write_all(b"de").unwrap(),
                Then::Fin => s.shutdown(Shutdown::Write).unwrap(),
                Then::Reset => {
                    // SO_LINGER 0: close sends RST instead of FIN.
                    socket2::SockRef::from(&s)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                    drop(s);
                    return None;
                }
            }
            // Open until the reader is done.
            Some(s)
        });
        if delay.is_none() {
            fibra_runtime::time::sleep(Duration::from_millis(30));
        }
        let second = match reader {
            "green" => spawn(move || read_twice(&conn, &first_tx)).join().unwrap(),
            "plain" => std::thread::spawn(move || read_twice(&conn, &first_tx))
                .join()
                .unwrap(),
            _ => fibra_runtime::block_on(fibra_runtime::spawn_async(read_twice_async(
                conn, first_tx,
            )))
            .unwrap(),
        };
        let _open = peer.join().unwrap();
        let what = format!("{then:?} after {delay:?}, {reader} reader: {second:?}");
        match then {
            Then::MoreData => assert_eq!(second.ok().as_deref(), Some(&b"de"[..]), "{what}"),
            Then::Fin => assert_eq!(second.ok().as_deref(), Some(&b""[..]), "{what}"),
            Then::Reset => {
                assert_eq!(
                    second.unwrap_err().kind(),
                    ErrorKind::ConnectionReset,
                    "{what}"
                )
            }
        }
    }
    fibra_runtime::run(|| {
        for reader in ["green", "async", "plain"] {
            for then in [Then::MoreData, Then::Fin, Then::Reset] {
                for delay in [None, Some(Duration::ZERO), Some(Duration::from_millis(20))] {
                    // (More data at once is one read of "abcde".)
                    if let (Then::MoreData, None) = (then, delay) {
                        continue;
                    }
                    case(then, delay, reader);
                }
            }
        }
    });
}
