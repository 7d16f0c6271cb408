//! A Redis-protocol (RESP2) key-value server: one green thread per
//! connection, written in plain blocking style.
//!
//! ```text
//! cargo run --release --example kv -- 127.0.0.1:6380
//! redis-cli -p 6380 set greeting hello ex 60
//! redis-cli -p 6380 get greeting
//! redis-cli -p 6380 ttl greeting
//! redis-benchmark -p 6380 -q -n 200000 -c 50 -P 16 -t set,get
//! ```
//!
//! Prints `listening on ADDR` once bound (port 0 picks a free port).
//! Commands: PING, ECHO, GET, SET (EX/PX, NX/XX), DEL, EXISTS, INCR, MGET,
//! MSET, EXPIRE, TTL, DBSIZE, FLUSHALL, plus SELECT 0, QUIT and the CONFIG
//! GET / COMMAND probes that clients send on connect. Pipelined commands are
//! answered with one write per read. Unknown commands get an `-ERR` reply;
//! a malformed frame gets `-ERR Protocol error` and the connection is closed.
//! Values live in fibra's GC heap; the collector's pauses are logged
//! (`RUST_LOG`, default `info,fibra_gc=debug`). With `FIBRA_GC_CHURN=1` every
//! command also allocates garbage on the GC heap and refreshes a bounded ring
//! of recent objects (see `../shared/gc_churn.rs`; `benches/soak.sh` uses it).
//! Ctrl-C (or SIGTERM) prints one line to stdout,
//! `gc pauses: n=… p50=…us p99=…us max=…us stopping_p99=…us …`, and exits
//! (nothing is persisted, so there is nothing to finish).

#[path = "../shared/gc_churn.rs"]
mod gc_churn;
#[path = "../shared/recv_buf.rs"]
mod recv_buf;
mod resp;
mod store;

use std::io::{self, Write};
use std::time::Duration;

use gc_churn::Churn;
use recv_buf::RecvBuf;

use fibra::net::{TcpListener, TcpStream};

use store::Store;

fn serve(stream: TcpStream, store: &Store, churn: Option<&Churn>) -> io::Result<()> {
    let mut inbuf = RecvBuf::new(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        if inbuf.read_from(&stream)? == 0 {
            return Ok(());
        }
        let mut start = 0;
        let mut quit = false;
        let data = inbuf.data();
        while start < data.len() {
            match resp::parse_command(&data[start..]) {
                Ok(Some((args, used))) => {
                    start += used;
                    if let Some(churn) = churn {
                        std::hint::black_box(churn.request());
                    }
                    if !args.is_empty() && execute(store, &args, &mut out) == Flow::Quit {
                        quit = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(resp::ProtocolError(why)) => {
                    out.extend_from_slice(b"-ERR Protocol error: ");
                    out.extend_from_slice(why.as_bytes());
                    out.extend_from_slice(b"\r\n");
                    quit = true;
                    break;
                }
            }
        }
        inbuf.consume(start);
        if !out.is_empty() {
            (&stream).write_all(&out)?;
            out.clear();
        }
        if quit {
            return Ok(());
        }
    }
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

fn execute(store: &Store, args: &[&[u8]], out: &mut Vec<u8>) -> Flow {
    let mut name = [0u8; 16];
    let cmd = args[0];
    let upper = if cmd.len() <= name.len() {
        name[..cmd.len()].copy_from_slice(cmd);
        name[..cmd.len()].make_ascii_uppercase();
        &name[..cmd.len()]
    } else {
        cmd
    };
    let argc = args.len();
    match (upper, argc) {
        (b"PING", 1) => simple(out, "PONG"),
        (b"PING", 2) | (b"ECHO", 2) => bulk(out, Some(args[1])),
        (b"GET", 2) => store.get(args[1], |v| bulk(out, v)),
        (b"SET", 3..) => set(store, args, out),
        (b"DEL", 2..) => integer(
            out,
            args[1..].iter().filter(|k| store.remove(k)).count() as i64,
        ),
        (b"EXISTS", 2..) => integer(
            out,
            args[1..].iter().filter(|k| store.exists(k)).count() as i64,
        ),
        (b"INCR", 2) => match store.incr(args[1]) {
            Ok(n) => integer(out, n),
            Err(msg) => error(out, msg),
        },
        (b"MGET", 2..) => {
            array_len(out, argc - 1);
            for key in &args[1..] {
                store.get(key, |v| bulk(out, v));
            }
        }
        (b"MSET", _) if argc >= 3 && argc % 2 == 1 => {
            for pair in args[1..].chunks(2) {
                store.set(pair[0], pair[1], None);
            }
            simple(out, "OK")
        }
        (b"EXPIRE", 3) => match parse_int(args[2]) {
            Some(secs) => integer(out, store.expire(args[1], secs.saturating_mul(1000)) as i64),
            None => error(out, "ERR value is not an integer or out of range"),
        },
        (b"TTL", 2) => integer(out, store.ttl_secs(args[1])),
        (b"DBSIZE", 1) => integer(out, store.len() as i64),
        (b"FLUSHALL", 1) | (b"FLUSHALL", 2) => {
            store.clear();
            simple(out, "OK")
        }
        (b"SELECT", 2) if args[1] == b"0" => simple(out, "OK"),
        (b"SELECT", 2) => error(out, "ERR DB index is out of range"),
        (b"QUIT", _) => {
            simple(out, "OK");
            return Flow::Quit;
        }
        // redis-benchmark and redis-cli ask for these on connect.
        (b"CONFIG", 3) if args[1].eq_ignore_ascii_case(b"GET") => {
            // No persistence: `save ""`, `appendonly no`; nothing else is configurable.
            let param = args[2].to_ascii_lowercase();
            let value: &[u8] = match param.as_slice() {
                b"save" => b"",
                b"appendonly" => b"no",
                _ => {
                    array_len(out, 0);
                    return Flow::Continue;
                }
            };
            array_len(out, 2);
            bulk(out, Some(&param));
            bulk(out, Some(value));
        }
        (b"COMMAND", _) => array_len(out, 0),
        (
            b"PING" | b"ECHO" | b"GET" | b"SET" | b"DEL" | b"EXISTS" | b"INCR" | b"MGET" | b"MSET"
            | b"EXPIRE" | b"TTL" | b"DBSIZE" | b"FLUSHALL" | b"SELECT" | b"CONFIG",
            _,
        ) => {
            let msg = format!(
                "ERR wrong number of arguments for '{}' command",
                String::from_utf8_lossy(cmd).to_lowercase()
            );
            error(out, &msg)
        }
        _ => {
            let mut msg = format!(
                "ERR unknown command '{}', with args beginning with:",
                printable(cmd)
            );
            for arg in args[1..].iter().take(8) {
                msg.push_str(&format!(" '{}'", printable(arg)));
            }
            error(out, &msg)
        }
    }
    Flow::Continue
}

/// SET key value [NX|XX] [EX seconds|PX milliseconds]
fn set(store: &Store, args: &[&[u8]], out: &mut Vec<u8>) {
    let mut ttl_ms = None;
    let mut nx = false;
    let mut xx = false;
    let mut i = 3;
    while i < args.len() {
        let opt = args[i].to_ascii_uppercase();
        match opt.as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"EX" | b"PX" if i + 1 < args.len() && ttl_ms.is_none() => {
                i += 1;
                match parse_int(args[i]) {
                    Some(n) if n > 0 => {
                        ttl_ms = Some(if opt == b"EX" {
                            n.saturating_mul(1000)
                        } else {
                            n
                        })
                    }
                    _ => return error(out, "ERR invalid expire time in 'set' command"),
                }
            }
            _ => return error(out, "ERR syntax error"),
        }
        i += 1;
    }
    if nx && xx {
        return error(out, "ERR syntax error");
    }
    let stored = if nx || xx {
        store.set_if(args[1], args[2], ttl_ms, nx)
    } else {
        store.set(args[1], args[2], ttl_ms);
        true
    };
    if stored {
        simple(out, "OK")
    } else {
        bulk(out, None)
    }
}

fn parse_int(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

fn printable(arg: &[u8]) -> String {
    let s = String::from_utf8_lossy(&arg[..arg.len().min(64)]);
    s.chars().filter(|c| !c.is_control()).collect()
}

fn simple(out: &mut Vec<u8>, s: &str) {
    out.push(b'+');
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn error(out: &mut Vec<u8>, msg: &str) {
    out.push(b'-');
    out.extend_from_slice(msg.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn integer(out: &mut Vec<u8>, n: i64) {
    let _ = write!(out, ":{n}\r\n");
}

fn array_len(out: &mut Vec<u8>, n: usize) {
    let _ = write!(out, "*{n}\r\n");
}

fn bulk(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) => {
            let _ = write!(out, "${}\r\n", v.len());
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(b"$-1\r\n"),
    }
}

/// Ctrl-C / SIGTERM: print the GC pause summary and exit. Runs on an OS
/// thread.
fn watch_signals() -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                tracing::info!("shutting down");
                println!("{}", gc_churn::pause_summary());
                std::process::exit(0);
            }
        })?;
    Ok(())
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,fibra_gc=debug".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6380".to_string());
    if let Err(err) = watch_signals() {
        eprintln!("cannot install signal handlers: {err}");
        std::process::exit(1);
    }
    let churn: Option<&'static Churn> = Churn::from_env().map(|c| &*Box::leak(Box::new(c)));
    fibra::run(move || {
        let listener = match TcpListener::bind(addr.as_str()) {
            Ok(l) => l,
            Err(err) => {
                eprintln!("cannot listen on {addr}: {err}");
                std::process::exit(1);
            }
        };
        println!("listening on {}", listener.local_addr().unwrap());
        let store: &'static Store = Box::leak(Box::new(Store::new()));
        // Expired keys are dropped when touched, and by this sweeper.
        drop(fibra::spawn(move || loop {
            fibra::time::sleep(Duration::from_millis(100));
            store.sweep_expired();
        }));
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    drop(fibra::spawn(move || {
                        if let Err(err) = serve(stream, store, churn) {
                            tracing::debug!("connection ended: {err}");
                        }
                    }));
                }
                Err(err) => {
                    tracing::warn!("accept failed: {err}");
                    fibra::time::sleep(Duration::from_millis(10));
                }
            }
        }
    });
}
