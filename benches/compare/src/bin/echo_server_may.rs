//! TCP echo server, one coroutine per connection (may::net).
use std::io::{Read, Write};

use fibra_compare::{workers, Args};

fn main() {
    let args = Args::parse();
    let addr = args.str("addr", "127.0.0.1:0");
    may::config().set_workers(workers(&args));
    may::go!(move || {
        let listener = may::net::TcpListener::bind(addr.as_str()).unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            stream.set_nodelay(true).unwrap();
            may::go!(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    })
    .join()
    .unwrap();
}
