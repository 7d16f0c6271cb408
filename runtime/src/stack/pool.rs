//! Stack pools (one per worker, one shared pool behind them), the
//! reservations stacks are carved from, and the process-wide stack
//! counters.
//!
//! # Life of a stack
//!
//! ```text
//!   map a chunk (256 stacks, one batch of calls)
//!        │
//!        ▼
//!   worker pool ──take──► in use ──exit──► worker pool ──full: half, trimmed──► shared pool
//!        ▲                                                                        │
//!        └──────────────── empty worker pool: a batch ───────────────────────────┘
//!                                          shared pool over its size: chunks whose
//!                                          stacks all came back are unmapped (one call each)
//! ```
//!
//! - Stacks are carved from *chunks*: one mapping holding up to
//!   [`CHUNK_STACKS`] stacks of one size, mapped with their guards in a
//!   batch of system calls (see `os::map_stacks`). A worker whose pool and
//!   the shared pool are empty maps a chunk and keeps all of its stacks.
//! - A worker's pool holds stacks of its runtime's default size, returned
//!   by tasks that ran there; taking and giving back are `Vec` operations
//!   with no system call and no lock. Stacks returned since the last trim
//!   are *dirty* (their last task's pages may still be committed) until the
//!   worker trims them before it sleeps.
//! - Fresh stacks are pre-faulted in batches of [`PREFAULT_BATCH`] as they
//!   are first taken: one `process_madvise(MADV_POPULATE_WRITE)` commits
//!   the top page of each, so a burst of spawns takes neither a system
//!   call nor a page fault per task.
//! - Trimming asks the kernel which pages are resident with one `mincore`
//!   per chunk and releases pages only of the stacks that have some below
//!   [`POOLED_KEEP`]; the top of a pooled stack stays committed, so a task
//!   that reuses it does not fault it in again.
//! - When a worker's pool is full, half of it moves (trimmed) to the
//!   shared pool; when it is empty, it takes a batch from there before
//!   mapping. The shared pool also keeps other sizes (per-task stack
//!   sizes, `maybe_grow` segments) and the stacks of workers that exit, so
//!   a later runtime starts warm.
//! - Memory goes back in batches: when a worker goes idle and the shared
//!   pool holds more than [`SHARED_KEEP`] stacks of a size that went
//!   [`RELEASE_GRACE`] without takes or gives, every chunk whose stacks
//!   are all in it is unmapped whole (a busy runtime keeps the stacks of
//!   its peak, as Go keeps its stack spans until the scavenger runs). A
//!   stack is never unmapped alone (that would split a chunk's mapping and
//!   cost a call per stack).
//!
//! Invariant: a pooled stack holds no frames, so any of its pages may be
//! released at any time by its pool's owner.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{prefault, trim_batch, Chunk, Stack};

/// Most stacks a single worker keeps for reuse.
const LOCAL_POOL_MAX: usize = 256;
/// Stacks of one size the shared pool keeps before it unmaps chunks whose
/// stacks have all come back.
const SHARED_KEEP: usize = 1024;
/// Bytes kept committed at the top of a pooled stack; the rest is released
/// when the stack is trimmed, so an idle pool costs little memory.
pub(crate) const POOLED_KEEP: usize = 16 * 1024;
/// Fresh stacks whose top page is committed together, with one call, when
/// the first of them is taken: a burst of spawns then takes no page fault
/// on its stacks, and a runtime with few tasks commits at most this many
/// pages ahead.
const PREFAULT_BATCH: usize = 64;
/// Most stacks carved from one chunk.
pub(crate) const CHUNK_STACKS: usize = 256;
/// Target size of a chunk: fewer, larger stacks per chunk above it.
const CHUNK_BYTES: usize = 64 << 20;

/// Stacks per chunk for stacks of `size` usable bytes: 256 of the default
/// 256 KiB (64 MiB of address space, committed only where touched), fewer
/// of larger ones, one of 64 MiB or more.
fn chunk_stacks(size: usize) -> usize {
    (CHUNK_BYTES / (size + super::os::page_size())).clamp(1, CHUNK_STACKS)
}

/// Process-wide stack counters (mapping is rare, so shared atomics are fine).
pub(crate) struct Counters {
    stacks_mapped: AtomicUsize,
    chunks_mapped: AtomicUsize,
    bytes_reserved: AtomicUsize,
    stacks_in_use: AtomicUsize,
    segments_in_use: AtomicUsize,
    mmap_calls: AtomicUsize,
    shrinks: AtomicUsize,
}

pub(crate) static STATS: Counters = Counters {
    stacks_mapped: AtomicUsize::new(0),
    chunks_mapped: AtomicUsize::new(0),
    bytes_reserved: AtomicUsize::new(0),
    stacks_in_use: AtomicUsize::new(0),
    segments_in_use: AtomicUsize::new(0),
    mmap_calls: AtomicUsize::new(0),
    shrinks: AtomicUsize::new(0),
};

impl Counters {
    /// A chunk of `len` bytes holding `stacks` stacks was mapped.
    pub(crate) fn mapped_chunk(&self, len: usize, stacks: usize) {
        self.stacks_mapped.fetch_add(stacks, Relaxed);
        self.chunks_mapped.fetch_add(1, Relaxed);
        self.mmap_calls.fetch_add(1, Relaxed);
        self.bytes_reserved.fetch_add(len, Relaxed);
    }

    /// A chunk of `len` bytes was unmapped.
    pub(crate) fn unmapped_chunk(&self, len: usize) {
        self.chunks_mapped.fetch_sub(1, Relaxed);
        self.bytes_reserved.fetch_sub(len, Relaxed);
    }

    /// A stack was dropped.
    pub(crate) fn unmapped_one(&self) {
        self.stacks_mapped.fetch_sub(1, Relaxed);
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
    /// Reservations (chunks of up to 256 stacks, mapped in one go) the
    /// stacks were carved from.
    pub chunks: usize,
    /// Address space reserved by all mapped chunks, guard pages included.
    pub bytes_reserved: usize,
    /// Resident memory of all mapped stacks, counted page by page with
    /// `mincore(2)` when the snapshot is taken: exactly up to 128 chunks
    /// (32,768 default-sized stacks), beyond that from a sample of about
    /// 128 evenly spread chunks, scaled up.
    pub bytes_committed: usize,
    /// `mmap` calls made for stacks since the process started: one per
    /// chunk of up to 256 stacks (a warm pool makes none).
    pub mmap_calls: usize,
    /// Times the pages below a suspended task's stack pointer were released
    /// (at park time, when a worker went idle, or by
    /// `shrink_stacks`).
    pub shrinks: usize,
}

/// Returns the process-wide stack counters, with the resident bytes of all
/// stacks counted at the moment of the call.
///
/// Counting resident pages walks up to 128 chunks of stacks with
/// `mincore(2)` (adjacent chunks in one call; a sample beyond that), so it
/// takes up to about 10 ms and briefly delays stack mapping and unmapping:
/// call it for monitoring, not in a hot loop.
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
        chunks: STATS.chunks_mapped.load(Relaxed),
        bytes_reserved: STATS.bytes_reserved.load(Relaxed),
        bytes_committed,
        mmap_calls: STATS.mmap_calls.load(Relaxed),
        shrinks: STATS.shrinks.load(Relaxed),
    }
}

/// Maps a chunk of stacks of `size` usable bytes, as many as the mapping
/// budget allows (at least one): when it is exhausted, the shared pool's
/// free chunks are unmapped first.
fn map_batch(size: usize) -> io::Result<Vec<Stack>> {
    super::overflow::install_handler();
    let want = chunk_stacks(size);
    let count = match super::budget::room(STATS.mapped(), want) {
        Ok(n) => n,
        Err(_) => {
            let dropped = SHARED.lock().release_all_free();
            unmap_dropped(dropped);
            super::budget::room(STATS.mapped(), want)?
        }
    };
    let stacks = Chunk::map(size, count)?;
    tracing::trace!(size, count, "mapped a chunk of stacks");
    Ok(stacks)
}

/// Takes a stack with `size` usable bytes (already normalized) from the
/// shared pool, or maps a chunk (its other stacks go to the shared pool).
/// Counts it in use.
pub(crate) fn take_shared(size: usize) -> io::Result<Stack> {
    let pooled = SHARED.lock().take(size);
    let stack = match pooled {
        Some(stack) => stack,
        None => {
            let mut fresh = map_batch(size)?;
            let stack = fresh.pop().expect("a chunk holds at least one stack");
            // Fresh stacks have no committed pages: nothing to trim.
            SHARED.lock().give_batch(fresh);
            stack
        }
    };
    STATS.stacks_in_use.fetch_add(1, Relaxed);
    Ok(stack)
}

/// Returns a stack that holds no frames (and is no longer counted in use)
/// to the shared pool, trimming it.
fn give_shared(stack: Stack) {
    trim_batch([&stack], POOLED_KEEP);
    SHARED.lock().give_batch(vec![stack]);
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

/// The shared pool's stacks of one size.
struct Class {
    /// Usable size of the stacks.
    size: usize,
    /// Trimmed stacks, ready for reuse.
    stacks: Vec<Stack>,
    /// Stacks came in since the last look for chunks to unmap.
    grew: bool,
    /// When stacks were last taken out or given back: free chunks are
    /// unmapped only after [`RELEASE_GRACE`] of quiet, so repeated bursts
    /// reuse their stacks instead of mapping and faulting them in again.
    last_used: Instant,
}

/// How long a size's stacks must have gone neither taken nor given back
/// before idle workers unmap its free chunks.
pub(crate) const RELEASE_GRACE: Duration = Duration::from_secs(1);

/// The shared pool of trimmed stacks, by size.
struct SharedPool {
    /// A handful of sizes at most.
    classes: Vec<Class>,
    /// Stacks over all classes.
    len: usize,
}

static SHARED: Mutex<SharedPool> = Mutex::new(SharedPool {
    classes: Vec::new(),
    len: 0,
});

/// Stacks taken out of the shared pool to be dropped (and their chunks
/// unmapped) once its lock is released.
type Dropped = Vec<Vec<Stack>>;

impl SharedPool {
    fn class(&mut self, size: usize) -> Option<&mut Class> {
        self.classes.iter_mut().find(|c| c.size == size)
    }

    fn take(&mut self, size: usize) -> Option<Stack> {
        let class = self.class(size)?;
        let stack = class.stacks.pop()?;
        class.last_used = Instant::now();
        self.len -= 1;
        Some(stack)
    }

    /// Moves up to `n` stacks of `size` into `out`.
    fn take_batch(&mut self, size: usize, n: usize, out: &mut Vec<Stack>) {
        let Some(class) = self.class(size) else {
            return;
        };
        let k = n.min(class.stacks.len());
        let from = class.stacks.len() - k;
        out.extend(class.stacks.drain(from..));
        if k > 0 {
            class.last_used = Instant::now();
        }
        self.len -= k;
    }

    /// Keeps trimmed stacks (idle workers give the memory of those unused
    /// for a while back, see [`release_idle`](Self::release_idle)).
    fn give_batch(&mut self, stacks: Vec<Stack>) {
        let now = Instant::now();
        for stack in stacks {
            let size = stack.size();
            let class = match self.classes.iter().position(|c| c.size == size) {
                Some(i) => &mut self.classes[i],
                None => {
                    self.classes.push(Class {
                        size,
                        stacks: Vec::new(),
                        grew: false,
                        last_used: now,
                    });
                    self.classes.last_mut().expect("just pushed")
                }
            };
            class.stacks.push(stack);
            class.grew = true;
            class.last_used = now;
            self.len += 1;
        }
    }

    /// A worker is idle at `now`: in every class that grew past
    /// [`SHARED_KEEP`] since the last look and whose stacks were neither
    /// taken nor given back for [`RELEASE_GRACE`], unmap the chunks whose
    /// stacks all came back.
    /// Also returns when to look again for a class still in its grace.
    #[must_use]
    fn release_idle(&mut self, now: Instant) -> (Dropped, Option<Instant>) {
        let mut dropped = Vec::new();
        let mut again: Option<Instant> = None;
        for class in &mut self.classes {
            if !class.grew || class.stacks.len() <= SHARED_KEEP {
                class.grew = false;
                continue;
            }
            let due = class.last_used + RELEASE_GRACE;
            if now < due {
                again = Some(again.map_or(due, |a| a.min(due)));
                continue;
            }
            dropped.extend(class.release_free_chunks(SHARED_KEEP));
            class.grew = false;
        }
        self.len -= dropped.iter().map(Vec::len).sum::<usize>();
        (dropped, again)
    }

    /// Unmaps, in every class, every chunk whose stacks are all here (the
    /// mapping budget is exhausted).
    #[must_use]
    fn release_all_free(&mut self) -> Dropped {
        let mut dropped = Vec::new();
        for class in &mut self.classes {
            dropped.extend(class.release_free_chunks(0));
        }
        self.len -= dropped.iter().map(Vec::len).sum::<usize>();
        dropped
    }
}

/// Drops stacks taken out of the shared pool, after its lock was released:
/// each chunk is unmapped with its last stack.
fn unmap_dropped(dropped: Dropped) {
    if dropped.is_empty() {
        return;
    }
    let stacks: usize = dropped.iter().map(Vec::len).sum();
    tracing::debug!(
        stacks,
        chunks = dropped.len(),
        "unmapping chunks of pooled stacks"
    );
    drop(dropped);
}

impl Class {
    /// Takes out the stacks of every chunk whose stacks are all in this
    /// class, until `keep` stacks are left. Dropping them unmaps those
    /// chunks (one `munmap` each).
    fn release_free_chunks(&mut self, keep: usize) -> Dropped {
        let mut dropped = Vec::new();
        if self.stacks.len() <= keep {
            return dropped;
        }
        // A chunk's stacks are adjacent in address order.
        self.stacks.sort_unstable_by_key(|s| s.bottom);
        let mut kept = Vec::with_capacity(self.stacks.len());
        let mut left = self.stacks.len();
        let mut all = std::mem::take(&mut self.stacks).into_iter().peekable();
        while let Some(first) = all.next() {
            let id = first.chunk_id();
            let mut group = vec![first];
            while let Some(next) = all.next_if(|s| s.chunk_id() == id) {
                group.push(next);
            }
            // Stacks are only made when a chunk is mapped, and each holds
            // its chunk once; under the pool's lock none of these can be
            // taken, so the count is exact.
            let whole = std::sync::Arc::strong_count(&group[0].chunk) == group.len();
            if whole && left - group.len() >= keep {
                left -= group.len();
                group[0]
                    .chunk
                    .dying
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                dropped.push(group);
            } else {
                kept.extend(group);
            }
        }
        self.stacks = kept;
        dropped
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
            if self.free.is_empty() {
                self.free = map_batch(size)?;
            }
            // Shared stacks are trimmed already, fresh ones untouched.
            self.dirty_from = self.free.len();
        }
        let mut stack = self.free.pop().expect("the pool was just filled");
        self.dirty_from = self.dirty_from.min(self.free.len());
        if stack.fresh {
            // Fresh stacks sit together at the end: pre-fault the top page
            // of this one and of the next ones to be taken, in one call.
            let from = self.free.len().saturating_sub(PREFAULT_BATCH - 1);
            prefault(std::iter::once(&mut stack).chain(self.free[from..].iter_mut()));
        }
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

    /// Moves the `n` least recently returned stacks to the shared pool,
    /// trimming those returned since the last trim.
    fn spill(&mut self, n: usize) {
        let n = n.min(self.free.len());
        let moved: Vec<Stack> = self.free.drain(..n).collect();
        let dirty = self.dirty_from.min(n);
        self.dirty_from -= dirty;
        trim_batch(&moved[dirty..], POOLED_KEEP);
        SHARED.lock().give_batch(moved);
    }

    /// Releases all but the top [`POOLED_KEEP`] bytes of every stack returned
    /// since the last trim (asking the kernel only about those that have
    /// pages below). Returns the bytes released.
    ///
    /// Also unmaps the shared pool's free chunks past its size once they
    /// went unused for [`RELEASE_GRACE`], so that the memory of a burst
    /// goes back while the runtime is idle, not on the exit path of its
    /// tasks. Returns when to call again for that, if it is not yet due.
    pub(crate) fn trim(&mut self) -> Option<Instant> {
        let (dropped, again) = SHARED.lock().release_idle(Instant::now());
        unmap_dropped(dropped);
        if self.dirty_from != self.free.len() {
            trim_batch(&self.free[self.dirty_from..], POOLED_KEEP);
            self.dirty_from = self.free.len();
        }
        again
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
        // The rest of the last chunk waits in the pool.
        let leftover = pool.free.len();
        assert!(leftover < CHUNK_STACKS);
        for s in stacks {
            pool.give(s);
        }
        assert!(pool.free.len() <= LOCAL_POOL_MAX);
        let spilled = LOCAL_POOL_MAX + 1 + leftover - pool.free.len();
        assert!(spilled >= LOCAL_POOL_MAX / 2);
        assert!(shared_len() >= spilled);
        // A second worker's empty pool takes a batch from the shared pool.
        let spilled_tops: Vec<usize> = {
            let shared = SHARED.lock();
            let class = shared.classes.iter().find(|c| c.size == size).unwrap();
            class.stacks.iter().map(Stack::top).collect()
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

    #[test]
    fn a_burst_maps_whole_chunks_and_reuses_them() {
        // A size no other test uses.
        let size = super::super::normalize_size(80 * 1024);
        assert_eq!(chunk_stacks(size), CHUNK_STACKS);
        let mut pool = LocalPool::new(size);
        let before = STATS.mmap_calls.load(Relaxed);
        let stacks: Vec<Stack> = (0..3 * CHUNK_STACKS)
            .map(|_| pool.take(0).unwrap())
            .collect();
        let calls = STATS.mmap_calls.load(Relaxed) - before;
        // Other tests may map concurrently: at least ours, not one each.
        assert!(calls >= 3, "{calls} chunks mapped");
        let chunks: std::collections::HashSet<*const Chunk> =
            stacks.iter().map(Stack::chunk_id).collect();
        assert_eq!(chunks.len(), 3, "256 stacks from each chunk");
        // Neighbours in a chunk are back to back, each above its guard.
        let mut tops: Vec<usize> = stacks.iter().map(Stack::top).collect();
        tops.sort_unstable();
        let stride = size + super::super::os::page_size();
        assert!(tops.windows(2).filter(|w| w[1] - w[0] == stride).count() >= 3 * 63);
        // Returned and taken again: no mapping at all.
        for s in stacks {
            pool.give(s);
        }
        let stacks: Vec<Stack> = (0..3 * CHUNK_STACKS)
            .map(|_| pool.take(0).unwrap())
            .collect();
        let chunks_again: std::collections::HashSet<*const Chunk> =
            stacks.iter().map(Stack::chunk_id).collect();
        assert_eq!(chunks_again, chunks, "the same stacks were reused");
        for s in stacks {
            pool.give(s);
        }
    }

    #[test]
    fn chunks_whose_stacks_all_came_back_are_unmapped_whole() {
        // A size no other test uses; one stack per chunk would not test
        // grouping, so keep it small.
        let size = super::super::normalize_size(88 * 1024);
        let n = 2 * SHARED_KEEP + 3 * CHUNK_STACKS;
        let stacks: Vec<Stack> = (0..n).map(|_| take_shared(size).unwrap()).collect();
        let ids: std::collections::HashSet<*const Chunk> =
            stacks.iter().map(Stack::chunk_id).collect();
        // Keep one stack of one chunk in use: that chunk must stay.
        let mut stacks = stacks;
        let held = stacks.pop().unwrap();
        for s in stacks {
            STATS.stacks_in_use.fetch_sub(1, Relaxed);
            give_shared(s);
        }
        // What an idle worker does, once the grace has passed.
        let (dropped, _) = SHARED
            .lock()
            .release_idle(Instant::now() + 2 * RELEASE_GRACE);
        assert!(!dropped.is_empty());
        unmap_dropped(dropped);
        let left: std::collections::HashSet<*const Chunk> = {
            let shared = SHARED.lock();
            let class = shared.classes.iter().find(|c| c.size == size).unwrap();
            assert!(
                class.stacks.len() >= SHARED_KEEP && class.stacks.len() < n,
                "{} stacks pooled",
                class.stacks.len()
            );
            class.stacks.iter().map(Stack::chunk_id).collect()
        };
        assert!(left.len() < ids.len(), "some chunks were unmapped");
        assert!(
            left.contains(&held.chunk_id()),
            "the chunk of a stack in use stays"
        );
        // The held stack is still usable memory.
        // SAFETY: the stack is ours and holds no frames; we write one byte
        // at its top.
        unsafe { *((held.top() - 1) as *mut u8) = 1 };
        STATS.stacks_in_use.fetch_sub(1, Relaxed);
        give_shared(held);
    }

    #[test]
    fn fresh_stacks_are_prefaulted_in_one_batch_when_first_taken() {
        // A size no other test uses.
        let size = super::super::normalize_size(96 * 1024);
        let mut pool = LocalPool::new(size);
        let stacks: Vec<Stack> = (0..PREFAULT_BATCH).map(|_| pool.take(0).unwrap()).collect();
        let page = super::super::os::page_size();
        let mut tops: Vec<usize> = stacks.iter().map(|s| s.top() - page).collect();
        tops.sort_unstable();
        let resident = super::super::pages_resident(&tops, false);
        if super::super::os::populate_works() {
            assert!(resident.iter().all(|&r| r), "{resident:?}");
        }
        assert!(stacks.iter().all(|s| !s.fresh));
        for s in stacks {
            pool.give(s);
        }
    }

    #[test]
    fn free_chunks_wait_out_the_grace_before_they_are_unmapped() {
        // A size no other test uses.
        let size = super::super::normalize_size(104 * 1024);
        let n = SHARED_KEEP + 2 * CHUNK_STACKS;
        let stacks: Vec<Stack> = (0..n).map(|_| take_shared(size).unwrap()).collect();
        for s in stacks {
            STATS.stacks_in_use.fetch_sub(1, Relaxed);
            give_shared(s);
        }
        let now = Instant::now();
        let (dropped, again) = SHARED.lock().release_idle(now);
        assert!(dropped.is_empty(), "just used: kept");
        let again = again.expect("a release is pending");
        assert!(again > now && again <= now + RELEASE_GRACE);
        let (dropped, _) = SHARED.lock().release_idle(again);
        assert!(!dropped.is_empty(), "unused for the grace: unmapped");
        unmap_dropped(dropped);
    }
}
