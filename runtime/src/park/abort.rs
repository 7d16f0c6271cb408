//! A cancellation unwind that would abort the process abandons its green
//! thread instead.
//!
//! Rust aborts the process when a destructor panics while its stack is
//! already unwinding. A cancelled green thread (`task::cancel`) unwinds to
//! run its destructors, so a destructor that panics there - or one that
//! calls `std::process::abort` - would take every other task down with
//! it. fibra stops that green thread instead, as it does one whose
//! destructor blocks at shutdown: its unwind ends where it is, its stack
//! stays mapped and is never resumed (the destructors still pending on it
//! never run), its join handle reports it as cancelled, and an error is
//! reported on stderr and through `tracing`. Its worker and every other
//! task go on.
//!
//! # How
//!
//! `abort` raises `SIGABRT` on the aborting thread. By then nothing is
//! locked on that thread: std runs its panic hook (and releases the hook
//! lock) before it aborts, and the C library releases its own abort lock
//! before it raises. fibra's handler (installed once, the first time a
//! runtime is built) runs on the aborting green thread's own stack, since
//! it is installed without `SA_ONSTACK`, and with no signal added to the
//! thread's mask (`SA_NODEFER`, empty `sa_mask`), so leaving it without
//! `sigreturn` changes nothing in the thread's signal state. If the
//! running task is a green thread whose cancellation unwind is under way,
//! the handler suspends it with `Suspend::Abandon` and is never resumed;
//! the worker gives the green thread up (see `sched::worker`).
//!
//! Any other abort - outside a cancellation unwind, on a plain thread, on
//! the alternate signal stack (the stack-overflow report) - goes to the
//! handler installed before fibra's, or gets the default action: the
//! process dies as it would have without fibra.
//!
//! # What is left behind
//!
//! - The green thread's stack mapping and whatever its frames owned.
//! - std counts panics per OS thread and the abandoned unwind's panics are
//!   never caught, so `std::thread::panicking()` stays true on that worker
//!   thread afterwards; lock poisoning (std's and fibra's) then no longer
//!   records panics of the green threads that run there.
//! - Rust's own message ("panic in a destructor during cleanup ...
//!   aborting") is printed before fibra's report, which says the process
//!   goes on.

use std::sync::atomic::Ordering;
use std::sync::{Once, OnceLock};

use crate::signal::{self, Previous};
use crate::task::{cancel, current, Kind, Suspend};

/// The `SIGABRT` action installed before ours.
static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// Installs the handler once per process.
pub(crate) fn install_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if PREVIOUS.set(Previous::read(libc::SIGABRT)).is_err() {
            return;
        }
        // SAFETY: `handle` only acts on a synchronous abort of the running
        // green thread (see the module docs) and otherwise chains.
        unsafe { signal::install(libc::SIGABRT, handle, libc::SA_NODEFER) };
    });
}

extern "C" fn handle(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    if let Some(yielder) = unsafe { raised_here(info) }.then(abandonable).flatten() {
        report();
        // SAFETY: `yielder` belongs to the green thread running on this
        // thread, and we run on that green thread's stack (not the
        // alternate one, checked by `abandonable`). The worker never
        // resumes a coroutine that suspended with `Abandon`.
        unsafe { (*yielder).suspend(Suspend::Abandon) };
        // Not reached; if it were, abort as asked.
    }
    // SAFETY: called from the signal handler with its own arguments.
    unsafe { chain(sig, info, ctx) }
}

/// The running green thread's yielder, if this abort is one to turn into
/// an abandonment: a green thread is running on this thread, its
/// cancellation unwind has begun and is still in flight (std counts a
/// panic on this thread), and we are on its stack rather than on the
/// alternate signal stack.
fn abandonable() -> Option<*const crate::task::GreenYielder> {
    let yielder = current::with_task(|t| match t {
        Some(t)
            if t.kind == Kind::Green && t.cancel.load(Ordering::SeqCst) == cancel::UNWINDING =>
        {
            Some(t.yielder.get())
        }
        _ => None,
    })?;
    if yielder.is_null() || !std::thread::panicking() || on_alternate_stack() {
        return None;
    }
    Some(yielder)
}

/// Whether the signal was raised by this process on this thread (`abort`
/// calls `raise`, a `tgkill` of itself), not sent from outside at an
/// arbitrary point.
///
/// # Safety
///
/// `info` is the handler's siginfo.
unsafe fn raised_here(info: *const libc::siginfo_t) -> bool {
    // SAFETY: a valid siginfo (caller); for SI_TKILL the sender's pid is
    // set.
    unsafe { (*info).si_code == libc::SI_TKILL && (*info).si_pid() == libc::getpid() }
}

fn on_alternate_stack() -> bool {
    // SAFETY: querying the current alternate stack into a zeroed struct.
    unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut current) == 0
            && current.ss_flags & libc::SS_ONSTACK != 0
    }
}

/// One line on stderr (the worker adds a `tracing` event once it has the
/// green thread back). Written without allocating or locking.
fn report() {
    let mut buf = [0u8; 256];
    let mut line = std::io::Cursor::new(&mut buf[..]);
    let id = current::with_task(|t| t.map(|t| t.id.as_u64()).unwrap_or(0));
    let _ = std::io::Write::write_fmt(
        &mut line,
        format_args!(
            "fibra: green thread #{id} aborted during its cancellation unwind (a destructor \
             panicked); it is abandoned - its stack is leaked and its remaining destructors \
             do not run - and the process goes on\n"
        ),
    );
    let len = line.position() as usize;
    // SAFETY: writes `len` initialised bytes of `buf` to stderr.
    unsafe { libc::write(libc::STDERR_FILENO, buf.as_ptr().cast(), len) };
}

/// Runs the handler that was installed before ours; without one, returns
/// so that `abort` goes on to the default action (it resets the action to
/// the default and raises again).
///
/// # Safety
///
/// Only from the signal handler, with its arguments.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if let Some(previous) = PREVIOUS.get() {
        // SAFETY: from the handler, with its arguments (caller).
        unsafe { previous.call(sig, info, ctx) };
    }
}
