//! How late `sleep(1ms)` wakes with 10k sleepers (fibra::time::sleep).
use std::time::{Duration, Instant};

use fibra_compare::{quantile, report, workers, Args};

fn main() {
    let args = Args::parse();
    let tasks = args.usize("tasks", 10_000);
    let rounds = args.usize("rounds", 5);
    let rt = fibra::Runtime::builder()
        .workers(workers(&args))
        .build()
        .unwrap();
    let mut late: Vec<f64> = rt.run(|| {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                fibra::spawn(move || {
                    (0..rounds)
                        .map(|_| {
                            let t = Instant::now();
                            fibra::time::sleep(Duration::from_millis(1));
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
    });
    late.sort_by(f64::total_cmp);
    assert!(late[0] >= 0.0, "a sleep returned early");
    report("sleep_1ms", "fibra", "p50_late", quantile(&late, 0.5), "us");
    report(
        "sleep_1ms",
        "fibra",
        "p99_late",
        quantile(&late, 0.99),
        "us",
    );
}
