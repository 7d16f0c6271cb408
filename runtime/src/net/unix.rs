//! Unix domain sockets: [`UnixListener`] and [`UnixStream`].

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Duration;

use super::driver::Direction;
use super::io::{connect_state, PollIo, Ready};
use super::socket::{fd_traits, incoming, stream_io};

/// A Unix socket server; `std::os::unix::net::UnixListener` whose `accept`
/// parks the green thread.
///
/// ```
/// use fibra::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("fibra-doc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// fibra::run(|| {
///     let l = UnixListener::bind(&path).unwrap();
///     let p = path.clone();
///     fibra::spawn(move || drop(UnixStream::connect(p).unwrap()));
///     let (_conn, _addr) = l.accept().unwrap();
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    io: PollIo<mio::net::UnixListener>,
}

impl UnixListener {
    /// Binds to `path` (which must not exist).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("fibra-doc-bind-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// fibra::run(|| {
    ///     let l = fibra::net::UnixListener::bind(&path).unwrap();
    ///     assert!(l.local_addr().unwrap().as_pathname().is_some());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: PollIo::new(super::tcp::listen_deeper(mio::net::UnixListener::bind(
                path,
            )?)?)?,
        })
    }

    /// Wraps a std listener (switched to non-blocking mode).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("fibra-doc-std-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let l = fibra::net::UnixListener::from_std(l).unwrap();
    /// assert!(l.local_addr().is_ok());
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            io: PollIo::new(mio::net::UnixListener::from_std(listener))?,
        })
    }

    /// Waits for a connection; retries transient failures like
    /// [`TcpListener::accept`](super::TcpListener::accept).
    ///
    /// ```
    /// # use fibra::net::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("fibra-doc-acc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// fibra::run(|| {
    ///     let l = UnixListener::bind(&path).unwrap();
    ///     let _c = UnixStream::connect(&path).unwrap();
    ///     assert!(l.accept().is_ok());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    #[track_caller]
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, addr) = self.io.accept_retrying(self, |l| l.accept())?;
        Ok((UnixStream::from_mio(s)?, addr))
    }

    /// An iterator over incoming connections; never returns `None`.
    ///
    /// ```
    /// # use fibra::net::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("fibra-doc-inc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// fibra::run(|| {
    ///     let l = UnixListener::bind(&path).unwrap();
    ///     let _c = UnixStream::connect(&path).unwrap();
    ///     assert!(l.incoming().next().unwrap().is_ok());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address it listens on.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("fibra-doc-la-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// fibra::run(|| {
    ///     let l = fibra::net::UnixListener::bind(&path).unwrap();
    ///     assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Takes the pending `SO_ERROR`.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("fibra-doc-te-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// fibra::run(|| {
    ///     let l = fibra::net::UnixListener::bind(&path).unwrap();
    ///     assert!(l.take_error().unwrap().is_none());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// In non-blocking mode `accept` returns `WouldBlock` instead of
    /// parking.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("fibra-doc-nb-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// fibra::run(|| {
    ///     let l = fibra::net::UnixListener::bind(&path).unwrap();
    ///     l.set_nonblocking(true).unwrap();
    ///     assert!(l.accept().is_err());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Completes when a connection may be waiting.
    ///
    /// ```
    /// # use fibra::net::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("fibra-doc-rd-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// fibra::run(|| {
    ///     let l = UnixListener::bind(&path).unwrap();
    ///     let _c = UnixStream::connect(&path).unwrap();
    ///     fibra::block_on(l.readable()).unwrap();
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn readable(&self) -> Ready<'_> {
        self.io.ready(Direction::Read)
    }
}

fd_traits!(UnixListener);

/// The iterator of [`UnixListener::incoming`].
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

incoming!(UnixIncoming, UnixStream);

/// A Unix stream connection; `std::os::unix::net::UnixStream` whose reads
/// and writes park the green thread.
///
/// ```
/// use std::io::{Read, Write};
/// fibra::run(|| {
///     let (mut a, mut b) = fibra::net::UnixStream::pair().unwrap();
///     a.write_all(b"hey").unwrap();
///     let mut buf = [0; 3];
///     b.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"hey");
/// });
/// ```
pub struct UnixStream {
    io: PollIo<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// ```
    /// # use fibra::net::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("fibra-doc-con-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// fibra::run(|| {
    ///     let _l = UnixListener::bind(&path).unwrap();
    ///     let s = UnixStream::connect(&path).unwrap();
    ///     assert_eq!(s.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    #[track_caller]
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let stream = UnixStream::from_mio(mio::net::UnixStream::connect(path)?)?;
        stream.io.do_io(Direction::Write, |s| {
            connect_state(s.take_error(), || s.peer_addr())
        })?;
        Ok(stream)
    }

    /// A connected pair of sockets.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (a, b) = fibra::net::UnixStream::pair().unwrap();
    ///     assert!(a.peer_addr().is_ok() && b.local_addr().is_ok());
    /// });
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    fn from_mio(s: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: PollIo::new(s)?,
        })
    }

    /// Wraps a connected std stream (switched to non-blocking mode).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let a = fibra::net::UnixStream::from_std(a).unwrap();
    /// assert!(a.local_addr().is_ok());
    /// ```
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::from_mio(mio::net::UnixStream::from_std(stream))
    }

    /// The local address.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     assert!(a.local_addr().unwrap().is_unnamed());
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     assert!(a.peer_addr().unwrap().is_unnamed());
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down one or both halves.
    ///
    /// ```
    /// use std::io::Read;
    /// fibra::run(|| {
    ///     let (a, mut b) = fibra::net::UnixStream::pair().unwrap();
    ///     a.shutdown(std::net::Shutdown::Write).unwrap();
    ///     assert_eq!(b.read(&mut [0; 4]).unwrap(), 0);
    /// });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// A second handle to the same connection.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     assert!(a.try_clone().is_ok());
    /// });
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: self.io.try_clone_with(|fd| {
                mio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))
            })?,
        })
    }

    /// Sets how long a read may wait; see
    /// [`TcpStream::set_read_timeout`](super::TcpStream::set_read_timeout).
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// fibra::run(|| {
    ///     let (mut a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     a.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    ///     assert!(a.read(&mut [0; 4]).is_err());
    /// });
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(dur)
    }

    /// Sets how long a write may wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// fibra::run(|| {
    ///     let (a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     a.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    ///     assert_eq!(a.write_timeout().unwrap(), Some(Duration::from_secs(1)));
    /// });
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.set_write_timeout(dur)
    }

    /// The read timeout.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     assert_eq!(a.read_timeout().unwrap(), None);
    /// });
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.read_timeout())
    }

    /// The write timeout.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     assert_eq!(a.write_timeout().unwrap(), None);
    /// });
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.write_timeout())
    }

    /// In non-blocking mode reads and writes return `WouldBlock` instead of
    /// parking.
    ///
    /// ```
    /// use std::io::Read;
    /// fibra::run(|| {
    ///     let (mut a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     a.set_nonblocking(true).unwrap();
    ///     assert_eq!(a.read(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// });
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending `SO_ERROR`.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     assert!(a.take_error().unwrap().is_none());
    /// });
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Completes when the stream may be read.
    ///
    /// ```
    /// use std::io::Write;
    /// fibra::run(|| {
    ///     let (mut a, b) = fibra::net::UnixStream::pair().unwrap();
    ///     a.write_all(b"x").unwrap();
    ///     fibra::block_on(b.readable()).unwrap();
    /// });
    /// ```
    pub fn readable(&self) -> Ready<'_> {
        self.io.ready(Direction::Read)
    }

    /// Completes when the stream may be written.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     fibra::block_on(a.writable()).unwrap();
    /// });
    /// ```
    pub fn writable(&self) -> Ready<'_> {
        self.io.ready(Direction::Write)
    }

    /// The async read.
    ///
    /// ```
    /// use std::io::Write;
    /// fibra::run(|| {
    ///     let (mut a, b) = fibra::net::UnixStream::pair().unwrap();
    ///     a.write_all(b"x").unwrap();
    ///     let mut buf = [0; 1];
    ///     let n = fibra::block_on(std::future::poll_fn(|cx| b.poll_read(cx, &mut buf))).unwrap();
    ///     assert_eq!(n, 1);
    /// });
    /// ```
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.io.poll_read_stream(cx, len, |mut s| s.read(buf))
    }

    /// The async write.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let (a, _b) = fibra::net::UnixStream::pair().unwrap();
    ///     let n = fibra::block_on(std::future::poll_fn(|cx| a.poll_write(cx, b"x"))).unwrap();
    ///     assert_eq!(n, 1);
    /// });
    /// ```
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Write, |mut s| s.write(buf))
    }
}

fd_traits!(UnixStream);
stream_io!(UnixStream);
