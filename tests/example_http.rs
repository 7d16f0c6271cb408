//! examples/http.rs driven from outside: curl and wrk as clients, plus raw
//! sockets sending hostile input.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{exchange, have_tool, idle_connections, run, Server};

fn status_line(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    text.lines().next().unwrap_or("").to_string()
}

/// A plain GET on a fresh connection, to check the server still serves.
fn get_ok(server: &Server) {
    let reply = exchange(
        server.addr,
        b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(status_line(&reply), "HTTP/1.1 200 OK");
    assert!(reply.ends_with(b"Hello, World!"));
}

#[test]
fn curl_gets_every_endpoint_and_sends_bodies() {
    if !have_tool("curl", "curl_gets_every_endpoint_and_sends_bodies") {
        return;
    }
    let server = Server::start("http", &[]);
    assert_eq!(
        run("curl", &["-sS", &server.url("/plaintext")]),
        "Hello, World!"
    );
    assert_eq!(
        run("curl", &["-sS", &server.url("/json")]),
        r#"{"message":"Hello, World!"}"#
    );
    // Several URLs on one curl command reuse one keep-alive connection.
    let visits = run(
        "curl",
        &["-sS", &server.url("/visits"), &server.url("/visits")],
    );
    assert_eq!(visits, r#"{"visits":1}{"visits":2}"#);

    let code = |args: &[&str]| {
        let mut all = vec!["-sS", "-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        run("curl", &all)
    };
    assert_eq!(
        code(&["-X", "PUT", "--data-binary", "v1", &server.url("/cache/k")]),
        "204"
    );
    assert_eq!(run("curl", &["-sS", &server.url("/cache/k")]), "v1");
    assert_eq!(code(&["-X", "DELETE", &server.url("/cache/k")]), "204");
    assert_eq!(code(&[&server.url("/cache/k")]), "404");
    assert_eq!(code(&[&server.url("/nope")]), "404");

    // Bodies, Content-Length and chunked (curl streams chunked from stdin-like files).
    let body: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let file = std::env::temp_dir().join(format!("fibra-http-body-{}", std::process::id()));
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    let echoed = run(
        "curl",
        &["-sS", "--data-binary", &data, &server.url("/echo")],
    );
    assert_eq!(echoed, body);
    let echoed = run(
        "curl",
        &[
            "-sS",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &data,
            &server.url("/echo"),
        ],
    );
    assert_eq!(echoed, body);

    // Limits: 431 for a huge header, 413 for a huge body.
    let big_header = format!("X-Big: {}", "a".repeat(9000));
    assert_eq!(code(&["-H", &big_header, &server.url("/")]), "431");
    std::fs::write(&file, vec![b'x'; 2 << 20]).unwrap();
    assert_eq!(code(&["--data-binary", &data, &server.url("/echo")]), "413");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn wrk_load_sees_no_errors() {
    if !have_tool("wrk", "wrk_load_sees_no_errors") {
        return;
    }
    let server = Server::start("http", &[]);
    let out = run("wrk", &["-t1", "-c32", "-d1s", &server.url("/plaintext")]);
    assert!(!out.contains("Non-2xx"), "{out}");
    assert!(!out.contains("Socket errors"), "{out}");
    let requests: u64 = out
        .lines()
        .find_map(|l| l.trim().split(" requests in ").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk output:\n{out}"));
    assert!(requests > 100, "{out}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::start("http", &[]);
    let mut request = Vec::new();
    for _ in 0..50 {
        request.extend_from_slice(b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n");
        request.extend_from_slice(b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        request.extend_from_slice(
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
    }
    request.extend_from_slice(b"GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n");
    // Dribble it out in odd-sized pieces so requests straddle reads.
    let mut s = server.connect();
    for piece in request.chunks(37) {
        s.write_all(piece).unwrap();
    }
    let reply = common::read_until_close(&mut s);
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 151, "{text}");
    let bodies: Vec<&str> = text
        .split("HTTP/1.1 200 OK")
        .skip(1)
        .map(|r| r.split("\r\n\r\n").nth(1).unwrap())
        .collect();
    for (i, body) in bodies[..150].iter().enumerate() {
        let want = ["{\"message\":\"Hello, World!\"}", "hello", "abcde"][i % 3];
        assert_eq!(*body, want, "response {i}");
    }
    assert_eq!(bodies[150], "Hello, World!");
}

#[test]
fn hostile_input_gets_error_replies_and_others_are_still_served() {
    let server = Server::start("http", &[]);
    let cases: &[(&[u8], &str)] = &[
        (b"\x00\x01\x02garbage\xff\r\n\r\n", "400"),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "400",
        ),
        (b"POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "400"),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "400",
        ),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "400",
        ),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n",
            "413",
        ),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n",
            "413",
        ),
    ];
    for (request, want) in cases {
        let reply = exchange(server.addr, request, Duration::from_secs(10));
        let line = status_line(&reply);
        assert!(
            line.starts_with(&format!("HTTP/1.1 {want} ")),
            "{:?} -> {line:?}",
            String::from_utf8_lossy(request)
        );
        get_ok(&server);
    }
    // A head that never ends: 431 once it passes the limit.
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut reply = Vec::new();
    for _ in 0..1000 {
        if s.write_all(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
            .is_err()
        {
            break;
        }
    }
    let _ = s.read_to_end(&mut reply);
    assert_eq!(
        status_line(&reply),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    get_ok(&server);
}

#[test]
fn slow_and_silent_clients_time_out() {
    let server = Server::start("http", &[("HTTP_READ_TIMEOUT_MS", "300")]);
    // A client that never sends is closed without a reply.
    let started = Instant::now();
    let reply = exchange(server.addr, b"", Duration::from_secs(10));
    assert!(reply.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
    // A slowloris sending a header a byte at a time gets 408 at the deadline,
    // however steadily it trickles.
    let mut s = server.connect();
    let started = Instant::now();
    let mut closed = false;
    for b in b"GET / HTTP/1.1\r\nX-Slow: "
        .iter()
        .chain([b'a'; 100].iter())
    {
        if s.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        if started.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    let reply = common::read_until_close(&mut s);
    assert!(
        closed || status_line(&reply) == "HTTP/1.1 408 Request Timeout",
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    get_ok(&server);
}

#[test]
fn ten_thousand_idle_connections_do_not_stop_service() {
    let server = Server::start("http", &[("HTTP_READ_TIMEOUT_MS", "120000")]);
    let idle = idle_connections(server.addr, 10_000);
    for _ in 0..10 {
        get_ok(&server);
    }
    // Every idle connection is still open and served.
    for s in idle.iter().step_by(997) {
        let mut s = s;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert_eq!(status_line(&buf[..n]), "HTTP/1.1 200 OK");
    }
    drop(idle);
    get_ok(&server);
}

#[test]
fn ctrl_c_finishes_requests_in_flight_then_exits() {
    let mut server = Server::start("http", &[]);
    let mut idle = server.connect();
    get_ok(&server);
    let mut busy = server.connect();
    busy.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nhello")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    server.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(100));
    // The idle connection is closed; the one mid-request gets its answer.
    let mut buf = [0u8; 64];
    assert_eq!(idle.read(&mut buf).unwrap(), 0);
    busy.write_all(b"world").unwrap();
    let reply = common::read_until_close(&mut busy);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("Connection: close"), "{text}");
    assert!(text.ends_with("helloworld"), "{text}");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("server did not exit");
    assert!(status.success(), "{status}");
}

#[test]
fn gc_churn_runs_cycles_and_ctrl_c_prints_the_pause_report() {
    // Eight lists per request: ~6 KiB of GC garbage, so the first cycle
    // (at 4 MiB) comes after about 700 requests.
    let mut server = Server::start("http", &[("FIBRA_GC_CHURN", "8")]);
    let mut conn = server.connect();
    let requests = 3000;
    let mut pipeline = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n".repeat(requests - 1);
    pipeline.extend_from_slice(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    // Write from another thread: the replies fill the socket buffers long
    // before the requests are all written.
    let mut writer = conn.try_clone().unwrap();
    let writing = std::thread::spawn(move || writer.write_all(&pipeline));
    let reply = common::read_until_close(&mut conn);
    writing.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), requests);

    server.check_gc_pause_report(libc::SIGINT);
}

/// Fills `conn` with pipelined echo requests, never reading the replies,
/// until the server stops reading: its green thread is then blocked
/// writing a reply nobody reads.
fn stall_server_in_a_write(conn: &std::net::TcpStream) {
    let body = vec![b'x'; 256 * 1024];
    let mut request = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    conn.set_nonblocking(true).unwrap();
    let mut conn = conn;
    let (mut sent, mut stalls) = (0usize, 0);
    while stalls < 50 {
        let at = sent % request.len();
        match conn.write(&request[at..]) {
            Ok(n) => {
                sent += n;
                stalls = 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stalls += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("write failed: {e}"),
        }
        assert!(sent < 1 << 30, "the server kept reading 1 GiB of requests");
    }
}

#[test]
fn exit_deadline_ends_a_shutdown_that_cannot_finish() {
    // A client that never reads keeps its green thread in a write through
    // a grace longer than the exit deadline: the deadline ends the process
    // with status 1 (and the pause line), instead of a wait for the grace.
    let mut server = Server::start(
        "http",
        &[
            ("HTTP_SHUTDOWN_GRACE_MS", "120000"),
            ("HTTP_EXIT_DEADLINE_MS", "1000"),
        ],
    );
    let deaf = server.connect();
    stall_server_in_a_write(&deaf);
    let signalled = Instant::now();
    server.signal(libc::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server still runs 20 s after SIGINT with a 1 s exit deadline");
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(took >= Duration::from_millis(900), "exited after {took:?}");
    let out = server.stdout_after_exit();
    assert!(out.contains("gc pauses: "), "{out}");
    drop(deaf);
}

#[test]
fn ctrl_c_cancels_a_stuck_connection_after_the_grace() {
    // The same client with a short grace: the runtime cancels the blocked
    // green thread and the server exits cleanly well before the deadline.
    let mut server = Server::start("http", &[("HTTP_SHUTDOWN_GRACE_MS", "300")]);
    let deaf = server.connect();
    stall_server_in_a_write(&deaf);
    server.signal(libc::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server did not exit after the grace");
    assert!(status.success(), "{status}");
    drop(deaf);
}

#[test]
fn ctrl_c_under_load_with_keep_alive_connections_open_exits() {
    // As in benches/soak.sh, with clients still sending when the signal
    // comes: GC churn, idle keep-alive connections, and busy ones.
    let mut server = Server::start("http", &[("FIBRA_GC_CHURN", "8")]);
    let _idle = idle_connections(server.addr, 16);
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let mut conn = server.connect();
            let (stop, answered) = (stop.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Relaxed) {
                    let sent = conn.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
                    if sent.is_err() || matches!(conn.read(&mut buf), Ok(0) | Err(_)) {
                        break; // closed by the shutdown
                    }
                    answered.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    // Past the first GC cycle (about 700 requests at this churn).
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered.load(Relaxed) < 2000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.check_gc_pause_report(libc::SIGINT);
    stop.store(true, Relaxed);
    for client in clients {
        client.join().unwrap();
    }
}

#[test]
fn ctrl_c_ends_the_accept_loop_while_accept_fails_for_want_of_fds() {
    // With every fd taken by connections mid-request (they keep the server
    // until their long read timeout), accept fails with EMFILE and the
    // connection that wakes the accept loop cannot be accepted: the loop
    // must see the shutdown flag on its error path, end, and leave the rest
    // to the grace and the runtime's cancellation.
    let mut server = Server::start_with_fd_limit(
        "http",
        &[
            ("HTTP_READ_TIMEOUT_MS", "120000"),
            ("HTTP_SHUTDOWN_GRACE_MS", "300"),
            ("HTTP_EXIT_DEADLINE_MS", "8000"),
            ("RUST_LOG", "error"),
        ],
        Some(64),
    );
    let half: Vec<_> = (0..80)
        .map(|_| {
            let mut conn = std::net::TcpStream::connect(server.addr).unwrap();
            conn.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n")
                .unwrap();
            conn
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    server.signal(libc::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server still runs 20 s after SIGINT");
    assert!(
        status.success(),
        "{status} after {:?}: the accept loop did not end",
        signalled.elapsed()
    );
    drop(half);
}
