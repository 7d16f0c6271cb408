//! `maybe_grow` lets recursion go far deeper than a green thread's stack,
//! and segments behave like the stack they extend (parking, panics,
//! cancellation, `remaining`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use fibra_runtime::stack::{maybe_grow, remaining, stats};

const RED_ZONE: usize = 64 * 1024;
const SEGMENT: usize = 2 * 1024 * 1024;

/// The tests read process-wide stack counters and the recursions are
/// memory-hungry in debug builds: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn depth(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    maybe_grow(RED_ZONE, SEGMENT, || depth(n - 1) + 1)
}

fn small_runtime() -> fibra_runtime::Runtime {
    fibra_runtime::Runtime::builder()
        .workers(1)
        .stack_size(64 * 1024)
        .build()
        .unwrap()
}

#[test]
fn a_million_frames_in_a_green_thread() {
    let _serial = serial();
    let rt = small_runtime();
    let (d, segments_after) = rt.run(|| {
        let d = depth(1_000_000);
        (d, stats().segments)
    });
    assert_eq!(d, 1_000_000);
    assert!(
        segments_after <= 1,
        "every segment but the cached one went back: {segments_after}"
    );
}

#[test]
fn a_million_frames_on_an_os_thread() {
    let _serial = serial();
    let d = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| depth(1_000_000))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(d, 1_000_000);
}

#[test]
fn remaining_tracks_the_current_segment() {
    let _serial = serial();
    let rt = small_runtime();
    rt.run(|| {
        let top = remaining().unwrap();
        assert!(
            top < 64 * 1024,
            "a 64 KiB stack has less than 64 KiB left: {top}"
        );
        let on_segment = maybe_grow(usize::MAX, 1024 * 1024, || remaining().unwrap());
        assert!(
            on_segment > 1024 * 1024 - 16 * 1024 && on_segment <= 1024 * 1024,
            "a fresh 1 MiB segment has about 1 MiB left: {on_segment}"
        );
        let back = remaining().unwrap();
        assert!(
            back.abs_diff(top) < 4096,
            "back on the stack: {back} vs {top}"
        );
        let inline = maybe_grow(0, 1024 * 1024, || remaining().unwrap());
        assert!(inline < top, "a red zone of 0 never splits");
    });
}

#[test]
fn a_task_parks_and_resumes_inside_segments() {
    let _serial = serial();
    let rt = small_runtime();
    let v = rt.run(|| {
        let other = fibra_runtime::spawn(|| {
            for _ in 0..10 {
                fibra_runtime::yield_now();
            }
            7u64
        });
        fn deep_then_join(n: u64, h: fibra_runtime::JoinHandle<u64>) -> u64 {
            if n == 0 {
                assert!(stats().segments > 0, "the join happens on a segment");
                return h.join().unwrap();
            }
            maybe_grow(RED_ZONE, 256 * 1024, move || deep_then_join(n - 1, h) + 1)
        }
        deep_then_join(20_000, other)
    });
    assert_eq!(v, 20_007);
}

#[test]
fn a_panic_on_a_segment_reaches_the_caller() {
    let _serial = serial();
    let rt = small_runtime();
    rt.run(|| {
        fn deep_panic(n: u64) -> u64 {
            if n == 0 {
                panic!("deep");
            }
            maybe_grow(RED_ZONE, 256 * 1024, || deep_panic(n - 1) + 1)
        }
        let before = remaining().unwrap();
        let err = std::panic::catch_unwind(|| deep_panic(20_000)).unwrap_err();
        assert_eq!(*err.downcast::<&str>().unwrap(), "deep");
        assert!(
            remaining().unwrap().abs_diff(before) < 4096,
            "bounds restored after the unwind"
        );
        // The task keeps working, on segments again.
        assert_eq!(depth(20_000), 20_000);
    });
}

#[test]
fn cancelling_a_task_parked_on_a_segment_unwinds_every_frame() {
    let _serial = serial();
    struct Count(Arc<AtomicUsize>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn deep_park(n: u64, drops: Arc<AtomicUsize>) {
        let _c = Count(drops.clone());
        if n == 0 {
            // Never finishes: parks until the runtime is dropped.
            let never = fibra_runtime::spawn(|| loop {
                fibra_runtime::yield_now();
            });
            let _ = never.join();
            return;
        }
        maybe_grow(RED_ZONE, 256 * 1024, move || deep_park(n - 1, drops));
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = small_runtime();
    let d = drops.clone();
    let h = rt.spawn(move || deep_park(5_000, d));
    while stats().segments == 0 {
        std::thread::yield_now();
    }
    drop(rt);
    assert!(h.join().unwrap_err().is_cancelled());
    assert_eq!(
        drops.load(Ordering::SeqCst),
        5_001,
        "every frame's destructor ran"
    );
}

#[test]
fn a_split_in_a_tight_loop_reuses_the_cached_segment() {
    let _serial = serial();
    let rt = small_runtime();
    rt.run(|| {
        // Warm up: the first split maps (or pools) a segment.
        maybe_grow(usize::MAX, 128 * 1024, || ());
        let calls = stats().mmap_calls;
        let mut sum = 0u64;
        for i in 0..100_000u64 {
            sum += maybe_grow(usize::MAX, 128 * 1024, || i);
        }
        assert_eq!(sum, 100_000 * 99_999 / 2);
        assert_eq!(stats().mmap_calls, calls, "the cached segment was reused");
    });
}
