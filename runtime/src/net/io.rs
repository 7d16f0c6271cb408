//! The socket core that TCP, Unix and UDP share: [`PollIo`], a
//! non-blocking mio source registered with a driver, with the blocking
//! (park until ready) and async (poll) forms of its operations, timeouts,
//! non-blocking mode, readiness futures, `try_clone`, the accept loop with
//! its back-off and the connect check. Each public socket type wraps one
//! `PollIo`; the trait impls they share are written once in `socket.rs`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use mio::event::Source;

use super::driver::{self, Direction, Driver, ScheduledIo};
use super::{pause, AcceptBackoff};
use crate::park::record::WaitOn;

/// Settings that std keeps on the socket itself and that therefore are
/// shared by every clone (`try_clone`) of it.
#[derive(Default)]
pub(crate) struct Mode {
    /// Read timeout in nanoseconds, 0 = none.
    read_timeout: AtomicU64,
    /// Write timeout in nanoseconds, 0 = none.
    write_timeout: AtomicU64,
    /// Operations return `WouldBlock` instead of parking.
    nonblocking: AtomicBool,
}

/// A registered source.
pub(crate) struct PollIo<S: Source> {
    /// The mio socket (always non-blocking at the OS level).
    source: S,
    /// Its descriptor (for the driver's epoll sets).
    fd: RawFd,
    /// Its readiness record.
    io: Arc<ScheduledIo>,
    /// The driver whose pollers report its readiness.
    driver: Arc<Driver>,
    /// Timeouts and blocking mode.
    mode: Arc<Mode>,
}

fn to_nanos(d: Option<Duration>) -> io::Result<u64> {
    match d {
        None => Ok(0),
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        )),
        Some(d) => Ok(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    }
}

fn from_nanos(n: u64) -> Option<Duration> {
    (n != 0).then(|| Duration::from_nanos(n))
}

/// After a non-blocking connect: done, failed (the socket's pending
/// error), or still `WouldBlock` (no peer yet).
pub(crate) fn connect_state<A>(
    pending_error: io::Result<Option<io::Error>>,
    peer_addr: impl FnOnce() -> io::Result<A>,
) -> io::Result<()> {
    if let Some(err) = pending_error? {
        return Err(err);
    }
    match peer_addr() {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e),
    }
}

pub(crate) fn timed_out(what: &str) -> io::Error {
    // std on Unix reports an expired SO_RCVTIMEO/SO_SNDTIMEO as EAGAIN,
    // i.e. `WouldBlock`; keep the kind, say what happened.
    io::Error::new(io::ErrorKind::WouldBlock, format!("{what} timed out"))
}

impl<S: Source + AsRawFd> PollIo<S> {
    /// Gives `source` a readiness record in the current runtime's driver
    /// (or the fallback driver outside a runtime). It joins a poller's
    /// epoll set when a task first waits on it (`Driver::arm`).
    pub(crate) fn new(source: S) -> io::Result<PollIo<S>> {
        PollIo::with_mode(source, Arc::default())
    }

    /// Like `new`, sharing `mode` with another handle of the same socket.
    pub(crate) fn with_mode(source: S, mode: Arc<Mode>) -> io::Result<PollIo<S>> {
        let driver = driver::current();
        let io = driver.add()?;
        Ok(PollIo {
            fd: source.as_raw_fd(),
            source,
            io,
            driver,
            mode,
        })
    }

    /// A second handle to the same socket (`try_clone`): the descriptor
    /// duplicated, wrapped back into a mio source by `wrap` and registered,
    /// sharing timeouts and blocking mode as std's clones share them.
    pub(crate) fn try_clone_with(&self, wrap: impl FnOnce(OwnedFd) -> S) -> io::Result<PollIo<S>>
    where
        S: AsFd,
    {
        let fd = self.source.as_fd().try_clone_to_owned()?;
        PollIo::with_mode(wrap(fd), self.mode.clone())
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.source
    }

    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.mode
            .read_timeout
            .store(to_nanos(d)?, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.mode
            .write_timeout
            .store(to_nanos(d)?, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        from_nanos(self.mode.read_timeout.load(Ordering::Relaxed))
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        from_nanos(self.mode.write_timeout.load(Ordering::Relaxed))
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.mode.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    /// The blocking form: runs `op` until it does not say `WouldBlock`,
    /// parking until the source is ready in between, for at most the
    /// direction's timeout.
    #[track_caller]
    pub(crate) fn do_io<R>(
        &self,
        dir: Direction,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        let timeout = match dir {
            Direction::Read => self.read_timeout(),
            Direction::Write => self.write_timeout(),
        };
        self.do_io_timeout(dir, timeout, op)
    }

    /// [`do_io`](Self::do_io) with an explicit timeout.
    #[track_caller]
    pub(crate) fn do_io_timeout<R>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_loop(dir, timeout, |_| false, op)
    }

    /// The loop behind the blocking forms. `drained` says of a result that
    /// the socket has nothing more for `dir` (see `PollIo::read_stream`).
    ///
    /// A registered socket's clear bit means "not ready until the next
    /// edge": bits are cleared only after a `WouldBlock` or a drained
    /// result, under the tick read before the system call, so data or
    /// space arriving after it always sets them again. A blocking
    /// read parks at once. Writes, and non-blocking operations, still ask
    /// the kernel first: a write usually succeeds (and a socket's bits are
    /// clear from its registration until its poller reports the first
    /// edge), and code that retries without waiting must see data even
    /// while no worker polls.
    #[track_caller]
    fn io_loop<R>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        drained: impl Fn(&R) -> bool,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        // A timeout too long to add (`Duration::MAX`) waits forever.
        let deadline = timeout.and_then(|d| Instant::now().checked_add(d));
        loop {
            let ev = self.io.snapshot(dir);
            let nonblocking = self.mode.nonblocking.load(Ordering::Relaxed);
            if ev.is_ready() || nonblocking || dir == Direction::Write || !self.io.is_registered() {
                match op(&self.source) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // A signal (the collector's preemption) interrupted the
                    // call before it did anything: try again.
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Ok(r) => {
                        if drained(&r) {
                            self.io.clear_drained(ev);
                        }
                        return Ok(r);
                    }
                    Err(e) => return Err(e),
                }
                if nonblocking {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
            if self.io.is_shutdown() {
                return Err(driver::shutdown_error());
            }
            self.io.clear_readiness(ev);
            self.driver.arm(&self.io, self.fd)?;
            let on = WaitOn::Io {
                fd: self.source.as_raw_fd() as u64,
                write: dir == Direction::Write,
            };
            let ready = crate::park::wait_deadline_as(on, deadline, |cx| {
                self.io.poll_ready(cx, dir).map(|_| ())
            });
            if ready.is_none() {
                return Err(timed_out(match dir {
                    Direction::Read => "read",
                    Direction::Write => "write",
                }));
            }
        }
    }

    /// A listener's blocking `accept`: [`do_io`](Self::do_io) with `op`,
    /// retrying the failures [`AcceptBackoff`] calls transient (pausing in
    /// between) and returning any other.
    #[track_caller]
    pub(crate) fn accept_retrying<R>(
        &self,
        listener: &dyn std::fmt::Debug,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut backoff = AcceptBackoff::new();
        loop {
            match self.do_io(Direction::Read, &mut op) {
                Ok(r) => {
                    // The connection's handler, if the caller spawns one,
                    // starts on the next worker in turn.
                    crate::sched::spread_next_spawn();
                    return Ok(r);
                }
                Err(e) => match backoff.on_error(&e, listener) {
                    Some(d) => pause(d),
                    None => return Err(e),
                },
            }
        }
    }

    /// The async form: ready with `op`'s result, or pending (waker
    /// registered) until the source is ready.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_loop(cx, dir, |_| false, op)
    }

    fn poll_loop<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        drained: impl Fn(&R) -> bool,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        if let Err(err) = self.driver.arm(&self.io, self.fd) {
            return Poll::Ready(Err(err));
        }
        loop {
            let ev = match self.io.poll_ready(cx, dir) {
                Poll::Ready(ev) => ev,
                Poll::Pending => return Poll::Pending,
            };
            if self.io.is_shutdown() {
                return Poll::Ready(Err(driver::shutdown_error()));
            }
            match op(&self.source) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.io.clear_readiness(ev),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(r) => {
                    if drained(&r) {
                        self.io.clear_drained(ev);
                    }
                    return Poll::Ready(Ok(r));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// A stream socket's source: whether a read that returns fewer bytes than
/// asked proves its receive queue empty (see [`PollIo::read_stream`]).
pub(crate) trait StreamSource {
    const SHORT_READ_DRAINS: bool;
}

/// True: a TCP read stops short with bytes still queued only at an urgent
/// mark, and the poller reports urgent data (`ScheduledIo::clear_drained`).
impl StreamSource for mio::net::TcpStream {
    const SHORT_READ_DRAINS: bool = true;
}

/// False: a Unix stream read also stops short at passed descriptors,
/// credentials and out-of-band bytes, with nothing to announce the rest.
impl StreamSource for mio::net::UnixStream {
    const SHORT_READ_DRAINS: bool = false;
}

impl<S: Source + AsRawFd + StreamSource> PollIo<S> {
    /// A stream socket's blocking read into a buffer of `len` bytes. Where
    /// the source says so (`S::SHORT_READ_DRAINS`), a read that returns
    /// fewer bytes than asked emptied the receive queue, so it clears the
    /// readiness it started from (unless an edge came since): the next read
    /// then waits for the next edge instead of asking the kernel for a
    /// `WouldBlock` first. Request-response traffic saves one system call
    /// per message this way. Not for `read_vectored` (the kernel takes at
    /// most IOV_MAX buffers) or `peek`, whose short results leave data
    /// behind.
    #[track_caller]
    pub(crate) fn read_stream(
        &self,
        len: usize,
        op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.io_loop(
            Direction::Read,
            self.read_timeout(),
            drained_by::<S>(len),
            op,
        )
    }

    /// The async form of [`read_stream`](Self::read_stream).
    pub(crate) fn poll_read_stream(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        op: impl FnMut(&S) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_loop(cx, Direction::Read, drained_by::<S>(len), op)
    }
}

/// Whether a read of `n` bytes into `len` drained a socket of source `S`.
fn drained_by<S: StreamSource>(len: usize) -> impl Fn(&usize) -> bool {
    move |&n| S::SHORT_READ_DRAINS && n > 0 && n < len
}

impl<S: Source> Drop for PollIo<S> {
    fn drop(&mut self) {
        self.driver.remove(&self.io, self.fd);
    }
}

impl<S: Source + std::fmt::Debug> std::fmt::Debug for PollIo<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

/// A future that completes when a socket is ready in one direction: what
/// `readable()` and `writable()` return. It does not consume the
/// readiness: the operation that follows may still say `WouldBlock`.
#[must_use = "futures do nothing unless polled"]
pub struct Ready<'a> {
    io: &'a ScheduledIo,
    driver: &'a Driver,
    fd: RawFd,
    dir: Direction,
}

impl<S: Source + AsRawFd> PollIo<S> {
    pub(crate) fn ready(&self, dir: Direction) -> Ready<'_> {
        Ready {
            io: &self.io,
            driver: &self.driver,
            fd: self.fd,
            dir,
        }
    }
}

impl std::future::Future for Ready<'_> {
    type Output = io::Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(err) = self.driver.arm(self.io, self.fd) {
            return Poll::Ready(Err(err));
        }
        match self.io.poll_ready(cx, self.dir) {
            Poll::Ready(_) if self.io.is_shutdown() => Poll::Ready(Err(driver::shutdown_error())),
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl std::fmt::Debug for Ready<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready")
            .field("direction", &self.dir)
            .finish()
    }
}
