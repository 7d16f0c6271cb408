//! The mapping budget: refusing a new stack with a clear error before the
//! kernel's limit on memory mappings (`vm.max_map_count`) is reached.
//!
//! With guard pages ([`GuardMode::Pages`]) every stack costs two mappings
//! (a chunk of stacks is one mapping split by `mprotect` into a guard and
//! a usable part per stack), so the budget is `(limit - SLACK) / 2`
//! stacks. With guard regions ([`GuardMode::Regions`]) a whole chunk of 256
//! stacks is one mapping at most (adjacent chunks merge), so instead of a
//! fixed count the real number of mappings is read from `/proc/self/maps`
//! whenever the stacks mapped since the last reading could, at one
//! mapping each, have used up the headroom it showed.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::os::{self, GuardMode};
use super::pool::STATS;

/// Mappings left for the rest of the process (libraries, heap arenas,
/// thread stacks, the collector's heap).
const SLACK: usize = 2048;

/// With guard regions: the stack count at which the mappings must be
/// counted again.
static NEXT_COUNT_AT: AtomicUsize = AtomicUsize::new(0);

/// Refuses a new green thread when starting it could need a stack beyond
/// the mapping budget, with an error that says how to raise the limit.
/// Counts stacks holding frames: pooled stacks are reused first.
pub(crate) fn check_spawn() -> io::Result<()> {
    let in_use = STATS.in_use();
    if fits(in_use) {
        Ok(())
    } else {
        Err(limit_error())
    }
}

/// How many of `want` more stacks may be mapped now (`mapped` are mapped
/// already): at least one, or the documented error. With guard pages the
/// budget is exact, so the last chunk below the limit is a short one.
pub(crate) fn room(mapped: usize, want: usize) -> io::Result<usize> {
    if !fits(mapped) {
        return Err(limit_error());
    }
    match (os::max_map_count(), os::guard_mode()) {
        (Some((limit, _)), GuardMode::Pages) => {
            let budget = limit.saturating_sub(SLACK) / 2;
            Ok(want.min(budget - mapped).max(1))
        }
        _ => Ok(want),
    }
}

fn fits(stacks: usize) -> bool {
    let Some((limit, _)) = os::max_map_count() else {
        return true;
    };
    match os::guard_mode() {
        GuardMode::Pages => stacks < limit.saturating_sub(SLACK) / 2,
        GuardMode::Regions => {
            let mapped = STATS.mapped();
            if mapped < NEXT_COUNT_AT.load(Relaxed) {
                return true;
            }
            let Some(now) = os::mapping_count() else {
                return true;
            };
            let headroom = limit.saturating_sub(SLACK).saturating_sub(now);
            // Until `headroom` more stacks are mapped, even one mapping
            // each cannot exceed the limit.
            NEXT_COUNT_AT.store(mapped + headroom, Relaxed);
            headroom > 0
        }
    }
}

/// The documented error for a spawn past the mapping limit.
pub(crate) fn limit_error() -> io::Error {
    io::Error::new(io::ErrorKind::OutOfMemory, limit_message())
}

/// What the limit is, where it comes from, and how to raise it.
pub(crate) fn limit_message() -> String {
    let mode = os::guard_mode();
    let per_stack = mode.mappings_per_stack();
    let (limit, source) = os::max_map_count().unwrap_or((0, "vm.max_map_count"));
    let source = if source == "vm.max_map_count" {
        "vm.max_map_count".to_string()
    } else {
        format!("{source}, standing in for vm.max_map_count")
    };
    let fit = limit.saturating_sub(SLACK) / per_stack;
    format!(
        "fibra: cannot start another green thread: the process is at its limit on memory \
         mappings ({source} = {limit}; each green-thread stack uses up to {per_stack} \
         mapping{s}, so about {fit} stacks fit). Raise the limit, e.g. `sudo sysctl -w \
         vm.max_map_count={want}` for 1M green threads (persist it in /etc/sysctl.d/), or run \
         fewer green threads at once",
        s = if per_stack == 1 { "" } else { "s" },
        want = 1_000_000 * per_stack + 200_000,
    )
}
