//! Heap set-up off the allocation path.
//!
//! The first allocation of a process used to set the heap up itself:
//! read the configuration, start the collector thread, reserve the first
//! arena, and register for `membarrier` (milliseconds once the process has
//! several threads: the kernel waits for an RCU grace period). Now every
//! runtime, as it starts, runs [`warm_up`] on the thread that builds it,
//! before its workers exist: configuration, the collector thread (which
//! registers for `membarrier` in the background, see `mutator`) and the
//! first arena. The first `Gc::new` in a runtime then costs what a later
//! cache refill costs.
//!
//! The runtime knows nothing of the collector, so the collector registers
//! `warm_up` with it (`fibra::gc_seam::set_runtime_start_hook`) before
//! `main` runs, from an `.init_array` entry, as std registers its own
//! argument capture. Allocation outside any runtime still works without
//! it: the first allocation then does the set-up itself (counted by
//! [`setups_on_allocation`]), apart from the `membarrier` registration,
//! which is always the collector thread's.

use std::sync::atomic::Ordering;

use super::configure;
use crate::heap::pages;

/// Sets the heap up: configuration, the collector thread, the first
/// arena. Cheap after the first call. Never panics.
pub(crate) fn warm_up() {
    configure();
    pages::reserve_first_arena();
}

/// Registers [`warm_up`] with the runtime before `main` runs.
extern "C" fn register_warm_up() {
    fibra_runtime::gc_seam::set_runtime_start_hook(warm_up);
}

/// The `.init_array` entry that runs `register_warm_up` when the program
/// (or a library containing fibra) is loaded: it only stores a function
/// pointer.
#[cfg(all(target_os = "linux", not(miri)))]
#[used]
#[link_section = ".init_array"]
static REGISTER_WARM_UP: extern "C" fn() = register_warm_up;

/// How many set-up steps (configuring the collector, reserving the first
/// arena) an allocation had to take itself because nothing had taken them
/// before. 0 in a process whose first allocation came after a runtime
/// started; not part of the API (tests read it).
///
/// ```
/// let before = fibra::gc::__private::setups_on_allocation();
/// let _a = fibra::gc::Gc::new(1u8);
/// assert!(fibra::gc::__private::setups_on_allocation() <= before + 2);
/// ```
pub fn setups_on_allocation() -> u64 {
    pages::SETUPS_ON_ALLOCATION.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn warm_up_reserves_an_arena_and_starts_the_collector() {
        super::warm_up();
        assert!(super::super::COLLECTOR.control.lock().thread);
        let before = super::setups_on_allocation();
        // The arena exists: this allocation reserves none.
        let _g = crate::Gc::new(7u64);
        assert_eq!(super::setups_on_allocation(), before);
    }

    #[test]
    fn the_collector_thread_registers_the_process_barrier() {
        super::warm_up();
        crate::collect();
        // The collector thread registers before its first cycle; regions
        // stop fencing exactly when the registration succeeded.
        let (registered, fencing) = crate::mutator::process_barrier_state();
        let registered = registered.expect("the collector thread registered");
        assert_eq!(fencing, !registered);
    }
}
