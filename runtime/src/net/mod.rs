//! Networking in blocking style: TCP, UDP and Unix sockets shaped like
//! `std::net`, whose operations park the calling green thread (not its
//! worker) until the socket is ready.
//!
//! ```
//! use std::io::{Read, Write};
//! use fibra::net::{TcpListener, TcpStream};
//!
//! fibra::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = fibra::spawn(move || {
//!         let (mut conn, _) = listener.accept().unwrap();
//!         let mut buf = [0; 5];
//!         conn.read_exact(&mut buf).unwrap();
//!         conn.write_all(&buf).unwrap();
//!     });
//!     let mut client = TcpStream::connect(addr).unwrap();
//!     client.write_all(b"hello").unwrap();
//!     let mut echo = [0; 5];
//!     client.read_exact(&mut echo).unwrap();
//!     assert_eq!(&echo, b"hello");
//!     server.join().unwrap();
//! });
//! ```
//!
//! # How it works
//!
//! Every socket is non-blocking at the OS level and belongs to the
//! runtime's netpoller (`driver`: one epoll instance per worker). An
//! operation tries its syscall first; on `WouldBlock` it makes sure the
//! socket is in the epoll set of the worker it waits on (a green thread's
//! own worker, so the wake-up is found where the green thread lives),
//! parks the green thread until that poller reports readiness (or the
//! socket's timeout passes), then retries. See `driver` for where a socket
//! is registered and the edge-triggered readiness protocol.
//!
//! # Where they can be used
//!
//! - In green threads: blocking style, as above.
//! - In async tasks and other executors: the `readable()`/`writable()`
//!   readiness futures and `futures_io::AsyncRead`/`AsyncWrite` for
//!   streams (a blocking call in an async task panics and points here);
//!   with the `tokio` feature, tokio's `AsyncRead`/`AsyncWrite` too.
//! - On plain OS threads (outside any runtime): the same blocking calls
//!   block the thread. A socket created outside a runtime belongs to a
//!   process-wide fallback poller driven by one `fibra-netpoll` thread, so
//!   it works without a runtime; a socket keeps the driver it was created
//!   with (a socket created in a runtime fails with a clear error once
//!   that runtime has shut down).
//!
//! # Differences from `std::net`
//!
//! - `bind`/`connect` take `impl ToSocketAddrs + Send`: hostname
//!   resolution (`getaddrinfo` blocks) runs on the blocking pool while the
//!   green thread parks, so the address must be able to go there.
//! - Timeouts (`set_read_timeout`, ...) are kept by fibra, not the kernel;
//!   like std on Unix an expired one fails with `ErrorKind::WouldBlock`,
//!   and clones made with `try_clone` share them, as they would share
//!   the kernel's.
//! - `accept` retries by itself after `ECONNABORTED` (a connection reset
//!   before it was accepted), and backs off and retries on `EMFILE`/`ENFILE`
//!   (out of file descriptors) instead of failing or spinning: see
//!   [`TcpListener::accept`].

pub(crate) use crate::sched::netpoll as driver;
mod io;
mod socket;
mod tcp;
mod udp;
mod unix;

pub use io::Ready;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixIncoming, UnixListener, UnixStream};

use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `addr` off the worker (on the blocking pool) when called from
/// a green thread; directly elsewhere.
fn resolve<A: ToSocketAddrs + Send>(addr: A) -> std::io::Result<Vec<SocketAddr>> {
    crate::blocking::run_scoped(move || addr.to_socket_addrs().map(Iterator::collect))
}

/// Tries `f` on each resolved address, returning the first success or the
/// last error (std's behaviour).
fn each_addr<A, T>(
    addr: A,
    mut f: impl FnMut(SocketAddr) -> std::io::Result<T>,
) -> std::io::Result<T>
where
    A: ToSocketAddrs + Send,
{
    let addrs = resolve(addr)?;
    let mut last = None;
    for a in addrs {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// Backs off after running out of file descriptors while accepting.
struct AcceptBackoff {
    /// Current delay; doubles up to `MAX`.
    delay: std::time::Duration,
    /// Whether this burst was logged.
    logged: bool,
}

impl AcceptBackoff {
    const START: std::time::Duration = std::time::Duration::from_millis(5);
    const MAX: std::time::Duration = std::time::Duration::from_secs(1);

    fn new() -> AcceptBackoff {
        AcceptBackoff {
            delay: Self::START,
            logged: false,
        }
    }

    /// Whether `err` is worth retrying (and after waiting how long).
    fn on_error(
        &mut self,
        err: &std::io::Error,
        listener: &dyn std::fmt::Debug,
    ) -> Option<std::time::Duration> {
        match err.raw_os_error() {
            Some(libc::ECONNABORTED) => Some(std::time::Duration::ZERO),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                if !self.logged {
                    self.logged = true;
                    tracing::warn!(
                        ?listener,
                        "accept failed: {err}; retrying with backoff (raise the open-file limit, \
                         `ulimit -n`, or close idle connections)"
                    );
                }
                let d = self.delay;
                self.delay = (self.delay * 2).min(Self::MAX);
                Some(d)
            }
            _ => None,
        }
    }
}

/// Sleeps a green thread (parking it) or an OS thread.
fn pause(d: std::time::Duration) {
    if !d.is_zero() {
        crate::time::sleep(d);
    }
}
