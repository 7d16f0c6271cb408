//! TCP: [`TcpListener`] and [`TcpStream`].

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;

use super::driver::Direction;
use super::io::{connect_state, PollIo, Ready};
use super::socket::{fd_traits, incoming, stream_io};
use super::{each_addr, AcceptBackoff};
use crate::time::Sleep;

/// A TCP socket server, listening for connections; `std::net::TcpListener`
/// whose `accept` parks the green thread.
///
/// ```
/// use fibra::net::{TcpListener, TcpStream};
///
/// fibra::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = fibra::spawn(move || TcpStream::connect(addr).unwrap());
///     let (conn, peer) = listener.accept().unwrap();
///     assert_eq!(peer, client.join().unwrap().local_addr().unwrap());
///     assert_eq!(conn.local_addr().unwrap(), addr);
/// });
/// ```
pub struct TcpListener {
    io: PollIo<mio::net::TcpListener>,
    /// Back-off state of `poll_accept` after `EMFILE`.
    async_backoff: Mutex<Option<(AcceptBackoff, Sleep)>>,
}

/// Listen backlog of `bind` (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: libc::c_int = 1024;

/// Raises a listening socket's backlog to [`BACKLOG`]. mio listens with
/// std's 128, which a burst of connects overflows while the acceptor waits
/// for its turn; the kernel then drops SYNs and clients retry only after a
/// second. Listening again on a listening socket just changes the backlog.
pub(crate) fn listen_deeper<L: AsRawFd>(listener: L) -> io::Result<L> {
    // SAFETY: `listener` owns a valid, bound, listening socket.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

impl TcpListener {
    /// Binds to `addr` (trying each address it resolves to), with
    /// `SO_REUSEADDR` and a backlog of 1024.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let l = fibra::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     assert!(l.local_addr().unwrap().port() > 0);
    /// });
    /// ```
    pub fn bind<A: ToSocketAddrs + Send>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            TcpListener::from_mio(listen_deeper(mio::net::TcpListener::bind(a)?)?)
        })
    }

    fn from_mio(l: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: PollIo::new(l)?,
            async_backoff: Mutex::new(None),
        })
    }

    /// Wraps a std listener (switched to non-blocking mode).
    ///
    /// ```
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l = fibra::net::TcpListener::from_std(std_listener).unwrap();
    /// assert!(l.local_addr().is_ok());
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::from_mio(mio::net::TcpListener::from_std(listener))
    }

    /// Waits for a connection. Parks the green thread until one arrives.
    ///
    /// Transient failures are retried here instead of being returned: a
    /// connection reset before it was accepted (`ECONNABORTED`) is skipped,
    /// and running out of file descriptors (`EMFILE`, `ENFILE`, also
    /// `ENOBUFS`/`ENOMEM`) backs off (5 ms doubling to 1 s, the green thread
    /// sleeping) and retries, logging one `warn` per burst.
    ///
    /// ```
    /// use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = l.local_addr().unwrap();
    ///     fibra::spawn(move || drop(TcpStream::connect(addr)));
    ///     let (_conn, _peer) = l.accept().unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, peer) = self.io.accept_retrying(self, |l| l.accept())?;
        Ok((TcpStream::from_mio(s)?, peer))
    }

    /// The async form of [`accept`](Self::accept).
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = l.local_addr().unwrap();
    ///     fibra::spawn(move || drop(TcpStream::connect(addr)));
    ///     let (_conn, _) = fibra::block_on(poll_fn(|cx| l.poll_accept(cx))).unwrap();
    /// });
    /// ```
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut backoff = self.async_backoff.lock();
        loop {
            if let Some((_, sleep)) = backoff.as_mut() {
                if Pin::new(sleep).poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            match self.io.poll_io(cx, Direction::Read, |l| l.accept()) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok((s, peer))) => {
                    *backoff = None;
                    return Poll::Ready(TcpStream::from_mio(s).map(|s| (s, peer)));
                }
                Poll::Ready(Err(e)) => {
                    let (state, _) = backoff
                        .get_or_insert_with(|| (AcceptBackoff::new(), Sleep::new(Duration::ZERO)));
                    match state.on_error(&e, self) {
                        Some(d) => backoff.as_mut().expect("just set").1 = Sleep::new(d),
                        None => {
                            *backoff = None;
                            return Poll::Ready(Err(e));
                        }
                    }
                }
            }
        }
    }

    /// An iterator over incoming connections (each `accept` in turn);
    /// never returns `None`.
    ///
    /// ```
    /// use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = l.local_addr().unwrap();
    ///     fibra::spawn(move || drop(TcpStream::connect(addr)));
    ///     for conn in l.incoming().take(1) {
    ///         assert!(conn.is_ok());
    ///     }
    /// });
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address it listens on.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let l = fibra::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     assert!(l.local_addr().unwrap().ip().is_loopback());
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// A second handle to the same socket.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let l = fibra::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let l2 = l.try_clone().unwrap();
    ///     assert_eq!(l.local_addr().unwrap(), l2.local_addr().unwrap());
    /// });
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: self.io.try_clone_with(|fd| {
                mio::net::TcpListener::from_std(std::net::TcpListener::from(fd))
            })?,
            async_backoff: Mutex::new(None),
        })
    }

    /// Sets `IP_TTL`.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let l = fibra::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     l.set_ttl(64).unwrap();
    ///     assert_eq!(l.ttl().unwrap(), 64);
    /// });
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let l = fibra::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     assert!(l.ttl().unwrap() > 0);
    /// });
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Takes the pending `SO_ERROR`.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let l = fibra::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     assert!(l.take_error().unwrap().is_none());
    /// });
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// In non-blocking mode `accept` returns `WouldBlock` instead of
    /// parking.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let l = fibra::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     l.set_nonblocking(true).unwrap();
    ///     assert_eq!(l.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// });
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Completes when a connection may be waiting (the readiness future).
    ///
    /// ```
    /// use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = l.local_addr().unwrap();
    ///     fibra::spawn(move || drop(TcpStream::connect(addr)));
    ///     fibra::block_on(l.readable()).unwrap();
    /// });
    /// ```
    pub fn readable(&self) -> Ready<'_> {
        self.io.ready(Direction::Read)
    }
}

fd_traits!(TcpListener);

/// The iterator of [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

incoming!(Incoming, TcpStream);

/// A TCP connection; `std::net::TcpStream` whose reads and writes park the
/// green thread until the socket is ready. `Read` and `Write` are
/// implemented for `TcpStream` and `&TcpStream` (one green thread may read
/// while another writes); `futures_io::AsyncRead`/`AsyncWrite` too.
///
/// ```
/// use std::io::{Read, Write};
/// use fibra::net::{TcpListener, TcpStream};
///
/// fibra::run(|| {
///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = l.local_addr().unwrap();
///     fibra::spawn(move || {
///         let (mut c, _) = l.accept().unwrap();
///         c.write_all(b"hi").unwrap();
///     });
///     let mut s = TcpStream::connect(addr).unwrap();
///     let mut out = String::new();
///     s.read_to_string(&mut out).unwrap();
///     assert_eq!(out, "hi");
/// });
/// ```
pub struct TcpStream {
    io: PollIo<mio::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr`, trying each address it resolves to (resolution
    /// runs on the blocking pool). Parks the green thread until connected.
    ///
    /// ```
    /// use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let port = l.local_addr().unwrap().port();
    ///     let s = TcpStream::connect(("localhost", port)).unwrap();
    ///     assert_eq!(s.peer_addr().unwrap().port(), port);
    /// });
    /// ```
    #[track_caller]
    pub fn connect<A: ToSocketAddrs + Send>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_addr(a, None))
    }

    /// Connects to one address, failing with `TimedOut` after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = l.local_addr().unwrap();
    ///     assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok());
    /// });
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_addr(*addr, Some(timeout))
    }

    /// The async form of [`connect`](Self::connect), for async tasks and
    /// other executors (resolution runs on the blocking pool inside a
    /// runtime).
    ///
    /// ```
    /// use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = l.local_addr().unwrap();
    ///     let h = fibra::spawn_async(async move {
    ///         TcpStream::connect_async(addr).await.map(|s| s.peer_addr().unwrap())
    ///     });
    ///     assert_eq!(h.join().unwrap().unwrap(), addr);
    /// });
    /// ```
    pub async fn connect_async<A: ToSocketAddrs + Send + 'static>(
        addr: A,
    ) -> io::Result<TcpStream> {
        let addrs: Vec<SocketAddr> = if crate::context::current_runtime().is_some() {
            crate::spawn_blocking(move || addr.to_socket_addrs().map(Iterator::collect))
                .await
                .map_err(|e| io::Error::other(e.to_string()))??
        } else {
            addr.to_socket_addrs()?.collect()
        };
        let mut last = None;
        for a in addrs {
            let attempt = async {
                let stream = TcpStream::from_mio(mio::net::TcpStream::connect(a)?)?;
                std::future::poll_fn(|cx| stream.io.poll_io(cx, Direction::Write, check_connected))
                    .await?;
                Ok::<_, io::Error>(stream)
            };
            match attempt.await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any addresses",
            )
        }))
    }

    fn connect_addr(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let stream = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?;
        let connected = stream
            .io
            .do_io_timeout(Direction::Write, timeout, check_connected);
        match connected {
            Ok(()) => Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && timeout.is_some() => {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connection to {addr} timed out"),
                ))
            }
            Err(e) => Err(e),
        }
    }

    fn from_mio(s: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: PollIo::new(s)?,
        })
    }

    /// Wraps a connected std stream (switched to non-blocking mode).
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = fibra::net::TcpStream::from_std(s).unwrap();
    /// assert!(s.peer_addr().is_ok());
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// The remote address.
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The local address.
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     assert!(s.local_addr().unwrap().ip().is_loopback());
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Shuts down the read half, the write half (the peer reads end of
    /// file: a half-close) or both.
    ///
    /// ```
    /// # use std::io::Read;
    /// # use fibra::net::{TcpListener, TcpStream};
    /// use std::net::Shutdown;
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let (mut conn, _) = l.accept().unwrap();
    ///     s.shutdown(Shutdown::Write).unwrap();
    ///     assert_eq!(conn.read(&mut [0; 8]).unwrap(), 0);
    /// });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// A second handle to the same connection (a duplicated descriptor,
    /// sharing timeouts and blocking mode as std's clones share them).
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let s2 = s.try_clone().unwrap();
    ///     assert_eq!(s.local_addr().unwrap(), s2.local_addr().unwrap());
    /// });
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: self.io.try_clone_with(|fd| {
                mio::net::TcpStream::from_std(std::net::TcpStream::from(fd))
            })?,
        })
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     s.set_nodelay(true).unwrap();
    ///     assert!(s.nodelay().unwrap());
    /// });
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     assert!(!s.nodelay().unwrap());
    /// });
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     s.set_ttl(32).unwrap();
    ///     assert_eq!(s.ttl().unwrap(), 32);
    /// });
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     assert!(s.ttl().unwrap() > 0);
    /// });
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Takes the pending `SO_ERROR`.
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     assert!(s.take_error().unwrap().is_none());
    /// });
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Reads without consuming. Parks until data (or end of file) arrives.
    ///
    /// ```
    /// # use std::io::Write;
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let (c, _) = l.accept().unwrap();
    ///     s.write_all(b"x").unwrap();
    ///     let mut buf = [0; 1];
    ///     assert_eq!(c.peek(&mut buf).unwrap(), 1);
    ///     assert_eq!(c.peek(&mut buf).unwrap(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.do_io(Direction::Read, |s| s.peek(buf))
    }

    /// Sets how long a read may wait (`None`: forever). An expired read
    /// fails with `ErrorKind::WouldBlock`, like std on Unix. A zero
    /// duration is an error.
    ///
    /// ```
    /// # use std::io::Read;
    /// # use std::time::Duration;
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    ///     let err = s.read(&mut [0; 4]).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// });
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(dur)
    }

    /// Sets how long a write may wait for buffer space (`None`: forever).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    ///     assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(1)));
    /// });
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.set_write_timeout(dur)
    }

    /// The read timeout.
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     assert_eq!(s.read_timeout().unwrap(), None);
    /// });
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.read_timeout())
    }

    /// The write timeout.
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     assert_eq!(s.write_timeout().unwrap(), None);
    /// });
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.write_timeout())
    }

    /// In non-blocking mode reads and writes return `WouldBlock` instead of
    /// parking.
    ///
    /// ```
    /// # use std::io::Read;
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     s.set_nonblocking(true).unwrap();
    ///     assert_eq!(s.read(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// });
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Completes when the stream may be read (the readiness future).
    ///
    /// ```
    /// # use std::io::Write;
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let (c, _) = l.accept().unwrap();
    ///     s.write_all(b"x").unwrap();
    ///     fibra::block_on(c.readable()).unwrap();
    /// });
    /// ```
    pub fn readable(&self) -> Ready<'_> {
        self.io.ready(Direction::Read)
    }

    /// Completes when the stream may be written (the readiness future).
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     fibra::block_on(s.writable()).unwrap();
    /// });
    /// ```
    pub fn writable(&self) -> Ready<'_> {
        self.io.ready(Direction::Write)
    }

    /// Reads if data is ready, else registers `cx`'s waker (the async read).
    ///
    /// ```
    /// # use std::io::Write;
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let (c, _) = l.accept().unwrap();
    ///     s.write_all(b"abc").unwrap();
    ///     let mut buf = [0; 3];
    ///     let n = fibra::block_on(std::future::poll_fn(|cx| c.poll_read(cx, &mut buf))).unwrap();
    ///     assert_eq!(&buf[..n], &b"abc"[..n]);
    /// });
    /// ```
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.io.poll_read_stream(cx, len, |mut s| s.read(buf))
    }

    /// Writes if there is room, else registers `cx`'s waker (the async
    /// write).
    ///
    /// ```
    /// # use fibra::net::{TcpListener, TcpStream};
    /// fibra::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let n = fibra::block_on(std::future::poll_fn(|cx| s.poll_write(cx, b"abc"))).unwrap();
    ///     assert_eq!(n, 3);
    /// });
    /// ```
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Write, |mut s| s.write(buf))
    }
}

/// After a non-blocking connect: done, failed, or still `WouldBlock`.
fn check_connected(s: &mio::net::TcpStream) -> io::Result<()> {
    connect_state(s.take_error(), || s.peer_addr())
}

fd_traits!(TcpStream);
stream_io!(TcpStream);
