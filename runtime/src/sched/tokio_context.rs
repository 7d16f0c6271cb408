//! Entering a tokio runtime context while fibra polls a future, so futures
//! from tokio-based libraries (`tokio::net`, `tokio::time`, clients built on
//! them) find their reactor and timer. A green thread runs inside the
//! context for each resume (so it can also *create* tokio futures and
//! sockets); an async task for each poll.
//!
//! The context is the handle given to the runtime builder
//! (`Builder::tokio_handle`), else the tokio runtime the caller is already
//! in, else a small process-wide tokio runtime started on first use (one
//! thread, IO and time enabled), which drives tokio's reactor and timers
//! while fibra's workers run the futures. The context is entered and left
//! within each poll, never held across a suspension.

use std::sync::OnceLock;

/// The handle set by the current fibra runtime's builder, if any.
fn configured() -> Option<tokio::runtime::Handle> {
    super::context::current_runtime().and_then(|s| s.config.tokio_handle.clone())
}

/// The fallback tokio runtime.
fn on_demand() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fibra-tokio")
            .enable_all()
            .build()
            .expect("fibra: cannot start the tokio runtime for tokio interop")
    })
}

/// Runs `f` inside a tokio runtime context.
pub(crate) fn enter<R>(f: impl FnOnce() -> R) -> R {
    if tokio::runtime::Handle::try_current().is_ok() {
        return f();
    }
    let handle = configured().unwrap_or_else(|| on_demand().handle().clone());
    let _guard = handle.enter();
    f()
}
