//! Cycle control: requests, the collector thread, one cycle's phases (see
//! `collector`'s "Phases") and `collect()`.
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
//! A cycle that panics while marking stops collection for good
//! (`Control::failed`, see `collector_main`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_deque::Steal;

use super::mark::mark;
use super::verify::verify;
use super::{configure, counters, on_collector_thread, pacer, COLLECTOR};
use crate::config::config;
use crate::epoch::Epoch;
use crate::heap::mark::MARK;
use crate::heap::{self, HEAP};
use crate::mutator;

/// Cycle bookkeeping (`Collector::control`). After a cycle failed while
/// marking (a panic in a `Trace` impl or in the collector itself) nothing
/// is freed any more, and `collect()` panics with `failed`'s message
/// instead of waiting.
pub(super) struct Control {
    /// Cycles the collector thread has started.
    pub(super) started: u64,
    /// Cycles completed (swept, or abandoned after a failure).
    pub(super) completed: u64,
    /// The highest cycle number asked for.
    pub(super) requested: u64,
    /// Whether the collector thread exists.
    pub(super) thread: bool,
    /// Why collection stopped, once a cycle failed while marking.
    pub(super) failed: Option<String>,
    /// Green threads waiting in `collect()`.
    pub(super) wakers: Vec<Waker>,
}

impl Control {
    pub(super) const fn new() -> Control {
        Control {
            started: 0,
            completed: 0,
            requested: 0,
            thread: false,
            failed: None,
            wakers: Vec::new(),
        }
    }
}

/// Asks for cycle `n` (if not yet asked) and starts the thread if needed.
pub(super) fn request(control: &mut Control, n: u64) {
    if control.requested < n {
        control.requested = n;
        COLLECTOR.pacer.cycle_pending.store(true, Ordering::Release);
        COLLECTOR.control_cv.notify_all();
    }
    ensure_thread(control);
}

/// Starts the collector thread unless it runs (also after it died).
pub(super) fn ensure_thread(control: &mut Control) {
    if let Err(e) = try_ensure_thread(control) {
        panic!("fibra_gc: cannot start the collector thread: {e}");
    }
}

/// [`ensure_thread`], reporting a failure to start the thread instead of
/// panicking.
pub(super) fn try_ensure_thread(control: &mut Control) -> std::io::Result<()> {
    if control.thread {
        return Ok(());
    }
    // The thread may be started with `Collector::control` held: it takes the lock
    // only once it runs.
    let spawn = |stack: usize| {
        std::thread::Builder::new()
            .name("fibra-gc".into())
            .stack_size(stack)
            .spawn(collector_main)
    };
    // Where address space or commit is tight, a default stack will do.
    spawn(COLLECTOR_STACK).or_else(|_| spawn(2 << 20))?;
    control.thread = true;
    Ok(())
}

/// The collector thread's stack: traces of values nested deep inside one
/// object (a long `Box` chain with `Gc`s in it) recurse on it. Reserved,
/// not committed: only the pages a trace touches become resident.
pub(super) const COLLECTOR_STACK: usize = 256 << 20;

/// Runs a full collection cycle and returns when it is complete (marking
/// and sweeping done, so [`stats()`](crate::stats) shows its result). In a
/// green thread only that green thread waits; elsewhere the calling thread
/// blocks (a worker counts as stopped meanwhile).
///
/// ```
/// let before = fibra::gc::stats().cycles;
/// fibra::gc::collect();
/// assert!(fibra::gc::stats().cycles > before);
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
        !mutator::holding_cell(),
        "fibra_gc::collect() called inside GcCell::with/with_mut: the collector may need that cell; collect outside the borrow"
    );
    if on_collector_thread() {
        // Only reachable from a `Trace` impl run by the collector: the
        // cycle would wait for itself.
        tracing::debug!(target: "fibra_gc", "collect() called on the collector thread; skipped");
        return;
    }
    let target = {
        let mut control = COLLECTOR.control.lock();
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
pub(super) fn collection_failed(why: &str) -> ! {
    panic!("fibra_gc: the collector stopped collecting after a failed cycle ({why}); the heap only grows from here")
}

/// Waits until cycle `target` completed. Returns early with a panic if
/// collection failed; restarts the collector thread if it is gone.
pub(super) fn wait_for(target: u64) {
    let failed = if fibra_runtime::in_green_thread() {
        fibra_runtime::block_on(std::future::poll_fn(|cx| {
            let mut control = COLLECTOR.control.lock();
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
            let mut control = COLLECTOR.control.lock();
            loop {
                if let Some(why) = &control.failed {
                    return Some(why.clone());
                }
                if control.completed >= target {
                    return None;
                }
                ensure_thread(&mut control);
                COLLECTOR.control_cv.wait(&mut control);
            }
        })
    };
    if let Some(why) = failed {
        collection_failed(&why);
    }
}

/// The collector thread: runs requested cycles. A panic in a cycle is
/// caught: outside marking the heap is consistent (the next cycle's sweep
/// termination finishes any interrupted sweep) and collection goes on;
/// during marking some objects are marked but unscanned, so sweeping could
/// free live objects: collection stops for good (`fail_marking`) and
/// `collect()` panics saying why. Should the thread end anyway, `Exit`
/// clears `Control::thread` and wakes the waiters, and the next request
/// starts a new one.
pub(super) fn collector_main() {
    /// Runs when the thread ends, by unwinding or otherwise.
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            let wakers = {
                let mut control = COLLECTOR.control.lock();
                control.thread = false;
                COLLECTOR.control_cv.notify_all();
                std::mem::take(&mut control.wakers)
            };
            wakers.into_iter().for_each(Waker::wake);
        }
    }
    let _exit = Exit;
    super::IS_COLLECTOR.with(|c| c.set(true));
    // Before the first grace period, and off every allocation path: this
    // registration takes milliseconds in a process with several threads.
    mutator::prepare_process_barrier();
    configure();
    loop {
        let (n, forced, failed) = {
            let mut control = COLLECTOR.control.lock();
            while control.requested <= control.started {
                COLLECTOR.control_cv.wait(&mut control);
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
            let mut control = COLLECTOR.control.lock();
            control.completed = n;
            if control.requested <= n {
                COLLECTOR
                    .pacer
                    .cycle_pending
                    .store(false, Ordering::Release);
            }
            COLLECTOR.control_cv.notify_all();
            std::mem::take(&mut control.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// The text of a panic's payload.
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
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
pub(super) fn fail_marking(n: u64, what: &str) {
    let gen = mutator::epoch().gen();
    let _ = std::panic::catch_unwind(|| {
        pause("mark_abandoned", n, || {
            mutator::set_epoch(Epoch::new(gen, false))
        })
    });
    mutator::set_epoch(Epoch::new(gen, false));
    mutator::grace_period();
    *COLLECTOR.root_jobs.lock() = None;
    while !matches!(MARK.grey.steal(), Steal::Empty) {}
    while !matches!(MARK.deep.steal(), Steal::Empty) {}
    let why = format!("cycle {n} panicked while marking: {what}");
    tracing::error!(target: "fibra_gc", cycle = n, "{why}; collection is off from now on");
    COLLECTOR.pacer.trigger.store(u64::MAX, Ordering::Relaxed);
    COLLECTOR.control.lock().failed = Some(why);
}

/// Stops the world, runs `f`, restarts it; records and reports the pause.
/// The stop is made by a running worker when one reaches a safepoint
/// soon (`fibra::gc_seam::run_stopped`), so that it does not begin with
/// a worker's CPU taken by this thread.
pub(super) fn pause(phase: &'static str, cycle: u64, f: impl Fn() + Sync) -> Duration {
    // SAFETY: every `f` passed here flips the phase word and reads
    // counters: no allocation, cell, park or lock a task may hold. The
    // collector's thread is not a worker.
    let report = unsafe { fibra_runtime::gc_seam::run_stopped(&f) };
    let stopping = report.stopping_time();
    let total = report.elapsed();
    let on_worker = report.on_worker();
    let left_pending = report.left_pending();
    drop(report);
    let pause_ns = total.as_nanos() as u64;
    let stopping_ns = (stopping.as_nanos() as u64).min(pause_ns);
    counters::record_pause(pause_ns, stopping_ns);
    // The time to safepoint (`stopping_ns`, also as `time_to_safepoint_ns`)
    // and the work done with the world stopped (`work_ns`) add up to
    // `pause_ns`. A worker that kept the world waiting is named by the
    // runtime (`fibra_runtime::gc_seam::WATCHDOG`, and a debug event per
    // slow stop). `on_worker`: a running worker made the stop.
    // `left_pending`: workers the OS kept off the CPUs, not waited for.
    let work_ns = pause_ns - stopping_ns;
    tracing::info!(
        target: "fibra_gc",
        phase,
        pause_ns,
        stopping_ns,
        time_to_safepoint_ns = stopping_ns,
        work_ns,
        cycle,
        on_worker,
        left_pending,
        "gc pause"
    );
    total
}

pub(super) fn run_cycle(n: u64, _forced: bool) {
    let start = Instant::now();
    let gen = mutator::epoch().gen();
    // 1. Sweep termination.
    heap::sweep_all(gen);
    let heap_before = HEAP.heap_bytes.load(Ordering::Relaxed);
    let t_sweep_term = start.elapsed();
    // 2. Mark start.
    let marking = Epoch::new(gen, true);
    // Before the flip: every region that sees the marking epoch must also
    // see this (sweeps of the next generation read it, too).
    MARK.epoch.store(marking.raw(), Ordering::SeqCst);
    let stw1 = pause("mark_start", n, || mutator::set_epoch(marking));
    mutator::grace_period();
    // 3. Roots and marking.
    let t_mark = Instant::now();
    let marked = mark();
    if COLLECTOR.torture.load(Ordering::Relaxed) {
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
    HEAP.swept_live.store(0, Ordering::Relaxed);
    HEAP.allocated.store(0, Ordering::Relaxed);
    HEAP.sweep_gen.store(gen + 1, Ordering::Release);
    heap::sweep_all(gen + 1);
    let live = HEAP.swept_live.load(Ordering::Relaxed);
    let heap_after = HEAP.heap_bytes.load(Ordering::Relaxed);
    let goal = pacer::next_goal(live);
    // Keep resident what the heap will grow into before the next cycle
    // (plus 10%), return the rest.
    let keep = goal.min(1 << 50).saturating_sub(heap_after) + goal.min(1 << 50) / 10;
    heap::pages::scavenge(keep as usize);
    // As Go shrinks goroutine stacks during GC: each worker releases the
    // unused stack pages of its parked green threads at its next tick.
    fibra_runtime::gc_seam::shrink_stacks();
    let sweep_time = t_sweep.elapsed();
    COLLECTOR.pacer.set_next(live, goal);
    {
        let mut c = COLLECTOR.counters.lock();
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
pub(super) fn gctrace_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    static REPORTED: AtomicBool = AtomicBool::new(false);
    let mut err = std::io::stderr().lock();
    if let Err(e) = err.write_fmt(line).and_then(|()| err.write_all(b"\n")) {
        if !REPORTED.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "fibra_gc", "cannot write the FIBRA_GCTRACE line to stderr ({e}); further failures are ignored");
        }
    }
}

pub(super) fn process_start() -> Instant {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    *START
}
