//! The GC latency benchmark (gc-latency-experiment): keep a window of
//! 200,000 messages of 1 KiB in the heap, push 1,000,000 messages each
//! replacing the oldest, and report the worst time of a single push.
//!
//! `cargo run --release -p fibra-gc --example gc_latency [-- WINDOW PUSHES]`

use std::time::{Duration, Instant};

use fibra_gc::{Gc, GcCell, Trace};

/// A message: 1 KiB of bytes (noscan).
type Message = [u8; 1024];

#[derive(Trace)]
struct Window {
    slots: Vec<GcCell<Option<Gc<Message>>>>,
}

fn message(n: usize) -> Gc<Message> {
    let mut m = [0u8; 1024];
    m[..8].copy_from_slice(&(n as u64).to_le_bytes());
    m[1023] = n as u8;
    Gc::new(m)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let window = args.first().copied().unwrap_or(200_000);
    let pushes = args.get(1).copied().unwrap_or(1_000_000);
    let w = Gc::new(Window {
        slots: (0..window).map(|_| GcCell::new(None)).collect(),
    });
    let mut worst = Duration::ZERO;
    let mut slow = 0u64;
    let start = Instant::now();
    for i in 0..pushes {
        let t = Instant::now();
        w.slots[i % window].set(Some(message(i)));
        let d = t.elapsed();
        worst = worst.max(d);
        if d > Duration::from_micros(100) {
            slow += 1;
        }
    }
    let total = start.elapsed();
    // Check the window's contents.
    for (k, slot) in w.slots.iter().enumerate() {
        let m = slot.get().expect("filled");
        let n = u64::from_le_bytes(m[..8].try_into().unwrap()) as usize;
        assert_eq!(n % window, k);
        assert_eq!(m[1023], n as u8);
    }
    let s = fibra_gc::stats();
    println!(
        "gc-latency: window {window}, {pushes} pushes in {:.3} s; worst push {:.3} ms; pushes > 100 us: {slow}",
        total.as_secs_f64(),
        worst.as_secs_f64() * 1e3
    );
    println!(
        "gc: {} cycles, pauses p50 {} us, p99 {} us, max {} us, heap {} MiB, live {} MiB",
        s.cycles,
        s.pause_histogram.quantile(0.5) / 1000,
        s.pause_histogram.quantile(0.99) / 1000,
        s.pause_max_ns / 1000,
        s.heap_bytes >> 20,
        s.live_bytes >> 20
    );
}
