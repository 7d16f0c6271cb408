//! examples/echo.rs driven by std OS-thread clients.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{idle_connections, Server};

#[test]
fn concurrent_clients_get_their_bytes_back() {
    let server = Server::start("echo", &[]);
    let addr = server.addr;
    let clients: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let msg: Vec<u8> = (0..100_000u32).map(|n| (n * 7 + i) as u8).collect();
                let mut w = s.try_clone().unwrap();
                let sent = msg.clone();
                let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
                let mut got = vec![0u8; msg.len()];
                s.read_exact(&mut got).unwrap();
                writer.join().unwrap();
                assert_eq!(got, msg);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn garbage_and_idle_connections_do_not_stop_service() {
    let server = Server::start("echo", &[]);
    let idle = idle_connections(server.addr, 2_000);
    let mut s = server.connect();
    let garbage: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut w = s.try_clone().unwrap();
    let sent = garbage.clone();
    let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
    let mut got = vec![0u8; garbage.len()];
    s.read_exact(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got, garbage);
    // A client that half-closes gets everything back, then EOF.
    let mut s = server.connect();
    s.write_all(b"last words").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"last words");
    drop(idle);
}
