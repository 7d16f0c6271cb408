//! The collector: one background thread that runs cycles (see the crate
//! docs for the phases), the pacer that starts them, and `collect()`.
//!
//! After each cycle's sweep the collector returns free heap pages beyond the
//! next goal to the OS and asks the runtime to shrink parked tasks' stacks.
//!
//! # Cycle requests
//!
//! `Control` counts cycles `started` and `completed`, and the highest cycle
//! number `requested`. The collector thread runs cycles while `requested >
//! started`. `collect()` asks for the first cycle that starts after the call
//! (`started + 1`) and waits until `completed` reaches it; the pacer asks for
//! `started + 1` only when no cycle is pending.
//!
//! # Marking and termination
//!
//! The collector thread holds a local mark stack; mutators shade into the
//! shared `GREY` queue (barriers) and assist inside a mutator region: they
//! claim root spans from the cycle's `RootJobs` (the root scan reads one
//! header per allocated object, so it is shared) and scan objects from
//! `GREY`. An allocation that finds the heap 25% past its goal keeps
//! assisting (or waits, if there is no work) for at most `MAX_STALL`. The collector shares work into `GREY` when its stack is
//! deep. Objects whose `GcCell` was busy go to a deferred list and are
//! retried. An assist traces at most `ASSIST_MAX_DEPTH` containers deep
//! into one object (its stack may be a green thread's); a deeper object
//! goes to `DEEP`, which only the collector thread drains (its stack is
//! large). Marking across objects never recurses: edges go to explicit
//! stacks. Marking ends when the stack, `GREY`, `DEEP` and the deferred list are
//! empty after a grace period (which waits for in-flight barriers and
//! assists): by the snapshot argument in the crate docs no later shade can
//! find a white object.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};
use parking_lot::{Condvar, Mutex};

use crate::config::{config, MIN_HEAP_GOAL};
use crate::heap::class::SpanClass;
use crate::heap::object::Header;
use crate::heap::{self, Shade};
use crate::mutator::{self, Epoch, Local};
use crate::stats::{self, COUNTERS};
use crate::trace::{TraceMode, Tracer};

/// Grey objects shaded by mutators, or shared by the collector.
static GREY: LazyLock<Injector<usize>> = LazyLock::new(Injector::new);
/// Grey objects holding values nested too deep for an assist's stack
/// (`ASSIST_MAX_DEPTH`): only the collector thread, with its large stack,
/// scans them.
static DEEP: LazyLock<Injector<usize>> = LazyLock::new(Injector::new);

/// Containers nested in one object that an assist traces through before
/// it leaves the object to the collector thread (a mutator's stack may
/// be a green thread's few KiB).
const ASSIST_MAX_DEPTH: u32 = 64;

/// Cycle bookkeeping.
struct Control {
    started: u64,
    completed: u64,
    requested: u64,
    /// Whether the collector thread exists.
    thread: bool,
    /// Set when a cycle failed while marking (a panic in a `Trace` impl or
    /// in the collector itself): nothing is freed any more, and
    /// `collect()` panics with this message instead of waiting.
    failed: Option<String>,
    /// Green threads waiting in `collect()`.
    wakers: Vec<Waker>,
}

static CONTROL: Mutex<Control> = Mutex::new(Control {
    started: 0,
    completed: 0,
    requested: 0,
    thread: false,
    failed: None,
    wakers: Vec::new(),
});
/// The collector thread waits here for requests; `collect()` callers wait
/// here for completions.
static CONTROL_CV: Condvar = Condvar::new();

/// Heap size (live after the last cycle + allocated since) that starts the
/// next cycle; `u64::MAX` when automatic collection is off.
static TRIGGER: AtomicU64 = AtomicU64::new(MIN_HEAP_GOAL);
/// The heap goal of the running cycle (assists start above it).
static GOAL: AtomicU64 = AtomicU64::new(MIN_HEAP_GOAL);
/// Live bytes after the last cycle.
static LIVE: AtomicU64 = AtomicU64::new(0);
/// Set while a cycle is requested or running (the pacer's fast check).
static CYCLE_PENDING: AtomicBool = AtomicBool::new(false);
/// Whether torture mode is on.
static TORTURE: AtomicBool = AtomicBool::new(false);
/// Whether configuration has been applied.
static CONFIGURED: std::sync::Once = std::sync::Once::new();

thread_local! {
    /// Set on the collector thread (which must never wait for itself).
    static IS_COLLECTOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn configure() {
    CONFIGURED.call_once(|| {
        // SAFETY: `may_preempt` reads only thread-locals without lazy
        // initialisation or destructors (see `in_region_here` and
        // `holding_cell`).
        unsafe { fibra_runtime::gc_seam::set_preemption_check(may_preempt) };
        let c = config();
        if c.percent.is_none() {
            TRIGGER.store(u64::MAX, Ordering::Relaxed);
        }
        if c.torture.is_some() {
            TORTURE.store(true, Ordering::Relaxed);
            heap::POISON.store(true, Ordering::Relaxed);
        }
    });
}

/// Whether a preemption signal may stop the calling thread where it is:
/// not inside a region. Regions never wait for anything a stopped thread
/// could hold (the barrier's lock of a cell nested in an overwritten value
/// is never contended: that cell is reachable only through the outer one,
/// whose lock the barrier's thread holds), so a stop never waits on a
/// thread that waits on a stopped one. Everywhere else - holding a
/// `GcCell`, inside malloc, waiting for a lock - a thread may stop: a
/// thread blocked on what it holds is stopped by a signal in turn.
fn may_preempt() -> bool {
    !mutator::in_region_here()
}

// ----- requests -----

/// Asks for cycle `n` (if not yet asked) and starts the thread if needed.
fn request(control: &mut Control, n: u64) {
    if control.requested < n {
        control.requested = n;
        CYCLE_PENDING.store(true, Ordering::Release);
        CONTROL_CV.notify_all();
    }
    ensure_thread(control);
}

/// Starts the collector thread unless it runs (also after it died).
fn ensure_thread(control: &mut Control) {
    if control.thread {
        return;
    }
    // The thread may be started with `CONTROL` held: it takes the lock
    // only once it runs.
    let spawn = |stack: usize| {
        std::thread::Builder::new()
            .name("fibra-gc".into())
            .stack_size(stack)
            .spawn(collector_main)
    };
    // Where address space or commit is tight, a default stack will do.
    match spawn(COLLECTOR_STACK).or_else(|_| spawn(2 << 20)) {
        Ok(_) => control.thread = true,
        Err(e) => panic!("fibra_gc: cannot start the collector thread: {e}"),
    }
}

/// The collector thread's stack: traces of values nested deep inside one
/// object (a long `Box` chain with `Gc`s in it) recurse on it. Reserved,
/// not committed: only the pages a trace touches become resident.
const COLLECTOR_STACK: usize = 256 << 20;

/// Runs a full collection cycle and returns when it is complete (marking
/// and sweeping done, so [`stats()`](crate::stats) shows its result). In a
/// green thread only that green thread waits; elsewhere the calling thread
/// blocks (a worker counts as stopped meanwhile).
///
/// ```
/// let before = fibra_gc::stats().cycles;
/// fibra_gc::collect();
/// assert!(fibra_gc::stats().cycles > before);
/// ```
///
/// Destructors of the objects the cycle found dead run afterwards, on the
/// finalizer thread (see "Destructors" in the crate docs): `collect()`
/// does not wait for them.
///
/// # Panics
/// If called while the thread holds a `GcCell` borrow (`with`/`with_mut`),
/// which the cycle might need to wait for; and, instead of waiting
/// forever, if collection has stopped because a cycle panicked while
/// marking (a `Trace` impl that panics): the message says why.
pub fn collect() {
    configure();
    assert!(
        !crate::cell::holding_cell(),
        "fibra_gc::collect() called inside GcCell::with/with_mut: the collector may need that cell; collect outside the borrow"
    );
    if IS_COLLECTOR.with(|c| c.get()) {
        // Only reachable from a `Trace` impl run by the collector: the
        // cycle would wait for itself.
        tracing::debug!(target: "fibra_gc", "collect() called on the collector thread; skipped");
        return;
    }
    let target = {
        let mut control = CONTROL.lock();
        if let Some(why) = &control.failed {
            let why = why.clone();
            drop(control);
            collection_failed(&why);
        }
        let target = control.started + 1;
        request(&mut control, target);
        target
    };
    wait_for(target);
}

#[cold]
fn collection_failed(why: &str) -> ! {
    panic!("fibra_gc: the collector stopped collecting after a failed cycle ({why}); the heap only grows from here")
}

/// Waits until cycle `target` completed. Returns early with a panic if
/// collection failed; restarts the collector thread if it is gone.
fn wait_for(target: u64) {
    let failed = if fibra_runtime::in_green_thread() {
        fibra_runtime::block_on(std::future::poll_fn(|cx| {
            let mut control = CONTROL.lock();
            if let Some(why) = &control.failed {
                Poll::Ready(Some(why.clone()))
            } else if control.completed >= target {
                Poll::Ready(None)
            } else {
                ensure_thread(&mut control);
                control.wakers.push(cx.waker().clone());
                Poll::Pending
            }
        }))
    } else {
        fibra_runtime::gc_seam::blocking(|| {
            let mut control = CONTROL.lock();
            loop {
                if let Some(why) = &control.failed {
                    return Some(why.clone());
                }
                if control.completed >= target {
                    return None;
                }
                ensure_thread(&mut control);
                CONTROL_CV.wait(&mut control);
            }
        })
    };
    if let Some(why) = failed {
        collection_failed(&why);
    }
}

// ----- allocation hooks -----

/// Called after each small allocation, outside the region.
#[inline]
pub(crate) fn after_alloc(local: &Local) {
    if TORTURE.load(Ordering::Relaxed) {
        torture_tick(local);
    }
}

#[cold]
fn torture_tick(local: &Local) {
    let n = local.torture_count.get() + 1;
    local.torture_count.set(n);
    let every = config().torture.unwrap_or(u64::MAX);
    if n.is_multiple_of(every) {
        let mut control = CONTROL.lock();
        if control.requested <= control.started {
            let n = control.started + 1;
            request(&mut control, n);
        }
    }
}

/// The allocation slow path (outside any region): safepoint, pacing,
/// assists, then a cache refill.
#[cold]
pub(crate) fn alloc_slow(local: &Local, sc: SpanClass) {
    configure();
    // Never stop at a safepoint while holding a cell: another worker could
    // be blocked on that cell's lock, and the world would never stop.
    if !crate::cell::holding_cell() {
        fibra_runtime::gc_seam::poll();
    }
    pace();
    // Outside any region, and `Gc::new` holds no borrow of the cache
    // across this call (see `refill`).
    heap::refill(local, sc);
}

/// Called before a large object takes its own span (outside any region):
/// the same safepoint poll and pacing as `alloc_slow`, with the object's
/// pages counted first, so large objects start cycles, assist and stall
/// like small ones.
#[cold]
pub(crate) fn before_large_alloc(size: usize) {
    configure();
    if !crate::cell::holding_cell() {
        fibra_runtime::gc_seam::poll();
    }
    heap::ALLOCATED.fetch_add(heap::large_bytes(size) as u64, Ordering::Relaxed);
    pace();
}

/// Starts a cycle when the heap reaches the trigger; helps marking when
/// it has outgrown the goal during a cycle.
fn pace() {
    let heap_now = LIVE.load(Ordering::Relaxed) + heap::ALLOCATED.load(Ordering::Relaxed);
    if heap_now >= TRIGGER.load(Ordering::Relaxed) && !CYCLE_PENDING.load(Ordering::Acquire) {
        let mut control = CONTROL.lock();
        if control.requested <= control.started && control.completed == control.started {
            let n = control.started + 1;
            request(&mut control, n);
        }
    }
    let goal = GOAL.load(Ordering::Relaxed);
    if mutator::epoch().marking() && heap_now > goal {
        let _ = assist();
        if heap_now > hard_goal(goal) {
            stall_for_mark(goal);
        }
    }
}

/// The heap size past which allocations stall to help marking: the goal
/// plus `HARD_GOAL_SLACK_PERCENT`.
fn hard_goal(goal: u64) -> u64 {
    goal.saturating_add(goal / 100 * HARD_GOAL_SLACK_PERCENT)
}

/// How far (percent) the heap may outgrow its goal before allocations stall.
const HARD_GOAL_SLACK_PERCENT: u64 = 25;

/// Longest one allocation helps or waits for marking: each allocation
/// made while the heap is past its hard goal pays at most this, so a
/// mutator slows down in proportion instead of stopping for long (the
/// gc-latency benchmark's worst push).
const MAX_STALL: Duration = Duration::from_micros(500);

/// The heap has outgrown its hard goal while marking (the collector is
/// behind, e.g. starved of CPU): help mark, or wait, for a bounded time
/// instead of growing further. Never while holding a cell lock (the
/// collector may need it to finish).
#[cold]
fn stall_for_mark(goal: u64) {
    if crate::cell::holding_cell() || IS_COLLECTOR.with(|c| c.get()) {
        return;
    }
    let deadline = Instant::now() + MAX_STALL;
    let behind = || {
        mutator::epoch().marking()
            && LIVE.load(Ordering::Relaxed) + heap::ALLOCATED.load(Ordering::Relaxed)
                > hard_goal(goal)
            && Instant::now() < deadline
    };
    // Help while there is work; wait (counted as stopped) when there is none.
    while behind() {
        if !assist() {
            fibra_runtime::gc_seam::blocking(|| std::thread::sleep(Duration::from_micros(100)));
        }
    }
}

/// Work (objects) per assist: bounded, so an allocation never stalls long.
const ASSIST_OBJECTS: usize = 256;
/// Root spans scanned per assist.
const ASSIST_ROOT_SPANS: usize = 4;

/// Scans a few root spans and up to `ASSIST_OBJECTS` grey objects inside a
/// region. Returns whether there was work.
fn assist() -> bool {
    mutator::with_local(|local| {
        let region = local.region();
        let epoch = region.epoch();
        let mut worked = false;
        if epoch.marking() {
            let mut tracer = Tracer::shallow(epoch.raw(), ASSIST_MAX_DEPTH);
            // Root spans first (the collector scans them alone otherwise).
            let jobs = ROOT_JOBS.lock().clone();
            if let Some(jobs) = jobs {
                for _ in 0..ASSIST_ROOT_SPANS {
                    match jobs.claim() {
                        Some(span) => {
                            scan_roots(span, &mut tracer);
                            worked = true;
                        }
                        None => break,
                    }
                }
            }
            let mut done = 0;
            while done < ASSIST_OBJECTS {
                let Some(h) = pop_grey(&mut tracer) else {
                    break;
                };
                let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    scan(h, &mut tracer, &mut |h| GREY.push(h as usize))
                }));
                if let Err(payload) = scanned {
                    // A `Trace` impl panicked: give the object and the
                    // work found so far back, so that no marked object
                    // stays unscanned (the collector meets the panic in
                    // turn and stops collecting).
                    GREY.push(h as usize);
                    for h in tracer.stack.drain(..) {
                        GREY.push(h as usize);
                    }
                    std::panic::resume_unwind(payload);
                }
                done += 1;
                worked = true;
            }
            for h in tracer.stack.drain(..) {
                GREY.push(h as usize);
            }
        }
        drop(region);
        worked
    })
}

fn pop_grey(tracer: &mut Tracer) -> Option<*const Header> {
    if let Some(h) = tracer.stack.pop() {
        return Some(h);
    }
    steal(&GREY)
}

fn steal(queue: &Injector<usize>) -> Option<*const Header> {
    loop {
        match queue.steal() {
            Steal::Success(h) => return Some(h as *const Header),
            Steal::Empty => return None,
            Steal::Retry => continue,
        }
    }
}

/// The deletion barrier's shade (called inside a region whose epoch,
/// `epoch`, is a marking one).
#[inline]
pub(crate) fn shade_from_mutator(header: *const Header, epoch: u64) {
    if let Shade::Grey = heap::shade(header, epoch) {
        GREY.push(header as usize);
    }
}

/// Scans one grey object; a busy `GcCell` defers it, a value nested too
/// deep for the tracer goes to `DEEP` (rescanning is harmless: shading is
/// idempotent).
fn scan(h: *const Header, tracer: &mut Tracer, defer: &mut dyn FnMut(*const Header)) {
    tracer.busy = false;
    tracer.too_deep = false;
    // SAFETY: grey objects are marked, allocated and initialised.
    let vtable = unsafe { (*h).vtable() };
    // SAFETY: as above; the vtable belongs to the object's type.
    unsafe { (vtable.trace)(h, tracer) };
    if tracer.too_deep {
        DEEP.push(h as usize);
    } else if tracer.busy {
        defer(h);
    }
}

// ----- the collector thread -----

/// The collector thread: runs requested cycles. A panic in a cycle is
/// caught: outside marking the heap is consistent (the next cycle's sweep
/// termination finishes any interrupted sweep) and collection goes on;
/// during marking some objects are marked but unscanned, so sweeping could
/// free live objects: collection stops for good (`fail_marking`) and
/// `collect()` panics saying why. Should the thread end anyway, `Exit`
/// clears `Control::thread` and wakes the waiters, and the next request
/// starts a new one.
fn collector_main() {
    /// Runs when the thread ends, by unwinding or otherwise.
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            let wakers = {
                let mut control = CONTROL.lock();
                control.thread = false;
                CONTROL_CV.notify_all();
                std::mem::take(&mut control.wakers)
            };
            wakers.into_iter().for_each(Waker::wake);
        }
    }
    let _exit = Exit;
    IS_COLLECTOR.with(|c| c.set(true));
    configure();
    loop {
        let (n, forced, failed) = {
            let mut control = CONTROL.lock();
            while control.requested <= control.started {
                CONTROL_CV.wait(&mut control);
            }
            control.started += 1;
            (
                control.started,
                control.requested > control.started,
                control.failed.is_some(),
            )
        };
        if !failed {
            let result = std::panic::catch_unwind(|| run_cycle(n, forced));
            if let Err(payload) = result {
                let what = panic_message(&*payload);
                if mutator::epoch().marking() {
                    fail_marking(n, &what);
                } else {
                    tracing::error!(target: "fibra_gc", cycle = n, "a collection cycle panicked outside marking ({what}); the next cycle finishes its sweep");
                }
            }
        }
        let wakers = {
            let mut control = CONTROL.lock();
            control.completed = n;
            if control.requested <= n {
                CYCLE_PENDING.store(false, Ordering::Release);
            }
            CONTROL_CV.notify_all();
            std::mem::take(&mut control.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// A cycle panicked while marking: some objects are marked but were never
/// scanned, so a sweep could free objects they reach. Leave marking
/// without sweeping (back to the same generation, whose sweep is done:
/// nothing is freed, barriers stop shading) and stop collecting.
#[cold]
fn fail_marking(n: u64, what: &str) {
    let gen = mutator::epoch().gen();
    let _ = std::panic::catch_unwind(|| {
        pause("mark_abandoned", n, || {
            mutator::set_epoch(Epoch::new(gen, false))
        })
    });
    mutator::set_epoch(Epoch::new(gen, false));
    mutator::grace_period();
    *ROOT_JOBS.lock() = None;
    while !matches!(GREY.steal(), Steal::Empty) {}
    while !matches!(DEEP.steal(), Steal::Empty) {}
    let why = format!("cycle {n} panicked while marking: {what}");
    tracing::error!(target: "fibra_gc", cycle = n, "{why}; collection is off from now on");
    TRIGGER.store(u64::MAX, Ordering::Relaxed);
    CONTROL.lock().failed = Some(why);
}

/// Stops the world, runs `f`, restarts it; records and reports the pause.
fn pause(phase: &'static str, cycle: u64, f: impl FnOnce()) -> Duration {
    // SAFETY: every `f` passed here flips the phase word and reads
    // counters: no allocation, cell, park or lock a task may hold.
    let world = unsafe { fibra_runtime::gc_seam::stop_the_world() };
    f();
    let stopping = world.stopping_time();
    let total = world.elapsed();
    drop(world);
    let pause_ns = total.as_nanos() as u64;
    let stopping_ns = stopping.as_nanos() as u64;
    stats::record_pause(pause_ns, stopping_ns);
    // A worker that kept the world waiting is named by the runtime's
    // watchdog (`fibra_runtime::gc_seam::WATCHDOG`).
    tracing::info!(target: "fibra_gc", phase, pause_ns, stopping_ns, cycle, "gc pause");
    total
}

fn run_cycle(n: u64, _forced: bool) {
    let start = Instant::now();
    let gen = mutator::epoch().gen();
    // 1. Sweep termination.
    heap::sweep_all(gen);
    let heap_before = heap::HEAP_BYTES.load(Ordering::Relaxed);
    let t_sweep_term = start.elapsed();
    // 2. Mark start.
    let marking = Epoch::new(gen, true);
    // Before the flip: every region that sees the marking epoch must also
    // see this (sweeps of the next generation read it, too).
    heap::MARK_EPOCH.store(marking.raw(), Ordering::SeqCst);
    let stw1 = pause("mark_start", n, || mutator::set_epoch(marking));
    mutator::grace_period();
    // 3. Roots and marking.
    let t_mark = Instant::now();
    let marked = mark();
    if TORTURE.load(Ordering::Relaxed) {
        verify(n);
    }
    let mark_time = t_mark.elapsed();
    // 4. Mark termination.
    let stw2 = pause("mark_termination", n, || {
        mutator::set_epoch(Epoch::new(gen + 1, false))
    });
    mutator::grace_period();
    // 5. Sweep.
    let t_sweep = Instant::now();
    heap::SWEPT_LIVE.store(0, Ordering::Relaxed);
    heap::ALLOCATED.store(0, Ordering::Relaxed);
    heap::SWEEP_GEN.store(gen + 1, Ordering::Release);
    heap::sweep_all(gen + 1);
    let live = heap::SWEPT_LIVE.load(Ordering::Relaxed);
    let heap_after = heap::HEAP_BYTES.load(Ordering::Relaxed);
    // Pacer: the next goal.
    let mut goal = match config().percent {
        Some(p) => (live + live * p / 100).max(MIN_HEAP_GOAL),
        None => u64::MAX,
    };
    if let Some(limit) = config().memory_limit {
        // A soft limit: aim below it, but never below the live heap plus a
        // margin (collecting without freeing anything would only burn CPU).
        goal = goal.min(limit.max(live + live / 16 + (1 << 20)));
    }
    // Keep resident what the heap will grow into before the next cycle
    // (plus 10%), return the rest.
    let keep = goal.min(1 << 50).saturating_sub(heap_after) + goal.min(1 << 50) / 10;
    heap::pages::scavenge(keep as usize);
    // As Go shrinks goroutine stacks during GC: each worker releases the
    // unused stack pages of its parked green threads at its next tick.
    fibra_runtime::gc_seam::shrink_stacks();
    let sweep_time = t_sweep.elapsed();
    LIVE.store(live, Ordering::Relaxed);
    GOAL.store(goal, Ordering::Relaxed);
    // Start the next cycle early enough for marking to end near the goal.
    let trigger = if goal == u64::MAX {
        u64::MAX
    } else {
        live + (goal - live) * 7 / 8
    };
    TRIGGER.store(trigger, Ordering::Relaxed);
    {
        let mut c = COUNTERS.lock();
        c.cycles = n;
        c.live_bytes = live;
        c.heap_after_sweep = heap_after;
        c.goal_bytes = if goal == u64::MAX { 0 } else { goal };
    }
    if config().gctrace {
        let mb = |b: u64| b as f64 / (1 << 20) as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        gctrace_line(format_args!(
            "gc {n} @{:.3}s: {:.3}+{:.3}+{:.3}+{:.3}+{:.3} ms clock (sweep-term+stw+mark+stw+sweep), {:.1}->{:.1} MB heap, {:.1} MB live, {:.1} MB goal, {marked} objects marked, {} workers",
            process_start().elapsed().as_secs_f64(),
            ms(t_sweep_term),
            ms(stw1),
            ms(mark_time),
            ms(stw2),
            ms(sweep_time),
            mb(heap_before),
            mb(heap_after),
            mb(live),
            mb(goal.min(1 << 50)),
            fibra_runtime::gc_seam::mutators(),
        ));
    }
}

/// Writes one `FIBRA_GCTRACE` line to stderr. A failed write (stderr on a
/// full disk, a closed pipe) is reported once through `tracing` and
/// otherwise ignored: it must not stop the collector.
fn gctrace_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    static REPORTED: AtomicBool = AtomicBool::new(false);
    let mut err = std::io::stderr().lock();
    if let Err(e) = err.write_fmt(line).and_then(|()| err.write_all(b"\n")) {
        if !REPORTED.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "fibra_gc", "cannot write the FIBRA_GCTRACE line to stderr ({e}); further failures are ignored");
        }
    }
}

fn process_start() -> Instant {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    *START
}

/// Collector-side marking: roots, then drain until termination. Returns
/// the number of objects scanned.
fn mark() -> u64 {
    let marking = heap::MARK_EPOCH.load(Ordering::Acquire);
    let mut tracer = Tracer::new(TraceMode::Mark, marking);
    let mut deferred: Vec<*const Header> = Vec::new();
    let mut scanned = 0u64;
    // Roots: every allocated, unmarked object with a non-zero root count,
    // found span by span; assists take spans from the same list.
    let jobs = Arc::new(RootJobs {
        spans: heap::spans_in_use(),
        next: AtomicUsize::new(0),
    });
    *ROOT_JOBS.lock() = Some(jobs.clone());
    while let Some(span) = jobs.claim() {
        scan_roots(span, &mut tracer);
        scanned += drain(&mut tracer, &mut deferred, 4096);
    }
    loop {
        scanned += drain(&mut tracer, &mut deferred, usize::MAX);
        if !deferred.is_empty() {
            std::thread::sleep(Duration::from_micros(50));
            tracer.stack.append(&mut deferred);
            continue;
        }
        // Waits for barriers and assists (root jobs included) in flight.
        mutator::grace_period();
        if GREY.is_empty() && DEEP.is_empty() && tracer.stack.is_empty() {
            *ROOT_JOBS.lock() = None;
            return scanned;
        }
    }
}

/// The root spans of the current cycle, claimed one at a time by the
/// collector and by assists.
struct RootJobs {
    spans: Vec<heap::SpanRef>,
    next: AtomicUsize,
}

impl RootJobs {
    fn claim(&self) -> Option<&'static heap::span::Span> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.spans.get(i).map(|s| s.get())
    }
}

/// The running cycle's root jobs (None outside marking).
static ROOT_JOBS: Mutex<Option<Arc<RootJobs>>> = Mutex::new(None);

/// Shades the rooted, unmarked objects of `span`.
fn scan_roots(span: &heap::span::Span, tracer: &mut Tracer) {
    for w in 0..span.words() {
        let mut candidates = span.allocated_word(w) & !span.marked_word(w, tracer.epoch);
        while candidates != 0 {
            let slot = w * 64 + candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            let h = span.object(slot);
            // SAFETY: allocated slots hold initialised objects, and no
            // object is freed while marking.
            if unsafe { (*h).root_count() } > 0 {
                tracer.edge(h);
            }
        }
    }
}

/// Scans grey objects until the local stack and `GREY` are empty (or
/// `budget` objects were scanned); objects with busy cells go to
/// `deferred`.
fn drain(tracer: &mut Tracer, deferred: &mut Vec<*const Header>, budget: usize) -> u64 {
    let mut scanned = 0;
    while (scanned as usize) < budget {
        let Some(h) = pop_grey(tracer).or_else(|| steal(&DEEP)) else {
            break;
        };
        scan(h, tracer, &mut |h| deferred.push(h));
        scanned += 1;
        // Share work so that assists find some.
        if scanned % 256 == 0 && tracer.stack.len() > 512 && GREY.is_empty() {
            for h in tracer.stack.drain(..128) {
                GREY.push(h as usize);
            }
        }
    }
    scanned
}

/// Torture mode: checks that every rooted object and every child of a
/// marked object is marked (the tri-colour invariant at the end of
/// marking). Aborts the process on a violation.
fn verify(cycle: u64) {
    let marking = heap::MARK_EPOCH.load(Ordering::Acquire);
    let mut tracer = Tracer::new(TraceMode::Collect, marking);
    let mut checked = 0u64;
    for s in heap::spans_in_use() {
        let span = s.get();
        for w in 0..span.words() {
            let mut allocated = span.allocated_word(w);
            while allocated != 0 {
                let slot = w * 64 + allocated.trailing_zeros() as usize;
                allocated &= allocated - 1;
                let h = span.object(slot);
                let marked = span.is_marked(slot, marking);
                // SAFETY: allocated slots hold initialised objects.
                let roots = unsafe { (*h).root_count() };
                if roots > 0 && !marked {
                    violation(cycle, h, "a rooted object is not marked");
                }
                if !marked || span.class.noscan() {
                    continue;
                }
                checked += 1;
                let deadline = Instant::now() + Duration::from_millis(200);
                loop {
                    tracer.stack.clear();
                    tracer.busy = false;
                    // SAFETY: as above.
                    unsafe { ((*h).vtable().trace)(h, &mut tracer) };
                    if !tracer.busy || Instant::now() > deadline {
                        break;
                    }
                    std::thread::yield_now();
                }
                for &child in &tracer.stack {
                    if !heap::is_marked(child, marking) {
                        violation(cycle, child, "a child of a marked object is not marked");
                    }
                }
            }
        }
    }
    tracing::debug!(target: "fibra_gc", cycle, checked, "heap verified");
}

fn violation(cycle: u64, h: *const Header, what: &str) -> ! {
    // SAFETY: `h` is an allocated object.
    let name = unsafe { ((*h).vtable().name)() };
    eprintln!("fibra_gc: heap verification failed in cycle {cycle}: {what} ({name} at {h:p})");
    std::process::abort()
}
