//! TCP echo server, one green thread per connection (fibra::net).
use std::io::{Read, Write};

use fibra_compare::{workers, Args};

fn main() {
    let args = Args::parse();
    let addr = args.str("addr", "127.0.0.1:0");
    let rt = fibra::Runtime::builder()
        .workers(workers(&args))
        .build()
        .unwrap();
    rt.run(|| {
        let listener = fibra::net::TcpListener::bind(addr.as_str()).unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        loop {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_nodelay(true).unwrap();
            drop(fibra::spawn(move || {
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
            }));
        }
    });
}
