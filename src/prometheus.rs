//! `fibra::debug::prometheus()`: the runtime's and the collector's figures
//! in the Prometheus text exposition format (version 0.0.4).
//!
//! Every family has a `# HELP` and a `# TYPE` line; counters end in
//! `_total`; times are in seconds and sizes in bytes, as Prometheus names
//! them; per-worker families carry a `worker="N"` label (the worker's
//! index in [`stats`](crate::stats)`().workers`).

use std::fmt::Write as _;

/// Bucket bounds of the pause histograms, in seconds (1 µs to 1 s).
const PAUSE_BOUNDS: [f64; 19] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0,
];

/// The current runtime's figures (every live runtime's outside one, as
/// [`stats`](crate::stats)) and the collector's, in the Prometheus text
/// format, ready to serve at `/metrics`.
///
/// The families:
///
/// | name | type | what |
/// |---|---|---|
/// | `fibra_runtimes` | gauge | runtimes in the snapshot |
/// | `fibra_tasks_spawned_total` | counter | tasks spawned |
/// | `fibra_async_tasks` | gauge | async tasks alive |
/// | `fibra_injector_tasks` | gauge | tasks in the global queue |
/// | `fibra_sleeping_workers` | gauge | workers asleep |
/// | `fibra_blocking_threads` | gauge | blocking-pool threads |
/// | `fibra_sockets` | gauge | sockets registered with the netpoller |
/// | `fibra_stacks_mapped`, `_in_use`, `_pooled` | gauge | green-thread stacks |
/// | `fibra_stacks_reserved_bytes`, `fibra_stacks_committed_bytes` | gauge | their memory |
/// | `fibra_preemption_signals_total`, `fibra_preemptions_total` | counter | preemption signals sent, tasks stopped by one |
/// | `fibra_worker_tasks_run_total{worker}` | counter | tasks resumed or polled |
/// | `fibra_worker_steals_total{worker}` | counter | successful steals |
/// | `fibra_worker_remote_wakes_total{worker}` | counter | wake-ups sent to green threads pinned to other workers |
/// | `fibra_worker_sleeps_total{worker}` | counter | times asleep |
/// | `fibra_worker_idle_seconds_total{worker}` | counter | time asleep |
/// | `fibra_worker_green_threads{worker}` | gauge | started green threads pinned there |
/// | `fibra_worker_local_queue{worker}`, `fibra_worker_inbox{worker}` | gauge | queued tasks |
/// | `fibra_worker_timers{worker}` | gauge | timers in its heap |
/// | `fibra_gc_cycles_total` | counter | completed collections |
/// | `fibra_gc_heap_bytes`, `fibra_gc_live_bytes`, `fibra_gc_goal_bytes` | gauge | heap size, live after the last cycle, next trigger |
/// | `fibra_gc_freed_objects_total` | counter | objects freed |
/// | `fibra_gc_pause_seconds` | histogram | stop-the-world pauses |
/// | `fibra_gc_stopping_seconds` | histogram | time each pause took to stop the world |
/// | `fibra_gc_pause_max_seconds` | gauge | longest pause |
///
/// The histograms' buckets are cumulative counts of the collector's own
/// (logarithmic, four per power of two) buckets that lie wholly below each
/// bound, so a count is exact or lags by the pauses of one straddling
/// bucket; `_count` and `_sum` are exact.
///
/// ```
/// fibra::run(|| fibra::spawn(|| ()).join().unwrap());
/// fibra::gc::collect();
/// let text = fibra::debug::prometheus();
/// assert!(text.contains("# TYPE fibra_tasks_spawned_total counter"));
/// assert!(text.contains("# TYPE fibra_gc_pause_seconds histogram"));
/// assert!(text.contains("fibra_gc_pause_seconds_bucket{le=\"+Inf\"}"));
/// assert!(text.lines().any(|l| l.starts_with("fibra_gc_heap_bytes ")));
/// ```
pub fn prometheus() -> String {
    let rt = crate::stats();
    let gc = crate::gc::stats();
    let (signals, stopped) = fibra_runtime::debug::preemptions();
    let mut out = String::with_capacity(8 << 10);
    let o = &mut out;

    gauge(
        o,
        "fibra_runtimes",
        "Runtimes in this snapshot.",
        rt.runtimes as u64,
    );
    counter(
        o,
        "fibra_tasks_spawned_total",
        "Tasks spawned since the runtimes started.",
        rt.tasks_spawned,
    );
    gauge(
        o,
        "fibra_async_tasks",
        "Async tasks alive.",
        rt.async_tasks as u64,
    );
    gauge(
        o,
        "fibra_injector_tasks",
        "Tasks waiting in the global injector queue.",
        rt.injector as u64,
    );
    gauge(
        o,
        "fibra_sleeping_workers",
        "Workers asleep right now.",
        rt.sleeping_workers as u64,
    );
    gauge(
        o,
        "fibra_blocking_threads",
        "Threads of the blocking pool, busy or idle.",
        rt.blocking_threads as u64,
    );
    gauge(
        o,
        "fibra_sockets",
        "Sockets registered with the netpoller.",
        rt.sockets as u64,
    );
    let s = &rt.stacks;
    gauge(
        o,
        "fibra_stacks_mapped",
        "Green-thread stacks and segments mapped.",
        s.mapped as u64,
    );
    gauge(
        o,
        "fibra_stacks_in_use",
        "Stacks and segments of started, unfinished green threads.",
        s.in_use as u64,
    );
    gauge(
        o,
        "fibra_stacks_pooled",
        "Stacks waiting in a pool for reuse.",
        s.pooled as u64,
    );
    gauge(
        o,
        "fibra_stacks_reserved_bytes",
        "Address space reserved by stacks, guard pages included.",
        s.bytes_reserved as u64,
    );
    gauge(
        o,
        "fibra_stacks_committed_bytes",
        "Resident memory of all stacks.",
        s.bytes_committed as u64,
    );
    counter(
        o,
        "fibra_preemption_signals_total",
        "Signals sent to stop running workers.",
        signals,
    );
    counter(
        o,
        "fibra_preemptions_total",
        "Tasks stopped where they were by a preemption signal.",
        stopped,
    );

    type Field = fn(&fibra_runtime::WorkerStats) -> f64;
    let per_worker: [(&str, &str, &str, Field); 9] = [
        (
            "fibra_worker_tasks_run_total",
            "counter",
            "Tasks resumed or polled by the worker.",
            |w| w.tasks_run as f64,
        ),
        (
            "fibra_worker_steals_total",
            "counter",
            "Successful steals from peers or the injector.",
            |w| w.steals as f64,
        ),
        (
            "fibra_worker_remote_wakes_total",
            "counter",
            "Wake-ups that tasks on the worker sent to green threads pinned to other workers.",
            |w| w.remote_wakes as f64,
        ),
        (
            "fibra_worker_sleeps_total",
            "counter",
            "Times the worker went to sleep.",
            |w| w.sleeps as f64,
        ),
        (
            "fibra_worker_idle_seconds_total",
            "counter",
            "Time the worker spent asleep.",
            |w| w.idle_ns as f64 / 1e9,
        ),
        (
            "fibra_worker_green_threads",
            "gauge",
            "Started green threads pinned to the worker.",
            |w| w.green_threads as f64,
        ),
        (
            "fibra_worker_local_queue",
            "gauge",
            "Movable tasks in the worker's stealable queue.",
            |w| w.local_queue as f64,
        ),
        (
            "fibra_worker_inbox",
            "gauge",
            "Pinned wake-ups from other threads not yet taken.",
            |w| w.inbox as f64,
        ),
        (
            "fibra_worker_timers",
            "gauge",
            "Timers in the worker's heap.",
            |w| w.timers as f64,
        ),
    ];
    for (name, ty, help, field) in per_worker {
        header(o, name, ty, help);
        for (i, w) in rt.workers.iter().enumerate() {
            let _ = writeln!(o, "{name}{{worker=\"{i}\"}} {}", number(field(w)));
        }
    }

    counter(
        o,
        "fibra_gc_cycles_total",
        "Completed garbage collection cycles.",
        gc.cycles,
    );
    gauge(
        o,
        "fibra_gc_heap_bytes",
        "Bytes in the heap's spans.",
        gc.heap_bytes,
    );
    gauge(
        o,
        "fibra_gc_live_bytes",
        "Bytes found live by the last cycle.",
        gc.live_bytes,
    );
    gauge(
        o,
        "fibra_gc_goal_bytes",
        "Heap size that starts the next cycle (0: collection off).",
        gc.goal_bytes,
    );
    counter(
        o,
        "fibra_gc_freed_objects_total",
        "Objects freed by sweeping.",
        gc.freed_objects,
    );
    histogram(
        o,
        "fibra_gc_pause_seconds",
        "Stop-the-world pause lengths.",
        &gc.pause_histogram.buckets(),
        gc.pauses,
        gc.pause_total_ns as f64 / 1e9,
    );
    let stopping = gc.stopping_histogram.buckets();
    let stopping_sum: f64 = stopping
        .iter()
        .map(|&(limit, n)| n as f64 * limit as f64 / 1e9)
        .sum();
    histogram(
        o,
        "fibra_gc_stopping_seconds",
        "Time each pause spent stopping the world (bucket upper bounds summed).",
        &stopping,
        gc.stopping_histogram.count(),
        stopping_sum,
    );
    header(
        o,
        "fibra_gc_pause_max_seconds",
        "gauge",
        "Longest stop-the-world pause.",
    );
    let _ = writeln!(
        o,
        "fibra_gc_pause_max_seconds {}",
        number(gc.pause_max_ns as f64 / 1e9)
    );
    out
}

fn header(o: &mut String, name: &str, ty: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {ty}");
}

fn gauge(o: &mut String, name: &str, help: &str, v: u64) {
    header(o, name, "gauge", help);
    let _ = writeln!(o, "{name} {v}");
}

fn counter(o: &mut String, name: &str, help: &str, v: u64) {
    header(o, name, "counter", help);
    let _ = writeln!(o, "{name} {v}");
}

/// A histogram family from the collector's buckets (`(exclusive upper
/// bound in ns, count)`).
fn histogram(o: &mut String, name: &str, help: &str, buckets: &[(u64, u64)], count: u64, sum: f64) {
    header(o, name, "histogram", help);
    for bound in PAUSE_BOUNDS {
        // Values in a bucket are below its limit, so a bucket whose limit
        // is at most `bound` + 1 ns holds only values <= `bound`.
        let bound_ns = (bound * 1e9).round() as u64;
        let n: u64 = buckets
            .iter()
            .filter(|&&(limit, _)| limit <= bound_ns + 1)
            .map(|&(_, n)| n)
            .sum();
        let _ = writeln!(o, "{name}_bucket{{le=\"{}\"}} {n}", number(bound));
    }
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(o, "{name}_sum {}", number(sum));
    let _ = writeln!(o, "{name}_count {count}");
}

/// A sample value as Prometheus reads it: decimal, integers without a
/// fraction, infinities as `+Inf`/`-Inf`.
fn number(v: f64) -> String {
    match v {
        f64::INFINITY => "+Inf".to_string(),
        f64::NEG_INFINITY => "-Inf".to_string(),
        _ => format!("{v}"),
    }
}
