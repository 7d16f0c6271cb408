//! examples/chat.rs driven by std OS-thread clients: messages reach everyone
//! in order, a client that stops reading is dropped without stalling the
//! room, and over-long lines are refused.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn join(server: &Server, name: &str) -> Client {
        let stream = server.connect();
        let mut client = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let mut prompt = [0u8; 13];
        std::io::Read::read_exact(&mut client.reader, &mut prompt).unwrap();
        assert_eq!(&prompt, b"* your name? ");
        client.say(name);
        let welcome = client.line();
        assert!(
            welcome.starts_with(&format!("* welcome {name}")),
            "{welcome}"
        );
        client
    }

    fn say(&mut self, text: &str) {
        self.writer
            .write_all(format!("{text}\n").as_bytes())
            .unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    /// Reads lines until one equals `want` (skipping join notices and the like).
    fn expect(&mut self, want: &str) {
        for _ in 0..10_000 {
            let line = self.line();
            assert!(
                !line.is_empty(),
                "connection closed while waiting for {want:?}"
            );
            if line.trim_end() == want {
                return;
            }
        }
        panic!("never saw {want:?}");
    }
}

#[test]
fn every_client_sees_every_message_in_one_order() {
    let server = Server::start("chat", &[]);
    let mut clients: Vec<Client> = (0..4)
        .map(|i| Client::join(&server, &format!("c{i}")))
        .collect();
    // Make sure everyone has seen the last join before talking.
    for c in clients.iter_mut().take(3) {
        c.expect("* c3 joined");
    }
    let senders: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut w = c.writer.try_clone().unwrap();
            std::thread::spawn(move || {
                for n in 0..100 {
                    w.write_all(format!("m{i}-{n}\n").as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let mut orders = Vec::new();
    for c in clients.iter_mut() {
        let mut seen = Vec::new();
        while seen.len() < 400 {
            let line = c.line();
            assert!(!line.is_empty(), "closed early");
            if !line.starts_with('*') {
                seen.push(line);
            }
        }
        // Per sender, messages arrive in the order sent.
        for i in 0..4 {
            let mine: Vec<_> = seen
                .iter()
                .filter(|l| l.starts_with(&format!("c{i}: ")))
                .collect();
            assert_eq!(mine.len(), 100);
            for (n, l) in mine.iter().enumerate() {
                assert_eq!(l.trim_end(), format!("c{i}: m{i}-{n}"));
            }
        }
        orders.push(seen);
    }
    // One broadcaster: everyone sees the same interleaving.
    assert!(orders.windows(2).all(|w| w[0] == w[1]));
    clients[0].say("/who");
    clients[0].expect("* here: c0, c1, c2, c3");
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_the_room_goes_on() {
    let server = Server::start("chat", &[]);
    let mut talker = Client::join(&server, "talker");
    let mut listener = Client::join(&server, "listener");
    talker.expect("* listener joined");
    let slow = Client::join(&server, "slow"); // never reads again
    talker.expect("* slow joined");
    listener.expect("* slow joined");
    let started = Instant::now();
    let long = "x".repeat(1000);
    let dropped = Arc::new(AtomicBool::new(false));
    let seen = dropped.clone();
    // The listener keeps up the whole time: it must see the drop notice and
    // then the room's next message.
    let listening = std::thread::spawn(move || {
        listener.expect("* slow was too slow and was dropped");
        seen.store(true, Ordering::SeqCst);
        listener.expect("talker: still here");
    });
    // The talker's own messages come back to it; a separate thread drains
    // them so that the talker never counts as slow itself.
    let mut echo = talker.writer.try_clone().unwrap();
    let draining = std::thread::spawn(move || {
        let mut sink = [0u8; 1 << 16];
        while matches!(std::io::Read::read(&mut echo, &mut sink), Ok(n) if n > 0) {}
    });
    // Talk until the slow client's socket buffers and outbox are full and
    // it is dropped (loopback buffers hold megabytes).
    for n in 0..200_000 {
        if n % 100 == 0 && dropped.load(Ordering::SeqCst) {
            break;
        }
        talker.say(&format!("{n} {long}"));
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "the slow client was never dropped"
    );
    // The room still works for the others.
    talker.say("still here");
    listening.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    talker.writer.shutdown(std::net::Shutdown::Both).unwrap();
    draining.join().unwrap();
    drop(slow);
}

#[test]
fn overlong_lines_and_garbage_are_refused_without_harm() {
    let server = Server::start("chat", &[]);
    let mut good = Client::join(&server, "good");
    let mut bad = Client::join(&server, "bad");
    good.expect("* bad joined");
    bad.writer.write_all(&[0xff, 0xfe, 0x00, b'\n']).unwrap(); // not UTF-8: passed on lossily
    good.expect("bad: \u{fffd}\u{fffd}\u{0}");
    bad.writer.write_all(&vec![b'a'; 10_000]).unwrap();
    bad.expect("* line too long; bye");
    good.expect("* bad left");
    // A client that connects and never sends a name holds nothing up.
    let _silent = server.connect();
    let mut late = Client::join(&server, "late");
    good.expect("* late joined");
    late.say("hi");
    good.expect("late: hi");
}
