//! Stop-the-world pauses under a server-like load, seen through `tracing`.
//!
//! Many parked green threads hold roots, a large live heap sits in the
//! collector's way, handler tasks allocate and replace cached objects
//! while cycles run, and one task spins in a loop that never calls the
//! runtime (it is stopped for each pause by a preemption signal;
//! `--no-spinner` leaves it out). Pause events (target `fibra_gc`, message `gc pause`)
//! go to a `tracing-subscriber`; the summary prints the pause histogram.
//!
//! `cargo run --release -p fibra-gc --example gc_pauses -- [TASKS] [LIVE_MIB] [SECONDS] [--print] [--no-spinner]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use fibra_gc::{Gc, GcCell, Trace};
use tracing_subscriber::prelude::*;

#[derive(Trace)]
struct Entry {
    key: u64,
    value: Vec<u64>,
    next: Option<Gc<Entry>>,
}

/// A chain of `n` entries (the live heap is made of these).
fn chain(n: usize, seed: u64) -> Gc<Entry> {
    let mut head = None;
    for i in 0..n {
        head = Some(Gc::new(Entry {
            key: seed + i as u64,
            value: vec![i as u64; 4],
            next: head,
        }));
    }
    head.expect("n > 0")
}

/// Parked tasks wait here until the run ends.
#[derive(Default)]
struct Gate {
    open: bool,
    waiters: Vec<Waker>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let tasks = nums.first().copied().unwrap_or(10_000) as usize;
    let live_mib = nums.get(1).copied().unwrap_or(64);
    let seconds = nums.get(2).copied().unwrap_or(3);
    let print = args.iter().any(|a| a == "--print");
    let spinner = !args.iter().any(|a| a == "--no-spinner");

    // Pause events are `info` events on target `fibra_gc`; a stop that a
    // worker held over 100 us is explained by a `debug` event on target
    // `fibra_runtime::safepoint` (which worker, task, state, how long).
    let pause_events = tracing_subscriber::filter::Targets::new()
        .with_target("fibra_gc", tracing::Level::INFO)
        .with_target("fibra_runtime::safepoint", tracing::Level::DEBUG);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_filter(pause_events)
                .with_filter(tracing_subscriber::filter::filter_fn(move |_| print)),
        )
        .init();

    // ~64 bytes per entry object plus its 32-byte vector.
    let entries = (live_mib as usize) << 20 >> 7;
    let live: Gc<GcCell<Vec<Gc<Entry>>>> = Gc::new(GcCell::new(
        (0..entries / 1000)
            .map(|i| chain(1000, i as u64 * 1000))
            .collect(),
    ));
    let gate = Arc::new(Mutex::new(Gate::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let before = fibra_gc::stats();
    let started = Instant::now();
    let rt = fibra_runtime::Runtime::builder().build().expect("runtime");
    // Spawn from inside the runtime, then drive the run from this OS thread
    // (sleeping in a green thread would hold its worker away from safepoints).
    let (parked, handlers) = rt.run({
        let (gate, stop, requests, live) =
            (gate.clone(), stop.clone(), requests.clone(), live.clone());
        move || {
            let parked: Vec<_> = (0..tasks)
                .map(|t| {
                    let gate = gate.clone();
                    fibra_runtime::spawn(move || {
                        let mine = chain(2, t as u64);
                        fibra_runtime::block_on(std::future::poll_fn(|cx| {
                            let mut g = gate.lock().unwrap();
                            if g.open {
                                Poll::Ready(())
                            } else {
                                g.waiters.push(cx.waker().clone());
                                Poll::Pending
                            }
                        }));
                        mine.key
                    })
                })
                .collect::<Vec<_>>();
            let handlers: Vec<_> = (0..4u64)
                .map(|h| {
                    let (stop, requests, live) = (stop.clone(), requests.clone(), live.clone());
                    fibra_runtime::spawn(move || {
                        let mut n = h;
                        while !stop.load(Ordering::Relaxed) {
                            // A "request": build a small response graph, cache one entry.
                            let response = chain(16, n);
                            let slot = (n as usize * 7919) % live.with(|v| v.len()).max(1);
                            if n % 64 == 0 {
                                live.with_mut(|v| v[slot] = chain(8, n));
                            }
                            std::hint::black_box(&response);
                            requests.fetch_add(1, Ordering::Relaxed);
                            n += 4;
                            if n % 8 == 0 {
                                fibra_runtime::yield_now();
                            }
                        }
                    })
                })
                .collect();
            (parked, handlers)
        }
    });
    let spins = Arc::new(AtomicU64::new(0));
    let spinning = spinner.then(|| {
        let (stop, spins) = (stop.clone(), spins.clone());
        rt.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                spins.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handlers.into_iter().chain(spinning) {
        h.join().unwrap();
    }
    let waiters = {
        let mut g = gate.lock().unwrap();
        g.open = true;
        std::mem::take(&mut g.waiters)
    };
    waiters.into_iter().for_each(Waker::wake);
    for p in parked {
        p.join().unwrap();
    }
    let s = fibra_gc::stats();
    let h = &s.pause_histogram;
    println!(
        "{tasks} parked tasks, ~{live_mib} MiB live, {} requests in {:.1} s",
        requests.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    let (signals, preempted) = fibra_runtime::debug::preemptions();
    println!(
        "spinner: {}; preemption signals sent {signals}, tasks stopped by them {preempted}",
        if spinner { "on" } else { "off" }
    );
    println!(
        "{} cycles, {} pauses: p50 {:.1} us, p99 {:.1} us, max {:.1} us; longest stop {:.1} us; heap {} MiB, live {} MiB",
        s.cycles - before.cycles,
        s.pauses - before.pauses,
        h.quantile(0.5) as f64 / 1e3,
        h.quantile(0.99) as f64 / 1e3,
        s.pause_max_ns as f64 / 1e3,
        s.stopping_max_ns as f64 / 1e3,
        s.heap_bytes >> 20,
        s.live_bytes >> 20
    );
    let us = |ns: u64| ns as f64 / 1e3;
    println!(
        "time to safepoint: p50 {:.1} us, p99 {:.1} us, max {:.1} us; work with the world stopped: p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        us(s.stopping_histogram.quantile(0.5)),
        us(s.stopping_histogram.quantile(0.99)),
        us(s.time_to_safepoint_max_ns),
        us(s.pause_work_histogram.quantile(0.5)),
        us(s.pause_work_histogram.quantile(0.99)),
        us(s.pause_work_max_ns),
    );
}
