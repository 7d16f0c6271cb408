//! Mutator regions: how every thread agrees on the collector's phase
//! without being stopped; and each thread's view of the heap
//! (`ThreadHeap`: its region state and its allocation cache, `cache`).
//! "Mutator" here means any thread that touches the heap (a worker, a
//! green thread's carrier, a plain OS thread), not the runtime's
//! safepoint bookkeeping of its workers.
//!
//! # States
//!
//! The phase word (`Regions::epoch`) holds `gen << 1 | marking`. Each thread that touches the heap
//! has a `Record` whose `seq` is odd while the thread is inside a *region*
//! (a barrier, an allocation, an unroot) and even outside. On entering the
//! outermost region a thread makes `seq` odd, then (after a compiler fence,
//! or a full fence while `membarrier` is not registered) reads the phase word once; all
//! work in the region acts on that value. A region is a `Region` guard:
//! dropping it, also while unwinding from a panic in the region's work,
//! leaves the region, so no thread stays "inside" after a failure.
//!
//! # Transition (the collector)
//!
//! `set_epoch(new)`: store the phase word, then `grace_period()`: a process-wide memory
//! barrier (`membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`), then for every
//! record whose `seq` is odd, wait until it changes.
//!
//! # The process-wide barrier, and who sets it up
//!
//! Registering for `membarrier` costs milliseconds once the process has
//! several threads (the kernel waits for an RCU grace period), so no
//! allocation ever registers: regions start out fencing on entry
//! (`fence_in_regions`), and the collector thread registers as it starts
//! (`prepare_process_barrier`), which a runtime's start or the first
//! allocation outside a runtime arranges. Only then does it clear
//! `fence_in_regions`. The collector thread is the only thread that runs
//! grace periods, so no grace period is in progress while the flag
//! changes, and every grace period after the change issues the
//! `membarrier` that covers regions which entered without a fence.
//!
//! # Invariant
//!
//! After `grace_period()` returns, every region that read the old phase word
//! has ended, and every region that begins later reads the new one. Proof
//! sketch: the barrier orders each thread's `seq` store before its phase
//! word load (the asymmetric Dekker pattern: a thread either made `seq` odd
//! before the barrier, and the collector sees it odd and waits, or it reads
//! the phase word after the barrier and sees the new value). Regions never block,
//! never poll a safepoint and never wait for the collector, so the wait is
//! as short as the longest region.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, ReentrantMutex};

pub(crate) mod cache;

use crate::epoch::Epoch;
use cache::Cache;

/// The handshake between the threads that touch the heap and the
/// collector: the phase word and the threads' region records. Also the
/// `ThreadHeap` that threads whose own is gone (code running in
/// thread-local destructors) share under a lock.
struct Regions {
    /// The phase word, `gen << 1 | marking` (see `Epoch`).
    epoch: AtomicU64,
    /// Threads that may be inside a region.
    records: Mutex<Vec<Arc<Record>>>,
    /// Whether region entry needs a full fence (no `membarrier`).
    fence_in_regions: AtomicBool,
    /// Whether `membarrier` registration was attempted (and succeeded).
    membarrier: OnceLock<bool>,
    /// The `ThreadHeap` of threads whose own is gone (in TLS destructors).
    orphan: OnceLock<ReentrantMutex<ThreadHeap>>,
}

static REGIONS: Regions = Regions {
    epoch: AtomicU64::new(Epoch::new(1, false).raw()),
    records: Mutex::new(Vec::new()),
    fence_in_regions: AtomicBool::new(true),
    membarrier: OnceLock::new(),
    orphan: OnceLock::new(),
};

/// The current epoch (outside a region: only a hint).
#[inline]
pub(crate) fn epoch() -> Epoch {
    Epoch::from_raw(REGIONS.epoch.load(Ordering::Acquire))
}

/// A thread's region counter, shared with the collector.
struct Record {
    seq: AtomicU64,
}

/// A thread's view of the heap: its region state, shared with the
/// collector through its `Record`, and its allocation cache.
pub(crate) struct ThreadHeap {
    /// Nesting depth of regions.
    depth: Cell<u32>,
    /// Set by the preemption check when it refused to stop this thread
    /// inside a region: the region stops at a safepoint as it ends.
    preempt_pending: AtomicBool,
    /// The epoch read on entering the outermost region.
    epoch: Cell<Epoch>,
    /// Allocations since the last torture collection.
    pub(crate) torture_count: Cell<u64>,
    /// The region counter the collector's grace periods read.
    record: Arc<Record>,
    /// The thread's allocation cache.
    cache: UnsafeCell<Cache>,
}

impl ThreadHeap {
    fn new() -> ThreadHeap {
        let record = Arc::new(Record {
            seq: AtomicU64::new(0),
        });
        REGIONS.records.lock().push(record.clone());
        ThreadHeap {
            depth: Cell::new(0),
            preempt_pending: AtomicBool::new(false),
            epoch: Cell::new(Epoch::from_raw(0)),
            torture_count: Cell::new(0),
            record,
            cache: UnsafeCell::new(Cache::new()),
        }
    }

    /// Enters a region, returning a guard that leaves it when dropped
    /// (also when the region's work panics: a thread that stayed "inside"
    /// would make every later grace period wait forever).
    #[inline]
    pub(crate) fn region(&self) -> Region<'_> {
        let epoch = self.enter();
        Region {
            thread: self,
            epoch,
        }
    }

    /// Enters a region; returns the epoch the region acts on.
    #[inline]
    fn enter(&self) -> Epoch {
        let depth = self.depth.get();
        self.depth.set(depth + 1);
        if depth == 0 {
            let seq = self.record.seq.load(Ordering::Relaxed);
            self.record.seq.store(seq + 1, Ordering::Relaxed);
            if REGIONS.fence_in_regions.load(Ordering::Relaxed) {
                fence(Ordering::SeqCst);
            } else {
                compiler_fence(Ordering::SeqCst);
            }
            self.epoch
                .set(Epoch::from_raw(REGIONS.epoch.load(Ordering::Relaxed)));
        }
        self.epoch.get()
    }

    /// Leaves a region.
    #[inline]
    fn exit(&self) {
        let depth = self.depth.get() - 1;
        // The region's work stays before the depth store, as the
        // preemption check (`may_preempt`) sees it from a signal handler.
        compiler_fence(Ordering::SeqCst);
        self.depth.set(depth);
        if depth == 0 {
            let seq = self.record.seq.load(Ordering::Relaxed);
            self.record.seq.store(seq + 1, Ordering::Release);
            // A signal that found the thread inside the region set the flag
            // before the depth store above; one that comes later finds the
            // region over and stops the thread itself.
            compiler_fence(Ordering::SeqCst);
            if self.preempt_pending.load(Ordering::Relaxed) {
                self.stop_after_region();
            }
        }
    }

    /// The outermost region ended after refusing a preemption signal: stop
    /// here, at the safepoint the signal asked for (unless the thread holds
    /// a cell, see `collector::alloc_slow`; the stopper then signals again).
    #[cold]
    #[inline(never)]
    fn stop_after_region(&self) {
        self.preempt_pending.store(false, Ordering::Relaxed);
        if !holding_cell() {
            fibra_runtime::gc_seam::poll();
        }
    }

    /// The thread's cache. Only for the allocator's own short, non-reentrant
    /// sections (see `cache::refill`).
    #[inline]
    pub(crate) fn cache(&self) -> *mut Cache {
        self.cache.get()
    }
}

/// An open mutator region of the calling thread (see the module docs);
/// dropping it leaves the region.
pub(crate) struct Region<'a> {
    thread: &'a ThreadHeap,
    epoch: Epoch,
}

impl Region<'_> {
    /// The epoch the region acts on (read once, on entry).
    #[inline]
    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }
}

impl Drop for Region<'_> {
    #[inline]
    fn drop(&mut self) {
        self.thread.exit();
    }
}

impl Drop for ThreadHeap {
    fn drop(&mut self) {
        REGIONS
            .records
            .lock()
            .retain(|r| !Arc::ptr_eq(r, &self.record));
    }
}

const EXITED: usize = 1;

thread_local! {
    /// This thread's `ThreadHeap` (null: not yet made; `EXITED`: destroyed).
    static THREAD_HEAP: Cell<*const ThreadHeap> = const { Cell::new(std::ptr::null()) };
    /// Owns the `ThreadHeap` and destroys it at thread exit.
    static OWNER: Owner = const { Owner(Cell::new(None)) };
}

struct Owner(Cell<Option<Box<ThreadHeap>>>);

impl Drop for Owner {
    fn drop(&mut self) {
        THREAD_HEAP.with(|l| l.set(EXITED as *const ThreadHeap));
        drop(self.0.take());
    }
}

// SAFETY: the orphan `ThreadHeap` is only used while its reentrant mutex is
// held, i.e. by one thread at a time.
unsafe impl Send for ThreadHeap {}
// SAFETY: as above.
unsafe impl Sync for ThreadHeap {}

/// Whether the calling thread is inside a region, read from a signal
/// handler on this thread (`fibra::gc_seam::set_preemption_check`):
/// it reads only the const-initialised `THREAD_HEAP` and the `ThreadHeap`'s depth,
/// which `enter` raises before the region's work and `exit` lowers after
/// it (both behind compiler fences). Inside a region it also marks the
/// region to stop at a safepoint as it ends (`preempt_pending`, an atomic:
/// the handler and the interrupted code share it).
pub(crate) fn region_refuses_preemption() -> bool {
    let ptr = THREAD_HEAP.with(|l| l.get());
    if ptr as usize <= EXITED {
        return false;
    }
    // SAFETY: as in `with_thread_heap`: a pointer above `EXITED` is this thread's
    // live `ThreadHeap`.
    let thread = unsafe { &*ptr };
    if thread.depth.get() == 0 {
        return false;
    }
    thread.preempt_pending.store(true, Ordering::Relaxed);
    true
}

/// Runs `f` with the calling thread's `ThreadHeap`.
#[inline]
pub(crate) fn with_thread_heap<R>(f: impl FnOnce(&ThreadHeap) -> R) -> R {
    let ptr = THREAD_HEAP.with(|l| l.get());
    if ptr as usize > EXITED {
        // SAFETY: set by `with_thread_heap_slow` to a Box owned by this thread's
        // `OWNER`, which lives until the thread exits (and then resets it).
        f(unsafe { &*ptr })
    } else {
        with_thread_heap_slow(ptr, f)
    }
}

#[cold]
fn with_thread_heap_slow<R>(ptr: *const ThreadHeap, f: impl FnOnce(&ThreadHeap) -> R) -> R {
    if ptr.is_null() {
        let registered = OWNER.try_with(|owner| {
            let thread = Box::new(ThreadHeap::new());
            let p: *const ThreadHeap = &*thread;
            owner.0.set(Some(thread));
            THREAD_HEAP.with(|l| l.set(p));
            p
        });
        if let Ok(p) = registered {
            // SAFETY: just stored in `OWNER`.
            return f(unsafe { &*p });
        }
    }
    let orphan = REGIONS
        .orphan
        .get_or_init(|| ReentrantMutex::new(ThreadHeap::new()));
    let guard = orphan.lock();
    f(&guard)
}

thread_local! {
    /// `GcCell`s this thread holds locked (see `cell`): while it holds one,
    /// the thread polls no safepoint and refuses `collect()`.
    static HELD: Cell<u32> = const { Cell::new(0) };
}

/// Whether the calling thread holds a cell lock.
pub(crate) fn holding_cell() -> bool {
    HELD.with(|h| h.get() > 0)
}

/// Counts a cell lock the calling thread took (`cell_released` undoes it).
#[inline]
pub(crate) fn cell_locked() {
    HELD.with(|h| h.set(h.get() + 1));
}

/// Counts a cell lock the calling thread released.
#[inline]
pub(crate) fn cell_released() {
    HELD.with(|h| h.set(h.get() - 1));
}

const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

/// Registers for expedited membarrier once (the collector thread, as it
/// starts); on success regions stop fencing. On failure they keep fencing.
/// Slow (milliseconds) in a process with several threads: never call it
/// on an allocation path.
pub(crate) fn prepare_process_barrier() {
    REGIONS.membarrier.get_or_init(|| {
        // SAFETY: membarrier takes no pointers.
        let ok =
            unsafe { libc::syscall(libc::SYS_membarrier, CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) }
                == 0;
        if ok {
            REGIONS.fence_in_regions.store(false, Ordering::SeqCst);
        }
        ok
    });
}

/// A full memory barrier on every thread of the process (the collector
/// thread only, see "The process-wide barrier").
fn process_barrier() {
    if !REGIONS.fence_in_regions.load(Ordering::SeqCst) {
        // SAFETY: membarrier takes no pointers.
        let r = unsafe { libc::syscall(libc::SYS_membarrier, CMD_PRIVATE_EXPEDITED, 0, 0) };
        if r == 0 {
            return;
        }
        // Should not happen after registration: fall back for good. Regions
        // entered before this store may not fence; the collector's own fence
        // below and the wait still cover regions that began earlier.
        REGIONS.fence_in_regions.store(true, Ordering::SeqCst);
    }
    fence(Ordering::SeqCst);
}

/// Whether `membarrier` registration was attempted and succeeded (None:
/// not yet), and whether regions still fence on entry.
#[cfg(test)]
pub(crate) fn process_barrier_state() -> (Option<bool>, bool) {
    (
        REGIONS.membarrier.get().copied(),
        REGIONS.fence_in_regions.load(Ordering::SeqCst),
    )
}

/// Stores a new epoch (the caller is the collector, usually with the world
/// stopped). Call `grace_period` afterwards.
pub(crate) fn set_epoch(e: Epoch) {
    REGIONS.epoch.store(e.raw(), Ordering::SeqCst);
}

/// Waits until no thread is inside a region that began before this call
/// (see the module docs).
pub(crate) fn grace_period() {
    process_barrier();
    let records: Vec<Arc<Record>> = REGIONS.records.lock().clone();
    for r in &records {
        let seq = r.seq.load(Ordering::Acquire);
        if seq & 1 == 1 {
            let mut spins = 0u32;
            while r.seq.load(Ordering::Acquire) == seq {
                spins += 1;
                if spins < 128 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// A loom model of the region handshake in its portable form (full fences
/// on both sides, as when `membarrier` is unavailable): a region that read
/// the old epoch has always ended when `grace_period` returns.
///
/// `RUSTFLAGS="--cfg loom" cargo test -p fibra-gc --lib --release --target-dir target/loom -- loom`
#[cfg(all(test, loom))]
mod loom_model {
    use loom::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering::*};
    use loom::sync::Arc;

    const OFF: u64 = 2;
    const MARKING: u64 = 3;

    struct Shared {
        epoch: AtomicU64,
        seq: AtomicU64,
        grace_done: AtomicBool,
    }

    #[test]
    fn loom_grace_period_waits_for_old_regions() {
        loom::model(|| {
            let s = Arc::new(Shared {
                epoch: AtomicU64::new(OFF),
                seq: AtomicU64::new(0),
                grace_done: AtomicBool::new(false),
            });
            let m = s.clone();
            let mutator = loom::thread::spawn(move || {
                for _ in 0..2 {
                    // ThreadHeap::enter
                    let seq = m.seq.load(Relaxed);
                    m.seq.store(seq + 1, Relaxed);
                    fence(SeqCst);
                    let e = m.epoch.load(Relaxed);
                    // ... the region's work, acting on `e` ...
                    if e == OFF {
                        assert!(
                            !m.grace_done.load(Acquire),
                            "a region on the old epoch outlived the grace period"
                        );
                    }
                    // ThreadHeap::exit
                    m.seq.store(seq + 2, Release);
                }
            });
            // set_epoch + grace_period
            s.epoch.store(MARKING, SeqCst);
            fence(SeqCst);
            let seq = s.seq.load(Acquire);
            if seq & 1 == 1 {
                while s.seq.load(Acquire) == seq {
                    loom::thread::yield_now();
                }
            }
            s.grace_done.store(true, Release);
            mutator.join().unwrap();
        });
    }
}
