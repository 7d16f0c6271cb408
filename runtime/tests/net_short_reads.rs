//! Attacks on the short-read rule: a stream read that returns fewer bytes
//! than asked clears the socket's readiness, and the next blocking read
//! parks without asking the kernel. Each test fails (a "read timed out"
//! error after 5 s) instead of hanging if a read is stranded.

use std::io::{BufRead, BufReader, ErrorKind, IoSliceMut, Read, Write};
use std::time::Duration;

use fibra_runtime::net::{TcpListener, TcpStream, UnixStream};
use fibra_runtime::{spawn, Runtime};

const LIMIT: Duration = Duration::from_secs(5);

fn sleep_ms(ms: u64) {
    fibra_runtime::time::sleep(Duration::from_millis(ms));
}

/// A connected pair: (client, accepted server side with a 5 s read timeout).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    (c, s)
}

fn unix_pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(LIMIT)).unwrap();
    b.set_read_timeout(Some(LIMIT)).unwrap();
    (a, b)
}

/// Makes the reader's socket registered in a poller with its read bit set:
/// a blocking 1-byte read that has to wait for the peer's first byte.
fn register_by_waiting(reader: &mut impl Read, peer: impl FnOnce() + Send + 'static) {
    let h = spawn(move || {
        sleep_ms(20);
        peer();
    });
    let mut one = [0u8; 1];
    reader.read_exact(&mut one).unwrap();
    assert_eq!(one, [b'x']);
    h.join().unwrap();
}

/// `tcp_pair` with the server side registered by a wait for "x".
fn registered_tcp_pair() -> (TcpStream, TcpStream) {
    let (c, mut s) = tcp_pair();
    let w = c.try_clone().unwrap();
    register_by_waiting(&mut s, move || (&w).write_all(b"x").unwrap());
    (c, s)
}

/// `readv` takes at most IOV_MAX (1024) buffers: std passes only the first
/// 1024 to the kernel. A `read_vectored` with more buffers returns at most
/// their total, less than the sum of all the buffers, while data remains
/// queued: the rule must not take that for a drained socket.
#[test]
fn read_vectored_past_iov_max_is_not_a_drained_read() {
    fibra_runtime::run(|| {
        let (c, s) = registered_tcp_pair();
        let mut r = &s;
        (&c).write_all(&[7u8; 2000]).unwrap();
        sleep_ms(30);
        let mut store = vec![0u8; 1100];
        let n = {
            let mut bufs: Vec<IoSliceMut<'_>> = store.chunks_mut(1).map(IoSliceMut::new).collect();
            r.read_vectored(&mut bufs).unwrap()
        };
        assert_eq!(n, 1024, "std caps readv at IOV_MAX buffers");
        let mut rest = vec![0u8; 2000 - n];
        let got = r.read_exact(&mut rest);
        assert!(
            got.is_ok(),
            "976 bytes are queued, yet the next read failed: {got:?}"
        );
        assert!(rest.iter().all(|&b| b == 7));
    });
}

/// TCP urgent data: a read stops at the urgent mark, returning fewer bytes
/// than asked with more data queued behind the mark. A peer (any remote
/// host) that sends urgent data must not strand the reader.
#[test]
fn tcp_read_stopping_at_the_urgent_mark_does_not_strand_the_rest() {
    fibra_runtime::run(|| {
        let (c, s) = registered_tcp_pair();
        let mut r = &s;
        (&c).write_all(b"AB").unwrap();
        socket2::SockRef::from(&c).send_out_of_band(b"C").unwrap();
        (&c).write_all(b"DE").unwrap();
        sleep_ms(30);
        let mut buf = [0u8; 64];
        let n = r.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"AB", "the read stops at the urgent mark");
        // The urgent byte is out of band: the stream goes on with "DE".
        let got = r.read(&mut buf).map(|n| buf[..n].to_vec());
        assert_eq!(
            got.as_ref().ok().map(|v| &v[..]),
            Some(&b"DE"[..]),
            "data queued behind the urgent mark: {got:?}"
        );
    });
}

/// Unix stream sockets have out-of-band data too (Linux 5.15+): a read
/// stops before the out-of-band byte.
#[test]
fn unix_read_stopping_at_the_oob_byte_does_not_strand_the_rest() {
    fibra_runtime::run(|| {
        let (a, b) = unix_pair();
        let mut r = &b;
        let w = a.try_clone().unwrap();
        register_by_waiting(&mut r, move || (&w).write_all(b"x").unwrap());
        (&a).write_all(b"AB").unwrap();
        match socket2::SockRef::from(&a).send_out_of_band(b"C") {
            Ok(_) => {}
            // A kernel without AF_UNIX OOB support: nothing to test.
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return,
            Err(e) => panic!("{e}"),
        }
        (&a).write_all(b"DE").unwrap();
        sleep_ms(30);
        let mut buf = [0u8; 64];
        let n = r.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"AB", "the read stops before the OOB byte");
        let got = r.read(&mut buf).map(|n| buf[..n].to_vec());
        assert_eq!(
            got.as_ref().ok().map(|v| &v[..]),
            Some(&b"DE"[..]),
            "data queued behind the OOB byte: {got:?}"
        );
    });
}

/// Spawns `f` as a green thread on another worker than the caller's (the
/// technique of net_locality.rs: the caller spins until an idle worker has
/// taken the spawn, retrying if it ran here after all).
fn spawn_elsewhere<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + Clone + 'static,
) -> fibra_runtime::JoinHandle<T> {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::{Arc, Mutex};
    let me = std::thread::current().id();
    for _ in 0..20 {
        let started: Arc<Mutex<Option<std::thread::ThreadId>>> = Arc::default();
        let go = Arc::new(AtomicU8::new(0));
        let (s, g, f) = (started.clone(), go.clone(), f.clone());
        let h = spawn(move || {
            *s.lock().unwrap() = Some(std::thread::current().id());
            loop {
                match g.load(Ordering::Acquire) {
                    1 => return Some(f()),
                    2 => return None,
                    _ => fibra_runtime::yield_now(),
                }
            }
        });
        let deadline = std::time::Instant::now() + LIMIT;
        let on = loop {
            if let Some(on) = *started.lock().unwrap() {
                break on;
            }
            assert!(std::time::Instant::now() < deadline, "no idle worker");
            std::hint::spin_loop();
        };
        if on != me {
            go.store(1, Ordering::Release);
            return spawn(move || h.join().unwrap().expect("ran f"));
        }
        go.store(2, Ordering::Release);
        assert!(h.join().unwrap().is_none());
    }
    panic!("could not start a green thread on another worker");
}

/// A small deterministic generator for pause points and sizes.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

/// Reads exactly `buf.len()` bytes through reads of at most `chunk` bytes
/// (so most reads come back short).
fn read_in_chunks(mut r: impl Read, buf: &mut [u8], chunk: usize) -> std::io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let end = (got + chunk).min(buf.len());
        match r.read(&mut buf[got..end])? {
            0 => return Err(ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    Ok(())
}

/// Two clones of one connection (two registrations of dup'd fds), read in
/// turn by green threads on two workers: each message arrives in two parts,
/// so each reader's reads come back short, and the other clone's
/// registration keeps stale readiness.
#[test]
fn try_clone_readers_take_turns_across_two_workers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let (c, s) = tcp_pair();
        let s2 = s.try_clone().unwrap();
        s2.set_read_timeout(Some(LIMIT)).unwrap();
        const ROUNDS: usize = 40;
        // The peer: a plain thread; message i is 300 bytes of i, in two
        // parts with a pause, then it waits for the reader's ack.
        let peer = std::thread::spawn(move || {
            let mut rng = Lcg(7);
            let mut c = c;
            for i in 0..ROUNDS {
                let msg = [i as u8; 300];
                let cut = 1 + rng.next(298) as usize;
                c.write_all(&msg[..cut]).unwrap();
                if rng.next(2) == 0 {
                    std::thread::sleep(Duration::from_micros(300 + rng.next(1500)));
                }
                c.write_all(&msg[cut..]).unwrap();
                let mut ack = [0u8; 1];
                c.read_exact(&mut ack).unwrap();
                assert_eq!(ack[0], i as u8);
            }
            c
        });
        let (to_b, from_a) = fibra_runtime::chan::channel::<usize>(1);
        let (to_a, from_b) = fibra_runtime::chan::channel::<usize>(1);
        let turn = move |s: &TcpStream, i: usize| {
            let mut msg = [0u8; 300];
            read_in_chunks(s, &mut msg, 4096).unwrap_or_else(|e| panic!("round {i}: {e}"));
            assert!(msg.iter().all(|&b| b == i as u8), "round {i}");
            (&*s).write_all(&[i as u8]).unwrap();
        };
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some((s2, from_a, to_a))));
        let b = spawn_elsewhere(move || {
            let (s2, from_a, to_a) = slot.lock().unwrap().take().unwrap();
            while let Ok(i) = from_a.recv() {
                turn(&s2, i);
                if to_a.send(i).is_err() {
                    break;
                }
            }
        });
        // This reader takes the even rounds, the other one the odd ones.
        for i in (0..ROUNDS).step_by(2) {
            turn(&s, i);
            to_b.send(i + 1).unwrap();
            assert_eq!(from_b.recv().unwrap(), i + 1);
        }
        drop(to_b);
        b.join().unwrap();
        drop(peer.join().unwrap());
    });
}

/// Several green threads (on two workers) read one stream at once, with
/// small buffers, while the peer writes with pauses and then closes: every
/// byte is read exactly once and every reader sees the end.
#[test]
fn concurrent_green_readers_of_one_stream_get_every_byte_and_the_end() {
    use std::sync::Arc;
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let (c, s) = tcp_pair();
        let s = Arc::new(s);
        const TOTAL: usize = 200_000;
        let peer = spawn(move || {
            let mut rng = Lcg(11);
            let mut c = c;
            let data: Vec<u8> = (0..TOTAL).map(|_| 1u8).collect();
            let mut off = 0;
            while off < TOTAL {
                let n = (1 + rng.next(3000) as usize).min(TOTAL - off);
                c.write_all(&data[off..off + n]).unwrap();
                off += n;
                if rng.next(4) == 0 {
                    sleep_ms(1);
                }
            }
            c.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let readers: Vec<_> = (0..4)
            .map(|k| {
                let s = s.clone();
                spawn(move || {
                    let mut sum = 0usize;
                    let mut buf = vec![0u8; 100 + 37 * k];
                    loop {
                        match (&*s).read(&mut buf) {
                            Ok(0) => return sum,
                            Ok(n) => sum += buf[..n].iter().map(|&b| b as usize).sum::<usize>(),
                            Err(e) => panic!("reader {k} after {sum} bytes: {e}"),
                        }
                    }
                })
            })
            .collect();
        peer.join().unwrap();
        let total: usize = readers.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, TOTAL);
    });
}

/// Blocking, then non-blocking, then blocking again, with a short read in
/// each mode before the switch.
#[test]
fn switching_nonblocking_mode_between_short_reads() {
    fibra_runtime::run(|| {
        let (c, s) = registered_tcp_pair();
        let mut r = &s;
        let mut buf = [0u8; 64];
        (&c).write_all(b"one").unwrap();
        sleep_ms(10);
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        // Drained: a non-blocking read asks the kernel and would block.
        s.set_nonblocking(true).unwrap();
        assert_eq!(r.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        (&c).write_all(b"two").unwrap();
        sleep_ms(10);
        assert_eq!(r.read(&mut buf).unwrap(), 3, "non-blocking sees new data");
        assert_eq!(&buf[..3], b"two");
        // Data arriving while non-blocking, read only after switching back.
        (&c).write_all(b"three").unwrap();
        sleep_ms(10);
        s.set_nonblocking(false).unwrap();
        assert_eq!(r.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"three");
        // Short non-blocking read, then a blocking one that has to wait.
        s.set_nonblocking(true).unwrap();
        (&c).write_all(b"four").unwrap();
        sleep_ms(10);
        assert_eq!(r.read(&mut buf).unwrap(), 4);
        s.set_nonblocking(false).unwrap();
        let w = c.try_clone().unwrap();
        let h = spawn(move || {
            sleep_ms(20);
            (&w).write_all(b"five").unwrap();
        });
        assert_eq!(r.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"five");
        h.join().unwrap();
    });
}

/// A zero-length read on a drained stream waits for data as std's does
/// (TCP's `recv` of 0 bytes would block), then returns `Ok(0)` without
/// taking anything or clearing the readiness: the next read gets the data.
#[test]
fn zero_length_read_after_a_short_read_waits_for_data_then_leaves_it() {
    fibra_runtime::run(|| {
        let (c, s) = registered_tcp_pair();
        let mut r = &s;
        (&c).write_all(b"abc").unwrap();
        sleep_ms(10);
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        let h = spawn(move || {
            sleep_ms(20);
            (&c).write_all(b"de").unwrap();
            c
        });
        assert_eq!(r.read(&mut []).unwrap(), 0);
        assert_eq!(r.read(&mut [][..]).unwrap(), 0, "still ready");
        assert_eq!(r.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"de");
        drop(h.join().unwrap());
    });
}

/// `peek` (which never clears) after a short read, then reads; and
/// `read_vectored` over several buffers coming back short.
#[test]
fn peek_and_read_vectored_after_short_reads() {
    fibra_runtime::run(|| {
        let (c, s) = registered_tcp_pair();
        let mut r = &s;
        let mut buf = [0u8; 64];
        for round in 0..5u8 {
            let w = c.try_clone().unwrap();
            let h = spawn(move || {
                sleep_ms(5);
                (&w).write_all(&[b'a' + round; 10]).unwrap();
            });
            // Waits for the data, leaves it queued.
            let n = s.peek(&mut buf).unwrap();
            assert!(n > 0 && buf[..n].iter().all(|&b| b == b'a' + round));
            h.join().unwrap();
            sleep_ms(5);
            // A peek shorter than asked: the data is still all there.
            assert_eq!(s.peek(&mut buf).unwrap(), 10);
            let (mut x, mut y, mut z) = ([0u8; 3], [0u8; 4], [0u8; 20]);
            let n = {
                let mut bufs = [
                    IoSliceMut::new(&mut x),
                    IoSliceMut::new(&mut y),
                    IoSliceMut::new(&mut z),
                ];
                r.read_vectored(&mut bufs).unwrap()
            };
            assert_eq!(n, 10, "round {round}");
            assert!(x
                .iter()
                .chain(&y)
                .chain(&z[..3])
                .all(|&b| b == b'a' + round));
        }
    });
}

/// `read_exact`, `BufReader::read_line` and `read_to_end` on a Unix pair
/// whose writer sends in pieces with pauses, then closes.
#[test]
fn std_read_helpers_over_a_unix_pair_written_in_pieces() {
    fibra_runtime::run(|| {
        let (a, b) = unix_pair();
        let mut text = Vec::new();
        for i in 0..200 {
            text.extend_from_slice(format!("line {i} {}\n", "z".repeat(i % 50)).as_bytes());
        }
        let tail = vec![9u8; 50_000];
        let (t, tl) = (text.clone(), tail.clone());
        let peer = spawn(move || {
            let mut rng = Lcg(3);
            let mut a = a;
            a.write_all(b"HEAD1234").unwrap();
            let mut off = 0;
            while off < t.len() {
                let n = (1 + rng.next(200) as usize).min(t.len() - off);
                a.write_all(&t[off..off + n]).unwrap();
                off += n;
                if rng.next(5) == 0 {
                    sleep_ms(1);
                }
            }
            sleep_ms(2);
            a.write_all(&tl).unwrap();
            // Closing ends the stream.
        });
        let mut head = [0u8; 8];
        (&b).read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HEAD1234");
        let mut br = BufReader::with_capacity(64, &b);
        for i in 0..200 {
            let mut line = String::new();
            br.read_line(&mut line).unwrap();
            assert_eq!(line, format!("line {i} {}\n", "z".repeat(i % 50)));
        }
        let mut rest = br.buffer().to_vec();
        let r = br.into_inner();
        let mut r = r;
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, tail);
        peer.join().unwrap();
    });
}

/// A Unix pair: the peer writes after the reader's short read (reader
/// parked), and a peer that closes after a short read ends the stream.
#[test]
fn unix_peer_writes_or_closes_after_a_short_read() {
    fibra_runtime::run(|| {
        for close in [false, true] {
            let (a, b) = unix_pair();
            let mut r = &b;
            let w = a.try_clone().unwrap();
            register_by_waiting(&mut r, move || (&w).write_all(b"x").unwrap());
            (&a).write_all(b"abc").unwrap();
            sleep_ms(10);
            let mut buf = [0u8; 64];
            assert_eq!(r.read(&mut buf).unwrap(), 3);
            let h = spawn(move || {
                sleep_ms(20);
                if !close {
                    (&a).write_all(b"de").unwrap();
                }
                drop(a);
            });
            let got = r.read(&mut buf).map(|n| buf[..n].to_vec());
            let want: &[u8] = if close { b"" } else { b"de" };
            assert_eq!(
                got.as_ref().ok().map(|v| &v[..]),
                Some(want),
                "close={close}: {got:?}"
            );
            if !close {
                assert_eq!(r.read(&mut buf).unwrap(), 0);
            }
            h.join().unwrap();
        }
    });
}

/// A connection made and first waited on by a green thread on one worker,
/// then handed to green threads on the other worker and back: the
/// registration moves between pollers while reads come back short.
#[test]
fn short_reads_while_the_registration_moves_between_workers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let (c, s) = tcp_pair();
        // The peer answers each 4-byte request with 3 replies of 5 bytes
        // apart from each other (each of the reader's reads is short).
        let peer = std::thread::spawn(move || {
            let mut c = c;
            let mut req = [0u8; 4];
            while c.read_exact(&mut req).is_ok() {
                for k in 0..3u8 {
                    std::thread::sleep(Duration::from_micros(200));
                    c.write_all(&[req[0].wrapping_add(k); 5]).unwrap();
                }
            }
        });
        let exchange = |s: &TcpStream, i: u8| {
            (&*s).write_all(&[i; 4]).unwrap();
            let mut got = [0u8; 15];
            read_in_chunks(s, &mut got, 1000).unwrap_or_else(|e| panic!("exchange {i}: {e}"));
            for k in 0..3u8 {
                assert!(got[5 * k as usize..][..5]
                    .iter()
                    .all(|&b| b == i.wrapping_add(k)));
            }
        };
        let mut s = s;
        for hop in 0..6u8 {
            // Here (two waits: the registration lands in this worker).
            exchange(&s, hop * 10);
            exchange(&s, hop * 10 + 1);
            // There, twice, and back.
            let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(s)));
            s = spawn_elsewhere(move || {
                let s = slot.lock().unwrap().take().unwrap();
                exchange(&s, hop * 10 + 2);
                exchange(&s, hop * 10 + 3);
                s
            })
            .join()
            .unwrap();
        }
        drop(s);
        peer.join().unwrap();
    });
}

/// Reads from a plain OS thread inside `run` and from an async task, each
/// in request-response turns with short reads.
#[test]
fn plain_thread_and_async_readers_after_short_reads() {
    fibra_runtime::run(|| {
        // Plain thread.
        let (c, s) = tcp_pair();
        let peer = spawn(move || {
            let mut c = c;
            for i in 0..20u8 {
                c.write_all(&[i; 3]).unwrap();
                sleep_ms(1);
                c.write_all(&[i; 4]).unwrap();
                let mut ack = [0u8; 1];
                c.read_exact(&mut ack).unwrap();
            }
        });
        let t = std::thread::spawn(move || {
            for i in 0..20u8 {
                let mut got = [0u8; 7];
                read_in_chunks(&s, &mut got, 100).unwrap_or_else(|e| panic!("{i}: {e}"));
                assert_eq!(got, [i; 7]);
                (&s).write_all(&[i]).unwrap();
            }
        });
        t.join().unwrap();
        peer.join().unwrap();

        // Async task with `poll_read`.
        let (c, s) = tcp_pair();
        let peer = spawn(move || {
            let mut c = c;
            for i in 0..20u8 {
                c.write_all(&[i; 3]).unwrap();
                sleep_ms(1);
                c.write_all(&[i; 4]).unwrap();
                let mut ack = [0u8; 1];
                c.read_exact(&mut ack).unwrap();
            }
        });
        let task = fibra_runtime::spawn_async(async move {
            use std::future::Future;
            for i in 0..20u8 {
                let mut limit = std::pin::pin!(fibra_runtime::time::Sleep::new(LIMIT));
                let mut got = [0u8; 7];
                let mut n = 0;
                while n < 7 {
                    n += std::future::poll_fn(|cx| {
                        if limit.as_mut().poll(cx).is_ready() {
                            return std::task::Poll::Ready(Err(std::io::Error::from(
                                ErrorKind::TimedOut,
                            )));
                        }
                        s.poll_read(cx, &mut got[n..])
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{i}: {e}"));
                }
                assert_eq!(got, [i; 7]);
                std::future::poll_fn(|cx| s.poll_write(cx, &[i]))
                    .await
                    .unwrap();
            }
        });
        fibra_runtime::block_on(task).unwrap();
        peer.join().unwrap();
    });
}

/// Several MB through a small reader buffer, the writer pausing at random
/// points: every byte arrives, in order (TCP and Unix, green and plain
/// thread readers).
#[test]
fn large_transfers_through_a_small_buffer_keep_every_byte_in_order() {
    const TOTAL: usize = 4 << 20;
    fn check(mut r: impl Read, what: &str) {
        let mut buf = [0u8; 777];
        let mut at = 0;
        loop {
            let n = r
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("{what} at {at}: {e}"));
            if n == 0 {
                break;
            }
            for (k, &b) in buf[..n].iter().enumerate() {
                assert_eq!(b, pattern(at + k), "{what}: byte {}", at + k);
            }
            at += n;
        }
        assert_eq!(at, TOTAL, "{what}");
    }
    fn write_with_pauses(mut w: impl Write, seed: u64) {
        let data: Vec<u8> = (0..TOTAL).map(pattern).collect();
        let mut rng = Lcg(seed);
        let mut off = 0;
        while off < TOTAL {
            let n = (1 + rng.next(70_000) as usize).min(TOTAL - off);
            w.write_all(&data[off..off + n]).unwrap();
            off += n;
            if rng.next(8) == 0 {
                sleep_ms(1);
            }
        }
    }
    fibra_runtime::run(|| {
        for (i, plain) in [false, true].into_iter().enumerate() {
            let (c, s) = tcp_pair();
            let w = spawn(move || write_with_pauses(c, 100 + i as u64));
            if plain {
                std::thread::spawn(move || check(&s, "tcp plain"))
                    .join()
                    .unwrap();
            } else {
                check(&s, "tcp green");
            }
            w.join().unwrap();
            let (a, b) = unix_pair();
            let w = spawn(move || write_with_pauses(a, 200 + i as u64));
            if plain {
                std::thread::spawn(move || check(&b, "unix plain"))
                    .join()
                    .unwrap();
            } else {
                check(&b, "unix green");
            }
            w.join().unwrap();
        }
    });
}

/// The async form (`poll_read`) after a read that stopped at the urgent
/// mark: it waits for readiness first, so the drained clear strands it too.
#[test]
fn async_read_stopping_at_the_urgent_mark_does_not_strand_the_rest() {
    fibra_runtime::run(|| {
        let (c, s) = registered_tcp_pair();
        (&c).write_all(b"AB").unwrap();
        socket2::SockRef::from(&c).send_out_of_band(b"C").unwrap();
        (&c).write_all(b"DE").unwrap();
        sleep_ms(30);
        let task = fibra_runtime::spawn_async(async move {
            use std::future::Future;
            let mut limit = std::pin::pin!(fibra_runtime::time::Sleep::new(LIMIT));
            let mut out = Vec::new();
            for _ in 0..2 {
                let mut buf = [0u8; 64];
                let n = std::future::poll_fn(|cx| {
                    if limit.as_mut().poll(cx).is_ready() {
                        return std::task::Poll::Ready(Err(std::io::Error::from(
                            ErrorKind::TimedOut,
                        )));
                    }
                    s.poll_read(cx, &mut buf)
                })
                .await;
                out.push(n.map(|n| buf[..n].to_vec()));
            }
            out
        });
        let out = fibra_runtime::block_on(task).unwrap();
        assert_eq!(out[0].as_ref().unwrap(), b"AB");
        assert_eq!(
            out[1].as_ref().ok().map(|v| &v[..]),
            Some(&b"DE"[..]),
            "data queued behind the urgent mark: {:?}",
            out[1]
        );
        drop(c);
    });
}

/// Sends `data` over a Unix stream socket with `fd` attached (SCM_RIGHTS),
/// as a peer process passing a descriptor would.
fn send_with_fd(sock: &UnixStream, data: &[u8], fd: std::os::fd::RawFd) {
    use std::os::fd::AsRawFd;
    let fd_len = std::mem::size_of::<std::os::fd::RawFd>() as u32;
    // SAFETY: the buffers outlive the call and the control buffer is
    // CMSG_SPACE bytes, 8-aligned.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let space = libc::CMSG_SPACE(fd_len) as usize;
        let mut cbuf = vec![0u64; space.div_ceil(8)];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut std::os::fd::RawFd, fd);
        let sent = libc::sendmsg(sock.as_raw_fd(), &msg, 0);
        assert_eq!(
            sent,
            data.len() as isize,
            "{}",
            std::io::Error::last_os_error()
        );
    }
}

/// A Unix stream read stops after bytes that carried descriptors (a plain
/// `read` discards them): the peer's next bytes stay queued.
#[test]
fn unix_read_stopping_after_passed_descriptors_does_not_strand_the_rest() {
    use std::os::fd::AsRawFd;
    fibra_runtime::run(|| {
        let (a, b) = unix_pair();
        let mut r = &b;
        let w = a.try_clone().unwrap();
        register_by_waiting(&mut r, move || (&w).write_all(b"x").unwrap());
        let passed = std::fs::File::open("/dev/null").unwrap();
        send_with_fd(&a, b"AB", passed.as_raw_fd());
        (&a).write_all(b"DE").unwrap();
        sleep_ms(30);
        let mut buf = [0u8; 64];
        let n = r.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"AB", "the read stops after the descriptors");
        let got = r.read(&mut buf).map(|n| buf[..n].to_vec());
        assert_eq!(
            got.as_ref().ok().map(|v| &v[..]),
            Some(&b"DE"[..]),
            "data queued behind passed descriptors: {got:?}"
        );
    });
}
