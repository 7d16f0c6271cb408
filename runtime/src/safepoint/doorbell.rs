//! The stopper's doorbell: a stopper waiting for a worker to leave
//! `RUNNING` sleeps on a futex instead of spinning, and the worker rings
//! it as it steps aside (as Go's `stopTheWorld` sleeps on `sched.stopnote`).
//!
//! # Protocol
//!
//! The stopper stores `SLEEPING = true`, reads `BELL`, checks the worker's
//! state, and sleeps on `BELL` if the worker still runs. A worker stores
//! its new state, then reads `SLEEPING`; if set, it bumps `BELL` and wakes
//! the futex. All SeqCst: either the worker sees `SLEEPING` (and the bump
//! makes the stopper's futex wait return, whether it began yet or not) or
//! the stopper sees the new state and does not sleep. The sleep has a
//! timeout besides (the stopper re-sends its signal then).
//!
//! `ring` touches only atomics and the futex system call: it is called
//! from the preemption signal handler.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::Duration;

/// Whether a stopper sleeps (or is about to) on `BELL`.
static SLEEPING: AtomicBool = AtomicBool::new(false);
/// Bumped by every ring while a stopper sleeps.
static BELL: AtomicU32 = AtomicU32::new(0);

/// Wakes the stopper, if one sleeps. Call after leaving `RUNNING`.
#[inline]
pub(super) fn ring() {
    if SLEEPING.load(SeqCst) {
        ring_slow();
    }
}

#[cold]
fn ring_slow() {
    BELL.fetch_add(1, SeqCst);
    // SAFETY: FUTEX_WAKE on a live static word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            BELL.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// Sleeps until a ring or `timeout`, unless `done()` already holds.
/// Only the stopper (one at a time) calls it.
pub(super) fn wait(timeout: Duration, done: impl Fn() -> bool) {
    SLEEPING.store(true, SeqCst);
    let bell = BELL.load(SeqCst);
    if !done() {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: FUTEX_WAIT on a live static word with a timeout; it
        // returns at once if a ring bumped `BELL` since we read it.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                BELL.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                bell,
                &ts as *const libc::timespec,
            );
        }
    }
    SLEEPING.store(false, SeqCst);
}
