//! HTTP/1.1 "Hello, World!" server for wrk, one green thread per
//! connection, requests parsed with httparse (fibra::net).
use std::io::{Read, Write};

use fibra_compare::{workers, Args};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

fn serve(mut stream: fibra::net::TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut start = 0;
        // Answer every complete (possibly pipelined) request in the buffer.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[start..filled]) {
                Ok(httparse::Status::Complete(len)) => {
                    start += len;
                    out.extend_from_slice(RESPONSE);
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => return Ok(()),
            }
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            return Ok(()); // request header larger than the buffer
        }
        stream.write_all(&out)?;
        out.clear();
    }
}

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
            let (stream, _) = listener.accept().unwrap();
            stream.set_nodelay(true).unwrap();
            drop(fibra::spawn(move || serve(stream)));
        }
    });
}
