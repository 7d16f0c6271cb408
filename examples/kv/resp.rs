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
///
/// What has arrived of the line is checked before waiting for the rest, so a
/// bad line is rejected the same way however its bytes were split into reads
/// (and a hostile client cannot make the server wait on an endless line).
fn parse_length_line(buf: &[u8], prefix: u8) -> Result<Option<(i64, usize)>, ProtocolError> {
    debug_assert_eq!(buf.first(), Some(&prefix));
    let cr = buf.iter().position(|&b| b == b'\r');
    let digits = &buf[1..cr.unwrap_or(buf.len())];
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    let invalid = ProtocolError(if prefix == b'*' {
        "invalid multibulk length"
    } else {
        "invalid bulk length"
    });
    // 18 digits cannot overflow an i64.
    if digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid);
    }
    let Some(cr) = cr else {
        return Ok(None);
    };
    if buf.len() < cr + 2 {
        return Ok(None);
    }
    if buf[cr + 1] != b'\n' {
        return Err(ProtocolError("expected LF after CR"));
    }
    if digits.is_empty() {
        return Err(invalid);
    }
    let n = digits
        .iter()
        .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    Ok(Some((if negative { -n } else { n }, cr + 2)))
}

fn parse_inline(buf: &[u8]) -> Result<Option<Command<'_>>, ProtocolError> {
    // The limit holds whether or not the line end has arrived yet.
    let nl = buf.iter().position(|&b| b == b'\n');
    if nl.unwrap_or(buf.len()) > MAX_INLINE {
        return Err(ProtocolError("too big inline request"));
    }
    let Some(nl) = nl else {
        return Ok(None);
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

    /// Asserts that every prefix of `wire` is incomplete or gives the same
    /// result as `wire`: the outcome must not depend on how the client's
    /// bytes were split into reads.
    fn same_outcome_for_every_prefix(wire: &[u8]) -> Result<Option<Command<'_>>, ProtocolError> {
        let whole = parse_command(wire);
        // Every cut of short inputs, about 1000 evenly spread ones of long.
        for cut in (0..wire.len()).step_by(wire.len() / 1000 + 1) {
            let early = parse_command(&wire[..cut]);
            assert!(
                early == Ok(None) || early == whole,
                "cut at {cut}: {early:?}"
            );
        }
        whole
    }

    #[test]
    fn bad_length_lines_are_rejected_before_their_end_arrives() {
        // Found by fuzzing (fuzz/fuzz_targets/resp_command.rs): a long length
        // line was rejected if its CR had not arrived yet, and waited on
        // otherwise.
        let mut found = vec![b'*'];
        found.resize(54, 0xff);
        found.extend_from_slice(b"3\r");
        assert_eq!(
            same_outcome_for_every_prefix(&found),
            Err(ProtocolError("invalid multibulk length"))
        );
        for wire in [&b"*12x"[..], b"*1\r\n$99999999999999999999", b"*-\r\n"] {
            assert!(same_outcome_for_every_prefix(wire).is_err(), "{wire:?}");
        }
        let null_bulk = b"*1\r\n$-1\r\n";
        assert_eq!(
            same_outcome_for_every_prefix(null_bulk),
            Err(ProtocolError("invalid bulk length"))
        );
        let ok = b"*-1\r\n";
        assert_eq!(same_outcome_for_every_prefix(ok), Ok(Some((vec![], 5))));
    }

    #[test]
    fn inline_lines_over_the_limit_are_rejected_however_they_arrive() {
        let mut wire = b"SET k ".to_vec();
        wire.resize(MAX_INLINE + 1, b'v');
        wire.extend_from_slice(b"\r\n");
        assert_eq!(
            same_outcome_for_every_prefix(&wire),
            Err(ProtocolError("too big inline request"))
        );
        // A line of exactly the limit is fine.
        wire.truncate(MAX_INLINE);
        wire.push(b'\n');
        let (args, used) = same_outcome_for_every_prefix(&wire).unwrap().unwrap();
        assert_eq!((args.len(), used), (3, wire.len()));
    }
}
