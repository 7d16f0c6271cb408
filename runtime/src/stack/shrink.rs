//! Shrinking: releasing the pages a suspended green thread no longer uses.
//!
//! Rust cannot move a stack (pointers into it are legal), so a stack shrinks
//! in place: pages below the task's stack pointer go back to the kernel
//! with `madvise(MADV_DONTNEED)` and read as zero if touched again.
//!
//! # What is kept
//!
//! A suspending task records an approximate stack pointer `sp` (see
//! [`TaskStack::record_suspend`]). Below it the switch code saved a few
//! registers, so [`SAFETY_MARGIN`] bytes stay; below that, `keep` more bytes
//! stay as hysteresis, so a task that parks at one depth and works a little
//! deeper does not fault the same pages in and out. `keep` adapts per task:
//! it doubles when a task needs shrinking again within [`HOT_PARKS`] parks
//! of the last shrink, and halves after [`COLD_PARKS`] quiet parks. On a
//! task suspended inside `maybe_grow` segments, every stack of the chain is
//! shrunk below the frames that switched away from it (`Link::live_floor`).
//!
//! # When
//!
//! 1. At park time, when the task is known to have gone at least
//!    [`SHRINK_THRESHOLD`] bytes deeper than what is kept (the lowest stack
//!    pointer seen at suspensions and at `maybe_grow`/`remaining` calls).
//! 2. Otherwise, at its 1st, 2nd, 4th, 8th... park since its last shrink,
//!    the parked task joins its worker's [`ShrinkQueue`]. When the worker
//!    goes idle (or the queue holds [`PENDING_MAX`] tasks) it probes the
//!    first page below the kept part of each queued task with `mincore`
//!    (which maps nothing), one call for all the queued tasks whose stacks
//!    share a chunk. A resident page means the task went deep: shrink.
//!    Nothing on the park path itself asks the kernel: what a task is
//!    known to use comes from its recorded stack pointers.
//! 3. [`shrink_stacks`] (called by the collector at the end of a cycle, as
//!    Go shrinks stacks during GC) makes every worker, at its next tick,
//!    shrink every suspended task that ran since its last shrink.
//!
//! All three run on the task's owner worker, in its loop, while no task
//! runs there: the task is suspended, so the invariant of `stack` holds.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::pool::{self, STATS};
use super::segment::StackBounds;
use super::{approx_sp, os, round_down_to_page, Stack};

/// Bytes below a suspended task's recorded stack pointer that are never
/// released (the context switch saves registers there).
pub(crate) const SAFETY_MARGIN: usize = 4 * 1024;
/// Smallest hysteresis kept below the margin.
const KEEP_MIN: usize = 16 * 1024;
/// Known use this far below the kept part triggers a shrink at park time.
const SHRINK_THRESHOLD: usize = 32 * 1024;
/// A task shrunk again within this many parks is hot: keep more.
const HOT_PARKS: u32 = 8;
/// A task not shrunk for this many parks is cold: keep less.
const COLD_PARKS: u32 = 1024;
/// The shrink queue is drained when it holds this many tasks.
const PENDING_MAX: usize = 256;

/// A green thread's stack bookkeeping. Touched only on its owner worker's
/// thread: by the task's own code while it runs, by the worker while the
/// task is suspended, and read by the overflow handler on that thread.
pub(crate) struct TaskStack {
    /// The stack or segment the task runs on (limit 0 before it starts
    /// and after it finished).
    pub(crate) bounds: StackBounds,
    /// The last segment the task freed, kept for its next split.
    pub(crate) cached: Cell<Option<Stack>>,
    /// Approximate stack pointer at the last suspension.
    saved_sp: Cell<usize>,
    /// Lowest stack pointer seen since the last shrink.
    low_water: Cell<usize>,
    /// Parks since the last shrink.
    parks: Cell<u32>,
    /// Hysteresis: bytes kept below `saved_sp - SAFETY_MARGIN`.
    keep: Cell<u32>,
    /// Suspended at least once since the last shrink.
    ran: Cell<bool>,
    /// Sits in its worker's shrink queue.
    queued: Cell<bool>,
    /// The owning task's id, for the overflow report.
    pub(crate) owner_id: u64,
    /// The owning task's name, for the overflow report: points into the
    /// task's own boxed name, which lives (unchanged) as long as the task
    /// and so as long as this record.
    owner_name: Option<NonNull<str>>,
}

/// What owns a green thread's stack bookkeeping (a task). The shrink
/// queue keeps owners alive while they wait in it.
pub(crate) trait StackOwner {
    /// The owner's stack bookkeeping.
    fn task_stack(&self) -> &TaskStack;
}

impl TaskStack {
    /// The bookkeeping of task `owner_id` named `owner_name`; the name
    /// must live, unchanged, as long as this record.
    pub(crate) fn new(owner_id: u64, owner_name: Option<&str>) -> TaskStack {
        TaskStack {
            owner_id,
            owner_name: owner_name.map(NonNull::from),
            bounds: StackBounds::new(),
            cached: Cell::new(None),
            saved_sp: Cell::new(0),
            low_water: Cell::new(usize::MAX),
            parks: Cell::new(0),
            keep: Cell::new(KEEP_MIN as u32),
            ran: Cell::new(false),
            queued: Cell::new(false),
        }
    }

    /// The owning task's name, for the overflow report.
    pub(crate) fn owner_name(&self) -> Option<&str> {
        // SAFETY: `owner_name` points into the owning task's boxed name,
        // which is never changed and lives as long as the task, which owns
        // this record (see `new`).
        self.owner_name.map(|name| unsafe { name.as_ref() })
    }

    /// The task starts on `stack` (called by the worker before the first
    /// resume).
    pub(crate) fn start(&self, stack: &Stack) {
        self.bounds.limit.set(stack.usable_bottom());
        self.bounds.base.set(stack.top());
        self.saved_sp.set(stack.top());
    }

    /// The task finished: its stack went back to a pool, its cached
    /// segment goes to the shared pool.
    pub(crate) fn finish(&self) {
        self.bounds.limit.set(0);
        self.bounds.base.set(0);
        if let Some(segment) = self.cached.take() {
            pool::give_segment(segment);
        }
    }

    /// Whether the task holds a stack (started and not finished).
    #[inline]
    fn live(&self) -> bool {
        self.bounds.limit.get() != 0
    }

    /// Records where the task suspends; called by the task itself just
    /// before it switches away.
    #[inline(always)]
    pub(crate) fn record_suspend(&self) {
        let sp = approx_sp();
        self.saved_sp.set(sp);
        self.observe(sp);
        self.ran.set(true);
    }

    /// Notes a stack pointer seen while the task runs.
    #[inline]
    pub(crate) fn observe(&self, sp: usize) {
        if sp < self.low_water.get() {
            self.low_water.set(sp);
        }
    }

    /// Lowest address kept on the current stack or segment.
    #[inline]
    fn floor(&self) -> usize {
        let below = SAFETY_MARGIN + self.keep.get() as usize;
        round_down_to_page(self.saved_sp.get().saturating_sub(below))
    }

    /// Whether the task is known to have used stack deep below the kept part.
    #[inline]
    fn known_deep(&self) -> bool {
        let limit = self.bounds.limit.get();
        let low = self.low_water.get().max(limit);
        low + SHRINK_THRESHOLD <= self.floor()
    }

    /// The first page below the kept part, whose residency tells whether
    /// the task went deeper than what is kept: the pages a stack commits
    /// are contiguous below its top (frames and stack probes touch every
    /// page on the way down, and releases cut whole ranges below a point),
    /// so if that page is not resident, nothing below is. `None` when
    /// nothing lies below the kept part.
    fn probe_page(&self) -> Option<usize> {
        let page = os::page_size();
        let floor = self.floor();
        (floor >= self.bounds.limit.get() + page).then(|| floor - page)
    }

    /// Releases the pages below the kept part of every stack of the chain,
    /// and pools the cached segment. With `adapt`, adjusts the hysteresis
    /// from how soon this shrink followed the last one.
    ///
    /// The task must be suspended, and the caller its owner worker.
    fn shrink(&self, adapt: bool) {
        if adapt {
            let parks = self.parks.get();
            let keep = self.keep.get() as usize;
            let max = self.bounds.base.get() - self.bounds.limit.get();
            if parks <= HOT_PARKS {
                self.keep.set((keep * 2).min(max).max(KEEP_MIN) as u32);
            } else if parks >= COLD_PARKS {
                self.keep.set((keep / 2).max(KEEP_MIN) as u32);
            }
        }
        let mut floor = self.floor();
        let mut limit = self.bounds.limit.get();
        let mut link = self.bounds.chain.get();
        loop {
            if floor > limit {
                // SAFETY: `[limit, floor)` is in the usable part of a stack
                // of this task, below its recorded stack pointer minus the
                // margin; the task is suspended and we are its owner worker,
                // so no live frame is there (module invariant).
                unsafe { os::release(limit, floor - limit) };
            }
            if link.is_null() {
                break;
            }
            // SAFETY: links live in frames of the suspended task's stacks,
            // which stay in place until the task resumes.
            let l = unsafe { &*link };
            floor = round_down_to_page(l.live_floor);
            limit = l.limit;
            link = l.prev;
        }
        if let Some(segment) = self.cached.take() {
            pool::give_segment(segment);
        }
        STATS.shrunk();
        self.parks.set(0);
        self.low_water.set(self.saved_sp.get());
        self.ran.set(false);
    }
}

/// Incremented by [`shrink_stacks`]; each worker compares it with the value
/// it last acted on.
static SHRINK_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Wakes a sleeping worker so that it acts on a shrink request.
type WakeWorker = Box<dyn Fn() + Send + Sync>;

/// Every live worker's wake function, by registration id.
static WORKERS: Mutex<Vec<(u64, WakeWorker)>> = Mutex::new(Vec::new());

/// Asks every worker of every runtime to release the unused stack pages of
/// its suspended green threads (those that ran since their last shrink).
///
/// The collector calls this at the end of a cycle, as Go shrinks goroutine
/// stacks during GC. It returns at once; each worker does the work at its
/// next scheduler tick (sleeping workers are woken for it), because only a
/// task's own worker may touch its stack.
///
/// ```
/// fibra::run(|| {
///     fibra::gc_seam::shrink_stacks();
/// });
/// ```
pub fn shrink_stacks() {
    SHRINK_EPOCH.fetch_add(1, Ordering::Release);
    for (_, wake) in WORKERS.lock().iter() {
        wake();
    }
}

/// A worker's list of parked tasks to probe, and its view of the shrink
/// requests.
pub(crate) struct ShrinkQueue<T: StackOwner> {
    /// Parked tasks not yet probed.
    pending: Vec<Arc<T>>,
    /// The `SHRINK_EPOCH` this worker last acted on.
    epoch_seen: u64,
    /// Registration in `WORKERS`.
    id: u64,
}

impl<T: StackOwner> ShrinkQueue<T> {
    /// Registers a worker; `wake` must make it run its loop soon.
    pub(crate) fn new(wake: impl Fn() + Send + Sync + 'static) -> ShrinkQueue<T> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        WORKERS.lock().push((id, Box::new(wake)));
        ShrinkQueue {
            pending: Vec::new(),
            epoch_seen: SHRINK_EPOCH.load(Ordering::Acquire),
            id,
        }
    }

    /// A task of this worker just parked (it is suspended). On every park
    /// of every green thread: the common case (not deep, not due for a
    /// probe) is a few loads and compares, inlined into the worker's switch
    /// path; shrinking and queueing are out of line.
    #[inline]
    pub(crate) fn parked(&mut self, task: &Arc<T>) {
        let ts = task.task_stack();
        let parks = ts.parks.get().saturating_add(1);
        ts.parks.set(parks);
        if !ts.live() {
            return;
        }
        if ts.known_deep() {
            ts.shrink(true);
            return;
        }
        // Probe at the 1st, 2nd, 4th, 8th... park since the last shrink: a
        // task that parks often costs a probe only now and then.
        if parks.is_power_of_two() && !ts.queued.get() {
            self.enqueue(task);
        }
    }

    /// Queues a parked task for a probe (see [`parked`](Self::parked)).
    #[cold]
    #[inline(never)]
    fn enqueue(&mut self, task: &Arc<T>) {
        task.task_stack().queued.set(true);
        self.pending.push(task.clone());
        if self.pending.len() >= PENDING_MAX {
            self.drain();
        }
    }

    /// Probes every queued task that is still suspended and shrinks those
    /// that went deep. Called from the worker loop (no task runs). The
    /// probes are sorted by address, so the tasks whose stacks share a
    /// chunk are asked about with one `mincore` call.
    pub(crate) fn drain(&mut self) {
        let mut probes: Vec<(usize, usize)> = Vec::with_capacity(self.pending.len());
        for (i, task) in self.pending.iter().enumerate() {
            let ts = task.task_stack();
            ts.queued.set(false);
            if !ts.live() {
                continue;
            }
            if let Some(page) = ts.probe_page() {
                probes.push((page, i));
            }
        }
        probes.sort_unstable();
        let pages: Vec<usize> = probes.iter().map(|&(page, _)| page).collect();
        let resident = super::pages_resident(&pages, false);
        for (&(_, i), deep) in probes.iter().zip(resident) {
            if deep {
                self.pending[i].task_stack().shrink(true);
            }
        }
        self.pending.clear();
    }

    /// Whether [`shrink_stacks`] was called since this worker last acted.
    #[inline]
    pub(crate) fn requested(&self) -> bool {
        SHRINK_EPOCH.load(Ordering::Relaxed) != self.epoch_seen
    }

    /// Acts on a [`shrink_stacks`] request: shrinks every suspended task of
    /// this worker that ran since its last shrink. Called from the worker
    /// loop (no task runs) with the worker's started green threads.
    pub(crate) fn shrink_all<'a>(&mut self, tasks: impl IntoIterator<Item = &'a Arc<T>>)
    where
        T: 'a,
    {
        self.epoch_seen = SHRINK_EPOCH.load(Ordering::Acquire);
        let mut shrunk = 0usize;
        for task in tasks {
            let ts = task.task_stack();
            if ts.live() && ts.ran.get() {
                ts.shrink(false);
                shrunk += 1;
            }
        }
        tracing::debug!(shrunk, "shrank stacks on request");
    }
}

impl<T: StackOwner> Drop for ShrinkQueue<T> {
    fn drop(&mut self) {
        WORKERS.lock().retain(|(id, _)| *id != self.id);
    }
}
