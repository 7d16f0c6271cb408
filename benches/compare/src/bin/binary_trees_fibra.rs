//! binary-trees (the Benchmarks Game workload, sequential) on fibra's GC
//! heap: time and peak RSS.
use std::time::Instant;

use fibra::gc::{Gc, Trace};
use fibra_compare::{peak_rss_bytes, report, Args};

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

fn check(node: &Node) -> u64 {
    match (&node.left, &node.right) {
        (Some(l), Some(r)) => 1 + check(l) + check(r),
        _ => 1,
    }
}

fn trees(max_depth: u32) {
    let stretch = max_depth + 1;
    assert_eq!(check(&bottom_up(stretch)), (1 << (stretch + 1)) - 1);
    let long_lived = bottom_up(max_depth);
    let mut depth = 4;
    while depth <= max_depth {
        let iterations = 1u64 << (max_depth - depth + 4);
        let sum: u64 = (0..iterations).map(|_| check(&bottom_up(depth))).sum();
        assert_eq!(sum, iterations * ((1 << (depth + 1)) - 1));
        depth += 2;
    }
    assert_eq!(check(&long_lived), (1 << (max_depth + 1)) - 1);
}

fn main() {
    let args = Args::parse();
    let depth = args.usize("depth", 21).max(6) as u32;
    let start = Instant::now();
    fibra::run(|| trees(depth));
    let secs = start.elapsed().as_secs_f64();
    let name = format!("binary_trees_{depth}");
    report(&name, "fibra", "time", secs, "s");
    report(
        &name,
        "fibra",
        "peak_rss",
        peak_rss_bytes() as f64 / (1 << 20) as f64,
        "MiB",
    );
}
