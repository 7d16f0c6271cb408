//! The trait side of the socket core that TCP, Unix and UDP share.
//!
//! Every socket type is a thin public wrapper around one
//! [`PollIo`](super::io::PollIo) (in a field named `io`), which owns the
//! protocol: timeouts, non-blocking mode, readiness and the blocking and
//! async forms of an operation. The wrappers keep their own inherent
//! methods (each with an example for its type); the trait impls, which are
//! the same for every type, are written once here:
//!
//! - [`fd_traits!`]: `Debug` (the type name and the mio socket), `AsRawFd`
//!   and `AsFd`, for every socket type;
//! - [`stream_io!`]: `Read`/`Write` for `T` and `&T` (the blocking form,
//!   parking the green thread), `futures_io::AsyncRead`/`AsyncWrite` for
//!   `T` and `&T` and, with the `tokio` feature, tokio's
//!   `AsyncRead`/`AsyncWrite` (the async form, through the type's
//!   `poll_read`/`poll_write`; closing shuts down the write half), for
//!   the stream types.
//!
//! - [`incoming!`]: the `Iterator` of a listener's `incoming()`.
//!
//! Writes are not buffered, so every `flush` is a no-op.

/// `Debug`, `AsRawFd` and `AsFd` for a socket type wrapping a `PollIo` in
/// its `io` field.
macro_rules! fd_traits {
    ($ty:ident) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_tuple(stringify!($ty))
                    .field(self.io.get_ref())
                    .finish()
            }
        }

        impl ::std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(self.io.get_ref())
            }
        }

        impl ::std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                ::std::os::fd::AsFd::as_fd(self.io.get_ref())
            }
        }
    };
}
pub(super) use fd_traits;

/// `Iterator` for a listener's `incoming()` iterator (a struct with a
/// `listener` field): each item is one `accept`, so it never ends.
macro_rules! incoming {
    ($iter:ident, $stream:ident) => {
        impl Iterator for $iter<'_> {
            type Item = ::std::io::Result<$stream>;
            fn next(&mut self) -> Option<::std::io::Result<$stream>> {
                Some(self.listener.accept().map(|(s, _)| s))
            }
        }
    };
}
pub(super) use incoming;

/// The std, futures-io and tokio read/write traits for a stream type with
/// inherent `poll_read`, `poll_write` and `shutdown` methods.
macro_rules! stream_io {
    ($ty:ident) => {
        impl ::std::io::Read for &$ty {
            #[track_caller]
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.io.read_stream(buf.len(), |mut s| ::std::io::Read::read(&mut s, buf))
            }
            #[track_caller]
            fn read_vectored(
                &mut self,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::io::Result<usize> {
                // Not a drained read when short: the kernel takes at most
                // IOV_MAX buffers.
                self.io.do_io($crate::net::driver::Direction::Read, |mut s| {
                    ::std::io::Read::read_vectored(&mut s, bufs)
                })
            }
        }

        impl ::std::io::Write for &$ty {
            #[track_caller]
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.io.do_io($crate::net::driver::Direction::Write, |mut s| {
                    ::std::io::Write::write(&mut s, buf)
                })
            }
            #[track_caller]
            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                self.io.do_io($crate::net::driver::Direction::Write, |mut s| {
                    ::std::io::Write::write_vectored(&mut s, bufs)
                })
            }
            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }

        impl ::std::io::Read for $ty {
            #[track_caller]
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                ::std::io::Read::read(&mut &*self, buf)
            }
            #[track_caller]
            fn read_vectored(
                &mut self,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::io::Result<usize> {
                ::std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl ::std::io::Write for $ty {
            #[track_caller]
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                ::std::io::Write::write(&mut &*self, buf)
            }
            #[track_caller]
            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                ::std::io::Write::write_vectored(&mut &*self, bufs)
            }
            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }

        $crate::net::socket::stream_io!(@async $ty);
        $crate::net::socket::stream_io!(@async &$ty);
    };
    (@async $ty:ty) => {
        impl ::futures_io::AsyncRead for $ty {
            fn poll_read(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut [u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                let len = buf.len();
                self.io.poll_read_stream(cx, len, |mut s| ::std::io::Read::read(&mut s, buf))
            }
        }

        impl ::futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                self.io.poll_io(cx, $crate::net::driver::Direction::Write, |mut s| {
                    ::std::io::Write::write(&mut s, buf)
                })
            }
            fn poll_flush(
                self: ::std::pin::Pin<&mut Self>,
                _: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::task::Poll::Ready(Ok(()))
            }
            fn poll_close(
                self: ::std::pin::Pin<&mut Self>,
                _: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::task::Poll::Ready(self.io.get_ref().shutdown(::std::net::Shutdown::Write))
            }
        }

        #[cfg(feature = "tokio")]
        impl ::tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut ::tokio::io::ReadBuf<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                let unfilled = buf.initialize_unfilled();
                let len = unfilled.len();
                let read = self.io.poll_read_stream(cx, len, |mut s| {
                    ::std::io::Read::read(&mut s, unfilled)
                });
                match read {
                    ::std::task::Poll::Ready(Ok(n)) => {
                        buf.advance(n);
                        ::std::task::Poll::Ready(Ok(()))
                    }
                    ::std::task::Poll::Ready(Err(e)) => ::std::task::Poll::Ready(Err(e)),
                    ::std::task::Poll::Pending => ::std::task::Poll::Pending,
                }
            }
        }

        #[cfg(feature = "tokio")]
        impl ::tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                ::futures_io::AsyncWrite::poll_write(self, cx, buf)
            }
            fn poll_flush(
                self: ::std::pin::Pin<&mut Self>,
                _: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::task::Poll::Ready(Ok(()))
            }
            fn poll_shutdown(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::futures_io::AsyncWrite::poll_close(self, cx)
            }
        }
    };
}
pub(super) use stream_io;
