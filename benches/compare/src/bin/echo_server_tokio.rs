//! TCP echo server, one task per connection (tokio).
use fibra_compare::{workers, Args};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let args = Args::parse();
    let addr = args.str("addr", "127.0.0.1:0");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers(&args))
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr.as_str()).await.unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
}
