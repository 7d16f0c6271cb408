//! The one seam between the runtime and fibra's collector (`fibra-gc`):
//! everything the collector needs from the runtime, and nothing a program
//! should call. Hidden from the docs; programs use `fibra::gc` instead.
//!
//! - stopping the world: [`run_stopped`] (the stop made by a running
//!   worker, see [`CLAIM_WAIT`]) and [`stop_the_world`] (unsafe: the caller
//!   must not wait for anything a stopped task could provide),
//!   [`StopReport`], [`WorldStopped`], [`mutators`], [`WATCHDOG`];
//! - safepoints on the collector's slow paths: [`poll`], and [`blocking`]
//!   for waits a worker makes with the world allowed to stop;
//! - preemption: [`set_preemption_check`] (the collector's regions refuse
//!   preemption signals);
//! - sections a green thread may not suspend in ([`forbid_suspend`], for
//!   `GcCell` borrows);
//! - stack shrinking after a cycle ([`shrink_stacks`]);
//! - the figures `fibra::stats()` shows ([`set_gc_stats_source`]);
//! - configuration errors reported like the runtime's ([`report_bad_env`]);
//! - the collector's warm-up, run by every runtime as it starts
//!   ([`set_runtime_start_hook`]), so that no allocation sets the heap up.

pub use crate::config::report_bad_env;
pub use crate::park::{forbid_suspend, NoSuspend};
pub use crate::safepoint::{
    blocking, mutators, poll, run_stopped, set_preemption_check, stop_the_world, StopReport,
    WorldStopped, CLAIM_WAIT, PENDING_PROOF, WATCHDOG,
};
pub use crate::sched::metrics::set_gc_stats_source;
pub use crate::stack::shrink::shrink_stacks;

/// The hook every runtime runs as it starts (see [`set_runtime_start_hook`]).
static START_HOOK: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Registers `hook`, which every runtime then runs on the thread that
/// builds it, before its workers start: the collector sets its heap up
/// there (configuration, its thread, the first arena), off the first
/// allocation's path. The first registration wins; later ones are
/// ignored. Safe to call before `main` (it only stores a pointer).
///
/// The collector's seam, not a user API: `fibra-gc` registers its hook
/// when the program is loaded.
///
/// ```
/// fn warm_up() {}
/// fibra::gc_seam::set_runtime_start_hook(warm_up);
/// ```
pub fn set_runtime_start_hook(hook: fn()) {
    let _ = START_HOOK.set(hook);
}

/// Runs the start hook, if one is registered (a runtime is starting).
pub(crate) fn runtime_starting() {
    if let Some(hook) = START_HOOK.get() {
        hook();
    }
}
