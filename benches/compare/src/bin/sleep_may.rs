//! How late `sleep(1ms)` wakes with 10k sleepers (may::coroutine::sleep).
use std::time::{Duration, Instant};

use fibra_compare::{quantile, report, workers, Args};

fn main() {
    let args = Args::parse();
    let tasks = args.usize("tasks", 10_000);
    let rounds = args.usize("rounds", 5);
    may::config().set_workers(workers(&args));
    let mut late: Vec<f64> = may::go!(move || {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                may::go!(move || {
                    (0..rounds)
                        .map(|_| {
                            let t = Instant::now();
                            may::coroutine::sleep(Duration::from_millis(1));
                            (t.elapsed().as_nanos() as f64 - 1e6) / 1e3
                        })
                        .collect::<Vec<f64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
    .join()
    .unwrap();
    late.sort_by(f64::total_cmp);
    report("sleep_1ms", "may", "p50_late", quantile(&late, 0.5), "us");
    report("sleep_1ms", "may", "p99_late", quantile(&late, 0.99), "us");
}
