//! The bridge between green threads and Rust async.
//!
//! - [`block_on`]: a green thread (or a plain thread) waits for a future.
//! - `sched::coop`: a per-poll budget so an async task that keeps finding
//!   fibra resources ready still yields to green threads.
//! - `tokio` (feature `tokio`): green threads and async tasks poll futures
//!   inside a tokio runtime context (`sched::tokio_context`), so
//!   tokio-based libraries work from fibra; [`SyncIo`] turns a tokio stream
//!   into blocking `Read + Write`.

#[cfg(feature = "tokio")]
mod sync_io;

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use crate::park::record::WaitOn;

#[cfg(feature = "tokio")]
pub use sync_io::SyncIo;

/// Runs a future to completion from blocking code.
///
/// In a green thread, only that green thread parks until the future is
/// ready (its waker may fire from any thread). On a plain OS thread the
/// future is driven on the calling thread. Calling it inside an async task
/// panics: `.await` there instead.
///
/// ```
/// fibra::run(|| {
///     let v = fibra::block_on(async { 40 + 2 });
///     assert_eq!(v, 42);
/// });
/// assert_eq!(fibra::block_on(async { 1 }), 1);
/// ```
#[track_caller]
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    crate::park::wait_as(WaitOn::Future, |cx| poll_in_context(fut.as_mut(), cx))
}

/// Polls a user future, inside a tokio context with the `tokio` feature.
#[inline]
pub(crate) fn poll_in_context<F: Future + ?Sized>(
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    #[cfg(feature = "tokio")]
    {
        crate::sched::tokio_context::enter(|| fut.poll(cx))
    }
    #[cfg(not(feature = "tokio"))]
    {
        // A tokio future fails here with tokio's own message: add how to
        // fix it (the panic itself goes on unchanged).
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
                if let Some(message) = message {
                    crate::task::join::hint_missing_tokio(message);
                }
                std::panic::resume_unwind(payload)
            }
        }
    }
}
