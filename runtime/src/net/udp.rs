//! UDP: [`UdpSocket`].

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::task::{Context, Poll};
use std::time::Duration;

use super::driver::Direction;
use super::io::{PollIo, Ready};
use super::socket::fd_traits;
use super::{each_addr, resolve};

/// A UDP socket; `std::net::UdpSocket` whose receives (and sends, when the
/// buffer is full) park the green thread.
///
/// ```
/// use fibra::net::UdpSocket;
///
/// fibra::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).unwrap();
///     assert_eq!(&buf[..n], b"ping");
///     assert_eq!(from, a.local_addr().unwrap());
/// });
/// ```
pub struct UdpSocket {
    io: PollIo<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr` (trying each address it resolves to).
    ///
    /// ```
    /// fibra::run(|| {
    ///     let s = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert!(s.local_addr().unwrap().port() > 0);
    /// });
    /// ```
    pub fn bind<A: ToSocketAddrs + Send>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| UdpSocket::from_mio(mio::net::UdpSocket::bind(a)?))
    }

    fn from_mio(s: mio::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: PollIo::new(s)?,
        })
    }

    /// Wraps a std socket (switched to non-blocking mode).
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let s = fibra::net::UdpSocket::from_std(s).unwrap();
    /// assert!(s.local_addr().is_ok());
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        UdpSocket::from_mio(mio::net::UdpSocket::from_std(socket))
    }

    /// Sends `buf` to `addr` (the first address it resolves to).
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert_eq!(a.send_to(b"x", a.local_addr().unwrap()).unwrap(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn send_to<A: ToSocketAddrs + Send>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let target = resolve(addr)?.into_iter().next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.io.do_io(Direction::Write, |s| s.send_to(buf, target))
    }

    /// Receives one datagram, parking until one arrives.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.send_to(b"me", a.local_addr().unwrap()).unwrap();
    ///     let mut buf = [0; 4];
    ///     assert_eq!(a.recv_from(&mut buf).unwrap().0, 2);
    /// });
    /// ```
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.do_io(Direction::Read, |s| s.recv_from(buf))
    }

    /// Like `recv_from`, leaving the datagram queued.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.send_to(b"me", a.local_addr().unwrap()).unwrap();
    ///     let mut buf = [0; 4];
    ///     assert_eq!(a.peek_from(&mut buf).unwrap().0, 2);
    ///     assert_eq!(a.recv_from(&mut buf).unwrap().0, 2);
    /// });
    /// ```
    #[track_caller]
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.do_io(Direction::Read, |s| s.peek_from(buf))
    }

    /// Sets the default peer (`send`/`recv` then use it, and datagrams
    /// from elsewhere are dropped).
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.connect(b.local_addr().unwrap()).unwrap();
    ///     assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// });
    /// ```
    #[track_caller]
    pub fn connect<A: ToSocketAddrs + Send>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.io.get_ref().connect(a))
    }

    /// Sends to the connected peer.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.connect(a.local_addr().unwrap()).unwrap();
    ///     a.send(b"hi").unwrap();
    ///     let mut buf = [0; 2];
    ///     assert_eq!(a.recv(&mut buf).unwrap(), 2);
    /// });
    /// ```
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.do_io(Direction::Write, |s| s.send(buf))
    }

    /// Receives from the connected peer.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.connect(a.local_addr().unwrap()).unwrap();
    ///     a.send(b"hi").unwrap();
    ///     assert_eq!(a.recv(&mut [0; 8]).unwrap(), 2);
    /// });
    /// ```
    #[track_caller]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.do_io(Direction::Read, |s| s.recv(buf))
    }

    /// Like `recv`, leaving the datagram queued.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.connect(a.local_addr().unwrap()).unwrap();
    ///     a.send(b"hi").unwrap();
    ///     assert_eq!(a.peek(&mut [0; 8]).unwrap(), 2);
    /// });
    /// ```
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.do_io(Direction::Read, |s| s.peek(buf))
    }

    /// The connected peer.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert!(a.peer_addr().is_err());
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The local address.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert!(a.local_addr().unwrap().ip().is_loopback());
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// A second handle to the same socket.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = a.try_clone().unwrap();
    ///     assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
    /// });
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: self.io.try_clone_with(|fd| {
                mio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd))
            })?,
        })
    }

    /// Sets how long a receive may wait; see
    /// [`TcpStream::set_read_timeout`](super::TcpStream::set_read_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    ///     assert!(a.recv_from(&mut [0; 8]).is_err());
    /// });
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(dur)
    }

    /// Sets how long a send may wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    ///     assert_eq!(a.write_timeout().unwrap(), Some(Duration::from_secs(1)));
    /// });
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.set_write_timeout(dur)
    }

    /// The receive timeout.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert_eq!(a.read_timeout().unwrap(), None);
    /// });
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.read_timeout())
    }

    /// The send timeout.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert_eq!(a.write_timeout().unwrap(), None);
    /// });
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.write_timeout())
    }

    /// In non-blocking mode operations return `WouldBlock` instead of
    /// parking.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.set_nonblocking(true).unwrap();
    ///     assert_eq!(a.recv(&mut [0; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// });
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.set_broadcast(true).unwrap();
    ///     assert!(a.broadcast().unwrap());
    /// });
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// Reads `SO_BROADCAST`.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert!(!a.broadcast().unwrap());
    /// });
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
    }

    /// Sets `IP_TTL`.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.set_ttl(7).unwrap();
    ///     assert_eq!(a.ttl().unwrap(), 7);
    /// });
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert!(a.ttl().unwrap() > 0);
    /// });
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Joins an IPv4 multicast group on `interface`.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    ///     let _ = a.join_multicast_v4(&Ipv4Addr::new(239, 1, 2, 3), &Ipv4Addr::UNSPECIFIED);
    /// });
    /// ```
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().join_multicast_v4(group, interface)
    }

    /// Leaves an IPv4 multicast group.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    ///     assert!(a.leave_multicast_v4(&Ipv4Addr::new(239, 1, 2, 3), &Ipv4Addr::UNSPECIFIED).is_err());
    /// });
    /// ```
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v4(group, interface)
    }

    /// Joins an IPv6 multicast group on interface index `interface`.
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// fibra::run(|| {
    ///     if let Ok(a) = fibra::net::UdpSocket::bind("[::1]:0") {
    ///         let _ = a.join_multicast_v6(&"ff02::1234".parse::<Ipv6Addr>().unwrap(), 0);
    ///     }
    /// });
    /// ```
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().join_multicast_v6(group, interface)
    }

    /// Leaves an IPv6 multicast group.
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// fibra::run(|| {
    ///     if let Ok(a) = fibra::net::UdpSocket::bind("[::1]:0") {
    ///         let _ = a.leave_multicast_v6(&"ff02::1234".parse::<Ipv6Addr>().unwrap(), 0);
    ///     }
    /// });
    /// ```
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v6(group, interface)
    }

    /// Takes the pending `SO_ERROR`.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert!(a.take_error().unwrap().is_none());
    /// });
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Completes when a datagram may be waiting.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.send_to(b"x", a.local_addr().unwrap()).unwrap();
    ///     fibra::block_on(a.readable()).unwrap();
    /// });
    /// ```
    pub fn readable(&self) -> Ready<'_> {
        self.io.ready(Direction::Read)
    }

    /// Completes when a datagram may be sent.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     fibra::block_on(a.writable()).unwrap();
    /// });
    /// ```
    pub fn writable(&self) -> Ready<'_> {
        self.io.ready(Direction::Write)
    }

    /// The async `recv_from`.
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.send_to(b"x", a.local_addr().unwrap()).unwrap();
    ///     let mut buf = [0; 4];
    ///     let (n, _) = fibra::block_on(std::future::poll_fn(|cx| a.poll_recv_from(cx, &mut buf))).unwrap();
    ///     assert_eq!(n, 1);
    /// });
    /// ```
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.io.poll_io(cx, Direction::Read, |s| s.recv_from(buf))
    }

    /// The async `send_to` (to an already resolved address).
    ///
    /// ```
    /// fibra::run(|| {
    ///     let a = fibra::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let to = a.local_addr().unwrap();
    ///     let n = fibra::block_on(std::future::poll_fn(|cx| a.poll_send_to(cx, b"x", to))).unwrap();
    ///     assert_eq!(n, 1);
    /// });
    /// ```
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.io
            .poll_io(cx, Direction::Write, |s| s.send_to(buf, target))
    }
}

fd_traits!(UdpSocket);
