//! thread-ring: 503 green threads in a ring pass a token over unbuffered
//! channels (fibra::chan, cap 0); ns per hop.
use std::time::Instant;

use fibra_compare::{ns_per, report, workers, Args};

const THREADS: usize = 503;

fn round(hops: usize) -> f64 {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS)
        .map(|_| fibra::chan::channel::<usize>(0))
        .unzip();
    let (done_tx, done_rx) = fibra::chan::channel::<()>(1);
    let ring: Vec<_> = rxs
        .into_iter()
        .enumerate()
        .map(|(i, rx)| {
            let next = txs[(i + 1) % THREADS].clone();
            let done = done_tx.clone();
            fibra::spawn(move || {
                while let Ok(token) = rx.recv() {
                    if token == 0 {
                        done.send(()).unwrap();
                    } else {
                        next.send(token - 1).unwrap();
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    txs[0].send(hops).unwrap();
    done_rx.recv().unwrap();
    let ns = ns_per(start.elapsed(), hops);
    for tx in &txs {
        tx.close();
    }
    for h in ring {
        h.join().unwrap();
    }
    ns
}

fn main() {
    let args = Args::parse();
    let n = args.usize("n", 2_000_000);
    let w = workers(&args);
    let rt = fibra::Runtime::builder().workers(w).build().unwrap();
    let ns = rt.run(|| {
        round(n / 10);
        round(n)
    });
    report(&format!("thread_ring_{w}w"), "fibra", "time", ns, "ns/hop");
}
