//! Preemption signals: a bounded time to safepoint for tasks that never
//! call the runtime.
//!
//! A worker reaches a safepoint at every task switch and wherever the GC's
//! allocator polls. A task spinning in a loop that does neither would keep
//! a stop-the-world waiting for as long as it spins. As Go does since 1.14,
//! the stopper then sends the worker a signal (`SIGURG`, which programs
//! rarely use and whose default action is to ignore it), and the handler
//! parks the interrupted thread right there until the world restarts.
//!
//! # Protocol
//!
//! - Once per process (the first worker), the handler is installed with
//!   `SA_ONSTACK` (workers have an alternate signal stack, see
//!   `stack::overflow`) and `SA_RESTART`. `FIBRA_ASYNCPREEMPTOFF=1` turns
//!   preemption off, like Go's `GODEBUG=asyncpreemptoff=1`.
//! - The stopper signals a worker with `tgkill` (thread ids, unlike
//!   `pthread_t`s, are safe to name after the thread exits: at worst the
//!   signal reaches a recycled thread of this process, which ignores it).
//! - The handler acts only on a signal sent by this process (`SI_TKILL`
//!   from our pid) while a stop is requested, on a worker thread whose
//!   state is `RUNNING`, and only if the interrupted code may be stopped
//!   ([`set_preemption_check`]: the GC refuses inside its barrier and
//!   allocation regions, which must never wait for a stopped thread).
//!   Refused, it returns and the stopper signals again later. Accepted, it
//!   stores `STOPPED`, waits on a futex for the restart and leaves by the
//!   same `try_run` step as an idle worker.
//! - A `SIGURG` not sent by a stopper goes to the handler installed before
//!   ours, if any.
//!
//! Why stopping anywhere is sound: a stopped world only promises that no
//! task runs; the stop-the-world steps themselves take no lock a task
//! could hold (they flip a word), and the GC scans no stacks. A task
//! interrupted while holding any lock, even malloc's, merely holds it until
//! the restart, as a descheduled thread would.
//!
//! The handler touches only atomics, thread-locals without destructors and
//! the `futex` and `tgkill` system calls: it is async-signal-safe. It saves
//! and restores `errno`.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use super::{doorbell, try_run, StopState, REQUESTED, RUNNING, STOPPED};
use crate::signal::{self, Previous};

/// The preemption signal.
const SIGNAL: libc::c_int = libc::SIGURG;

thread_local! {
    /// The calling worker's stop state (null on other threads). A
    /// thread-local without a destructor: reading it is a plain load, safe
    /// in a signal handler.
    static SELF: Cell<*const StopState> = const { Cell::new(std::ptr::null()) };
}

/// Whether the handler is installed (and preemption enabled).
static ENABLED: AtomicBool = AtomicBool::new(false);
/// The action installed before ours.
static PREVIOUS: OnceLock<Previous> = OnceLock::new();
/// The check registered by [`set_preemption_check`] (0: none).
static CHECK: AtomicUsize = AtomicUsize::new(0);
/// Bumped at every restart; handlers wait on it.
static RESTART_SEQ: AtomicU32 = AtomicU32::new(0);
/// Handlers waiting for a restart (the restart skips the wake-up call
/// when there are none).
static WAITERS: AtomicU32 = AtomicU32::new(0);
/// Signals sent and tasks stopped by them, for metrics and tests.
static SENT: AtomicU64 = AtomicU64::new(0);
static STOPPED_BY_SIGNAL: AtomicU64 = AtomicU64::new(0);

/// Installs the handler once per process, unless turned off.
pub(super) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if std::env::var_os("FIBRA_ASYNCPREEMPTOFF").is_some_and(|v| v == "1") {
            tracing::debug!("asynchronous preemption is off (FIBRA_ASYNCPREEMPTOFF=1)");
            return;
        }
        if PREVIOUS.set(Previous::read(SIGNAL)).is_err() {
            return;
        }
        // SAFETY: `handle` is async-signal-safe (see the module docs).
        let installed =
            unsafe { signal::install(SIGNAL, handle, libc::SA_ONSTACK | libc::SA_RESTART) };
        ENABLED.store(installed, SeqCst);
    });
}

/// Registers `state` as the calling worker's (null: none).
pub(super) fn set_current(state: *const StopState) {
    SELF.with(|s| s.set(state));
    std::sync::atomic::compiler_fence(SeqCst);
}

/// The calling thread's kernel thread id.
pub(super) fn thread_id() -> libc::pid_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Whether worker `tid` has a preemption signal pending and unblocked
/// (read from `/proc`; `false` if it cannot be read).
pub(super) fn pending(tid: libc::pid_t) -> bool {
    super::probe::signal_pending(tid, SIGNAL).unwrap_or(false)
}

/// Asks thread `tid` (a worker) to stop where it is. Returns whether a
/// signal was sent.
pub(super) fn signal(tid: libc::pid_t) -> bool {
    if !ENABLED.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: tgkill only sends a signal; a thread id that has exited
    // gives ESRCH, one recycled by another thread of this process reaches
    // a thread that ignores it (it is no `RUNNING` worker).
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, SIGNAL) == 0 }
}

/// Wakes the handlers waiting for the restart (after `REQUESTED` was
/// cleared).
pub(super) fn restarted() {
    RESTART_SEQ.fetch_add(1, SeqCst);
    if WAITERS.load(SeqCst) > 0 {
        // SAFETY: FUTEX_WAKE on a live static word.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                RESTART_SEQ.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                i32::MAX,
            );
        }
    }
}

/// Registers the check that says whether the interrupted code of the
/// calling thread may be stopped where it is by a preemption signal, for
/// a library with critical sections the stop-the-world must not split
/// (fibra's GC registers one: not inside a barrier or allocation region).
/// It replaces any earlier check.
///
/// Where the check refuses, the stopper signals again a little later;
/// such sections must be short and must not wait for anything. A check
/// that refuses should arrange for its section to call [`poll`](crate::gc_seam::poll)
/// as it ends (fibra-gc's does, unless the thread holds a `GcCell`), so
/// the stop waits only for the section, not for the next signal. A
/// worker the OS keeps off the CPUs with the signal pending is not waited
/// for (see [`PENDING_PROOF`](crate::gc_seam::PENDING_PROOF)): if it was
/// inside a section that refuses, the section runs to its end during the
/// stop, so a check may refuse only where that is sound (the collector's
/// regions are: its grace periods wait for them).
///
/// The collector's seam, not a user API: `fibra-gc` registers the check
/// that refuses preemption inside its barrier and allocation regions, and
/// a later call replaces it.
///
/// # Safety
///
/// `check` runs inside a signal handler: it must be async-signal-safe
/// (no allocation, no locks, only thread-locals without lazy
/// initialisation or destructors, atomics and async-signal-safe calls).
/// It must refuse wherever fibra-gc's check refuses (inside a mutator
/// region): replacing that check with one that allows more lets a stop
/// land inside a region, which the collector's protocol rules out.
///
/// ```
/// fn may_stop() -> bool {
///     true
/// }
/// // SAFETY: `may_stop` touches nothing.
/// unsafe { fibra::gc_seam::set_preemption_check(may_stop) };
/// ```
#[doc(hidden)]
pub unsafe fn set_preemption_check(check: fn() -> bool) {
    CHECK.store(check as usize, SeqCst);
}

/// Signals sent to stop running workers, and how many of them stopped a
/// task where it was (the rest found it in a section that refused, or
/// already on its way to a safepoint).
///
/// ```
/// let (sent, stopped) = fibra::debug::preemptions();
/// assert!(stopped <= sent);
/// ```
pub fn preemptions() -> (u64, u64) {
    (
        SENT.load(std::sync::atomic::Ordering::Relaxed),
        STOPPED_BY_SIGNAL.load(std::sync::atomic::Ordering::Relaxed),
    )
}

/// Whether the interrupted code may be stopped (the registered check).
fn may_stop() -> bool {
    match CHECK.load(std::sync::atomic::Ordering::Relaxed) {
        0 => true,
        f => {
            // SAFETY: only `set_preemption_check` stores here, and it stores
            // a `fn() -> bool`.
            let check: fn() -> bool = unsafe { std::mem::transmute::<usize, fn() -> bool>(f) };
            check()
        }
    }
}

/// Waits until no stop is requested (async-signal-safe).
fn wait_for_restart() {
    WAITERS.fetch_add(1, SeqCst);
    loop {
        let seq = RESTART_SEQ.load(SeqCst);
        if !REQUESTED.load(SeqCst) {
            break;
        }
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: Duration::from_millis(10).as_nanos() as libc::c_long,
        };
        // SAFETY: FUTEX_WAIT on a live static word, with a timeout (a
        // missed wake-up costs at most one period).
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                RESTART_SEQ.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                seq,
                &timeout as *const libc::timespec,
            );
        }
    }
    WAITERS.fetch_sub(1, SeqCst);
}

/// The signal handler (async-signal-safe: see the module docs).
extern "C" fn handle(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: errno is this thread's; we restore it before returning.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let ours = unsafe { (*info).si_code == libc::SI_TKILL && (*info).si_pid() == libc::getpid() };
    if ours {
        let me = SELF.with(|s| s.get());
        if !me.is_null() {
            // SAFETY: `SELF` is set from the `Arc` the worker's `WorkerStop`
            // holds and cleared before that is dropped, on this thread.
            stop_here(unsafe { &*me });
        }
    } else {
        forward(sig, info, context);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// The handler's stop: parks the thread if a stop is requested, the worker
/// runs and the interrupted code allows it.
fn stop_here(me: &StopState) {
    if !REQUESTED.load(SeqCst) || me.state.load(SeqCst) != RUNNING {
        return;
    }
    if !may_stop() {
        // Counted for the stopper's report; the section itself stops at
        // its end if its check arranges it (see `set_preemption_check`).
        me.refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return;
    }
    me.step_aside(STOPPED);
    STOPPED_BY_SIGNAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    wait_for_restart();
    while !try_run(&me.state, &REQUESTED) {
        doorbell::ring();
        wait_for_restart();
    }
}

/// Passes a signal we did not send to the handler installed before ours.
fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // Without a handler before ours there is nothing to do: SIGURG's
    // default action is to ignore it.
    if let Some(previous) = PREVIOUS.get() {
        // SAFETY: called from our handler, with its arguments.
        unsafe { previous.call(sig, info, context) };
    }
}
