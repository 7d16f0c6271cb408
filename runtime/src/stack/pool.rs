//! Stack pools (one per worker, one shared overflow pool behind them) and
//! the process-wide stack counters.
//!
//! # Life of a stack
//!
//! ```text
//!   mmap ──► in use ──exit──► worker pool ──overflow (half, trimmed)──► shared pool ──full──► munmap
//!              ▲                   │                                        │
//!              └───────take────────┴──────── empty worker pool: batch ──────┘
//! ```
//!
//! - A worker's pool holds stacks of its runtime's default size, returned
//!   by tasks that ran there; taking and giving back are `Vec` operations
//!   with no system call and no lock. Stacks returned since the last trim
//!   are *dirty* (their last task's pages are still committed) until the
//!   worker trims them before it sleeps.
//! - When a worker's pool is full, half of it moves (trimmed) to the
//!   shared pool; when it is empty, it takes a batch from there before
//!   mapping a new stack. The shared pool also keeps other sizes (per-task
//!   stack sizes, `maybe_grow` segments) and the stacks of workers that
//!   exit, so a later runtime starts warm.
//! - Both pools are bounded; a stack that fits in neither is unmapped.
//!
//! Invariant: a pooled stack holds no frames, so any of its pages may be
//! released at any time by its pool's owner.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use parking_lot::Mutex;

use super::Stack;

/// Most stacks a single worker keeps for reuse.
const LOCAL_POOL_MAX: usize = 256;
/// Most stacks the shared pool keeps (all sizes together).
const SHARED_POOL_MAX: usize = 1024;
/// Bytes kept committed at the top of a pooled stack; the rest is released
/// when the stack is trimmed, so an idle pool costs little memory.
pub(crate) const POOLED_KEEP: usize = 16 * 1024;

/// Process-wide stack counters (mapping is rare, so shared atomics are fine).
pub(crate) struct Counters {
    stacks_mapped: AtomicUsize,
    bytes_reserved: AtomicUsize,
    stacks_in_use: AtomicUsize,
    segments_in_use: AtomicUsize,
    mmap_calls: AtomicUsize,
    shrinks: AtomicUsize,
}

pub(crate) static STATS: Counters = Counters {
    stacks_mapped: AtomicUsize::new(0),
    bytes_reserved: AtomicUsize::new(0),
    stacks_in_use: AtomicUsize::new(0),
    segments_in_use: AtomicUsize::new(0),
    mmap_calls: AtomicUsize::new(0),
    shrinks: AtomicUsize::new(0),
};

impl Counters {
    pub(crate) fn mapped_one(&self, len: usize) {
        self.stacks_mapped.fetch_add(1, Relaxed);
        self.mmap_calls.fetch_add(1, Relaxed);
        self.bytes_reserved.fetch_add(len, Relaxed);
    }

    pub(crate) fn unmapped_one(&self, len: usize) {
        self.stacks_mapped.fetch_sub(1, Relaxed);
        self.bytes_reserved.fetch_sub(len, Relaxed);
    }

    pub(crate) fn mapped(&self) -> usize {
        self.stacks_mapped.load(Relaxed)
    }

    pub(crate) fn in_use(&self) -> usize {
        self.stacks_in_use.load(Relaxed)
    }

    pub(crate) fn shrunk(&self) {
        self.shrinks.fetch_add(1, Relaxed);
    }
}

/// A snapshot of the process's green-thread stacks and segments.
///
/// ```
/// let stats = fibra::stack::stats();
/// assert!(stats.mapped >= stats.in_use);
/// assert!(stats.bytes_reserved >= stats.bytes_committed);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StackStats {
    /// Stacks and segments currently mapped (in use, pooled or cached).
    pub mapped: usize,
    /// Stacks and segments out of the pools: those of started, unfinished
    /// green threads and the `maybe_grow` segments (see `segments`).
    pub in_use: usize,
    /// Of `in_use`, the `maybe_grow` segments: those holding frames, and
    /// the one each task (or OS thread) keeps cached for its next split.
    pub segments: usize,
    /// Mapped and waiting in a pool for reuse.
    pub pooled: usize,
    /// Address space reserved by all mapped stacks, guard pages included.
    pub bytes_reserved: usize,
    /// Resident memory of all mapped stacks, counted page by page with
    /// `mincore(2)` when the snapshot is taken: exactly up to 16,384
    /// stacks, beyond that from a sample of about 16,384 evenly spread
    /// stacks, scaled up.
    pub bytes_committed: usize,
    /// `mmap` calls made for stacks since the process started (a warm pool
    /// makes none).
    pub mmap_calls: usize,
    /// Times the pages below a suspended task's stack pointer were released
    /// (at park time, when a worker went idle, or by
    /// `shrink_stacks`).
    pub shrinks: usize,
}

/// Returns the process-wide stack counters, with the resident bytes of all
/// stacks counted at the moment of the call.
///
/// Counting resident pages walks up to 16,384 stacks with `mincore(2)`
/// (adjacent stacks in one call; a sample beyond that), so it takes up to
/// about 10 ms and briefly delays stack mapping and unmapping: call it for
/// monitoring, not in a hot loop.
///
/// ```
/// let before = fibra::stack::stats().mmap_calls;
/// fibra::run(|| {});
/// assert!(fibra::stack::stats().mmap_calls >= before);
/// ```
pub fn stats() -> StackStats {
    let bytes_committed = super::committed_bytes();
    let mapped = STATS.stacks_mapped.load(Relaxed);
    let in_use = STATS.stacks_in_use.load(Relaxed);
    StackStats {
        mapped,
        in_use,
        segments: STATS.segments_in_use.load(Relaxed),
        pooled: mapped.saturating_sub(in_use),
        bytes_reserved: STATS.bytes_reserved.load(Relaxed),
        bytes_committed,
        mmap_calls: STATS.mmap_calls.load(Relaxed),
        shrinks: STATS.shrinks.load(Relaxed),
    }
}

/// Maps a stack, respecting the mapping budget: when it is exhausted the
/// shared pool's stacks are unmapped first.
fn map_new(size: usize) -> io::Result<Stack> {
    super::overflow::install_handler();
    if super::budget::may_map(STATS.mapped()).is_err() {
        SHARED.lock().drain();
        super::budget::may_map(STATS.mapped())?;
    }
    Stack::new(size)
}

/// Takes a stack with `size` usable bytes (already normalized) from the
/// shared pool, or maps one. Counts it in use.
pub(crate) fn take_shared(size: usize) -> io::Result<Stack> {
    let pooled = SHARED.lock().take(size);
    let stack = match pooled {
        Some(stack) => stack,
        None => map_new(size)?,
    };
    STATS.stacks_in_use.fetch_add(1, Relaxed);
    Ok(stack)
}

/// Returns a stack that holds no frames (and is no longer counted in use)
/// to the shared pool, trimming it; unmaps it when the pool is full.
fn give_shared(stack: Stack) {
    stack.trim_to(POOLED_KEEP);
    SHARED.lock().give(stack);
}

/// Takes a `maybe_grow` segment of `size` usable bytes (normalized) from
/// the shared pool, or maps one.
pub(crate) fn take_segment(size: usize) -> io::Result<Stack> {
    let segment = take_shared(size)?;
    STATS.segments_in_use.fetch_add(1, Relaxed);
    Ok(segment)
}

/// Returns a segment that holds no frames to the shared pool.
pub(crate) fn give_segment(segment: Stack) {
    STATS.segments_in_use.fetch_sub(1, Relaxed);
    STATS.stacks_in_use.fetch_sub(1, Relaxed);
    give_shared(segment);
}

/// The shared overflow pool of trimmed stacks, by size.
struct SharedPool {
    /// `(usable size, stacks)`, a handful of sizes at most.
    classes: Vec<(usize, Vec<Stack>)>,
    /// Stacks over all classes.
    len: usize,
}

static SHARED: Mutex<SharedPool> = Mutex::new(SharedPool {
    classes: Vec::new(),
    len: 0,
});

impl SharedPool {
    fn take(&mut self, size: usize) -> Option<Stack> {
        let (_, stacks) = self.classes.iter_mut().find(|(s, _)| *s == size)?;
        let stack = stacks.pop()?;
        self.len -= 1;
        Some(stack)
    }

    /// Moves up to `n` stacks of `size` into `out`.
    fn take_batch(&mut self, size: usize, n: usize, out: &mut Vec<Stack>) {
        if let Some((_, stacks)) = self.classes.iter_mut().find(|(s, _)| *s == size) {
            let k = n.min(stacks.len());
            out.extend(stacks.drain(stacks.len() - k..));
            self.len -= k;
        }
    }

    /// Keeps a trimmed stack, or drops (unmaps) it when full.
    fn give(&mut self, stack: Stack) {
        if self.len >= SHARED_POOL_MAX {
            return;
        }
        let size = stack.size();
        self.len += 1;
        match self.classes.iter_mut().find(|(s, _)| *s == size) {
            Some((_, stacks)) => stacks.push(stack),
            None => self.classes.push((size, vec![stack])),
        }
    }

    /// Unmaps every pooled stack.
    fn drain(&mut self) {
        self.classes.clear();
        self.len = 0;
    }
}

/// A worker's cache of default-sized stacks, in front of the shared pool.
///
/// Returned stacks may still hold committed pages from their last task; they
/// are trimmed to [`POOLED_KEEP`] bytes by [`LocalPool::trim`], which the
/// worker calls before it sleeps, so the spawn/exit path makes no system call.
pub(crate) struct LocalPool {
    /// Usable size of the stacks this pool keeps.
    size: usize,
    /// Stacks ready for reuse, most recently returned last.
    free: Vec<Stack>,
    /// `free[dirty_from..]` were returned since the last trim.
    dirty_from: usize,
}

impl LocalPool {
    pub(crate) fn new(size: usize) -> LocalPool {
        LocalPool {
            size,
            free: Vec::new(),
            dirty_from: 0,
        }
    }

    /// Takes a stack with `size` usable bytes (0 means the pool's size).
    pub(crate) fn take(&mut self, size: usize) -> io::Result<Stack> {
        let size = if size == 0 { self.size } else { size };
        if size != self.size {
            return take_shared(size);
        }
        if self.free.is_empty() {
            SHARED
                .lock()
                .take_batch(size, LOCAL_POOL_MAX / 2, &mut self.free);
            // Shared stacks are trimmed already.
            self.dirty_from = self.free.len();
        }
        let stack = match self.free.pop() {
            Some(stack) => {
                self.dirty_from = self.dirty_from.min(self.free.len());
                stack
            }
            None => map_new(size)?,
        };
        STATS.stacks_in_use.fetch_add(1, Relaxed);
        Ok(stack)
    }

    /// Returns a finished task's stack (it holds no frames any more).
    pub(crate) fn give(&mut self, stack: Stack) {
        STATS.stacks_in_use.fetch_sub(1, Relaxed);
        if stack.size() != self.size {
            give_shared(stack);
            return;
        }
        if self.free.len() >= LOCAL_POOL_MAX {
            self.spill(LOCAL_POOL_MAX / 2);
        }
        self.free.push(stack);
    }

    /// Moves the `n` least recently returned stacks to the shared pool.
    fn spill(&mut self, n: usize) {
        let n = n.min(self.free.len());
        let moved: Vec<Stack> = self.free.drain(..n).collect();
        self.dirty_from = self.dirty_from.saturating_sub(n);
        for stack in &moved {
            stack.trim_to(POOLED_KEEP);
        }
        let mut shared = SHARED.lock();
        for stack in moved {
            shared.give(stack);
        }
    }

    /// Releases all but the top [`POOLED_KEEP`] bytes of every stack returned
    /// since the last trim. Returns the bytes released.
    pub(crate) fn trim(&mut self) -> usize {
        let mut released = 0;
        for stack in &self.free[self.dirty_from..] {
            released += stack.trim_to(POOLED_KEEP);
        }
        self.dirty_from = self.free.len();
        released
    }
}

impl Drop for LocalPool {
    /// A worker exits: its stacks go to the shared pool for later runtimes.
    fn drop(&mut self) {
        let n = self.free.len();
        self.spill(n);
    }
}

/// Number of stacks in the shared pool (for tests).
#[cfg(test)]
pub(crate) fn shared_len() -> usize {
    SHARED.lock().len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_pool_reuses_without_mapping() {
        let size = super::super::normalize_size(64 * 1024);
        let mut pool = LocalPool::new(size);
        let a = pool.take(0).unwrap();
        let top = a.top();
        pool.give(a);
        let b = pool.take(0).unwrap();
        assert_eq!(b.top(), top, "the returned stack is reused first");
        pool.give(b);
    }

    #[test]
    fn overflow_goes_to_the_shared_pool_and_back() {
        // A size no other test uses, so the shared class is ours alone.
        let size = super::super::normalize_size(72 * 1024);
        let mut pool = LocalPool::new(size);
        let stacks: Vec<Stack> = (0..LOCAL_POOL_MAX + 1)
            .map(|_| pool.take(0).unwrap())
            .collect();
        for s in stacks {
            pool.give(s);
        }
        assert!(pool.free.len() <= LOCAL_POOL_MAX);
        let spilled = LOCAL_POOL_MAX + 1 - pool.free.len();
        assert!(spilled >= LOCAL_POOL_MAX / 2);
        assert!(shared_len() >= spilled);
        // A second worker's empty pool takes a batch from the shared pool.
        let spilled_tops: Vec<usize> = {
            let shared = SHARED.lock();
            let (_, stacks) = shared.classes.iter().find(|(s, _)| *s == size).unwrap();
            stacks.iter().map(Stack::top).collect()
        };
        let mut other = LocalPool::new(size);
        let s = other.take(0).unwrap();
        assert!(
            spilled_tops.contains(&s.top()),
            "the stack came from the shared pool"
        );
        assert!(!other.free.is_empty(), "a batch came over");
        other.give(s);
    }
}
