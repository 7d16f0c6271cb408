//! Many green threads incrementing one counter behind a lock (fibra::sync::Mutex).
use std::sync::Arc;
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

fn round(tasks: usize, per_task: usize) -> f64 {
    let counter = Arc::new(fibra::sync::Mutex::new(0usize));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let counter = counter.clone();
            fibra::spawn(move || {
                for _ in 0..per_task {
                    *counter.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let ns = ns_per(start.elapsed(), tasks * per_task);
    assert_eq!(*counter.lock().unwrap(), tasks * per_task);
    ns
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 2_000_000);
    let tasks = args.usize("tasks", 16);
    let rt = fibra::Runtime::builder()
        .workers(workers(&args))
        .build()
        .unwrap();
    let ns = rt.run(|| {
        round(tasks, n / tasks / 10);
        round(tasks, n / tasks)
    });
    report("mutex", "fibra", "time", ns, "ns/lock");
}
