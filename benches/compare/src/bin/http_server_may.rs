//! HTTP/1.1 "Hello, World!" server for wrk: may_minihttp.
use std::io;

use fibra_compare::{workers, Args};
use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};

#[derive(Clone)]
struct Hello;

impl HttpService for Hello {
    fn call(&mut self, _req: Request, rsp: &mut Response) -> io::Result<()> {
        rsp.header("Content-Type: text/plain");
        rsp.body("Hello, World!");
        Ok(())
    }
}

struct HelloFactory;

impl HttpServiceFactory for HelloFactory {
    type Service = Hello;

    fn new_service(&self, _: usize) -> Hello {
        Hello
    }
}

fn main() {
    let args = Args::parse();
    let addr = args.str("addr", "127.0.0.1:8080");
    may::config().set_workers(workers(&args));
    let server = HelloFactory.start(addr.as_str()).unwrap();
    println!("listening on {addr}");
    server.join().unwrap();
}
