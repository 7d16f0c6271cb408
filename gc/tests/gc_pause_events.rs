//! Every stop-the-world pause emits a `gc pause` event on target `fibra_gc`
//! with `phase`, `pause_ns` and `cycle`, and lands in the stats.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

#[derive(Default, Debug, Clone)]
struct Pause {
    message: String,
    phase: String,
    pause_ns: Option<u64>,
    cycle: Option<u64>,
}

impl Visit for Pause {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "phase" => self.phase = format!("{value:?}").trim_matches('"').to_string(),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "phase" {
            self.phase = value.to_string();
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "pause_ns" => self.pause_ns = Some(value),
            "cycle" => self.cycle = Some(value),
            _ => {}
        }
    }
}

struct Collect(Arc<Mutex<Vec<Pause>>>);

impl<S: Subscriber> Layer<S> for Collect {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "fibra_gc" {
            let mut p = Pause::default();
            event.record(&mut p);
            if p.message == "gc pause" {
                self.0.lock().unwrap().push(p);
            }
        }
    }
}

#[test]
fn pauses_are_traced_and_counted() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    tracing_subscriber::registry()
        .with(Collect(seen.clone()))
        .init();
    let before = fibra_gc::stats();
    let rt = fibra_runtime::Runtime::builder()
        .workers(2)
        .build()
        .unwrap();
    rt.run(|| {
        let h = fibra_runtime::spawn(|| {
            let keep: Vec<_> = (0..1000u64).map(fibra_gc::Gc::new).collect();
            fibra_gc::collect();
            keep.len()
        });
        fibra_gc::collect();
        assert_eq!(h.join().unwrap(), 1000);
    });
    fibra_gc::collect();
    let after = fibra_gc::stats();
    let pauses = seen.lock().unwrap().clone();
    let cycles = after.cycles - before.cycles;
    assert!(cycles >= 2);
    assert_eq!(pauses.len() as u64, after.pauses - before.pauses);
    assert_eq!(
        pauses.len() as u64,
        2 * cycles,
        "two pauses per cycle: {pauses:?}"
    );
    for p in &pauses {
        assert!(
            p.phase == "mark_start" || p.phase == "mark_termination",
            "{p:?}"
        );
        assert!(p.pause_ns.unwrap() > 0);
        assert!(p.pause_ns.unwrap() <= after.pause_max_ns);
        let c = p.cycle.unwrap();
        assert!(c > before.cycles && c <= after.cycles, "{p:?}");
    }
    assert_eq!(after.pause_histogram.count(), after.pauses);
    assert!(after.pause_total_ns >= pauses.iter().map(|p| p.pause_ns.unwrap()).sum::<u64>());
}
