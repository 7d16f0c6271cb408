//! The load generator for the echo row, the same for every server: one OS
//! thread (tokio current_thread) driving `-conns` connections, each sending
//! `-size` bytes and reading them back in a loop. Prints round trips/s.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibra_compare::{report, Args};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let args = Args::parse();
    let addr = args.str("addr", "127.0.0.1:7000");
    let conns = args.usize("conns", 64);
    let secs = args.usize("secs", 5);
    let size = args.usize("size", 64);
    let label = args.str("runtime", "unknown");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rate = rt.block_on(async move {
        let counting = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let total = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let mut stream = tokio::net::TcpStream::connect(addr.as_str()).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (counting, stop, total) = (counting.clone(), stop.clone(), total.clone());
            tasks.push(tokio::spawn(async move {
                let out = vec![7u8; size];
                let mut back = vec![0u8; size];
                while !stop.load(Ordering::Relaxed) {
                    stream.write_all(&out).await.unwrap();
                    stream.read_exact(&mut back).await.unwrap();
                    if counting.load(Ordering::Relaxed) {
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await; // warm-up
        let start = Instant::now();
        counting.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(secs as u64)).await;
        counting.store(false, Ordering::Relaxed);
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        total.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
    });
    report("tcp_echo", &label, "throughput", rate, "rt/s");
}
