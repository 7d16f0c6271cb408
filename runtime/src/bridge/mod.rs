//! The bridge between green threads and Rust async.
//!
//! - [`coop`]: a per-poll budget so an async task that keeps finding fibra
//!   resources ready still yields to green threads.
//! - `tokio` (feature `tokio`): green threads and async tasks poll futures
//!   inside a tokio runtime context, so tokio-based libraries work from
//!   fibra; [`SyncIo`] turns a tokio stream into blocking `Read + Write`.

pub(crate) mod coop;
#[cfg(feature = "tokio")]
mod sync_io;
#[cfg(feature = "tokio")]
pub(crate) mod tokio_context;

#[cfg(feature = "tokio")]
pub use sync_io::SyncIo;
