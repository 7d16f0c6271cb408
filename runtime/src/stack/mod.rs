//! Green-thread stacks: guarded virtual reservations, pooled per worker.
//!
//! # Layout
//!
//! ```text
//!   high addresses   +------------------+  <- base()  (stack grows down from here)
//!                    |  usable bytes    |  PROT_READ|PROT_WRITE, committed by the
//!                    |  (size)          |  kernel page by page on first touch
//!                    +------------------+
//!                    |  guard page      |  PROT_NONE: touching it faults
//!   low addresses    +------------------+  <- limit()
//! ```
//!
//! A stack is one `mmap` reservation (no memory committed) followed by one
//! `mprotect` that opens the usable part, so it costs two kernel mappings and
//! about one page of resident memory until the task goes deeper.
//!
//! # Pooling
//!
//! Every worker owns a [`StackPool`]; a finished task's stack goes back to the
//! pool of the worker it ran on (green threads are pinned, so that is always
//! the worker that took it). A pool holds stacks of the runtime's default
//! size only, up to a bound; surplus and odd-sized stacks are unmapped.
//! Steady-state spawning therefore makes no `mmap` call at all.

mod os;
mod pool;

pub(crate) use pool::StackPool;
pub use pool::{stats, StackStats};

use std::io;

use corosensei::stack::StackPointer;

/// Smallest usable stack a task may ask for.
pub const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest usable stack a task may ask for.
pub const MAX_STACK_SIZE: usize = 8 * 1024 * 1024;
/// Usable stack size when none is configured.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Clamps a requested stack size into `[MIN_STACK_SIZE, MAX_STACK_SIZE]` and
/// rounds it up to whole pages.
pub(crate) fn normalize_size(size: usize) -> usize {
    let page = os::page_size();
    let size = size.clamp(MIN_STACK_SIZE, MAX_STACK_SIZE);
    (size + page - 1) & !(page - 1)
}

/// A guarded, lazily committed stack for one green thread.
///
/// Owns its mapping; dropping it unmaps the memory.
pub(crate) struct Stack {
    /// Lowest address of the mapping (the guard page starts here).
    bottom: usize,
    /// Total length of the mapping, guard page included.
    len: usize,
}

// SAFETY: a `Stack` is an exclusively owned memory mapping; nothing about it
// is tied to the thread that created it.
unsafe impl Send for Stack {}

impl Stack {
    /// Maps a new stack with `size` usable bytes (already normalized) above
    /// one guard page.
    pub(crate) fn new(size: usize) -> io::Result<Stack> {
        let page = os::page_size();
        let len = size + page;
        let bottom = os::map_guarded(len, page)?;
        pool::STATS.mapped(len);
        Ok(Stack { bottom, len })
    }

    /// Usable bytes (the guard page excluded).
    pub(crate) fn size(&self) -> usize {
        self.len - os::page_size()
    }

    /// Lowest usable address (just above the guard page).
    pub(crate) fn usable_bottom(&self) -> usize {
        self.bottom + os::page_size()
    }

    /// Highest address (exclusive): the initial stack pointer.
    pub(crate) fn top(&self) -> usize {
        self.bottom + self.len
    }

    /// Releases the committed pages between the usable bottom and `keep_from`
    /// (rounded down to a page), keeping everything above it. Returns the
    /// number of bytes released.
    pub(crate) fn release_below(&self, keep_from: usize) -> usize {
        let page = os::page_size();
        let end = keep_from.min(self.top()) & !(page - 1);
        let start = self.usable_bottom();
        if end <= start {
            return 0;
        }
        os::release(start, end - start);
        end - start
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        os::unmap(self.bottom, self.len);
        pool::STATS.unmapped(self.len);
    }
}

// SAFETY: `base()` is the top of a mapping whose usable part is readable and
// writable, `limit()` is its bottom including a PROT_NONE guard page, both are
// page-aligned (so aligned to STACK_ALIGNMENT), and the usable part is at least
// MIN_STACK_SIZE (16 KiB) > corosensei's 4 KiB minimum. The mapping lives as
// long as the `Stack`.
unsafe impl corosensei::stack::Stack for Stack {
    #[inline]
    fn base(&self) -> StackPointer {
        StackPointer::new(self.top()).expect("stack top is never zero")
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.bottom).expect("stack bottom is never zero")
    }
}

/// Refuses a new green thread when mapping its stack would exceed the
/// kernel's mapping limit, with an error that says how to raise it.
pub(crate) fn check_mapping_budget() -> io::Result<()> {
    static BUDGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // Each stack costs two mappings; leave room for the rest of the process
    // (libraries, heap arenas, thread stacks).
    let budget = *BUDGET.get_or_init(|| {
        os::max_map_count()
            .map(|n| n.saturating_sub(2048) / 2)
            .unwrap_or(usize::MAX)
    });
    if pool::stats().mapped < budget {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "fibra: cannot spawn another green thread: {budget} stacks are mapped, the most the \
             kernel's memory-mapping limit allows (vm.max_map_count = {}; each stack uses 2 \
             mappings). Raise it, e.g. `sudo sysctl -w vm.max_map_count=2200000` for 1M green \
             threads",
            os::max_map_count().unwrap_or(0)
        ),
    ))
}
