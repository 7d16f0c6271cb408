//! Parked (and otherwise suspended) green threads give back the stack pages
//! below their stack pointer: at park time when they are known to have
//! gone deep, when their worker goes idle, and on `shrink_stacks()`; a hot
//! task is not shrunk over and over.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use fibra_runtime::gc_seam::shrink_stacks;
use fibra_runtime::stack::{remaining, stats};

/// The tests compare process-wide counters: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The address of a local: the stack pointer, near enough.
#[inline(always)]
fn sp() -> usize {
    let marker = 0u8;
    black_box(&marker) as *const u8 as usize
}

/// Writes `bytes` of stack below the caller (frames of 1 KiB of data),
/// without telling the runtime. With `observe`, calls `remaining()` at the
/// bottom, which lets the runtime see the depth.
fn touch_deep(bytes: usize, observe: bool) -> u64 {
    #[inline(never)]
    fn level(start: usize, bytes: usize, observe: bool) -> u64 {
        let buf = black_box([7u8; 1024]);
        if start - sp() >= bytes {
            if observe {
                return remaining().unwrap() as u64 + buf[3] as u64;
            }
            return buf[3] as u64;
        }
        level(start, bytes, observe) + buf[100] as u64
    }
    level(sp(), bytes, observe)
}

/// A future that stays pending until `open` is called.
#[derive(Clone, Default)]
struct Gate(Arc<(AtomicBool, Mutex<Vec<Waker>>)>);

impl Gate {
    fn open(&self) {
        self.0 .0.store(true, Ordering::SeqCst);
        for w in self.0 .1.lock().unwrap().drain(..) {
            w.wake();
        }
    }
}

impl Future for Gate {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 .0.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        self.0 .1.lock().unwrap().push(cx.waker().clone());
        if self.0 .0.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn one_worker() -> fibra_runtime::Runtime {
    fibra_runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap()
}

#[test]
fn a_task_known_to_have_gone_deep_is_shrunk_when_it_parks() {
    let _serial = serial();
    let rt = one_worker();
    let gate = Gate::default();
    let parked = Arc::new(AtomicBool::new(false));
    let deep_committed = Arc::new(Mutex::new(0usize));
    let shrinks = stats().shrinks;
    let h = {
        let (gate, parked, deep_committed) = (gate.clone(), parked.clone(), deep_committed.clone());
        rt.spawn(move || {
            touch_deep(160 * 1024, true);
            *deep_committed.lock().unwrap() = stats().bytes_committed;
            parked.store(true, Ordering::SeqCst);
            fibra_runtime::block_on(gate);
        })
    };
    wait_until("the task parked", || parked.load(Ordering::SeqCst));
    wait_until("the task was shrunk", || stats().shrinks > shrinks);
    let after = stats().bytes_committed;
    let before = *deep_committed.lock().unwrap();
    assert!(
        before >= after + 96 * 1024,
        "parking released the deep pages: {before} -> {after}"
    );
    gate.open();
    h.join().unwrap();
}

#[test]
fn a_parked_task_is_probed_and_shrunk_when_its_worker_idles() {
    let _serial = serial();
    let rt = one_worker();
    let gate = Gate::default();
    let deep_committed = Arc::new(Mutex::new(0usize));
    let shrinks = stats().shrinks;
    let h = {
        let (gate, deep_committed) = (gate.clone(), deep_committed.clone());
        rt.spawn(move || {
            // No `remaining()` here: the runtime does not know how deep.
            touch_deep(160 * 1024, false);
            *deep_committed.lock().unwrap() = stats().bytes_committed;
            fibra_runtime::block_on(gate);
        })
    };
    wait_until("the idle worker shrank the task", || {
        stats().shrinks > shrinks
    });
    let after = stats().bytes_committed;
    let before = *deep_committed.lock().unwrap();
    assert!(before >= after + 96 * 1024, "{before} -> {after}");
    gate.open();
    h.join().unwrap();
}

#[test]
fn shrink_stacks_reaches_busy_tasks() {
    let _serial = serial();
    let rt = one_worker();
    let stop = Arc::new(AtomicBool::new(false));
    let looping = Arc::new(AtomicBool::new(false));
    let h = {
        let (stop, looping) = (stop.clone(), looping.clone());
        // Yields forever (never parks, so its worker never idles): only a
        // shrink request can reach it.
        rt.spawn(move || {
            touch_deep(160 * 1024, false);
            looping.store(true, Ordering::SeqCst);
            while !stop.load(Ordering::SeqCst) {
                fibra_runtime::yield_now();
            }
        })
    };
    wait_until("the task loops", || looping.load(Ordering::SeqCst));
    let before = stats().bytes_committed;
    let shrinks = stats().shrinks;
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        stats().shrinks,
        shrinks,
        "nothing shrinks a busy task unasked"
    );
    shrink_stacks();
    wait_until("the worker acted on the request", || {
        stats().shrinks > shrinks
    });
    let after = stats().bytes_committed;
    assert!(before >= after + 96 * 1024, "{before} -> {after}");
    stop.store(true, Ordering::SeqCst);
    h.join().unwrap();
}

#[test]
fn a_hot_task_is_not_shrunk_on_every_park() {
    let _serial = serial();
    let rt = one_worker();
    let (shrunk, iterations) = rt.run(|| {
        let shrinks = stats().shrinks;
        let n = 2_000;
        for _ in 0..n {
            touch_deep(64 * 1024, true);
            // A join of an unstarted task parks this one.
            fibra_runtime::spawn(|| ()).join().unwrap();
        }
        (stats().shrinks - shrinks, n)
    });
    assert!(shrunk >= 1, "the first deep park shrinks");
    assert!(
        shrunk <= 8,
        "hysteresis grows until the working depth is kept: {shrunk} shrinks in {iterations} parks"
    );
}

#[test]
fn parked_tasks_that_stayed_shallow_keep_their_pages() {
    let _serial = serial();
    let rt = one_worker();
    let gate = Gate::default();
    let shrinks = stats().shrinks;
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let gate = gate.clone();
            rt.spawn(move || fibra_runtime::block_on(gate))
        })
        .collect();
    // Let the worker park them all and go idle (probing each).
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(stats().shrinks, shrinks, "no shallow task needed a shrink");
    gate.open();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn shrinking_a_task_parked_on_a_segment_keeps_every_live_frame() {
    let _serial = serial();
    // Unoptimised builds copy the big closure several times on the way in.
    let rt = fibra_runtime::Runtime::builder()
        .workers(1)
        .stack_size(1024 * 1024)
        .build()
        .unwrap();
    let gate = Gate::default();
    let parked = Arc::new(AtomicBool::new(false));
    let shrinks = stats().shrinks;
    let h = {
        let (gate, parked) = (gate.clone(), parked.clone());
        rt.spawn(move || {
            let outer = black_box([0xA5u8; 8192]);
            // A large closure and a large result: both sit in the switching
            // frames on the task's stack while it parks on the segment.
            let captured = black_box([0x5Au8; 16384]);
            let result: [u8; 12288] =
                fibra_runtime::stack::maybe_grow(usize::MAX, 512 * 1024, move || {
                    touch_deep(160 * 1024, true);
                    parked.store(true, Ordering::SeqCst);
                    // Parks known to have gone deep: shrunk at park time, the
                    // segment and the stack below the switching frames.
                    fibra_runtime::block_on(gate);
                    assert!(captured.iter().all(|&b| b == 0x5A), "the closure survived");
                    [0x3Cu8; 12288]
                });
            assert!(
                outer.iter().all(|&b| b == 0xA5),
                "the caller's frame survived"
            );
            assert!(result.iter().all(|&b| b == 0x3C), "the result came back");
        })
    };
    wait_until("the task parked", || parked.load(Ordering::SeqCst));
    wait_until("the task was shrunk", || stats().shrinks > shrinks);
    gate.open();
    h.join().unwrap();
}
