//! The one seam between the runtime and fibra's collector (`fibra-gc`):
//! everything the collector needs from the runtime, and nothing a program
//! should call. Hidden from the docs; programs use `fibra::gc` instead.
//!
//! - stopping the world: [`stop_the_world`] (unsafe: the caller must not
//!   wait for anything a stopped task could provide), [`WorldStopped`],
//!   [`mutators`], [`WATCHDOG`];
//! - safepoints on the collector's slow paths: [`poll`], and [`blocking`]
//!   for waits a worker makes with the world allowed to stop;
//! - preemption: [`set_preemption_check`] (the collector's regions refuse
//!   preemption signals);
//! - sections a green thread may not suspend in ([`forbid_suspend`], for
//!   `GcCell` borrows);
//! - stack shrinking after a cycle ([`shrink_stacks`]);
//! - the figures `fibra::stats()` shows ([`set_gc_stats_source`]);
//! - configuration errors reported like the runtime's ([`report_bad_env`]).

pub use crate::config::report_bad_env;
pub use crate::park::{forbid_suspend, NoSuspend};
pub use crate::safepoint::{
    blocking, mutators, poll, set_preemption_check, stop_the_world, WorldStopped, WATCHDOG,
};
pub use crate::sched::metrics::set_gc_stats_source;
pub use crate::stack::shrink::shrink_stacks;
