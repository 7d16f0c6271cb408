//! tokio's `AsyncRead`/`AsyncWrite` for fibra's streams (feature `tokio`),
//! so tokio-based libraries can drive them from async tasks.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{TcpStream, UnixStream};

macro_rules! tokio_io {
    ($ty:ty) => {
        impl tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match <$ty>::poll_read(&self, cx, buf.initialize_unfilled()) {
                    Poll::Ready(Ok(n)) => {
                        buf.advance(n);
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
        }

        impl tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                <$ty>::poll_write(&self, cx, buf)
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.shutdown(std::net::Shutdown::Write))
            }
        }
    };
}

tokio_io!(TcpStream);
tokio_io!(UnixStream);
