//! `SyncIo`: a tokio stream as blocking `Read + Write` for green threads.

use std::io;
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::park::record::WaitOn;

/// Wraps a `tokio::io::AsyncRead + AsyncWrite` so a green thread can use it
/// with `std::io::Read + Write`: each call parks the green thread (or blocks
/// a plain thread) while the inner stream is pending.
///
/// ```
/// use std::io::{Read, Write};
/// fibra::run(|| {
///     let (a, b) = tokio::io::duplex(64);
///     let (mut a, mut b) = (fibra::io::SyncIo::new(a), fibra::io::SyncIo::new(b));
///     a.write_all(b"ping").unwrap();
///     let mut buf = [0; 4];
///     b.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"ping");
/// });
/// ```
#[derive(Debug)]
pub struct SyncIo<T> {
    inner: T,
}

impl<T> SyncIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> SyncIo<T> {
        SyncIo { inner }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncWrite + Unpin> SyncIo<T> {
    /// Shuts down the write side (`poll_shutdown`).
    #[track_caller]
    pub fn shutdown(&mut self) -> io::Result<()> {
        let inner = &mut self.inner;
        crate::park::wait_as(WaitOn::Future, |cx| {
            crate::sched::tokio_context::enter(|| Pin::new(&mut *inner).poll_shutdown(cx))
        })
    }
}

impl<T: AsyncRead + Unpin> io::Read for SyncIo<T> {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &mut self.inner;
        crate::park::wait_as(WaitOn::Future, |cx| {
            let mut rb = ReadBuf::new(buf);
            match crate::sched::tokio_context::enter(|| {
                Pin::new(&mut *inner).poll_read(cx, &mut rb)
            }) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    }
}

impl<T: AsyncWrite + Unpin> io::Write for SyncIo<T> {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = &mut self.inner;
        crate::park::wait_as(WaitOn::Future, |cx| {
            crate::sched::tokio_context::enter(|| Pin::new(&mut *inner).poll_write(cx, buf))
        })
    }

    #[track_caller]
    fn flush(&mut self) -> io::Result<()> {
        let inner = &mut self.inner;
        crate::park::wait_as(WaitOn::Future, |cx| {
            crate::sched::tokio_context::enter(|| Pin::new(&mut *inner).poll_flush(cx))
        })
    }
}
