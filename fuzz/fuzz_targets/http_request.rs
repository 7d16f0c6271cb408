//! Fuzzes the HTTP example's request parsing (`examples/http/parse.rs`) the
//! way its server drives it: parse a head, frame its body, repeat for
//! pipelined requests, stop at `Connection: close` or a rejection.
//!
//! Beyond "does not panic", every input is checked against the parser's
//! contract:
//! - a parsed head and body never claim more bytes than the buffer holds, a
//!   head is never empty and stays within the head limit, a body within the
//!   body limit, so the server always makes progress and its buffer is bounded;
//! - re-parsing exactly the bytes a head or body used gives the same result,
//!   and parsing is deterministic;
//! - the outcome does not depend on how the bytes were split into reads: the
//!   requests parsed from any prefix of the input are a prefix of those parsed
//!   from the whole input, and a prefix is rejected only if the whole input is
//!   rejected the same way (same status, same reason);
//! - chunked coding round-trips: re-encoding a decoded body decodes to the same
//!   bytes.
//!
//! The raw input is also decoded as a chunked body on its own, so the chunked
//! decoder is reached without first finding a valid head.

#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../examples/http/parse.rs"]
mod parse;

use parse::{Framing, Limits, Reject};

/// One request as the server's application sees it (borrowing from the
/// input, so a prefix's requests compare with the whole input's by content).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request<'b> {
    method: &'b str,
    path: &'b str,
    minor_version: u8,
    keep_alive: bool,
    expect_continue: bool,
    framing: Framing,
    body: Cow<'b, [u8]>,
    /// Head and body bytes this request took from the stream.
    wire_len: usize,
}

/// Why the server stopped parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The last request is incomplete; the server waits for more bytes,
    /// holding `pending` unconsumed bytes.
    NeedMore { pending: usize },
    /// The server answers with this rejection and closes.
    Rejected(Reject),
    /// The last request did not keep the connection alive.
    Closed,
}

/// The server's request loop (`serve_requests` in examples/http/main.rs)
/// without the socket; with `checked`, each parse is checked against the
/// contract (the prefixes of an input skip that: their requests are compared
/// with the whole input's, which were checked).
fn serve<'b>(data: &'b [u8], limits: &Limits, checked: bool) -> (Vec<Request<'b>>, End) {
    let mut requests = Vec::new();
    let mut start = 0;
    loop {
        let rest = &data[start..];
        let head = match parse::parse_head(rest, limits) {
            Ok(Some(head)) => head,
            Ok(None) => {
                assert!(
                    !checked || rest.len() <= limits.max_head_bytes,
                    "an incomplete head of {} bytes is still buffered (limit {})",
                    rest.len(),
                    limits.max_head_bytes
                );
                return (
                    requests,
                    End::NeedMore {
                        pending: rest.len(),
                    },
                );
            }
            Err(reject) => return (requests, End::Rejected(reject)),
        };
        let request_head = request(&head);
        if checked {
            check_head(&head, rest, limits);
        }
        let body_buf = &rest[head.len..];
        let (body, used) = match parse::parse_body(body_buf, head.framing, limits) {
            Ok(Some(done)) => done,
            Ok(None) => {
                let bound = pending_body_bound(head.framing, limits);
                assert!(
                    !checked || body_buf.len() <= bound,
                    "an incomplete {:?} body of {} bytes is still buffered (bound {bound})",
                    head.framing,
                    body_buf.len()
                );
                return (
                    requests,
                    End::NeedMore {
                        pending: rest.len(),
                    },
                );
            }
            Err(reject) => return (requests, End::Rejected(reject)),
        };
        if checked {
            check_body(&body, used, body_buf, head.framing, limits);
        }
        let keep_alive = head.keep_alive;
        requests.push(Request {
            body,
            wire_len: head.len + used,
            ..request_head
        });
        start += head.len + used;
        if !keep_alive {
            return (requests, End::Closed);
        }
    }
}

/// A parsed head as a [`Request`] without a body.
fn request<'b>(head: &parse::Head<'b>) -> Request<'b> {
    Request {
        method: head.method,
        path: head.path,
        minor_version: head.minor_version,
        keep_alive: head.keep_alive,
        expect_continue: head.expect_continue,
        framing: head.framing,
        body: Cow::Borrowed(&[]),
        wire_len: head.len,
    }
}

/// Checks a parsed head against the buffer it came from.
fn check_head(head: &parse::Head<'_>, buf: &[u8], limits: &Limits) {
    assert!(head.len > 0, "an empty head: the server would not progress");
    assert!(
        head.len <= buf.len(),
        "the head claims more bytes than read"
    );
    assert!(head.len <= limits.max_head_bytes, "a head over the limit");
    assert_eq!(buf[head.len - 1], b'\n', "a head ends with a line end");
    assert!(head.minor_version <= 1);
    assert!(!head.expect_continue || head.minor_version == 1);
    for part in [head.method, head.path] {
        assert!(within(part.as_bytes(), &buf[..head.len]));
    }
    match head.framing {
        Framing::Length(n) => assert!(n > 0 && n <= limits.max_body_bytes),
        Framing::Chunked => assert_eq!(head.minor_version, 1),
        Framing::Empty => {}
    }
    // The head is self-delimiting: its own bytes parse to the same head.
    let again = parse::parse_head(&buf[..head.len], limits)
        .expect("the head's own bytes are rejected")
        .expect("the head's own bytes are incomplete");
    assert_eq!(again.len, head.len);
    assert_eq!(again.method, head.method);
    assert_eq!(again.path, head.path);
    assert_eq!(
        (again.keep_alive, again.expect_continue, again.framing),
        (head.keep_alive, head.expect_continue, head.framing)
    );
}

/// Checks a complete body against the buffer it was framed from.
fn check_body(body: &[u8], used: usize, buf: &[u8], framing: Framing, limits: &Limits) {
    assert!(used <= buf.len(), "the body claims more bytes than read");
    assert!(body.len() <= limits.max_body_bytes, "a body over the limit");
    match framing {
        Framing::Empty => assert!(body.is_empty() && used == 0),
        Framing::Length(n) => {
            assert_eq!(used, n);
            assert_eq!(body, &buf[..n]);
        }
        Framing::Chunked => {
            // Decoding only removes framing, and there is always some.
            assert!(body.len() < used, "a chunked body without framing");
            let (again, again_used) = parse::parse_body(&buf[..used], framing, limits)
                .expect("the body's own bytes are rejected")
                .expect("the body's own bytes are incomplete");
            assert_eq!((&*again, again_used), (body, used));
            round_trip_chunked(body, limits);
        }
    }
}

/// Encodes `body` in chunks of a few sizes and checks that it decodes back.
fn round_trip_chunked(body: &[u8], limits: &Limits) {
    for chunk in [1, 7, 4096] {
        let mut wire = Vec::new();
        for piece in body.chunks(chunk) {
            wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let (decoded, used) = parse::parse_body(&wire, Framing::Chunked, limits)
            .expect("a re-encoded body is rejected")
            .expect("a re-encoded body is incomplete");
        assert_eq!((&*decoded, used), (body, wire.len()));
    }
}

/// The most bytes of a body the server may buffer while it is incomplete.
fn pending_body_bound(framing: Framing, limits: &Limits) -> usize {
    match framing {
        Framing::Empty => 0,
        Framing::Length(n) => n,
        // Data, a bounded overhead per data byte (at most one chunk per
        // byte), a fixed overhead budget, the size lines in flight and the
        // trailers.
        Framing::Chunked => 19 * limits.max_body_bytes + 2 * limits.max_head_bytes + 2 * 1024,
    }
}

/// Whether `part` lies within `whole` (for borrowed slices).
fn within(part: &[u8], whole: &[u8]) -> bool {
    let range = whole.as_ptr_range();
    part.is_empty() || (range.start <= part.as_ptr() && part.as_ptr_range().end <= range.end)
}

/// Prefix lengths at which to cut the input: all of them for short inputs,
/// an even sample of about 128 for longer ones, always including `len - 1`.
fn cuts(len: usize) -> impl Iterator<Item = usize> {
    let step = (len / 128).max(1);
    (0..len).step_by(step).chain(len.checked_sub(1))
}

fn check_stream(data: &[u8], limits: &Limits) {
    let (requests, end) = serve(data, limits, true);
    assert_eq!(
        serve(data, limits, false),
        (requests.clone(), end),
        "nondeterministic"
    );
    let wire: usize = requests.iter().map(|r| r.wire_len).sum();
    assert!(wire <= data.len());
    match end {
        End::NeedMore { pending } => assert_eq!(wire + pending, data.len()),
        End::Closed => assert!(!requests.last().unwrap().keep_alive),
        End::Rejected(_) => {}
    }
    for cut in cuts(data.len()) {
        let (early, early_end) = serve(&data[..cut], limits, false);
        assert!(
            early.len() <= requests.len() && early[..] == requests[..early.len()],
            "the requests parsed from the first {cut} bytes differ from the whole input's"
        );
        match early_end {
            End::NeedMore { .. } => {}
            End::Closed => assert_eq!((early, early_end), (requests.clone(), end)),
            End::Rejected(reject) => match end {
                End::Rejected(whole) if early.len() == requests.len() => assert!(
                    reject == whole,
                    "the first {cut} bytes are rejected with {reject:?}, the whole input with {whole:?}"
                ),
                _ => panic!(
                    "the first {cut} bytes are rejected with {reject:?}, \
                     the whole input ends {end:?} after {} requests",
                    requests.len()
                ),
            },
        }
    }
}

fn check_chunked(data: &[u8], limits: &Limits) {
    let whole = parse::parse_body(data, Framing::Chunked, limits);
    assert_eq!(
        parse::parse_body(data, Framing::Chunked, limits),
        whole,
        "nondeterministic"
    );
    match &whole {
        Ok(Some((body, used))) => check_body(body, *used, data, Framing::Chunked, limits),
        Ok(None) => assert!(data.len() <= pending_body_bound(Framing::Chunked, limits)),
        Err(_) => {}
    }
    for cut in cuts(data.len()) {
        match parse::parse_body(&data[..cut], Framing::Chunked, limits) {
            Ok(None) => {}
            Ok(Some(done)) => assert_eq!(Ok(Some(done)), whole, "cut at {cut}"),
            Err(reject) => assert!(
                whole == Err(reject),
                "the first {cut} bytes are rejected with {reject:?}, the whole input gives {whole:?}"
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The server's limits, and small ones so that every size check is
    // reachable with inputs of a few kilobytes.
    let small = Limits {
        max_head_bytes: 96,
        max_body_bytes: 32,
    };
    for limits in [Limits::default(), small] {
        check_stream(data, &limits);
        check_chunked(data, &limits);
    }
});
