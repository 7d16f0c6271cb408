//! An HTTP/1.1 server: one green thread per connection, written in plain
//! blocking style, requests parsed with httparse (see `parse.rs`).
//!
//! ```text
//! cargo run --release --example http -- 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/plaintext          # Hello, World!
//! curl -i http://127.0.0.1:8080/json               # {"message":"Hello, World!"}
//! curl -i http://127.0.0.1:8080/visits             # a counter kept in the GC heap
//! curl -s http://127.0.0.1:8080/metrics            # runtime and GC metrics for Prometheus
//! curl -i -X PUT --data-binary hi http://127.0.0.1:8080/cache/greeting
//! curl -i http://127.0.0.1:8080/cache/greeting     # hi
//! curl -i -H 'Transfer-Encoding: chunked' --data-binary @Cargo.toml http://127.0.0.1:8080/echo
//! wrk -t1 -c64 -d10s http://127.0.0.1:8080/plaintext
//! ```
//!
//! Prints `listening on ADDR` once bound (port 0 picks a free port). Keep-alive
//! and pipelining (all complete requests in a read are answered with one
//! write); `Content-Length` and chunked request bodies; 400 for malformed
//! requests, 431 for heads over 8 KiB, 413 for bodies over 1 MiB, 408 when a
//! request is not complete within the read timeout (10 s, or
//! `HTTP_READ_TIMEOUT_MS`), which also closes idle keep-alive connections.
//! Ctrl-C (or SIGTERM) stops accepting, closes idle connections, lets requests
//! in flight finish for up to 30 s (`HTTP_SHUTDOWN_GRACE_MS`), cancels what is
//! left, and exits; a second Ctrl-C exits at once. Should the process still
//! run 4 s after the grace (`HTTP_EXIT_DEADLINE_MS`, counted from the
//! signal), it writes a dump of its green threads to stderr and exits with
//! status 1: the exit after Ctrl-C always comes, and a stuck one says why.
//!
//! The visit counter and the cache values live in fibra's GC heap (see
//! `state.rs`). Logging goes through tracing-subscriber (`RUST_LOG`, default
//! `info,fibra_gc=debug`), which shows the collector's `gc pause` events.
//! With `FIBRA_GC_CHURN=1` every request also allocates garbage on the GC
//! heap and refreshes a bounded ring of recent objects (see
//! `../shared/gc_churn.rs`; `benches/soak.sh` uses it). On exit after Ctrl-C
//! or SIGTERM the server prints one line to stdout,
//! `gc pauses: n=… p50=…us p99=…us max=…us stopping_p99=…us …`.

#[path = "../shared/gc_churn.rs"]
mod gc_churn;
mod parse;
#[path = "../shared/recv_buf.rs"]
mod recv_buf;
mod state;

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibra::net::{TcpListener, TcpStream};

use parse::{Head, Limits, Reject};
use recv_buf::RecvBuf;
use state::Store;

/// Everything the connections share.
struct Server {
    /// Set once on Ctrl-C; connections finish their request and close.
    shutting_down: AtomicBool,
    /// True until the accept loop has ended (the signal thread keeps
    /// connecting to wake it until then).
    accepting: AtomicBool,
    /// Open connections, so that shutdown can close the idle ones.
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Number of connection green threads still running.
    active: AtomicUsize,
    /// Hands out connection ids.
    next_id: AtomicU64,
    /// How long a request may take to arrive (and an idle connection may live).
    read_timeout: Duration,
    /// After Ctrl-C, how long requests in flight may take before the runtime
    /// cancels them.
    shutdown_grace: Duration,
    /// Parser limits.
    limits: Limits,
    /// Application state (visit counter, cache).
    store: Store,
    /// GC garbage per request (`FIBRA_GC_CHURN`), off by default.
    churn: Option<gc_churn::Churn>,
}

/// One accepted connection.
struct Conn {
    stream: TcpStream,
    /// True while the connection waits for the first byte of a request.
    idle: AtomicBool,
}

/// Removes a connection from the registry when its green thread ends,
/// however it ends.
struct Registration<'s> {
    server: &'s Server,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.server.conns.lock().unwrap().remove(&self.id);
        self.server.active.fetch_sub(1, SeqCst);
    }
}

fn serve(server: Arc<Server>, conn: Arc<Conn>, id: u64) {
    let _registration = Registration {
        server: &server,
        id,
    };
    if let Err(err) = serve_requests(&server, &conn) {
        tracing::debug!(conn = id, "connection ended: {err}");
    }
}

fn serve_requests(server: &Server, conn: &Conn) -> io::Result<()> {
    let mut stream = &conn.stream;
    let mut inbuf = RecvBuf::new(8 * 1024);
    let mut start = 0; // first unconsumed byte of inbuf.data()
    let mut out: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut continue_sent = false;
    let mut deadline = Instant::now() + server.read_timeout;
    loop {
        // Answer every complete request in the buffer (pipelining).
        let mut close = false;
        loop {
            let data = inbuf.data();
            let head = match parse::parse_head(&data[start..], &server.limits) {
                Ok(Some(head)) => head,
                Ok(None) => break,
                Err(reject) => return reject_and_close(stream, &mut out, reject),
            };
            let body_buf = &data[start + head.len..];
            let (body, used) = match parse::parse_body(body_buf, head.framing, &server.limits) {
                Ok(Some(done)) => done,
                Ok(None) => {
                    if head.expect_continue && !continue_sent {
                        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        continue_sent = true;
                    }
                    break;
                }
                Err(reject) => return reject_and_close(stream, &mut out, reject),
            };
            let keep_alive = head.keep_alive && !server.shutting_down.load(SeqCst);
            // HTTP/1.0 clients only keep the connection when told so.
            let connection = match (keep_alive, head.minor_version) {
                (false, _) => Some("close"),
                (true, 0) => Some("keep-alive"),
                (true, _) => None,
            };
            route(server, &head, &body, connection, &mut out);
            start += head.len + used;
            continue_sent = false;
            deadline = Instant::now() + server.read_timeout;
            if !keep_alive {
                close = true;
                break;
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        inbuf.consume(start);
        start = 0;
        if inbuf.data().is_empty() {
            // Idle between requests. Shutdown sets its flag and then closes
            // every idle connection; here we publish idleness and then check
            // the flag, so one of the two sides always sees the other.
            conn.idle.store(true, SeqCst);
            if server.shutting_down.load(SeqCst) {
                return Ok(());
            }
        }

        let now = Instant::now();
        if now >= deadline {
            return timed_out(stream, &mut out, !inbuf.data().is_empty());
        }
        stream.set_read_timeout(Some(deadline - now))?;
        let n = match inbuf.read_from(stream) {
            Ok(n) => n,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return timed_out(stream, &mut out, !inbuf.data().is_empty());
            }
            Err(err) => return Err(err),
        };
        conn.idle.store(false, SeqCst);
        if n == 0 {
            return Ok(()); // the client closed (or shutdown closed an idle connection)
        }
    }
}

/// The read timeout expired: 408 if a request was under way, then close.
fn timed_out(stream: &TcpStream, out: &mut Vec<u8>, partial: bool) -> io::Result<()> {
    if partial {
        respond(
            out,
            (408, "Request Timeout"),
            "text/plain",
            b"request timeout\n",
            Some("close"),
        );
        let mut stream = stream;
        stream.write_all(out)?;
    }
    Ok(())
}

fn reject_and_close(stream: &TcpStream, out: &mut Vec<u8>, reject: Reject) -> io::Result<()> {
    let status = reject.status();
    let body = match reject {
        Reject::BadRequest(why) => format!("{why}\n"),
        _ => format!("{}\n", status.1.to_ascii_lowercase()),
    };
    respond(out, status, "text/plain", body.as_bytes(), Some("close"));
    let mut stream = stream;
    stream.write_all(out)?;
    // Half-close and let the client read the reply before the socket goes.
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// The application: maps a request to a response appended to `out`.
fn route(
    server: &Server,
    head: &Head<'_>,
    body: &[u8],
    keep_alive: Option<&'static str>,
    out: &mut Vec<u8>,
) {
    const OK: (u16, &str) = (200, "OK");
    if let Some(churn) = &server.churn {
        std::hint::black_box(churn.request());
    }
    let path = head.path.split('?').next().unwrap_or("");
    match (head.method, path) {
        ("GET", "/" | "/plaintext") => respond(out, OK, "text/plain", b"Hello, World!", keep_alive),
        ("GET", "/json") => respond(
            out,
            OK,
            "application/json",
            br#"{"message":"Hello, World!"}"#,
            keep_alive,
        ),
        ("GET", "/visits") => {
            let n = server.store.visit();
            let body = format!("{{\"visits\":{n}}}");
            respond(out, OK, "application/json", body.as_bytes(), keep_alive)
        }
        ("POST", "/echo") => respond(out, OK, "application/octet-stream", body, keep_alive),
        ("GET", "/metrics") => respond(
            out,
            OK,
            "text/plain; version=0.0.4; charset=utf-8",
            fibra::debug::prometheus().as_bytes(),
            keep_alive,
        ),
        (method, key) if key.starts_with("/cache/") => {
            let key = &key["/cache/".len()..];
            match method {
                "GET" => match server.store.get(key) {
                    Some(v) => respond(out, OK, "application/octet-stream", &v, keep_alive),
                    None => respond(
                        out,
                        (404, "Not Found"),
                        "text/plain",
                        b"no such key\n",
                        keep_alive,
                    ),
                },
                "PUT" | "POST" => {
                    server.store.put(key, body);
                    respond(out, (204, "No Content"), "text/plain", b"", keep_alive)
                }
                "DELETE" => {
                    let status = if server.store.remove(key) {
                        (204, "No Content")
                    } else {
                        (404, "Not Found")
                    };
                    respond(out, status, "text/plain", b"", keep_alive)
                }
                _ => respond(
                    out,
                    (405, "Method Not Allowed"),
                    "text/plain",
                    b"",
                    keep_alive,
                ),
            }
        }
        ("GET" | "POST", "/" | "/plaintext" | "/json" | "/visits" | "/echo" | "/metrics") => {
            respond(
                out,
                (405, "Method Not Allowed"),
                "text/plain",
                b"",
                keep_alive,
            )
        }
        _ => respond(
            out,
            (404, "Not Found"),
            "text/plain",
            b"not found\n",
            keep_alive,
        ),
    }
}

/// Appends a response; `connection` is the value of a `Connection` header to
/// send, if any.
fn respond(
    out: &mut Vec<u8>,
    status: (u16, &str),
    content_type: &str,
    body: &[u8],
    connection: Option<&str>,
) {
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: fibra\r\nDate: ",
        status.0, status.1
    );
    push_date(out);
    let _ = write!(
        out,
        "\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(connection) = connection {
        out.extend_from_slice(b"Connection: ");
        out.extend_from_slice(connection.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Appends the current time as an HTTP date, formatted at most once a second
/// per worker thread.
fn push_date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != secs || date.1.is_empty() {
            *date = (secs, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(date.1.as_bytes());
    });
}

/// Accepts connections, each served by a green thread of its own, until it
/// sees the shutdown flag.
fn accept_connections(server: &Arc<Server>, listener: TcpListener) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) => {
                if server.shutting_down.load(SeqCst) {
                    break;
                }
                // Back off instead of spinning (fibra's accept already
                // waits out EMFILE and the like itself).
                tracing::warn!("accept failed: {err}");
                fibra::time::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if server.shutting_down.load(SeqCst) {
            break;
        }
        let _ = stream.set_nodelay(true);
        let id = server.next_id.fetch_add(1, SeqCst);
        let conn = Arc::new(Conn {
            stream,
            idle: AtomicBool::new(true),
        });
        server.active.fetch_add(1, SeqCst);
        server.conns.lock().unwrap().insert(id, conn.clone());
        let server = server.clone();
        drop(fibra::spawn(move || serve(server, conn, id)));
    }
    server.accepting.store(false, SeqCst);
}

/// Ctrl-C / SIGTERM: set the shutdown flag, close idle connections, tell
/// the main green thread (`stop`), and wake the accept loop with
/// connections of our own until it has ended. Then wait
/// for the process to exit: a second signal, or `exit_deadline` after the
/// first, ends it at once. Runs on an OS thread.
fn watch_signals(
    server: Arc<Server>,
    local: SocketAddr,
    exit_deadline: Duration,
    stop: fibra::chan::Sender<()>,
) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_none() {
                return;
            }
            let deadline = Instant::now() + exit_deadline;
            tracing::info!(
                "shutting down: finishing requests in flight (Ctrl-C again to exit now)"
            );
            server.shutting_down.store(true, SeqCst);
            for conn in server.conns.lock().unwrap().values() {
                if conn.idle.load(SeqCst) {
                    let _ = conn.stream.shutdown(Shutdown::Read);
                }
            }
            let _ = stop.send(());
            let waker = server.clone();
            let _ = std::thread::Builder::new()
                .name("accept-waker".into())
                .spawn(move || wake_accept_loop(&waker, local));
            loop {
                if signals.pending().next().is_some() {
                    exit_now(130, || "second signal: exiting now".into());
                }
                if Instant::now() >= deadline {
                    exit_now(1, move || {
                        format!(
                            "shutdown did not finish within {:?} of the signal ({} connections \
                             still open, accept loop {}); exiting with status 1. Still \
                             running:\n{}",
                            exit_deadline,
                            server.active.load(SeqCst),
                            if server.accepting.load(SeqCst) {
                                "still waiting"
                            } else {
                                "ended"
                            },
                            fibra::debug::dump(),
                        )
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })?;
    Ok(())
}

/// Connects to the listener until the accept loop has seen the shutdown
/// flag. One connection is not enough: with the listen backlog full it can
/// time out, and the accept loop would then wait for a client that may
/// never come.
fn wake_accept_loop(server: &Server, local: SocketAddr) {
    let mut wake = local;
    if wake.ip().is_unspecified() {
        wake.set_ip(match wake {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    while server.accepting.load(SeqCst) {
        let _ = std::net::TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ends the process with `code` after writing `why()` to stderr and the
/// pause line to stdout. The report is made and written on a thread of its
/// own and gets two seconds: this path is for an exit that is stuck, and
/// whatever is stuck might hold a lock the report needs. The process ends
/// with `_exit`, which runs no exit handlers or thread-local destructors
/// (one of them could be what is stuck).
fn exit_now(code: i32, why: impl FnOnce() -> String + Send + 'static) -> ! {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("exit-report".into())
        .spawn(move || {
            eprintln!("{}", why());
            println!("{}", gc_churn::pause_summary());
            let _ = io::stdout().flush();
            let _ = done_tx.send(());
        });
    let _ = done_rx.recv_timeout(Duration::from_secs(2));
    // SAFETY: `_exit` takes no pointers and does not return; nothing of
    // this process runs after it.
    unsafe { libc::_exit(code) }
}

/// A duration in milliseconds from the environment variable `name`.
fn env_millis(name: &str) -> Option<Duration> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(ms) => Some(Duration::from_millis(ms)),
        Err(_) => {
            eprintln!("{name}={value:?} is not a number of milliseconds; using the default");
            None
        }
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,fibra_gc=debug".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let read_timeout = env_millis("HTTP_READ_TIMEOUT_MS").unwrap_or(Duration::from_secs(10));
    let shutdown_grace = env_millis("HTTP_SHUTDOWN_GRACE_MS").unwrap_or(Duration::from_secs(30));
    let exit_deadline =
        env_millis("HTTP_EXIT_DEADLINE_MS").unwrap_or(shutdown_grace + Duration::from_secs(4));
    let churn = gc_churn::Churn::from_env();
    fibra::run(move || {
        let listener = match TcpListener::bind(addr.as_str()) {
            Ok(l) => l,
            Err(err) => {
                eprintln!("cannot listen on {addr}: {err}");
                std::process::exit(1);
            }
        };
        let local = listener.local_addr().unwrap();
        let server = Arc::new(Server {
            shutting_down: AtomicBool::new(false),
            accepting: AtomicBool::new(true),
            conns: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            read_timeout,
            shutdown_grace,
            limits: Limits::default(),
            store: Store::new(),
            churn,
        });
        let (stop_tx, stop_rx) = fibra::chan::channel(1);
        if let Err(err) = watch_signals(server.clone(), local, exit_deadline, stop_tx) {
            eprintln!("cannot install signal handlers: {err}");
            std::process::exit(1);
        }
        println!("listening on {local}");
        // The accept loop has a green thread of its own, which shutdown does
        // not wait for: fibra's accept retries EMFILE with backoff inside
        // the call, so while every fd is taken it does not return, and the
        // connection the signal thread makes to wake it cannot be accepted.
        // It ends at the next connection it accepts after the signal, or is
        // cancelled with the connections when the runtime shuts down.
        let acceptor = {
            let server = server.clone();
            fibra::spawn(move || accept_connections(&server, listener))
        };
        // The first signal (an error, should the signal thread be gone
        // without one, shuts down as well).
        let _ = stop_rx.recv();
        drop(acceptor);
        let grace = Instant::now() + server.shutdown_grace;
        while server.active.load(SeqCst) > 0 && Instant::now() < grace {
            fibra::time::sleep(Duration::from_millis(10));
        }
        tracing::info!(unfinished = server.active.load(SeqCst), "shut down");
    });
    println!("{}", gc_churn::pause_summary());
}
