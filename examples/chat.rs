//! A line-based TCP chat room: a green thread per client reads its lines,
//! a broadcaster green thread fans them out through channels, and a writer
//! green thread per client drains that client's outbox onto its socket.
//!
//! ```text
//! cargo run --release --example chat -- 127.0.0.1:7000
//! nc 127.0.0.1 7000        # in two or more terminals: type a name, then chat
//! ```
//!
//! Prints `listening on ADDR` once bound (port 0 picks a free port). The
//! first line a client sends is its name; after that every line goes to the
//! whole room as `name: line`. `/who` lists the room, `/quit` leaves. Each
//! client's outbox holds 256 messages: a client whose outbox stays full for
//! 100 ms is dropped (`* name was too slow and was dropped`) instead of
//! stalling the room. Lines longer than 4 KiB are refused.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use fibra::chan::{channel, Receiver, SendTimeoutError, Sender, TrySendError};
use fibra::net::{TcpListener, TcpStream};

/// Messages a client may have queued before it counts as slow.
const OUTBOX: usize = 256;
/// How long a full outbox may stay full before its client counts as slow.
const SLOW_AFTER: Duration = Duration::from_millis(100);
/// The longest line accepted.
const MAX_LINE: usize = 4096;

/// What the clients tell the broadcaster.
enum Event {
    Join {
        id: u64,
        name: String,
        outbox: Sender<Arc<str>>,
        stream: Arc<TcpStream>,
    },
    Line {
        id: u64,
        text: String,
    },
    Leave {
        id: u64,
    },
}

/// A member of the room, as the broadcaster sees it.
struct Member {
    name: String,
    outbox: Sender<Arc<str>>,
    stream: Arc<TcpStream>,
}

/// Owns the room: every message goes out from here, so each client sees
/// them in one order.
fn broadcaster(events: Receiver<Event>) {
    let mut room: HashMap<u64, Member> = HashMap::new();
    for event in events.iter() {
        match event {
            Event::Join {
                id,
                name,
                outbox,
                stream,
            } => {
                let hello = format!("* welcome {name}; here: {}\n", names(&room));
                let _ = outbox.try_send(hello.into());
                broadcast(&mut room, &format!("* {name} joined\n"));
                room.insert(
                    id,
                    Member {
                        name,
                        outbox,
                        stream,
                    },
                );
            }
            Event::Line { id, text } => {
                let Some(member) = room.get(&id) else {
                    continue;
                };
                if text == "/who" {
                    let who = format!(
                        "* here: {}
",
                        names(&room)
                    );
                    let _ = member.outbox.try_send(who.into());
                } else {
                    let line = format!("{}: {text}\n", member.name);
                    broadcast(&mut room, &line);
                }
            }
            Event::Leave { id } => {
                if let Some(member) = room.remove(&id) {
                    broadcast(&mut room, &format!("* {} left\n", member.name));
                }
            }
        }
    }
}

/// Sends `line` to every member. Members whose outbox is full are dropped
/// (their socket is shut down, which ends their reader and writer), and the
/// room is told, which may find more slow members.
fn broadcast(room: &mut HashMap<u64, Member>, line: &str) {
    let mut pending: Vec<Arc<str>> = vec![line.into()];
    while let Some(line) = pending.pop() {
        let mut slow = Vec::new();
        for (&id, member) in room.iter() {
            match member.outbox.try_send(line.clone()) {
                Ok(()) => {}
                // Full: give the writer a moment before giving up on it.
                Err(TrySendError::Full(line)) => {
                    if let Err(SendTimeoutError::Timeout(_)) =
                        member.outbox.send_timeout(line, SLOW_AFTER)
                    {
                        slow.push(id);
                    }
                }
                Err(TrySendError::Disconnected(_)) => {} // leaving; its Leave is on the way
            }
        }
        for id in slow {
            if let Some(member) = room.remove(&id) {
                tracing::info!(name = %member.name, "dropping a slow client");
                let _ = member.stream.shutdown(Shutdown::Both);
                pending.push(format!("* {} was too slow and was dropped\n", member.name).into());
            }
        }
    }
}

/// The members' names, sorted.
fn names(room: &HashMap<u64, Member>) -> String {
    let mut names: Vec<&str> = room.values().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    names.join(", ")
}

/// Drains a client's outbox onto its socket.
fn writer(stream: Arc<TcpStream>, outbox: Receiver<Arc<str>>) {
    let mut out = &*stream;
    let mut batch = Vec::new();
    while let Ok(first) = outbox.recv() {
        // Write what has queued up in one go.
        batch.clear();
        batch.extend_from_slice(first.as_bytes());
        while let Ok(more) = outbox.try_recv() {
            batch.extend_from_slice(more.as_bytes());
        }
        if out.write_all(&batch).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Splits a socket's input into lines (without the line end).
struct Lines<'s> {
    stream: &'s TcpStream,
    buf: Vec<u8>,
}

impl Lines<'_> {
    fn next_line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.buf.len() > MAX_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            let mut chunk = [0u8; 4096];
            let n = (&*self.stream).read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn client(id: u64, stream: TcpStream, events: Sender<Event>) -> io::Result<()> {
    let stream = Arc::new(stream);
    (&*stream).write_all(b"* your name? ")?;
    let mut lines = Lines {
        stream: &stream,
        buf: Vec::new(),
    };
    let name = match lines.next_line()? {
        Some(name) if !name.trim().is_empty() => name.trim().chars().take(32).collect(),
        Some(_) => format!("guest{id}"),
        None => return Ok(()),
    };
    let (outbox_tx, outbox_rx) = channel(OUTBOX);
    let writer_stream = stream.clone();
    drop(fibra::spawn(move || writer(writer_stream, outbox_rx)));
    let joined = Event::Join {
        id,
        name,
        outbox: outbox_tx,
        stream: stream.clone(),
    };
    if events.send(joined).is_err() {
        return Ok(());
    }
    let result = loop {
        match lines.next_line() {
            Ok(Some(text)) if text == "/quit" => break Ok(()),
            Ok(Some(text)) if text.is_empty() => {}
            Ok(Some(text)) => {
                if events.send(Event::Line { id, text }).is_err() {
                    break Ok(());
                }
            }
            Ok(None) => break Ok(()),
            Err(err) => {
                if err.kind() == io::ErrorKind::InvalidData {
                    let _ = (&*stream).write_all(b"* line too long; bye\n");
                }
                break Err(err);
            }
        }
    };
    // The broadcaster drops the outbox's sender, which ends the writer.
    let _ = events.send(Event::Leave { id });
    result
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_string());
    fibra::run(move || {
        let listener = match TcpListener::bind(addr.as_str()) {
            Ok(l) => l,
            Err(err) => {
                eprintln!("cannot listen on {addr}: {err}");
                std::process::exit(1);
            }
        };
        println!("listening on {}", listener.local_addr().unwrap());
        let (events_tx, events_rx) = channel(1024);
        drop(fibra::spawn(move || broadcaster(events_rx)));
        for id in 0.. {
            match listener.accept() {
                Ok((stream, _)) => {
                    let events = events_tx.clone();
                    drop(fibra::spawn(move || {
                        if let Err(err) = client(id, stream, events) {
                            tracing::debug!("client {id}: {err}");
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
