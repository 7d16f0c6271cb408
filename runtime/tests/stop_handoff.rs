//! A stop requested with `run_stopped` is made by a worker that reaches a
//! safepoint (so the requester's thread does not hold a worker's CPU
//! while the world stops), and by the requester when no worker claims it
//! in time; either way every task is stopped while the step runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use fibra_runtime::gc_seam as safepoint;
use fibra_runtime::{task, Runtime};

mod stops;
use stops::{counting_task, Loop, StopOnDrop};

/// From a plain thread, runs a step with the world stopped that reads
/// every counter twice, 5 ms apart; returns the readings and who made the
/// stop. Exits the process if the stop never completes.
fn stopped_readings(counts: &[Arc<AtomicU64>]) -> (Vec<(u64, u64)>, bool) {
    let (seen, on_worker, _) = stopped_readings_and_left(counts);
    (seen, on_worker)
}

/// As `stopped_readings`, with the number of workers the stop left
/// descheduled with the preemption signal pending.
fn stopped_readings_and_left(counts: &[Arc<AtomicU64>]) -> (Vec<(u64, u64)>, bool, u32) {
    let counts = counts.to_vec();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let seen = Mutex::new(Vec::new());
        let step = || {
            let before: Vec<u64> = counts.iter().map(|c| c.load(Relaxed)).collect();
            std::thread::sleep(Duration::from_millis(5));
            let after = counts.iter().map(|c| c.load(Relaxed));
            *seen.lock().unwrap() = before.into_iter().zip(after).collect();
        };
        // SAFETY: the step only reads atomics and sleeps.
        let report = unsafe { safepoint::run_stopped(&step) };
        assert!(report.stopping_time() <= report.elapsed());
        let _ = tx.send((
            seen.into_inner().unwrap(),
            report.on_worker(),
            report.left_pending(),
        ));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(seen) => seen,
        Err(_) => {
            eprintln!("the world never stopped");
            std::process::exit(101);
        }
    }
}

#[test]
fn a_worker_that_polls_makes_the_stop_and_every_task_stops() {
    let _serial = stops::serial();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    let (spins, spinner) = counting_task(&rt, "spinner", Loop::Spin, &stop);
    let (yields, yielder) = counting_task(&rt, "yielder", Loop::Yield, &stop);
    let mut on_worker = 0;
    for _ in 0..20 {
        let (seen, by_worker) = stopped_readings(&[spins.clone(), yields.clone()]);
        for (before, after) in seen {
            assert_eq!(before, after, "a task ran while the world was stopped");
        }
        on_worker += by_worker as u32;
    }
    // The yielding task's worker polls a safepoint at every switch, well
    // within the claim wait, when it has a CPU; on a loaded machine the
    // OS may keep it off the CPUs through some waits, and the requester
    // makes those stops.
    assert!(on_worker > 0, "no worker made any of 20 stops");
    stop.store(true, Relaxed);
    spinner.join().unwrap();
    yielder.join().unwrap();
}

#[test]
fn the_requester_makes_the_stop_when_no_worker_polls() {
    let _serial = stops::serial();
    // One worker, running a task that never calls the runtime.
    let rt = Runtime::builder().workers(1).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    let (spins, spinner) = counting_task(&rt, "spinner", Loop::Spin, &stop);
    for _ in 0..5 {
        let (seen, by_worker) = stopped_readings(std::slice::from_ref(&spins));
        assert!(!by_worker, "a worker that never polls made the stop");
        assert_eq!(seen[0].0, seen[0].1, "the spinning task ran while stopped");
    }
    stop.store(true, Relaxed);
    spinner.join().unwrap();
}

#[test]
fn without_a_runtime_the_requester_makes_the_stop() {
    let _serial = stops::serial();
    let ran = AtomicBool::new(false);
    // SAFETY: the step only stores to an atomic.
    let report = unsafe { safepoint::run_stopped(&|| ran.store(true, Relaxed)) };
    assert!(ran.load(Relaxed));
    assert!(!report.on_worker());
}

#[test]
fn a_worker_may_not_request_a_handed_off_stop() {
    let _serial = stops::serial();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let refused = rt.run(|| {
        std::panic::catch_unwind(|| {
            // SAFETY: the step does nothing.
            drop(unsafe { safepoint::run_stopped(&|| ()) });
        })
        .is_err()
    });
    assert!(refused, "run_stopped on a worker did not panic");
}

#[test]
fn each_step_runs_once_however_the_claims_race() {
    let _serial = stops::serial();
    // Two workers polling at every switch race each other (and, on a busy
    // machine, the requester's own claim after the wait) for each stop.
    let rt = Runtime::builder().workers(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    let (_, a) = counting_task(&rt, "yielder", Loop::Yield, &stop);
    let (_, b) = counting_task(&rt, "yielder", Loop::Yield, &stop);
    let runs = AtomicU64::new(0);
    let requests = 300;
    let mut on_worker = 0;
    for _ in 0..requests {
        // SAFETY: the step only counts.
        let report = unsafe {
            safepoint::run_stopped(&|| {
                runs.fetch_add(1, Relaxed);
            })
        };
        on_worker += report.on_worker() as u64;
    }
    assert_eq!(
        runs.load(Relaxed),
        requests,
        "a step ran more or fewer times than requested"
    );
    assert!(on_worker > 0, "no worker claimed a stop");
    stop.store(true, Relaxed);
    a.join().unwrap();
    b.join().unwrap();
}

#[test]
fn a_green_thread_short_of_stack_leaves_the_stop_to_others() {
    let _serial = stops::serial();
    // One worker, whose only task polls (via `gc_seam::poll`) with almost
    // no stack left: it must not make the stop there, so the requester
    // makes it after the claim wait; the task's stack is not overrun.
    let rt = Runtime::builder().workers(1).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    let polls = Arc::new(AtomicU64::new(0));
    let (s, p) = (stop.clone(), polls.clone());
    #[allow(clippy::async_yields_async)]
    let handle = rt.block_on(async {
        task::Builder::new()
            .stack_size(16 * 1024)
            .spawn(move || {
                fn deep(s: &AtomicBool, p: &AtomicU64) {
                    let pad = std::hint::black_box([0u8; 512]);
                    let left = fibra_runtime::stack::remaining().unwrap();
                    if left > 8 * 1024 {
                        deep(s, p);
                    } else {
                        while !s.load(Relaxed) {
                            safepoint::poll();
                            p.fetch_add(1, Relaxed);
                        }
                    }
                    std::hint::black_box(pad);
                }
                deep(&s, &p);
            })
            .unwrap()
    });
    while polls.load(Relaxed) == 0 {
        std::thread::yield_now();
    }
    for _ in 0..3 {
        let (seen, by_worker) = stopped_readings(std::slice::from_ref(&polls));
        assert!(!by_worker, "a green thread short of stack made the stop");
        assert_eq!(seen[0].0, seen[0].1, "the task ran while stopped");
    }
    stop.store(true, Relaxed);
    handle.join().unwrap();
}

/// Pins the calling thread to CPU 0 and, with `idle`, gives it the lowest
/// scheduling class there. Returns false if the OS refuses.
fn pin_to_cpu0(idle: bool) -> bool {
    // SAFETY: plain system calls on the calling thread, with a cpu_set_t
    // and sched_param we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        let pinned = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0;
        let param = libc::sched_param { sched_priority: 0 };
        pinned && (!idle || libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0)
    }
}

#[test]
fn a_worker_kept_off_the_cpus_does_not_hold_the_stop_and_still_stops() {
    let _serial = stops::serial();
    /// Busy threads sharing the worker's CPU.
    const HOGS: usize = 4;
    let rt = Runtime::builder().workers(1).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    let spins = Arc::new(AtomicU64::new(0));
    let demoted = Arc::new(AtomicU64::new(0));
    let (c, s, d) = (spins.clone(), stop.clone(), demoted.clone());
    #[allow(clippy::async_yields_async)]
    let spinner = rt.block_on(async {
        fibra_runtime::spawn(move || {
            // This worker runs at the lowest priority on CPU 0, beside
            // busy threads: the OS gives it almost no CPU.
            d.store(if pin_to_cpu0(true) { 1 } else { 2 }, Relaxed);
            while !s.load(Relaxed) {
                c.fetch_add(1, Relaxed);
                std::hint::spin_loop();
            }
            // SAFETY: back to the normal policy, on this thread.
            unsafe {
                let param = libc::sched_param { sched_priority: 0 };
                libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
            }
        })
    });
    while demoted.load(Relaxed) == 0 || spins.load(Relaxed) == 0 {
        std::thread::yield_now();
    }
    let hogs: Vec<_> = (0..HOGS)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                pin_to_cpu0(false);
                while !stop.load(Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let mut left = 0;
    for _ in 0..10 {
        let (seen, _, left_pending) = stopped_readings_and_left(std::slice::from_ref(&spins));
        // Left or stopped, the task never runs while the world is stopped:
        // the pending signal's handler stops it first.
        assert_eq!(seen[0].0, seen[0].1, "the task ran while stopped");
        left += left_pending;
    }
    stop.store(true, Relaxed);
    for hog in hogs {
        hog.join().unwrap();
    }
    spinner.join().unwrap();
    if demoted.load(Relaxed) == 1 {
        assert!(left > 0, "no stop left the descheduled worker pending");
    } else {
        eprintln!("cannot demote the worker thread: only the stops' soundness was checked");
    }
}
