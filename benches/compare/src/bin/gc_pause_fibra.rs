//! Stop-the-world pauses of fibra's collector with a live heap of trees,
//! 10k parked green threads, a mutator churning short-lived trees and
//! (`spin=1`, the default) one task spinning in a loop that never calls the
//! runtime, which each pause must preempt.
//! Pauses are read from the `fibra_gc` "gc pause" tracing events;
//! `-explain=1` prints each one, and why a slow stop was slow, on stderr.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibra::gc::{Gc, Trace};
use fibra_compare::{quantile, report, workers, Args, Gate};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Trace)]
struct Node {
    left: Option<Gc<Node>>,
    right: Option<Gc<Node>>,
    value: u64,
}

fn tree(depth: u32) -> Gc<Node> {
    if depth == 0 {
        Gc::new(Node {
            left: None,
            right: None,
            value: 1,
        })
    } else {
        Gc::new(Node {
            left: Some(tree(depth - 1)),
            right: Some(tree(depth - 1)),
            value: depth as u64,
        })
    }
}

fn sum(node: &Node) -> u64 {
    node.value
        + node.left.as_ref().map_or(0, |n| sum(n))
        + node.right.as_ref().map_or(0, |n| sum(n))
}

/// Collects the `pause_ns` field of every "gc pause" event; with
/// `explain`, prints every event it sees (pauses and slow stops) on stderr.
struct Pauses {
    pauses: Arc<Mutex<Vec<u64>>>,
    explain: bool,
}

/// An event's fields as text.
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0 += &format!(" {}={:?}", field.name(), value);
    }
}

struct PauseField(Option<u64>);

impl Visit for PauseField {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "pause_ns" {
            self.0 = Some(value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "pause_ns" {
            self.0 = Some(value as u64);
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> Layer<S> for Pauses {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if self.explain {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            eprintln!("{}{}", event.metadata().target(), fields.0);
        }
        let mut field = PauseField(None);
        event.record(&mut field);
        if let Some(ns) = field.0 {
            self.pauses.lock().unwrap().push(ns);
        }
    }
}

fn main() {
    let args = Args::parse();
    let live_mb = args.usize("live_mb", 256);
    let tasks = args.usize("tasks", 10_000);
    let secs = args.usize("secs", 3);
    let spin = args.usize("spin", 1) != 0;
    // `explain=1`: print each pause and each slow stop's explanation
    // (which worker held it, and why) on stderr.
    let explain = args.usize("explain", 0) != 0;
    let pauses = Arc::new(Mutex::new(Vec::new()));
    let only_gc = tracing_subscriber::filter::filter_fn(move |m| {
        m.target() == "fibra_gc" || (explain && m.target() == "fibra_runtime::safepoint")
    });
    let layer = Pauses {
        pauses: pauses.clone(),
        explain,
    };
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(only_gc));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let rt = fibra::Runtime::builder()
        .workers(workers(&args))
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinner = spin.then(|| {
        let stop = stop.clone();
        rt.spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        })
    });
    rt.run(|| {
        // About 1 MiB per depth-15 tree (32,767 nodes).
        let live: Vec<Gc<Node>> = (0..live_mb).map(|_| tree(15)).collect();
        let gate = Arc::new(Gate::new());
        let parked: Vec<_> = (0..tasks)
            .map(|_| {
                let gate = gate.clone();
                fibra::spawn(move || fibra::block_on(gate.wait()))
            })
            .collect();
        pauses.lock().unwrap().clear();
        let end = Instant::now() + Duration::from_secs(secs as u64);
        let mut checksum = 0u64;
        while Instant::now() < end {
            for _ in 0..100 {
                checksum = checksum.wrapping_add(sum(&tree(6)));
            }
        }
        gate.open();
        for p in parked {
            p.join().unwrap();
        }
        assert!(checksum > 0 && sum(&live[0]) > 0);
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(s) = spinner {
        s.join().unwrap();
    }
    let mut us: Vec<f64> = pauses
        .lock()
        .unwrap()
        .iter()
        .map(|&ns| ns as f64 / 1e3)
        .collect();
    us.sort_by(f64::total_cmp);
    assert!(!us.is_empty(), "no gc pause was recorded while churning");
    report("gc_pause", "fibra", "p50", quantile(&us, 0.5), "us");
    report("gc_pause", "fibra", "p99", quantile(&us, 0.99), "us");
    report("gc_pause", "fibra", "max", *us.last().unwrap(), "us");
    report("gc_pause", "fibra", "count", us.len() as f64, "pauses");
}
