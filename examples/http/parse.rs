//! Request framing for the HTTP example: the request head is parsed by
//! httparse, the body is framed by `Content-Length` or decoded from chunked
//! transfer coding (chunk sizes parsed by httparse too).
//!
//! Both functions are pure: they take the bytes received so far and say
//! "complete (and how many bytes it used)", "need more bytes", or "reject with
//! this status". That keeps them easy to fuzz: a fuzz target can include this
//! file with `#[path = "../../examples/http/parse.rs"] mod parse;` and feed
//! arbitrary bytes to [`parse_head`] and [`parse_body`].

use std::borrow::Cow;

/// Size limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request head (request line and headers), in bytes: 431 beyond.
    pub max_head_bytes: usize,
    /// Largest request body after decoding, in bytes: 413 beyond.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// The most headers a request may carry (431 beyond).
pub const MAX_HEADERS: usize = 64;

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head, borrowing from the receive buffer.
#[derive(Debug)]
pub struct Head<'b> {
    /// The method, e.g. `GET`.
    pub method: &'b str,
    /// The request target, e.g. `/plaintext`.
    pub path: &'b str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Whether the client sent `Expect: 100-continue`.
    pub expect_continue: bool,
    /// How the body is delimited.
    pub framing: Framing,
    /// Length of the head in bytes (the body starts there).
    pub len: usize,
}

/// Why a request is rejected; each maps to one response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// 400: the request is not valid HTTP/1.x, or its framing is ambiguous.
    BadRequest(&'static str),
    /// 431: the head is larger than [`Limits::max_head_bytes`] or has more
    /// than [`MAX_HEADERS`] headers.
    HeadTooLarge,
    /// 413: the body is larger than [`Limits::max_body_bytes`].
    BodyTooLarge,
}

impl Reject {
    /// The status code and reason phrase of the response.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Reject::BadRequest(_) => (400, "Bad Request"),
            Reject::HeadTooLarge => (431, "Request Header Fields Too Large"),
            Reject::BodyTooLarge => (413, "Content Too Large"),
        }
    }
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)`: the head is incomplete and may still fit the limit.
pub fn parse_head<'b>(buf: &'b [u8], limits: &Limits) -> Result<Option<Head<'b>>, Reject> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head_bytes => {
            return Err(Reject::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Reject::HeadTooLarge),
        Err(_) => return Err(Reject::BadRequest("malformed request head")),
    };
    if len > limits.max_head_bytes {
        return Err(Reject::HeadTooLarge);
    }
    let minor_version = req.version.unwrap_or(1);
    let mut keep_alive = minor_version == 1;
    let mut expect_continue = false;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_content_length(h.value)?;
            if length.is_some_and(|m| m != n) {
                return Err(Reject::BadRequest("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // Only the last coding matters for framing; it must be chunked.
            let value = std::str::from_utf8(h.value)
                .map_err(|_| Reject::BadRequest("Transfer-Encoding is not ASCII"))?;
            let last = value.rsplit(',').next().unwrap_or("").trim();
            chunked = last.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if !h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                return Err(Reject::BadRequest("unsupported Expect"));
            }
            expect_continue = minor_version == 1;
        }
    }
    let framing = match (transfer_encoding, length) {
        // A request with both is a smuggling attempt or a broken proxy.
        (true, Some(_)) => {
            return Err(Reject::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ))
        }
        (true, None) if minor_version == 0 => {
            return Err(Reject::BadRequest("Transfer-Encoding in HTTP/1.0"))
        }
        (true, None) if !chunked => {
            return Err(Reject::BadRequest("final transfer coding is not chunked"))
        }
        (true, None) => Framing::Chunked,
        (false, Some(n)) if n > limits.max_body_bytes => return Err(Reject::BodyTooLarge),
        (false, Some(0)) | (false, None) => Framing::Empty,
        (false, Some(n)) => Framing::Length(n),
    };
    Ok(Some(Head {
        method: req.method.unwrap_or(""),
        path: req.path.unwrap_or(""),
        minor_version,
        keep_alive,
        expect_continue,
        framing,
        len,
    }))
}

fn parse_content_length(value: &[u8]) -> Result<usize, Reject> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Reject::BadRequest("invalid Content-Length"));
    }
    // Anything too long for usize is certainly too large.
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Reject::BodyTooLarge)
}

/// A complete body and how many bytes of the buffer it took.
pub type Body<'b> = (Cow<'b, [u8]>, usize);

/// Frames (and for chunked coding, decodes) a body from the start of `buf`.
///
/// `Ok(Some((body, used)))`: the body is complete and took `used` bytes of
/// `buf`; `Ok(None)`: more bytes are needed.
pub fn parse_body<'b>(
    buf: &'b [u8],
    framing: Framing,
    limits: &Limits,
) -> Result<Option<Body<'b>>, Reject> {
    match framing {
        Framing::Empty => Ok(Some((Cow::Borrowed(&[]), 0))),
        Framing::Length(n) if buf.len() >= n => Ok(Some((Cow::Borrowed(&buf[..n]), n))),
        Framing::Length(_) => Ok(None),
        Framing::Chunked => parse_chunked(buf, limits),
    }
}

fn parse_chunked<'b>(buf: &'b [u8], limits: &Limits) -> Result<Option<Body<'b>>, Reject> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) if buf.len() - pos > 1024 => {
                return Err(Reject::BadRequest("chunk size line too long"))
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(Reject::BadRequest("invalid chunk size")),
        };
        pos += size_len;
        if size == 0 {
            // Trailer section, ended by an empty line; the trailers are ignored.
            let mut trailers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            return match httparse::parse_headers(&buf[pos..], &mut trailers) {
                Ok(httparse::Status::Complete((len, _))) => Ok(Some((Cow::Owned(body), pos + len))),
                Ok(httparse::Status::Partial) if buf.len() - pos > limits.max_head_bytes => {
                    Err(Reject::HeadTooLarge)
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(httparse::Error::TooManyHeaders) => Err(Reject::HeadTooLarge),
                Err(_) => Err(Reject::BadRequest("malformed trailers")),
            };
        }
        let size = usize::try_from(size).map_err(|_| Reject::BodyTooLarge)?;
        if body.len().saturating_add(size) > limits.max_body_bytes {
            return Err(Reject::BodyTooLarge);
        }
        let end = pos + size;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(Reject::BadRequest("chunk not followed by CRLF"));
        }
        body.extend_from_slice(&buf[pos..end]);
        pos = end + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(buf: &[u8]) -> Result<Option<Head<'_>>, Reject> {
        parse_head(buf, &Limits::default())
    }

    #[test]
    fn keep_alive_defaults_follow_the_version() {
        let h = head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap().unwrap();
        assert!(h.keep_alive);
        let h = head(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let h = head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
        let h = head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
    }

    #[test]
    fn partial_heads_wait_and_oversized_ones_are_rejected() {
        assert!(head(b"GET / HTTP/1.1\r\nHost").unwrap().is_none());
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(9000, b'a');
        assert_eq!(head(&big).unwrap_err(), Reject::HeadTooLarge);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(head(&many).unwrap_err(), Reject::HeadTooLarge);
    }

    #[test]
    fn ambiguous_framing_is_a_bad_request() {
        let r = head(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(matches!(r, Err(Reject::BadRequest(_))));
        let r = head(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n");
        assert!(matches!(r, Err(Reject::BadRequest(_))));
        let r = head(b"POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n");
        assert!(matches!(r, Err(Reject::BadRequest(_))));
        let r = head(b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n");
        assert_eq!(r.unwrap_err(), Reject::BodyTooLarge);
        assert!(matches!(
            head(b"\x00\x01garbage\r\n\r\n"),
            Err(Reject::BadRequest(_))
        ));
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let limits = Limits::default();
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        let (body, used) = parse_body(wire, Framing::Chunked, &limits)
            .unwrap()
            .unwrap();
        assert_eq!(&*body, b"hello world");
        assert_eq!(&wire[used..], b"NEXT");
        for cut in 0..wire.len() - 4 {
            assert!(parse_body(&wire[..cut], Framing::Chunked, &limits)
                .unwrap()
                .is_none());
        }
        let bad = b"5\r\nhelloXX0\r\n\r\n";
        assert!(parse_body(bad, Framing::Chunked, &limits).is_err());
        let huge = b"fffffff\r\n";
        assert_eq!(
            parse_body(huge, Framing::Chunked, &limits).unwrap_err(),
            Reject::BodyTooLarge
        );
    }
}
