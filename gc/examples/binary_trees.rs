//! binary-trees (the Benchmarks Game workload, sequential) on fibra's heap,
//! with `--box` for the same program on `Box`.
//!
//! `cargo run --release -p fibra-gc --example binary_trees -- 18 [--box]`
//!
//! Prints the usual check lines, then the wall time, peak RSS and GC stats.

use std::time::Instant;

use fibra_gc::{Gc, Trace};

#[derive(Trace)]
struct Node {
    left: Option<Gc<Node>>,
    right: Option<Gc<Node>>,
}

fn bottom_up(depth: u32) -> Gc<Node> {
    if depth == 0 {
        Gc::new(Node {
            left: None,
            right: None,
        })
    } else {
        Gc::new(Node {
            left: Some(bottom_up(depth - 1)),
            right: Some(bottom_up(depth - 1)),
        })
    }
}

fn check(n: &Node) -> u64 {
    1 + n.left.as_ref().map_or(0, |l| check(l)) + n.right.as_ref().map_or(0, |r| check(r))
}

struct BoxNode {
    left: Option<Box<BoxNode>>,
    right: Option<Box<BoxNode>>,
}

fn box_bottom_up(depth: u32) -> Box<BoxNode> {
    if depth == 0 {
        Box::new(BoxNode {
            left: None,
            right: None,
        })
    } else {
        Box::new(BoxNode {
            left: Some(box_bottom_up(depth - 1)),
            right: Some(box_bottom_up(depth - 1)),
        })
    }
}

fn box_check(n: &BoxNode) -> u64 {
    1 + n.left.as_ref().map_or(0, |l| box_check(l)) + n.right.as_ref().map_or(0, |r| box_check(r))
}

fn run<T>(max: u32, make: impl Fn(u32) -> T, count: impl Fn(&T) -> u64) {
    let stretch = max + 1;
    println!(
        "stretch tree of depth {stretch}\t check: {}",
        count(&make(stretch))
    );
    let long_lived = make(max);
    let mut d = 4;
    while d <= max {
        let iterations = 1u64 << (max - d + 4);
        let mut sum = 0;
        for _ in 0..iterations {
            sum += count(&make(d));
        }
        println!("{iterations}\t trees of depth {d}\t check: {sum}");
        d += 2;
    }
    println!(
        "long lived tree of depth {max}\t check: {}",
        count(&long_lived)
    );
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds of (this thread, the whole process).
fn cpu_seconds() -> (f64, f64) {
    let read = |who| {
        // SAFETY: `rusage` is plain integers, valid when zeroed.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage fills the struct we pass.
        unsafe { libc::getrusage(who, &mut u) };
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    };
    (read(libc::RUSAGE_THREAD), read(libc::RUSAGE_SELF))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let depth: u32 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(18)
        .max(6);
    let boxed = args.iter().any(|a| a == "--box");
    let start = Instant::now();
    if boxed {
        run(depth, box_bottom_up, |t| box_check(t));
    } else {
        run(depth, bottom_up, |t| check(t));
    }
    let elapsed = start.elapsed();
    let s = fibra_gc::stats();
    let (main_cpu, total_cpu) = cpu_seconds();
    eprintln!(
        "binary-trees depth {depth} ({}): {:.3} s wall, {main_cpu:.3} s main-thread CPU, {total_cpu:.3} s process CPU, peak RSS {} MiB",
        if boxed { "Box" } else { "fibra Gc" },
        elapsed.as_secs_f64(),
        peak_rss_kib() / 1024
    );
    if !boxed {
        eprintln!(
            "gc: {} cycles, {} pauses, pause max {} us, p50 {} us, p99 {} us, heap {} MiB",
            s.cycles,
            s.pauses,
            s.pause_max_ns / 1000,
            s.pause_histogram.quantile(0.5) / 1000,
            s.pause_histogram.quantile(0.99) / 1000,
            s.heap_bytes >> 20
        );
    }
}
