//! examples/kv.rs driven from outside: redis-cli and redis-benchmark as
//! clients, plus raw sockets sending malformed frames.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{exchange, have_tool, idle_connections, run, Server};

fn cli(server: &Server, args: &[&str]) -> String {
    let port = server.port();
    let mut all = vec!["-p", port.as_str()];
    all.extend_from_slice(args);
    run("redis-cli", &all).trim_end().to_string()
}

/// PING on a fresh connection, to check the server still serves.
fn ping_ok(server: &Server) {
    let reply = exchange(
        server.addr,
        b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(reply, b"+PONG\r\n+OK\r\n");
}

#[test]
fn redis_cli_runs_every_command() {
    if !have_tool("redis-cli", "redis_cli_runs_every_command") {
        return;
    }
    let s = Server::start("kv", &[]);
    assert_eq!(cli(&s, &["ping"]), "PONG");
    assert_eq!(cli(&s, &["echo", "hello world"]), "hello world");
    assert_eq!(cli(&s, &["set", "k", "v"]), "OK");
    assert_eq!(cli(&s, &["get", "k"]), "v");
    assert_eq!(cli(&s, &["get", "missing"]), "");
    assert_eq!(cli(&s, &["set", "n", "41"]), "OK");
    assert_eq!(cli(&s, &["incr", "n"]), "42");
    assert_eq!(cli(&s, &["incr", "fresh"]), "1");
    assert_eq!(
        cli(&s, &["incr", "k"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(cli(&s, &["mset", "a", "1", "b", "2"]), "OK");
    let port = s.port();
    // One line per value; the missing key is an empty line.
    assert_eq!(
        run("redis-cli", &["-p", &port, "mget", "a", "b", "nope"]),
        "1\n2\n\n"
    );
    assert_eq!(cli(&s, &["exists", "a", "b", "nope"]), "2");
    assert_eq!(cli(&s, &["del", "a", "nope"]), "1");
    assert_eq!(cli(&s, &["ttl", "b"]), "-1");
    assert_eq!(cli(&s, &["ttl", "nope"]), "-2");
    assert_eq!(cli(&s, &["expire", "b", "100"]), "1");
    assert_eq!(cli(&s, &["ttl", "b"]), "100");
    assert_eq!(cli(&s, &["set", "e", "v", "EX", "50"]), "OK");
    assert_eq!(cli(&s, &["ttl", "e"]), "50");
    assert_eq!(cli(&s, &["set", "p", "v", "px", "100"]), "OK");
    assert_eq!(cli(&s, &["get", "p"]), "v");
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(cli(&s, &["get", "p"]), "");
    assert_eq!(cli(&s, &["exists", "p"]), "0");
    assert_eq!(
        cli(&s, &["set", "x", "v", "ex", "0"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(cli(&s, &["set", "x", "v", "bogus"]), "ERR syntax error");
    assert_eq!(cli(&s, &["dbsize"]), "5"); // k n fresh b e; a deleted, p expired
    assert_eq!(
        cli(&s, &["get"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert!(cli(&s, &["frobnicate", "x"]).starts_with("ERR unknown command 'frobnicate'"));
    assert_eq!(cli(&s, &["flushall"]), "OK");
    assert_eq!(cli(&s, &["dbsize"]), "0");
}

#[test]
fn redis_benchmark_completes_pipelined_sets_and_gets() {
    if !have_tool(
        "redis-benchmark",
        "redis_benchmark_completes_pipelined_sets_and_gets",
    ) {
        return;
    }
    let s = Server::start("kv", &[]);
    let port = s.port();
    let out = run(
        "redis-benchmark",
        &[
            "-p", &port, "-q", "-n", "20000", "-c", "20", "-P", "16", "-t", "set,get", "-r", "1000",
        ],
    );
    for cmd in ["SET", "GET"] {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("{cmd}: ")) && l.contains("requests per second")),
            "{out}"
        );
    }
    let keys: u64 = cli(&s, &["dbsize"]).parse().unwrap();
    assert!(keys > 0 && keys <= 1000, "{keys}");
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let s = Server::start("kv", &[]);
    let mut request = Vec::new();
    let mut want = Vec::new();
    for i in 0..500 {
        request.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n$2\r\nk{}\r\n$3\r\nv{:02}\r\n",
                i % 10,
                i % 100
            )
            .as_bytes(),
        );
        want.extend_from_slice(b"+OK\r\n");
        request.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n$2\r\nk{}\r\n", i % 10).as_bytes());
        want.extend_from_slice(format!("$3\r\nv{:02}\r\n", i % 100).as_bytes());
        request.extend_from_slice(b"INCR counter\r\n"); // inline form
        want.extend_from_slice(format!(":{}\r\n", i + 1).as_bytes());
    }
    request.extend_from_slice(b"*1\r\n$4\r\nQUIT\r\n");
    want.extend_from_slice(b"+OK\r\n");
    let mut conn = s.connect();
    for piece in request.chunks(61) {
        conn.write_all(piece).unwrap();
    }
    let reply = common::read_until_close(&mut conn);
    assert_eq!(
        String::from_utf8_lossy(&reply),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn malformed_frames_get_protocol_errors_and_others_are_still_served() {
    let s = Server::start("kv", &[]);
    let cases: &[&[u8]] = &[
        b"*1\r\n+PING\r\n",
        b"*x\r\n",
        b"*1\r\n$-3\r\n",
        b"*1\r\n$2\r\nabcd\r\n",
        b"*1\r\n$99999999999\r\n",
        b"*1\r\n$4\r\nPI",
    ];
    for (i, frame) in cases.iter().enumerate() {
        let reply = exchange(s.addr, frame, Duration::from_millis(500));
        let text = String::from_utf8_lossy(&reply);
        if i + 1 == cases.len() {
            // Truncated: the server waits for the rest, then the client leaves.
            assert_eq!(text, "");
        } else {
            assert!(
                text.starts_with("-ERR Protocol error"),
                "{frame:?} -> {text:?}"
            );
        }
        ping_ok(&s);
    }
    // Random bytes: whatever they parse as, the server answers or closes and keeps serving.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20 {
        let junk: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let _ = exchange(s.addr, &junk, Duration::from_millis(200));
    }
    ping_ok(&s);
    // Unknown commands are errors, not disconnects.
    let reply = exchange(
        s.addr,
        b"NOPE 1 2\r\nPING\r\nQUIT\r\n",
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("-ERR unknown command 'NOPE'"), "{text}");
    assert!(text.ends_with("+PONG\r\n+OK\r\n"), "{text}");
}

#[test]
fn idle_connections_do_not_stop_service() {
    let s = Server::start("kv", &[]);
    let idle = idle_connections(s.addr, 2_000);
    ping_ok(&s);
    let mut conn = &idle[idle.len() / 2];
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
}

#[test]
fn gc_churn_runs_cycles_and_ctrl_c_prints_the_pause_report() {
    // Eight lists per command: ~6 KiB of GC garbage, so the first cycle
    // (at 4 MiB) comes after about 700 commands.
    let mut s = Server::start("kv", &[("FIBRA_GC_CHURN", "8")]);
    let commands = 3000;
    let mut pipeline = Vec::new();
    let mut want = Vec::new();
    for i in 0..commands / 2 {
        let (k, v) = (format!("k{}", i % 50), format!("v{i:05}"));
        pipeline.extend_from_slice(format!("SET {k} {v}\r\nGET {k}\r\n").as_bytes());
        want.extend_from_slice(format!("+OK\r\n$6\r\n{v}\r\n").as_bytes());
    }
    pipeline.extend_from_slice(b"QUIT\r\n");
    want.extend_from_slice(b"+OK\r\n");
    let mut conn = s.connect();
    let mut writer = conn.try_clone().unwrap();
    let writing = std::thread::spawn(move || writer.write_all(&pipeline));
    let reply = common::read_until_close(&mut conn);
    writing.join().unwrap().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reply),
        String::from_utf8_lossy(&want)
    );

    s.check_gc_pause_report(libc::SIGINT);
}
