//! Segments: [`maybe_grow`] and [`remaining`], which know the bounds of the
//! stack or segment the caller runs on.
//!
//! # Bounds and links
//!
//! Every green thread has a [`StackBounds`] (in its `TaskStack`); every OS
//! thread has one in a thread-local. `limit`/`base` describe the stack or
//! segment code runs on now. Switching to a segment pushes a [`Link`] that
//! lives in the switching frame (on the old stack) and records the old
//! bounds and the stack pointer at the switch; returning (or unwinding)
//! pops it. The chain is what the shrinker walks to release pages of the
//! stacks a suspended task left behind.
//!
//! # The segment cache
//!
//! A segment that is no longer used goes into its owner's one-slot cache
//! (replacing, and pooling, any older one); the next split of that owner
//! takes it back without a lock or a system call. This is what keeps a
//! split inside a tight loop cheap (Go's "hot split" problem).

use std::cell::{Cell, RefCell};

use super::pool;
use super::{approx_sp, os, round_up_to_page, Stack, MIN_STACK_SIZE};

/// Largest segment `maybe_grow` maps.
const MAX_SEGMENT_SIZE: usize = 1 << 30;

/// Where code runs now: the usable bounds of the current stack or segment,
/// and the chain of stacks it left to get there.
pub(crate) struct StackBounds {
    /// Lowest usable address of the current stack or segment (just above
    /// its guard page); 0 while unknown.
    pub(crate) limit: Cell<usize>,
    /// Highest address of the current stack or segment.
    pub(crate) base: Cell<usize>,
    /// Innermost link (null on the first stack).
    pub(crate) chain: Cell<*const Link>,
}

impl StackBounds {
    pub(crate) const fn new() -> StackBounds {
        StackBounds {
            limit: Cell::new(0),
            base: Cell::new(0),
            chain: Cell::new(std::ptr::null()),
        }
    }
}

/// The stack left behind by a switch to a segment. Lives in the frame of
/// the `maybe_grow` call that switched, until it returns or unwinds.
pub(crate) struct Link {
    /// The link before this one (null if the left stack was the first).
    pub(crate) prev: *const Link,
    /// Bounds of the left stack.
    pub(crate) limit: usize,
    pub(crate) base: usize,
    /// Lowest address on the left stack that may hold live data while
    /// code runs on the segment: below the switching frames, which hold the
    /// closure and the result slot (see `grow`). The shrinker releases
    /// only below it.
    pub(crate) live_floor: usize,
}

thread_local! {
    /// Bounds of the current OS thread's stack or segment, when not in a
    /// green thread. No destructor: the overflow handler reads it.
    pub(crate) static THREAD_BOUNDS: StackBounds = const { StackBounds::new() };
    /// The OS thread's cached segment.
    static THREAD_CACHE: ThreadCache = const { ThreadCache(RefCell::new(None)) };
}

/// An OS thread's cached segment; pooled when the thread exits.
struct ThreadCache(RefCell<Option<Stack>>);

impl Drop for ThreadCache {
    fn drop(&mut self) {
        if let Some(segment) = self.0.get_mut().take() {
            pool::give_segment(segment);
        }
    }
}

/// Who is asking: a green thread (its stack bookkeeping) or the OS thread.
enum Owner<'a> {
    Green(&'a super::TaskStack),
    Thread,
}

/// Runs `f` with the current owner. For a green thread the reference is to
/// its task, which the worker keeps alive while the task runs.
#[inline]
fn with_owner<R>(f: impl FnOnce(Owner<'_>) -> R) -> R {
    super::with_running(|ts| match ts {
        Some(ts) => f(Owner::Green(ts)),
        None => f(Owner::Thread),
    })
}

/// The OS thread's bounds, filled from `pthread_getattr_np` on first use.
fn thread_limit(bounds: &StackBounds) -> Option<usize> {
    if bounds.limit.get() == 0 {
        let (limit, base) = os::thread_stack_bounds()?;
        bounds.limit.set(limit);
        bounds.base.set(base);
    }
    Some(bounds.limit.get())
}

/// Bytes left on the current stack: below the stack pointer, above the
/// guard page of the green thread's stack or segment it runs on.
///
/// Outside a green thread (on a plain OS thread, or in an async task, which
/// runs on its worker's OS stack) it measures the OS thread's stack, as
/// `stacker` does. `None` only when the OS does not report the thread's
/// stack.
///
/// ```
/// fibra::run(|| {
///     let left = fibra::stack::remaining().unwrap();
///     assert!(left > 0 && left < 256 * 1024);
/// });
/// assert!(fibra::stack::remaining().is_some());
/// ```
#[inline]
pub fn remaining() -> Option<usize> {
    let sp = approx_sp();
    with_owner(|owner| match owner {
        Owner::Green(ts) => {
            ts.observe(sp);
            Some(sp.saturating_sub(ts.bounds.limit.get()))
        }
        Owner::Thread => THREAD_BOUNDS.with(|b| thread_limit(b).map(|l| sp.saturating_sub(l))),
    })
}

/// Runs `f`, on a new stack segment of `segment_size` bytes if fewer than
/// `red_zone` bytes are left on the current one: deep recursion through
/// `maybe_grow` is bounded by memory, not by the task's stack size.
///
/// Works in green threads (it knows their stack and segment bounds, which
/// `stacker` does not) and on plain OS threads (where it measures the OS
/// thread's stack, like `stacker`). A segment is a guarded stack like a
/// green thread's (`segment_size` is rounded up to whole pages, at least
/// 16 KiB, at most 1 GiB); the last one freed is cached by the task (or
/// the OS thread), so splitting in a loop costs a stack switch, not a
/// system call. `f` may block, park and panic as usual; a panic propagates
/// to the caller.
///
/// # Panics
///
/// If a segment is needed and cannot be mapped (the message names the
/// cause, usually the kernel's mapping limit, and the fix). If the OS does
/// not report an OS thread's stack bounds, `f` runs in place.
///
/// ```
/// fn depth(n: u64) -> u64 {
///     if n == 0 {
///         return 0;
///     }
///     fibra::stack::maybe_grow(32 * 1024, 1024 * 1024, || depth(n - 1) + 1)
/// }
/// let d = fibra::run(|| depth(100_000));
/// assert_eq!(d, 100_000);
/// ```
#[inline]
pub fn maybe_grow<R, F: FnOnce() -> R>(red_zone: usize, segment_size: usize, f: F) -> R {
    let sp = approx_sp();
    with_owner(|owner| match owner {
        Owner::Green(ts) => {
            ts.observe(sp);
            if sp.saturating_sub(ts.bounds.limit.get()) >= red_zone {
                return f();
            }
            grow(&ts.bounds, &SegmentCache::Task(&ts.cached), segment_size, f)
        }
        Owner::Thread => THREAD_BOUNDS.with(|b| match thread_limit(b) {
            Some(limit) if sp.saturating_sub(limit) < red_zone => {
                grow(b, &SegmentCache::Thread, segment_size, f)
            }
            _ => f(),
        }),
    })
}

/// Where a freed segment is cached.
enum SegmentCache<'a> {
    /// The green thread's slot.
    Task(&'a Cell<Option<Stack>>),
    /// The OS thread's slot.
    Thread,
}

impl SegmentCache<'_> {
    /// Takes the cached segment if it has `size` usable bytes; pools any
    /// other.
    #[inline]
    fn take(&self, size: usize) -> Option<Stack> {
        let cached = match self {
            SegmentCache::Task(slot) => slot.take(),
            SegmentCache::Thread => THREAD_CACHE.with(|c| c.0.borrow_mut().take()),
        }?;
        if cached.size() == size {
            Some(cached)
        } else {
            pool::give_segment(cached);
            None
        }
    }

    /// Caches a freed segment, pooling the one it replaces.
    #[inline]
    fn put(&self, segment: Stack) {
        let old = match self {
            SegmentCache::Task(slot) => slot.replace(Some(segment)),
            SegmentCache::Thread => {
                // During thread exit the cache may be gone: pool it then.
                let mut segment = Some(segment);
                match THREAD_CACHE.try_with(|c| c.0.borrow_mut().replace(segment.take().unwrap())) {
                    Ok(old) => old,
                    Err(_) => segment,
                }
            }
        };
        if let Some(old) = old {
            pool::give_segment(old);
        }
    }
}

/// Runs `f` on a segment, then restores the bounds and caches the segment
/// (also when `f` unwinds).
#[inline(never)]
fn grow<R, F: FnOnce() -> R>(
    bounds: &StackBounds,
    cache: &SegmentCache<'_>,
    segment_size: usize,
    f: F,
) -> R {
    let size = round_up_to_page(segment_size.clamp(MIN_STACK_SIZE, MAX_SEGMENT_SIZE));
    // The hot path (a cached segment) touches no shared counter: a cached
    // segment counts as in use (see `StackStats::segments`).
    let segment = match cache.take(size) {
        Some(segment) => segment,
        None => pool::take_segment(size).unwrap_or_else(|err| panic!("{err}")),
    };
    // Below this frame, `corosensei::on_stack` keeps the closure and the
    // result slot (a copy or two of each in unoptimised builds) and the
    // switch saves registers: all live while `f` runs on the segment.
    let switch_frames = super::shrink::SAFETY_MARGIN
        + 4 * (std::mem::size_of::<F>() + std::mem::size_of::<R>() + 64);
    let link = Link {
        prev: bounds.chain.get(),
        limit: bounds.limit.get(),
        base: bounds.base.get(),
        live_floor: approx_sp().saturating_sub(switch_frames),
    };
    let mut on_segment = OnSegment {
        bounds,
        cache,
        link: &link,
        segment: Some(segment),
    };
    let segment = on_segment
        .segment
        .as_mut()
        .expect("segment present until drop");
    bounds.limit.set(segment.usable_bottom());
    bounds.base.set(segment.top());
    bounds.chain.set(&link);
    corosensei::on_stack(segment, f)
}

/// Restores the bounds of the stack left behind and caches the segment
/// when `grow` returns or unwinds (it runs on the old stack, after the
/// segment holds no frames any more).
struct OnSegment<'a> {
    bounds: &'a StackBounds,
    cache: &'a SegmentCache<'a>,
    link: &'a Link,
    segment: Option<Stack>,
}

impl Drop for OnSegment<'_> {
    fn drop(&mut self) {
        self.bounds.limit.set(self.link.limit);
        self.bounds.base.set(self.link.base);
        self.bounds.chain.set(self.link.prev);
        if let Some(segment) = self.segment.take() {
            self.cache.put(segment);
        }
    }
}
