//! fibra's runtime: green threads on stackful coroutines, scheduled M:N by
//! a work-stealing scheduler, with one Waker-based park path shared by
//! joins, channels, IO, timers and futures, and safepoints for the
//! collector.
//!
//! ```
//! let total = fibra::run(|| {
//!     let handles: Vec<_> = (0..100u64)
//!         .map(|i| fibra::spawn(move || i))
//!         .collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 4950);
//! ```
//!
//! # Layers
//!
//! The top-level modules form layers; each imports only from its own layer
//! and the layers below it. A need that points up is inverted: a task
//! reaches its scheduler through the `task::Schedule` trait (as tokio's
//! `task` module does); a worker hands values down to the leaves (the
//! running green thread's stack bookkeeping to `stack`, its timer heap to
//! `timer`, for its thread); the wait records `debug` reads are written by
//! `park`. Within a layer, `task` and `park` use each other (a join waits;
//! a wait parks a task), and so do `sched` and `safepoint`.
//!
//! ```text
//! runtime, debug            the runtime and its builder; dumps, the deadlock report
//! ---------------------------------------------------------------------------------
//! net, chan, sync, time,    what green threads block on: sockets, channels, locks,
//!   bridge, blocking,         timers, futures (block_on, tokio), spawn_blocking,
//!   scope, context            scoped green threads; `context` is the thread's
//!                             runtime context for them
//! ---------------------------------------------------------------------------------
//! sched, safepoint,         workers, run queues, idle/spin, the netpoller, the
//!   monitor                   blocking pool's threads; stopping the world; the
//!                             monitor thread (stalled stops, netpoll, preemption)
//! ---------------------------------------------------------------------------------
//! task, park                the task cell, its state machine and wake path, join;
//!                             how any blocking call waits (`park`), the OS-thread
//!                             parker, the wait records
//! ---------------------------------------------------------------------------------
//! stack, timer, config,     leaves: stacks and their guards, timer heaps and the
//!   loom, signal              `Sleep` future, every default, loom's stand-ins,
//!                             installing a signal handler beside the previous one
//! ```
//!
//! Protocols are documented where they live: `sched` (the scheduler and the
//! pinning rule), `task::state` (the wake protocol), `stack` (stacks),
//! `safepoint` (stopping the world). The collector reaches the runtime only
//! through the hidden `gc_seam` module.

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
pub mod runtime;
mod sched;
mod signal;
#[cfg(test)]
mod test_waker;
mod timer;

pub mod chan;
pub mod net;
mod safepoint;
mod scope;
pub mod stack;
pub mod sync;
pub mod task;
pub mod time;

pub use blocking::spawn_blocking;
pub use bridge::block_on;
pub use park::{in_green_thread, yield_now};

/// Blocking IO adapters.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod io {
    pub use crate::bridge::SyncIo;
}
pub use runtime::{run, spawn, spawn_async, Builder, Runtime};
pub use sched::metrics::{GcSummary, RuntimeStats, WorkerStats};
pub use sched::stats;
pub use scope::{scope, Scope, ScopedJoinHandle};
pub use task::{JoinError, JoinHandle, TaskId};
