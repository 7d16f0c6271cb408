//! A TCP echo server: one green thread per connection, written in plain
//! blocking style.
//!
//! ```text
//! cargo run --release --example echo -- 127.0.0.1:7878
//! ```
//!
//! Prints `listening on ADDR` once bound (port 0 picks a free port).

use std::io::{Read, Write};

use fibra::net::{TcpListener, TcpStream};

fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = [0u8; 16 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if let Err(err) = conn.write_all(&buf[..n]) {
                    tracing::debug!("write failed: {err}");
                    return;
                }
            }
            Err(err) => {
                tracing::debug!("read failed: {err}");
                return;
            }
        }
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".to_string());
    fibra::run(move || {
        let listener = match TcpListener::bind(addr.as_str()) {
            Ok(l) => l,
            Err(err) => {
                eprintln!("cannot listen on {addr}: {err}");
                std::process::exit(1);
            }
        };
        println!("listening on {}", listener.local_addr().unwrap());
        for conn in listener.incoming() {
            match conn {
                Ok(conn) => {
                    fibra::spawn(move || serve(conn));
                }
                Err(err) => eprintln!("accept failed: {err}"),
            }
        }
    });
}
