//! A server-shaped program that prints fibra's runtime metrics every second:
//! a TCP echo server (one green thread per connection) plus a green thread
//! that reads `fibra::stats()` on a `Ticker`.
//!
//! Try it: `cargo run --release --example metrics -- 127.0.0.1:7070`, then
//! in another terminal `nc 127.0.0.1 7070` and type lines; the metrics show
//! the connections' green threads, parks, steals and stacks.

use std::io::{Read, Write};
use std::time::Duration;

fn serve(mut stream: fibra::net::TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7070".into());
    fibra::run(move || {
        let listener = fibra::net::TcpListener::bind(addr.as_str()).expect("bind");
        println!(
            "listening on {}",
            listener.local_addr().expect("local address")
        );
        fibra::spawn(|| {
            let ticker = fibra::time::Ticker::new(Duration::from_secs(1));
            for _ in ticker.receiver().iter() {
                let s = fibra::stats();
                let run: u64 = s.workers.iter().map(|w| w.tasks_run).sum();
                let steals: u64 = s.workers.iter().map(|w| w.steals).sum();
                let green: u64 = s.workers.iter().map(|w| w.green_threads).sum();
                println!(
                    "tasks spawned {} | green threads {} | runs {} | steals {} | asleep {}/{} | \
                     stacks {} in use, {} pooled, {} KiB resident",
                    s.tasks_spawned,
                    green,
                    run,
                    steals,
                    s.sleeping_workers,
                    s.workers.len(),
                    s.stacks.in_use,
                    s.stacks.pooled,
                    s.stacks.bytes_committed / 1024
                );
            }
        });
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    fibra::spawn(move || serve(stream));
                }
                Err(err) => eprintln!("accept: {err}"),
            }
        }
    });
}
