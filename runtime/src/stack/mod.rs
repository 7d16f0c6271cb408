//! Green-thread stacks: guarded virtual reservations that grow (the kernel
//! commits pages on first touch, and [`maybe_grow`] adds segments), shrink
//! (pages below a parked task's stack pointer are released) and are freed
//! wholesale (a finished task's stack goes back to a pool in O(1)).
//!
//! # Layout
//!
//! ```text
//!   high addresses   +------------------+  <- base()  (stack grows down from here)
//!                    |  usable bytes    |  read-write, committed by the kernel
//!                    |  (size)          |  page by page on first touch
//!                    +------------------+
//!                    |  guard page      |  faults when touched: a stack overflow,
//!   low addresses    +------------------+  <- limit()  reported by `overflow`
//! ```
//!
//! A stack costs about one page of resident memory until its task goes
//! deeper. Stacks are carved from *chunks*: one mapping of up to 256
//! stacks laid out back to back, each above its own guard page, mapped
//! with a handful of system calls and unmapped with one (see `pool`). With
//! guard regions a chunk is one kernel mapping; with `PROT_NONE` guard
//! pages each stack in it is two (see `os`, and `budget` for the
//! `vm.max_map_count` limit).
//!
//! # States of a green thread's stack, and who may touch its pages
//!
//! ```text
//!   pooled ──take──► running ◄──resume── suspended ──exit──► pooled
//!                       └──────suspend──────►┘
//! ```
//!
//! - *pooled* (see `pool`): holds no frames; its pool's owner may release
//!   any page.
//! - *running*: only the task's own code touches it.
//! - *suspended* (parked or yielded): the task recorded an approximate
//!   stack pointer (`TaskStack::record_suspend`, the address of a local
//!   just before the switch). Frames live at and above it; the switch code
//!   saves a few registers just below it. The owner worker - the only
//!   thread that ever resumes the task, and it is not running it - may
//!   release pages below `sp - SAFETY_MARGIN - keep` (see `shrink`).
//!
//! Invariant: pages are released only below the recorded stack pointer of
//! a suspended task, by its owner worker, or in a stack that holds no
//! frames; so no live frame is ever zeroed.
//!
//! # Segments
//!
//! [`maybe_grow`] runs a closure on a segment (another guarded stack) when
//! the current stack or segment has less than a red zone left; the task's
//! bounds then describe the segment, and a link in the switching frame
//! remembers the stack it left (`segment`). Each task caches its last freed
//! segment, so a split inside a tight loop costs a stack switch, not a
//! system call.
//!
//! # Environment
//!
//! - `FIBRA_STACK_GUARD=pages`: use `PROT_NONE` guard pages (two mappings
//!   per stack) even where the kernel offers guard regions.
//! - `FIBRA_MAX_MAP_COUNT=N`: budget stacks as if `vm.max_map_count` were N
//!   (for processes that need mappings for other things, and for tests).

mod budget;
mod os;
pub(crate) mod overflow;
mod pool;
mod segment;
pub(crate) mod shrink;

pub(crate) use pool::LocalPool;
pub use pool::{stats, StackStats};
pub use segment::{maybe_grow, remaining};
pub(crate) use shrink::{ShrinkQueue, StackOwner, TaskStack};

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use corosensei::stack::valgrind::ValgrindStackRegistration;
use corosensei::stack::StackPointer;
use parking_lot::Mutex;

/// Smallest usable stack a task may ask for.
pub const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest usable stack a task may ask for.
pub const MAX_STACK_SIZE: usize = 8 * 1024 * 1024;
pub use crate::config::DEFAULT_STACK_SIZE;

/// Clamps a requested stack size into `[MIN_STACK_SIZE, MAX_STACK_SIZE]` and
/// rounds it up to whole pages.
pub(crate) fn normalize_size(size: usize) -> usize {
    round_up_to_page(size.clamp(MIN_STACK_SIZE, MAX_STACK_SIZE))
}

#[inline]
fn round_up_to_page(size: usize) -> usize {
    let page = os::page_size();
    (size + page - 1) & !(page - 1)
}

#[inline]
fn round_down_to_page(addr: usize) -> usize {
    addr & !(os::page_size() - 1)
}

/// Every mapped chunk of stacks, `bottom -> len`, so that [`stats`] can
/// count their resident pages and the shrinker can group its probes. A
/// chunk is inserted after it is mapped and removed before it is unmapped,
/// so every entry is mapped while the lock is held.
static MAPPINGS: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

/// Above this many chunks (of up to 256 stacks each), [`committed_bytes`]
/// samples.
const COMMITTED_SAMPLE: usize = 128;

/// Resident bytes of all mapped stacks: `mincore` over merged ranges of
/// adjacent chunks when there are at most [`COMMITTED_SAMPLE`] of them;
/// beyond that, over every k-th run of 4 chunks in address order (k chosen
/// so that about `COMMITTED_SAMPLE` are examined), scaled by reserved
/// bytes.
fn committed_bytes() -> usize {
    const RUN: usize = 4;
    let maps = MAPPINGS.lock();
    let stride = maps.len().div_ceil(COMMITTED_SAMPLE).max(1);
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let (mut sampled, mut total) = (0usize, 0usize);
    for (i, (&bottom, &len)) in maps.iter().enumerate() {
        total += len;
        // `is_multiple_of` needs Rust 1.87; the workspace supports 1.80.
        #[allow(clippy::manual_is_multiple_of)]
        let skip = (i / RUN) % stride != 0;
        if skip {
            continue;
        }
        sampled += len;
        match ranges.last_mut() {
            Some(last) if last.1 == bottom => last.1 += len,
            _ => ranges.push((bottom, bottom + len)),
        }
    }
    let mut buf = Vec::new();
    // SAFETY: every range is made of registered stacks, which stay mapped
    // while `maps` is locked (see MAPPINGS).
    let pages = unsafe { os::resident_pages(&ranges, &mut buf) };
    let resident = pages * os::page_size();
    if sampled == total || sampled == 0 {
        resident
    } else {
        (resident as u128 * total as u128 / sampled as u128) as usize
    }
}

/// One reservation carved into stacks of one size: mapped (with every
/// stack's guard) in one batch of system calls, and unmapped in one call
/// once its last [`Stack`] is dropped. The pools decide when that is: they
/// drop a reservation's stacks together, once all of them came back.
pub(crate) struct Chunk {
    /// Lowest address of the mapping.
    bottom: usize,
    /// Length of the mapping.
    len: usize,
    /// Set when the pools drop all of its stacks at once: the last drop
    /// unmaps everything, so no stack releases its pages on its own.
    dying: AtomicBool,
}

impl Chunk {
    /// Maps `count` stacks with `size` usable bytes each (already
    /// normalized), each above its own guard page.
    pub(crate) fn map(size: usize, count: usize) -> io::Result<Vec<Stack>> {
        let page = os::page_size();
        let stride = size + page;
        let bottom = os::map_stacks(stride, count, page)?;
        let len = stride * count;
        MAPPINGS.lock().insert(bottom, len);
        pool::STATS.mapped_chunk(len, count);
        let chunk = Arc::new(Chunk {
            bottom,
            len,
            dying: AtomicBool::new(false),
        });
        // Highest first, so that a pool popping from the end hands out the
        // lowest stack first (any order would do).
        Ok((0..count)
            .rev()
            .map(|i| {
                let start = bottom + i * stride;
                let valgrind =
                    ManuallyDrop::new(ValgrindStackRegistration::new(start as *mut u8, stride));
                Stack {
                    bottom: start,
                    len: stride,
                    chunk: chunk.clone(),
                    fresh: true,
                    valgrind,
                }
            })
            .collect())
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        MAPPINGS.lock().remove(&self.bottom);
        os::unmap(self.bottom, self.len);
        pool::STATS.unmapped_chunk(self.len);
    }
}

/// A guarded, lazily committed stack for one green thread (or one
/// `maybe_grow` segment), carved from a [`Chunk`].
///
/// Dropping the last stack of a chunk unmaps the chunk; dropping another
/// one gives its pages back to the kernel (its address range stays
/// reserved until the chunk goes).
pub(crate) struct Stack {
    /// Lowest address of the stack (the guard page starts here).
    bottom: usize,
    /// Length of the stack, guard page included.
    len: usize,
    /// The reservation the stack was carved from.
    chunk: Arc<Chunk>,
    /// Never handed out and not pre-faulted: its top page is not committed.
    fresh: bool,
    /// Tells Valgrind that this range is a stack, so that switching to it
    /// is not mistaken for a huge stack-pointer jump (and memory checking
    /// stays meaningful under `scripts/memcheck.sh`). A few no-op
    /// instructions when not running under Valgrind. Deregistered in
    /// `drop`, before the memory is unmapped.
    valgrind: ManuallyDrop<ValgrindStackRegistration>,
}

// SAFETY: a `Stack` is an exclusively owned part of a memory mapping that
// stays mapped while the stack lives (it holds the chunk); nothing about it
// is tied to the thread that created it.
unsafe impl Send for Stack {}

impl Stack {
    /// Usable bytes (the guard page excluded).
    #[inline]
    pub(crate) fn size(&self) -> usize {
        self.len - os::page_size()
    }

    /// Lowest usable address (just above the guard page).
    #[inline]
    pub(crate) fn usable_bottom(&self) -> usize {
        self.bottom + os::page_size()
    }

    /// Highest address (exclusive): the initial stack pointer.
    #[inline]
    pub(crate) fn top(&self) -> usize {
        self.bottom + self.len
    }

    /// The reservation this stack belongs to (identity only).
    #[inline]
    fn chunk_id(&self) -> *const Chunk {
        Arc::as_ptr(&self.chunk)
    }

    /// Releases all but the top `keep` bytes. Only for a stack that holds no
    /// frames. Returns the bytes released.
    pub(crate) fn trim_to(&self, keep: usize) -> usize {
        let (start, end) = self.trim_range(keep);
        if end <= start {
            return 0;
        }
        // SAFETY: the range is inside this stack's usable part, and the
        // caller owns the stack while it holds no frames.
        unsafe { os::release(start, end - start) };
        end - start
    }

    /// The part of the usable range below the top `keep` bytes.
    fn trim_range(&self, keep: usize) -> (usize, usize) {
        let end = round_down_to_page(self.top().saturating_sub(keep));
        (self.usable_bottom(), end)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here; the field is not used again.
        unsafe { ManuallyDrop::drop(&mut self.valgrind) };
        pool::STATS.unmapped_one();
        // Alone, a stack gives its pages back; its chunk (dropped with the
        // last of its stacks, right after this) unmaps everything at once.
        if Arc::strong_count(&self.chunk) > 1 && !self.chunk.dying.load(Ordering::Relaxed) {
            self.trim_to(0);
        }
    }
}

/// Commits the top page of every fresh stack among `stacks` (which hold no
/// frames) with one system call, so that the tasks that start on them take
/// no page fault there. Marks them no longer fresh.
pub(crate) fn prefault<'a>(stacks: impl IntoIterator<Item = &'a mut Stack>) {
    let page = os::page_size();
    let mut tops = Vec::new();
    for s in stacks {
        if s.fresh {
            s.fresh = false;
            tops.push(s.top() - page);
        }
    }
    // SAFETY: each page is the top page of a stack the caller holds, which
    // holds no frames.
    unsafe { os::populate(&tops) };
}

/// Releases all but the top `keep` bytes of each of `stacks` (which hold
/// no frames), asking the kernel only about the stacks that may have pages
/// there: the page just below each kept top tells (the pages a stack
/// commits are contiguous below its top, see `shrink`), and neighbouring
/// stacks are asked about together (see [`pages_resident`]); only stacks
/// with that page resident get a `madvise`. Returns the bytes released.
pub(crate) fn trim_batch<'a>(stacks: impl IntoIterator<Item = &'a Stack>, keep: usize) -> usize {
    let page = os::page_size();
    let mut probes: Vec<(usize, &Stack)> = stacks
        .into_iter()
        .filter_map(|s| {
            let (start, end) = s.trim_range(keep);
            (end > start).then(|| (end - page, s))
        })
        .collect();
    if probes.is_empty() {
        return 0;
    }
    probes.sort_unstable_by_key(|&(addr, _)| addr);
    let addrs: Vec<usize> = probes.iter().map(|&(addr, _)| addr).collect();
    // If the kernel cannot tell, release anyway.
    let dirty = pages_resident(&addrs, true);
    probes
        .iter()
        .zip(dirty)
        .filter(|&(_, dirty)| dirty)
        .map(|(&(_, s), _)| s.trim_to(keep))
        .sum()
}

/// Most pages one `mincore` call looks at (its result buffer is one byte
/// per page).
const PROBE_PAGES: usize = 16 * 1024;
/// Addresses further apart than this many pages are asked about in
/// separate calls: walking the page tables in between would cost more
/// than the call.
const PROBE_GAP_PAGES: usize = 128;

/// Whether each page at the page-aligned addresses `addrs` (sorted
/// ascending) is resident (`unknown` where the kernel cannot tell): close
/// neighbours in one chunk, or in chunks that lie back to back, are asked
/// about with one `mincore` call. Every address must lie in a stack that
/// stays mapped during the call (a suspended task's, asked by its owner,
/// or a pooled one its pool holds).
pub(crate) fn pages_resident(addrs: &[usize], unknown: bool) -> Vec<bool> {
    let page = os::page_size();
    let mut out = vec![unknown; addrs.len()];
    // Group by runs of registered chunks.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    {
        let maps = MAPPINGS.lock();
        let mut i = 0;
        while i < addrs.len() {
            let first = addrs[i];
            let mut end = match maps.range(..=first).next_back() {
                Some((&bottom, &len)) if first < bottom + len => bottom + len,
                _ => first + page,
            };
            // Chunks that lie back to back are one range for `mincore`.
            while let Some(&len) = maps.get(&end) {
                if end - first >= PROBE_PAGES * page {
                    break;
                }
                end += len;
            }
            let mut j = i + 1;
            while j < addrs.len()
                && addrs[j] < end
                && (addrs[j] - first) / page < PROBE_PAGES
                && (addrs[j] - addrs[j - 1]) / page <= PROBE_GAP_PAGES
            {
                j += 1;
            }
            groups.push((i, j));
            i = j;
        }
    }
    let mut buf = Vec::new();
    for (i, j) in groups {
        let (lo, hi) = (addrs[i], addrs[j - 1] + page);
        // SAFETY: `[lo, hi)` lies in chunks that lie back to back, and the
        // stacks at both ends are held by the caller; a chunk in between
        // could be unmapped meanwhile only if all its stacks came back to
        // the pools (then `mincore` fails and the answer is `unknown`).
        // `mincore` only reads page tables: a wrong range is an error
        // code, never memory corruption.
        if unsafe { os::residency(lo, hi, &mut buf) } {
            for k in i..j {
                out[k] = buf[(addrs[k] - lo) / page] & 1 != 0;
            }
        }
    }
    out
}

// SAFETY: `base()` is the top of a mapping whose usable part is readable and
// writable, `limit()` is its bottom including a guard page that faults on
// access, both are page-aligned (so aligned to STACK_ALIGNMENT), and the
// usable part is at least MIN_STACK_SIZE (16 KiB) > corosensei's 4 KiB
// minimum. The mapping lives as long as the `Stack`.
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

/// Refuses a new green thread when starting it could exceed the kernel's
/// mapping limit, with an error that says how to raise it.
pub(crate) fn check_mapping_budget() -> io::Result<()> {
    budget::check_spawn()
}

thread_local! {
    /// The stack bookkeeping of the green thread running on this thread;
    /// null on an OS thread's own stack (which is where async tasks run).
    /// Set by the worker around each resume; read by `maybe_grow` and by
    /// the overflow handler (a const `Cell`: no destructor, no lazy
    /// initialisation, so a signal handler may read it).
    static RUNNING: Cell<*const TaskStack> = const { Cell::new(std::ptr::null()) };
}

/// Marks `stack` as the bookkeeping of the green thread about to run on
/// this thread (null: none); returns the previous value to restore.
#[inline]
pub(crate) fn set_running(stack: *const TaskStack) -> *const TaskStack {
    RUNNING.with(|c| c.replace(stack))
}

/// Runs `f` with the running green thread's stack bookkeeping, if any.
#[inline]
pub(crate) fn with_running<R>(f: impl FnOnce(Option<&TaskStack>) -> R) -> R {
    let ptr = RUNNING.with(|c| c.get());
    // SAFETY: the pointer is set by the worker to the `TaskStack` of the
    // task it resumes, which it keeps alive (it holds an `Arc` to the task)
    // until it restores the previous value after the resume returns; all
    // code of that green thread runs inside the resume.
    f(unsafe { ptr.as_ref() })
}

/// A worker's stacks: its pool, its shrink queue, and the alternate
/// signal stack that lets the overflow handler run on its thread. Created
/// on the worker's thread.
pub(crate) struct StackPool<T: StackOwner> {
    /// Stacks for green threads that start on this worker.
    pool: LocalPool,
    /// Parked tasks to probe, and shrink requests.
    shrink: ShrinkQueue<T>,
    /// The alternate signal stack fibra installed, if the thread had none.
    _alt_stack: Option<overflow::AltStack>,
}

impl<T: StackOwner> StackPool<T> {
    /// Sets up the calling worker thread; `wake` unparks the worker (used
    /// when [`shrink_stacks`] is called while it sleeps).
    pub(crate) fn new(size: usize, wake: impl Fn() + Send + Sync + 'static) -> StackPool<T> {
        overflow::install_handler();
        StackPool {
            pool: LocalPool::new(size),
            shrink: ShrinkQueue::new(wake),
            _alt_stack: overflow::AltStack::ensure(),
        }
    }

    /// Takes a stack for a green thread that starts now and records it as
    /// the task's stack. `size` 0 means the runtime's default.
    pub(crate) fn take(&mut self, size: usize) -> io::Result<Stack> {
        self.pool.take(size)
    }

    /// Returns a finished task's stack (and its cached segment).
    pub(crate) fn give(&mut self, task: &TaskStack, stack: Stack) {
        task.finish();
        self.pool.give(stack);
    }

    /// A task of this worker parked (it is suspended now).
    pub(crate) fn parked(&mut self, task: &std::sync::Arc<T>) {
        self.shrink.parked(task);
    }

    /// Whether [`shrink_stacks`] asked this worker to act.
    #[inline]
    pub(crate) fn shrink_requested(&self) -> bool {
        self.shrink.requested()
    }

    /// Shrinks the suspended tasks among `tasks` that ran since their last
    /// shrink (the worker's started green threads; no task runs now).
    pub(crate) fn shrink_all<'a>(&mut self, tasks: impl IntoIterator<Item = &'a std::sync::Arc<T>>)
    where
        T: 'a,
    {
        self.shrink.shrink_all(tasks);
    }

    /// The worker is about to sleep: trims returned stacks and probes the
    /// parked tasks queued for it. Returns when it should wake up to give
    /// unused stacks back, if that is pending (see `pool`).
    pub(crate) fn idle(&mut self) -> Option<std::time::Instant> {
        let again = self.pool.trim();
        self.shrink.drain();
        again
    }
}

/// The current stack pointer, read from the register where the platform
/// allows (x86_64, aarch64); elsewhere the address of a local in the
/// caller's frame (the stack pointer give or take that frame's size).
///
/// The register matters under AddressSanitizer: it may place locals whose
/// address is taken on a heap-allocated "fake stack", and a stack pointer
/// taken from such a local made `shrink` release pages holding live frames.
#[inline(always)]
pub(crate) fn approx_sp() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let sp: usize;
        // SAFETY: reads a register; touches no memory.
        unsafe {
            std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(target_arch = "aarch64")]
    {
        let sp: usize;
        // SAFETY: reads a register; touches no memory.
        unsafe {
            std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let marker = 0u8;
        std::hint::black_box(&marker) as *const u8 as usize
    }
}
