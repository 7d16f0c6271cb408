//! Per-worker stack pools and the process-wide stack counters.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::Stack;

/// Most stacks a single worker keeps for reuse.
const LOCAL_POOL_MAX: usize = 256;
/// Bytes kept committed at the top of a pooled stack; the rest is released
/// when the stack is returned, so an idle pool costs little memory.
const POOLED_KEEP: usize = 16 * 1024;

/// Process-wide stack counters (mapping is rare, so shared atomics are fine).
pub(crate) struct Counters {
    stacks_mapped: AtomicUsize,
    bytes_reserved: AtomicUsize,
    stacks_in_use: AtomicUsize,
    mmap_calls: AtomicUsize,
}

pub(crate) static STATS: Counters = Counters {
    stacks_mapped: AtomicUsize::new(0),
    bytes_reserved: AtomicUsize::new(0),
    stacks_in_use: AtomicUsize::new(0),
    mmap_calls: AtomicUsize::new(0),
};

impl Counters {
    pub(crate) fn mapped(&self, len: usize) {
        self.stacks_mapped.fetch_add(1, Relaxed);
        self.mmap_calls.fetch_add(1, Relaxed);
        self.bytes_reserved.fetch_add(len, Relaxed);
    }

    pub(crate) fn unmapped(&self, len: usize) {
        self.stacks_mapped.fetch_sub(1, Relaxed);
        self.bytes_reserved.fetch_sub(len, Relaxed);
    }
}

/// A snapshot of the process's green-thread stacks.
///
/// ```
/// let stats = fibra_runtime::stack::stats();
/// assert!(stats.mapped >= stats.in_use);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StackStats {
    /// Stacks currently mapped (in use by a task or pooled).
    pub mapped: usize,
    /// Stacks owned by a started, unfinished task.
    pub in_use: usize,
    /// Stacks waiting in pools for reuse.
    pub pooled: usize,
    /// Address space reserved by all mapped stacks, guard pages included.
    pub bytes_reserved: usize,
    /// `mmap` calls made for stacks since the process started.
    pub mmap_calls: usize,
}

/// Returns the process-wide stack counters.
///
/// ```
/// let before = fibra_runtime::stack::stats().mmap_calls;
/// fibra_runtime::run(|| {});
/// assert!(fibra_runtime::stack::stats().mmap_calls >= before);
/// ```
pub fn stats() -> StackStats {
    let mapped = STATS.stacks_mapped.load(Relaxed);
    let in_use = STATS.stacks_in_use.load(Relaxed);
    StackStats {
        mapped,
        in_use,
        pooled: mapped.saturating_sub(in_use),
        bytes_reserved: STATS.bytes_reserved.load(Relaxed),
        mmap_calls: STATS.mmap_calls.load(Relaxed),
    }
}

/// A worker's cache of default-sized stacks.
///
/// Returned stacks may still hold committed pages from their last task; they
/// are trimmed to [`POOLED_KEEP`] bytes by [`StackPool::trim`], which the
/// worker calls before it sleeps, so the spawn/exit path makes no system call.
pub(crate) struct StackPool {
    /// Usable size of the stacks this pool keeps.
    size: usize,
    /// Stacks ready for reuse, most recently returned last.
    free: Vec<Stack>,
    /// `free[dirty_from..]` were returned since the last trim.
    dirty_from: usize,
}

impl StackPool {
    pub(crate) fn new(size: usize) -> StackPool {
        StackPool {
            size,
            free: Vec::new(),
            dirty_from: 0,
        }
    }

    /// Takes a stack with `size` usable bytes (0 means the pool's size).
    pub(crate) fn take(&mut self, size: usize) -> io::Result<Stack> {
        let size = if size == 0 { self.size } else { size };
        let stack = if size == self.size {
            match self.free.pop() {
                Some(stack) => {
                    self.dirty_from = self.dirty_from.min(self.free.len());
                    stack
                }
                None => Stack::new(size)?,
            }
        } else {
            Stack::new(size)?
        };
        STATS.stacks_in_use.fetch_add(1, Relaxed);
        Ok(stack)
    }

    /// Returns a finished task's stack; keeps it if it fits the pool.
    pub(crate) fn give(&mut self, stack: Stack) {
        STATS.stacks_in_use.fetch_sub(1, Relaxed);
        if stack.size() == self.size && self.free.len() < LOCAL_POOL_MAX {
            self.free.push(stack);
        }
        // Otherwise `stack` drops here and is unmapped.
    }

    /// Releases all but the top [`POOLED_KEEP`] bytes of every stack returned
    /// since the last trim. Returns the bytes released.
    pub(crate) fn trim(&mut self) -> usize {
        let mut released = 0;
        for stack in &self.free[self.dirty_from..] {
            if stack.size() > POOLED_KEEP {
                released += stack.release_below(stack.top() - POOLED_KEEP);
            }
        }
        self.dirty_from = self.free.len();
        released
    }
}
