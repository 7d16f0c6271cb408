fn main() {
    let workers: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(1);
    let rt = fibra::Runtime::builder().workers(workers).build().unwrap();
    let n: u64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(2_000_000);
    let t = rt.run(move || {
        let (ping_tx, ping_rx) = fibra::chan::channel::<u64>(0);
        let (pong_tx, pong_rx) = fibra::chan::channel::<u64>(0);
        let echo = fibra::spawn(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v).unwrap();
            }
        });
        let start = std::time::Instant::now();
        for i in 0..n {
            ping_tx.send(i).unwrap();
            pong_rx.recv().unwrap();
        }
        let t = start.elapsed();
        drop(ping_tx);
        echo.join().unwrap();
        t
    });
    println!("{:.1} ns/round trip", t.as_nanos() as f64 / n as f64);
    let y = yield_probe(&rt, n);
    println!("{y:.1} ns per yield pair (two switches), same runtime");
}

#[allow(dead_code)]
fn yield_probe(rt: &fibra::Runtime, n: u64) -> f64 {
    rt.run(move || {
        let other = fibra::spawn(move || {
            for _ in 0..n {
                fibra::yield_now();
            }
        });
        let start = std::time::Instant::now();
        for _ in 0..n {
            fibra::yield_now();
        }
        let t = start.elapsed();
        other.join().unwrap();
        t.as_nanos() as f64 / n as f64
    })
}
