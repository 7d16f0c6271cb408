//! fibra's runtime: green threads on stackful coroutines, scheduled M:N by
//! a work-stealing scheduler, with one Waker-based park path shared by
//! joins, channels, IO, timers and futures, and safepoints for the
//! collector.
//!
//! ```
//! let total = fibra_runtime::run(|| {
//!     let handles: Vec<_> = (0..100u64)
//!         .map(|i| fibra_runtime::spawn(move || i))
//!         .collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 4950);
//! ```
//!
//! See `ARCHITECTURE` notes in each module: `sched` (the scheduler and the
//! pinning rule), `task::state` (the wake protocol), `stack` (stacks),
//! `safepoint` (stopping the world).

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// loom builds keep only the modelled cores reachable (blocking runs on
// loom's executor), so the real parking paths are dead code there.
#![cfg_attr(loom, allow(dead_code))]

mod blocking;
mod bridge;
mod config;
mod context;
pub mod debug;
#[doc(hidden)]
pub mod gc_seam;
mod loom;
mod monitor;
mod park;
mod runtime;
mod sched;

pub mod chan;
pub mod net;
mod safepoint;
pub mod stack;
pub mod sync;
pub mod task;
pub mod time;

pub use blocking::spawn_blocking;
pub use park::{block_on, in_green_thread, yield_now};

/// Blocking IO adapters.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod io {
    pub use crate::bridge::SyncIo;
}
pub use runtime::{run, spawn, spawn_async, Builder, Runtime};
pub use sched::metrics::{GcSummary, RuntimeStats, WorkerStats};
pub use sched::stats;
pub use task::{JoinError, JoinHandle, TaskId};
