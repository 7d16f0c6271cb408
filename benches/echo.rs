//! TCP echo, 64-byte messages over 64 connections on loopback, driven by a
//! one-thread mio client: round trips per second for fibra (one green
//! thread per connection), tokio (one task per connection) and Go (one
//! goroutine per connection, `benches/peers/echo.go`, when `go` is on the
//! PATH), measured one after the other in the same run.
//!
//! ```text
//! cargo bench --bench echo              # 5 s per server
//! cargo bench --bench echo -- 10        # 10 s per server
//! FIBRA_WORKERS=1 cargo bench --bench echo
//! ```
//!
//! Every server gets the same number of worker threads (`FIBRA_WORKERS`,
//! default: the number of CPUs).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

const CONNS: usize = 64;
const MSG: usize = 64;

/// Drives `CONNS` ping-pong connections from one thread for `secs`
/// (after a 0.5 s warm-up); returns round trips per second.
fn client(addr: SocketAddr, secs: f64) -> f64 {
    let mut poll = Poll::new().unwrap();
    let mut conns: Vec<mio::net::TcpStream> = (0..CONNS)
        .map(|i| {
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            s.set_nonblocking(true).unwrap();
            let mut s = mio::net::TcpStream::from_std(s);
            poll.registry()
                .register(&mut s, Token(i), Interest::READABLE)
                .unwrap();
            s
        })
        .collect();
    let msg = [0x5au8; MSG];
    let mut received = vec![0usize; CONNS];
    for s in &mut conns {
        s.write_all(&msg).unwrap();
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let warm = Instant::now() + Duration::from_millis(500);
    let mut start = None;
    let mut trips = 0u64;
    let end = warm + Duration::from_secs_f64(secs);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if start.is_none() && now >= warm {
            start = Some(now);
            trips = 0;
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let i = ev.token().0;
            let s = &mut conns[i];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => panic!("server closed connection {i}"),
                    Ok(n) => {
                        received[i] += n;
                        while received[i] >= MSG {
                            received[i] -= MSG;
                            trips += 1;
                            // 64 bytes always fit in an idle socket buffer.
                            s.write_all(&msg).unwrap();
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
    }
    let elapsed = start.map_or(secs, |s| s.elapsed().as_secs_f64());
    trips as f64 / elapsed
}

fn workers() -> usize {
    std::env::var("FIBRA_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn fibra_server() -> (fibra::Runtime, SocketAddr) {
    let rt = fibra::Runtime::builder()
        .workers(workers())
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(move || {
        let listener = fibra::net::TcpListener::bind("127.0.0.1:0").unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            fibra::spawn(move || {
                conn.set_nodelay(true).unwrap();
                let mut buf = [0u8; 16 * 1024];
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
    let addr = rx.recv().unwrap();
    (rt, addr)
}

fn tokio_server() -> (tokio::runtime::Runtime, SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .enable_io()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                conn.set_nodelay(true).unwrap();
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (rt, addr)
}

/// Builds and starts the Go peer, if `go` is installed.
fn go_server() -> Option<(std::process::Child, SocketAddr)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join("target").join("echo-go");
    let built = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(root.join("benches/peers/echo.go"))
        .status()
        .ok()?;
    if !built.success() {
        return None;
    }
    let mut child = std::process::Command::new(&bin)
        .arg("127.0.0.1:0")
        .env("GOMAXPROCS", workers().to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let addr = line.trim().strip_prefix("listening on ")?.parse().ok()?;
    Some((child, addr))
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a short smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if smoke { 0.2 } else { 5.0 });
    println!(
        "echo: {CONNS} connections x {MSG}-byte messages, one-thread mio client, {} server workers, {secs} s each",
        workers()
    );
    let fibra = {
        let (rt, addr) = fibra_server();
        let r = client(addr, secs);
        drop(rt);
        r
    };
    println!("fibra  {:>10.0} round trips/s", fibra);
    let tokio = {
        let (rt, addr) = tokio_server();
        let r = client(addr, secs);
        rt.shutdown_background();
        r
    };
    println!(
        "tokio  {:>10.0} round trips/s   fibra/tokio = {:.2}",
        tokio,
        fibra / tokio
    );
    if smoke {
        return;
    }
    match go_server() {
        Some((mut child, addr)) => {
            let go = client(addr, secs);
            let _ = child.kill();
            let _ = child.wait();
            println!(
                "go     {:>10.0} round trips/s   fibra/go = {:.2}",
                go,
                fibra / go
            );
        }
        None => println!("go     (skipped: `go` not found or the build failed)"),
    }
}
