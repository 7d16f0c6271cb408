//! RESP2 request framing for the key-value example.
//!
//! A client sends either an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`,
//! what redis-cli and redis-benchmark send) or an inline command (`GET k\r\n`,
//! what a person types into `nc`). [`parse_command`] is pure: given the bytes
//! received so far it returns a complete command and how many bytes it used,
//! "need more bytes", or a protocol error. A fuzz target can include this file
//! with `#[path = "../../examples/kv/resp.rs"] mod resp;`.

/// Limits that keep a hostile client from making the server buffer forever.
pub const MAX_ARGS: usize = 1024 * 1024;
/// The largest bulk string accepted (redis' default is 512 MiB).
pub const MAX_BULK: usize = 64 * 1024 * 1024;
/// The longest inline command or length line.
pub const MAX_INLINE: usize = 64 * 1024;

/// A malformed frame; the server replies `-ERR Protocol error: ...` and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

/// A complete command's arguments and how many bytes of the buffer it took.
pub type Command<'b> = (Vec<&'b [u8]>, usize);

/// Parses one command from the start of `buf`: `Ok(Some((args, used)))`,
/// `Ok(None)` if more bytes are needed. An empty inline line yields an empty
/// argument list (the caller ignores it, as redis does).
pub fn parse_command(buf: &[u8]) -> Result<Option<Command<'_>>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_array(buf),
        Some(_) => parse_inline(buf),
    }
}

fn parse_array(buf: &[u8]) -> Result<Option<Command<'_>>, ProtocolError> {
    let Some((count, mut pos)) = parse_length_line(buf, b'*')? else {
        return Ok(None);
    };
    let count = match count {
        // `*-1` and `*0` are empty requests, ignored.
        n if n <= 0 => return Ok(Some((Vec::new(), pos))),
        n if n as u64 > MAX_ARGS as u64 => return Err(ProtocolError("invalid multibulk length")),
        n => n as usize,
    };
    let mut args = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let rest = &buf[pos..];
        if rest.is_empty() {
            return Ok(None);
        }
        if rest[0] != b'$' {
            return Err(ProtocolError("expected '$'"));
        }
        let Some((len, used)) = parse_length_line(rest, b'$')? else {
            return Ok(None);
        };
        if len < 0 || len as u64 > MAX_BULK as u64 {
            return Err(ProtocolError("invalid bulk length"));
        }
        let len = len as usize;
        let start = pos + used;
        if buf.len() < start + len + 2 {
            return Ok(None);
        }
        if &buf[start + len..start + len + 2] != b"\r\n" {
            return Err(ProtocolError("bulk string not followed by CRLF"));
        }
        args.push(&buf[start..start + len]);
        pos = start + len + 2;
    }
    Ok(Some((args, pos)))
}

/// Parses `<prefix><integer>\r\n`: the integer and the line's length.
fn parse_length_line(buf: &[u8], prefix: u8) -> Result<Option<(i64, usize)>, ProtocolError> {
    debug_assert_eq!(buf.first(), Some(&prefix));
    let Some(cr) = buf.iter().position(|&b| b == b'\r') else {
        return if buf.len() > 32 {
            Err(ProtocolError("length line too long"))
        } else {
            Ok(None)
        };
    };
    if buf.len() < cr + 2 {
        return Ok(None);
    }
    if buf[cr + 1] != b'\n' {
        return Err(ProtocolError("expected LF after CR"));
    }
    let digits = &buf[1..cr];
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError(if prefix == b'*' {
            "invalid multibulk length"
        } else {
            "invalid bulk length"
        }));
    }
    let n = digits
        .iter()
        .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    Ok(Some((if negative { -n } else { n }, cr + 2)))
}

fn parse_inline(buf: &[u8]) -> Result<Option<Command<'_>>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_INLINE {
            Err(ProtocolError("too big inline request"))
        } else {
            Ok(None)
        };
    };
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.contains(&b'"') || line.contains(&b'\'') {
        // Quoted inline arguments are not supported by this example.
        return Err(ProtocolError("quoted inline arguments are not supported"));
    }
    let args = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|a| !a.is_empty())
        .collect();
    Ok(Some((args, nl + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_and_inline_commands_parse() {
        let wire = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n";
        let (args, used) = parse_command(wire).unwrap().unwrap();
        assert_eq!(args, vec![&b"GET"[..], b"k"]);
        let (args, used2) = parse_command(&wire[used..]).unwrap().unwrap();
        assert_eq!(args, vec![&b"PING"[..]]);
        assert_eq!(used + used2, wire.len());
        for cut in 0..used {
            assert_eq!(parse_command(&wire[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn malformed_frames_are_protocol_errors() {
        assert!(parse_command(b"*x\r\n").is_err());
        assert!(parse_command(b"*1\r\n+OK\r\n").is_err());
        assert!(parse_command(b"*1\r\n$-5\r\n").is_err());
        assert!(parse_command(b"*1\r\n$1\r\nabc\r\n").is_err());
        assert!(parse_command(b"*99999999999\r\n").is_err());
        assert!(parse_command(b"*1\r\n$999999999999999\r\n").is_err());
        assert!(parse_command(&[b'*'; 100]).is_err());
        assert!(parse_command(&vec![b'a'; MAX_INLINE + 1]).is_err());
    }
}
