//! UDP round trips and Unix-domain sockets on real sockets.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use fibra_runtime::net::{UdpSocket, UnixListener, UnixStream};
use fibra_runtime::{spawn, Runtime};

#[test]
fn udp_round_trips_between_green_threads() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let echo = spawn(move || {
            let mut buf = [0; 64];
            for _ in 0..500 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        for i in 0..500u32 {
            client.send(&i.to_le_bytes()).unwrap();
            let mut buf = [0; 4];
            assert_eq!(client.recv(&mut buf).unwrap(), 4);
            assert_eq!(u32::from_le_bytes(buf), i);
        }
        echo.join().unwrap();
    });
}

#[test]
fn udp_receive_timeout_fires() {
    fibra_runtime::run(|| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let start = std::time::Instant::now();
        let err = s.recv_from(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
}

#[test]
fn udp_from_a_plain_thread_talks_to_a_green_thread() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
    let plain_addr = plain.local_addr().unwrap();
    let green = rt.spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(b"from green", plain_addr).unwrap();
        let mut buf = [0; 32];
        let (n, _) = s.recv_from(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    let mut buf = [0; 32];
    let (n, from) = plain.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from green");
    plain.send_to(b"from plain", from).unwrap();
    assert_eq!(green.join().unwrap(), b"from plain");
}

fn socket_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("fibra-test-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn unix_echo_with_many_clients_and_half_close() {
    let path = socket_path("echo");
    let rt = Runtime::builder().workers(2).build().unwrap();
    let p = path.clone();
    rt.run(move || {
        let listener = UnixListener::bind(&p).unwrap();
        spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                spawn(move || {
                    let mut all = Vec::new();
                    conn.read_to_end(&mut all).unwrap();
                    conn.write_all(&all).unwrap();
                });
            }
        });
        let clients: Vec<_> = (0..100)
            .map(|i| {
                let p = p.clone();
                spawn(move || {
                    let mut s = UnixStream::connect(&p).unwrap();
                    let msg = format!("client {i}").repeat(100);
                    s.write_all(msg.as_bytes()).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                    let mut back = String::new();
                    s.read_to_string(&mut back).unwrap();
                    assert_eq!(back, msg);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn unix_pair_timeouts_and_peer_close() {
    fibra_runtime::run(|| {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        assert_eq!(
            b.read(&mut [0; 4]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        let reader = spawn(move || {
            b.set_read_timeout(None).unwrap();
            let mut got = Vec::new();
            b.read_to_end(&mut got).unwrap();
            got
        });
        (&a).write_all(b"bye").unwrap();
        drop(a);
        assert_eq!(reader.join().unwrap(), b"bye");
    });
}
