//! Fuzzes the kv example's RESP request parser (`examples/kv/resp.rs`) the way
//! its server drives it: parse commands from the start of the buffer until one
//! is incomplete or malformed (pipelining).
//!
//! Beyond "does not panic", every input is checked against the parser's
//! contract:
//! - a command uses at least one byte and never more than the buffer holds
//!   (the server always progresses), its arguments lie within the bytes it
//!   used, in order and without overlap, and respect the argument limits;
//! - re-parsing exactly the bytes a command used gives the same command, and
//!   parsing is deterministic;
//! - the outcome does not depend on how the bytes were split into reads: the
//!   commands parsed from any prefix of the input are a prefix of those parsed
//!   from the whole input, a prefix of a command is incomplete (never an
//!   error), and a prefix is rejected only with the whole input's error;
//! - an incomplete inline command stays within the inline limit;
//! - any argument list, encoded as a RESP array, parses back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../examples/kv/resp.rs"]
mod resp;

use resp::ProtocolError;

/// One parsed command: its arguments (borrowed from the input, so a prefix's
/// commands compare with the whole input's by content) and how many bytes it
/// used.
type Command<'b> = (Vec<&'b [u8]>, usize);

/// Why the server stopped parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The next command is incomplete; these bytes stay buffered.
    NeedMore { pending: usize },
    /// The server replies with this protocol error and closes.
    Rejected(ProtocolError),
}

/// The server's parse loop (`serve` in examples/kv/main.rs) without the
/// socket; with `checked`, each command is checked against the contract (the
/// prefixes of an input skip that: their commands are compared with the
/// whole input's, which were checked).
fn serve(data: &[u8], checked: bool) -> (Vec<Command<'_>>, End) {
    let mut commands = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let rest = &data[start..];
        match resp::parse_command(rest) {
            Ok(Some((args, used))) => {
                if checked {
                    check_command(&args, used, rest);
                }
                commands.push((args, used));
                start += used;
            }
            Ok(None) => {
                if checked && rest[0] != b'*' {
                    assert!(
                        rest.len() <= resp::MAX_INLINE,
                        "an unbounded inline command"
                    );
                }
                return (
                    commands,
                    End::NeedMore {
                        pending: rest.len(),
                    },
                );
            }
            Err(err) => return (commands, End::Rejected(err)),
        }
    }
    (commands, End::NeedMore { pending: 0 })
}

fn check_command(args: &[&[u8]], used: usize, buf: &[u8]) {
    assert!(
        used > 0,
        "a command of no bytes: the server would not progress"
    );
    assert!(used <= buf.len(), "a command claims more bytes than read");
    assert!(args.len() <= resp::MAX_ARGS);
    let mut after = buf.as_ptr();
    for arg in args {
        assert!(arg.len() <= resp::MAX_BULK);
        let range = arg.as_ptr_range();
        // SAFETY: `buf[..used]` is in bounds (checked above), so its end is
        // one past the end of the same allocation.
        let end = unsafe { buf.as_ptr().add(used) };
        assert!(
            after <= range.start && range.end <= end,
            "arguments overlap, are out of order or lie outside the command"
        );
        after = range.end;
    }
    if buf[0] != b'*' {
        // Inline: whitespace separated, so no argument is empty or has any.
        for arg in args {
            assert!(!arg.is_empty() && !arg.iter().any(u8::is_ascii_whitespace));
        }
    }
    let again = resp::parse_command(&buf[..used])
        .expect("the command's own bytes are rejected")
        .expect("the command's own bytes are incomplete");
    assert_eq!((&again.0[..], again.1), (args, used));
    round_trip(args);
}

/// Encodes the arguments as a RESP array and checks that they parse back.
fn round_trip(args: &[&[u8]]) {
    if args.is_empty() {
        return; // `*0` is an empty request, checked by the parser's tests
    }
    let mut wire = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        wire.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        wire.extend_from_slice(arg);
        wire.extend_from_slice(b"\r\n");
    }
    let (decoded, used) = resp::parse_command(&wire)
        .expect("an encoded command is rejected")
        .expect("an encoded command is incomplete");
    assert_eq!((&decoded[..], used), (args, wire.len()));
}

/// Prefix lengths at which to cut the input: all of them for short inputs,
/// an even sample of about 128 for longer ones, always including `len - 1`.
fn cuts(len: usize) -> impl Iterator<Item = usize> {
    let step = (len / 128).max(1);
    (0..len).step_by(step).chain(len.checked_sub(1))
}

fuzz_target!(|data: &[u8]| {
    let (commands, end) = serve(data, true);
    assert_eq!(
        serve(data, false),
        (commands.clone(), end),
        "nondeterministic"
    );
    let used: usize = commands.iter().map(|c| c.1).sum();
    if let End::NeedMore { pending } = end {
        assert_eq!(used + pending, data.len());
    }
    for cut in cuts(data.len()) {
        let (early, early_end) = serve(&data[..cut], false);
        assert!(
            early.len() <= commands.len() && early[..] == commands[..early.len()],
            "the commands parsed from the first {cut} bytes differ from the whole input's"
        );
        if let End::Rejected(err) = early_end {
            assert_eq!(
                (early.len(), End::Rejected(err)),
                (commands.len(), end),
                "the first {cut} bytes are rejected, the whole input differs"
            );
        }
    }
});
