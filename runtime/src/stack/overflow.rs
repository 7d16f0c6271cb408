//! Stack overflow reporting: a `SIGSEGV`/`SIGBUS` handler that recognises
//! a hit on the guard page of a green thread's stack or of a `maybe_grow`
//! segment, names the task, and aborts.
//!
//! # Protocol
//!
//! - Once per process (the first worker, or the first stack mapped), the
//!   previous `SIGSEGV`/`SIGBUS` actions are saved and ours installed with
//!   `SA_ONSTACK`, so it runs on an alternate signal stack: the faulting
//!   stack has no room left.
//! - Every worker thread makes sure it has an alternate signal stack
//!   ([`AltStack::ensure`]); std gives its threads one when its own handler
//!   is installed, otherwise we map one (64 KiB above a guard page).
//! - On a fault, the handler reads the faulting thread's current task and
//!   bounds (thread-locals without destructors, so reading them is plain
//!   memory access). If the address lies in the guard page below the
//!   current stack or segment, it writes the report with `write(2)` from a
//!   buffer on its own stack (no allocation, no lock) and calls `abort`.
//! - Any other fault is not ours: the previous handler runs; if there was
//!   none, the default action is restored and the handler returns, so the
//!   faulting instruction faults again and the process dies as it would
//!   have without fibra.

use std::sync::{Once, OnceLock};

use super::os;
use super::segment::{StackBounds, THREAD_BOUNDS};
use crate::signal::{self, Previous};

/// Size of the alternate signal stacks fibra maps.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// The actions that were installed before ours: `[SIGSEGV, SIGBUS]`.
static PREVIOUS: OnceLock<[Previous; 2]> = OnceLock::new();

/// Installs the overflow handler once per process.
pub(crate) fn install_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Make sure the page size is cached: the handler must not call
        // sysconf.
        os::page_size();
        let previous = [Previous::read(libc::SIGSEGV), Previous::read(libc::SIGBUS)];
        if PREVIOUS.set(previous).is_err() {
            return;
        }
        for sig in [libc::SIGSEGV, libc::SIGBUS] {
            // SAFETY: `handle` is async-signal-safe (see its comment).
            unsafe { signal::install(sig, handle, libc::SA_ONSTACK) };
        }
    });
}

/// An alternate signal stack fibra installed for the current thread;
/// dropping it uninstalls and unmaps it.
pub(crate) struct AltStack {
    /// Lowest address of the mapping (guard page included).
    bottom: usize,
    /// Length of the mapping.
    len: usize,
}

impl AltStack {
    /// Makes sure the calling thread has an alternate signal stack. Returns
    /// the one it installed, if the thread had none.
    pub(crate) fn ensure() -> Option<AltStack> {
        // SAFETY: querying the current alternate stack into a zeroed struct.
        let current = unsafe {
            let mut current: libc::stack_t = std::mem::zeroed();
            libc::sigaltstack(std::ptr::null(), &mut current);
            current
        };
        if current.ss_flags & libc::SS_DISABLE == 0 {
            return None;
        }
        let page = os::page_size();
        let len = ALT_STACK_SIZE + page;
        let bottom = match os::map_guarded(len, page) {
            Ok(bottom) => bottom,
            Err(err) => {
                tracing::warn!("no alternate signal stack, overflows will not be reported: {err}");
                return None;
            }
        };
        let stack = libc::stack_t {
            ss_sp: (bottom + page) as *mut libc::c_void,
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        // SAFETY: the memory is mapped read-write and stays mapped until
        // `drop` has uninstalled it.
        unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) };
        Some(AltStack { bottom, len })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let disable = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: uninstalls the alternate stack of this thread (the one
        // that installed it: `AltStack` lives on that thread's worker),
        // after which the memory is unused.
        unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) };
        os::unmap(self.bottom, self.len);
    }
}

/// What overflowed.
enum Overflow<'a> {
    /// A green thread's stack or segment.
    Green {
        id: u64,
        name: Option<&'a str>,
        size: usize,
        segment: bool,
    },
    /// A `maybe_grow` segment of an OS thread.
    ThreadSegment { size: usize },
}

/// Whether `addr` is in the guard page below `limit`.
fn in_guard(addr: usize, limit: usize) -> bool {
    let page = os::page_size();
    limit != 0 && addr < limit && addr >= limit - page
}

/// Finds out whether a fault at `addr` is a stack overflow we know of.
/// Reads only thread-locals without destructors and the running task.
fn classify<R>(addr: usize, f: impl FnOnce(Option<Overflow<'_>>) -> R) -> R {
    super::with_running(|ts| {
        if let Some(ts) = ts {
            let b = &ts.bounds;
            return f(find_guard(addr, b).map(|(size, segment)| Overflow::Green {
                id: ts.owner_id,
                name: ts.owner_name(),
                size,
                segment,
            }));
        }
        THREAD_BOUNDS.with(|b| {
            let hit = if b.chain.get().is_null() {
                None
            } else {
                find_guard(addr, b)
            };
            f(hit.map(|(size, _)| Overflow::ThreadSegment { size }))
        })
    })
}

/// Whether `addr` hits the guard page of the current stack or segment, or
/// of one of the stacks left behind (a switch publishes the segment's
/// bounds just before it moves there, so the switching frames may still
/// overflow the old stack). Returns that stack's size and whether it is a
/// segment.
fn find_guard(addr: usize, bounds: &StackBounds) -> Option<(usize, bool)> {
    let (mut limit, mut base) = (bounds.limit.get(), bounds.base.get());
    let mut link = bounds.chain.get();
    // A chain longer than this would be a corrupted one: stop.
    for _ in 0..1 << 20 {
        if in_guard(addr, limit) {
            return Some((base.saturating_sub(limit), !link.is_null()));
        }
        if link.is_null() {
            return None;
        }
        // SAFETY: links live in frames of the stacks this thread or task
        // left for a segment; those frames stay until the segment returns,
        // which unlinks them first.
        let l = unsafe { &*link };
        (limit, base, link) = (l.limit, l.base, l.prev);
    }
    None
}

/// The signal handler. Async-signal-safe: it reads thread-locals without
/// destructors and immutable task fields, formats into a stack buffer,
/// and calls only `write`, `abort` and `sigaction`.
extern "C" fn handle(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers;
    // si_addr is the faulting address for SIGSEGV and SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    classify(addr, |overflow| {
        if let Some(overflow) = overflow {
            report(&overflow);
            // SAFETY: abort is async-signal-safe and never returns.
            unsafe { libc::abort() };
        }
    });
    // SAFETY: forwarding the same arguments our handler got.
    unsafe { chain(sig, info, ctx) };
}

/// Runs the handler that was installed before ours, or restores the
/// default action.
///
/// # Safety
///
/// Only from the signal handler, with its arguments.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let index = usize::from(sig != libc::SIGSEGV);
    let previous = PREVIOUS.get().map(|p| p[index]);
    // SAFETY: from the handler, with its arguments (caller).
    if previous.is_some_and(|p| unsafe { p.call(sig, info, ctx) }) {
        return;
    }
    // SAFETY: installing the default action; the faulting instruction then
    // faults again and the process dies as it would have without fibra (an
    // ignored fault would loop).
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
    }
}

/// A fixed buffer for building the report without allocating.
struct Line {
    buf: [u8; 768],
    len: usize,
}

impl Line {
    fn str(&mut self, s: &str) -> &mut Line {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        self
    }

    fn num(&mut self, mut v: u64) -> &mut Line {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for &d in &digits[i..] {
            if self.len < self.buf.len() {
                self.buf[self.len] = d;
                self.len += 1;
            }
        }
        self
    }
}

/// Writes the overflow report to stderr with `write(2)`.
fn report(overflow: &Overflow<'_>) {
    let mut line = Line {
        buf: [0; 768],
        len: 0,
    };
    match *overflow {
        Overflow::Green {
            id,
            name,
            size,
            segment,
        } => {
            line.str("fibra: green thread #").num(id).str(" '");
            match name {
                // At most 200 bytes of the name, cut at a char boundary.
                Some(name) => {
                    let mut end = name.len().min(200);
                    while !name.is_char_boundary(end) {
                        end -= 1;
                    }
                    line.str(&name[..end]);
                }
                None => {
                    line.str("<unnamed>");
                }
            }
            line.str("' has overflowed its ");
            if segment {
                line.num(size as u64 / 1024).str(" KiB maybe_grow segment");
            } else {
                line.num(size as u64 / 1024).str(" KiB stack");
            }
            line.str(" (stack overflow)\nfibra: give it a larger stack (task::Builder::stack_size, Runtime::builder().stack_size) or recurse through fibra::stack::maybe_grow; aborting\n");
        }
        Overflow::ThreadSegment { size } => {
            line.str("fibra: a thread has overflowed its ")
                .num(size as u64 / 1024)
                .str(" KiB maybe_grow segment (stack overflow); aborting\n");
        }
    }
    let mut written = 0;
    while written < line.len {
        // SAFETY: writing initialised bytes of a live buffer to stderr.
        let n = unsafe {
            libc::write(
                libc::STDERR_FILENO,
                line.buf[written..].as_ptr() as *const libc::c_void,
                line.len - written,
            )
        };
        if n <= 0 {
            break;
        }
        written += n as usize;
    }
}
