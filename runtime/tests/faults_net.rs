//! Fault injection on sockets: a peer that resets the connection while a
//! green thread is in the middle of a large write (the writer is parked on
//! a full send buffer). The write must fail with an error (no hang, no
//! SIGPIPE killing the process), and the runtime keeps serving.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use fibra_runtime::net::{TcpListener, TcpStream};
use fibra_runtime::spawn;

fn reset(s: TcpStream) {
    // SO_LINGER 0: close sends RST instead of FIN.
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

#[test]
fn a_peer_reset_while_a_writer_is_parked_fails_the_write() {
    fibra_runtime::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let writer = spawn(move || {
            let mut conn = conn;
            let chunk = vec![0xabu8; 1 << 20];
            let mut written = 0usize;
            // Far more than the socket buffers hold: the writer parks.
            for _ in 0..256 {
                match conn.write_all(&chunk) {
                    Ok(()) => written += chunk.len(),
                    Err(e) => return (written, e),
                }
            }
            panic!("wrote {written} bytes to a reset peer without an error");
        });
        // Read a little, so the writer is mid-stream, then reset.
        let mut client = client;
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0;
        while read < 256 * 1024 {
            read += client.read(&mut buf).unwrap();
        }
        fibra_runtime::time::sleep(Duration::from_millis(20));
        reset(client);
        let (written, err) = writer.join().unwrap();
        // The client read data the writer wrote before the reset.
        assert!(written + (1 << 20) >= read, "{written} + 1 MiB < {read}");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ),
            "{err:?}"
        );
        // The runtime still serves new connections.
        let c = TcpStream::connect(addr).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        spawn(move || {
            let mut c = c;
            c.write_all(b"ok").unwrap();
        });
        let mut two = [0u8; 2];
        s.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"ok");
    });
}

#[test]
fn many_writers_reset_at_once() {
    fibra_runtime::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        let mut writers = Vec::new();
        for _ in 0..32 {
            clients.push(TcpStream::connect(addr).unwrap());
            let (conn, _) = listener.accept().unwrap();
            writers.push(spawn(move || {
                let mut conn = conn;
                let chunk = vec![1u8; 256 * 1024];
                loop {
                    if let Err(e) = conn.write_all(&chunk) {
                        return e.kind();
                    }
                }
            }));
        }
        fibra_runtime::time::sleep(Duration::from_millis(20));
        for c in clients {
            reset(c);
        }
        for w in writers {
            let kind = w.join().unwrap();
            assert!(
                matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
                "{kind:?}"
            );
        }
    });
}
