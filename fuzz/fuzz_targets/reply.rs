//! Fuzzes the SMTP reply parser (`smtptls::smtp::reply::parse_reply`, RFC 5321 §4.2) with
//! arbitrary bytes, read the way the session reads its buffer: reply after reply from the front.
//!
//! Checked for every reply parsed: the limits hold, `consumed` stays inside the buffer, the error
//! messages render, and — when the wire form fits the limits — parsing what the reply writes gives
//! that reply back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtptls::smtp::reply::{MAX_LINE_LEN, MAX_REPLY_BYTES, MAX_REPLY_LINES, Reply, parse_reply};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        match parse_reply(rest) {
            Ok(Some(parsed)) => {
                assert!(parsed.consumed > 0, "a reply consumes bytes");
                assert!(parsed.consumed <= rest.len().min(MAX_REPLY_BYTES));
                check_reply(&parsed.reply);
                rest = rest.get(parsed.consumed..).unwrap_or_default();
            }
            Ok(None) => break,
            Err(err) => {
                // Error messages quote server bytes; they must render without panicking.
                let _ = err.to_string();
                break;
            }
        }
    }
});

fn check_reply(reply: &Reply) {
    assert!((200..=599).contains(&reply.code), "code {}", reply.code);
    assert!((1..=MAX_REPLY_LINES).contains(&reply.lines.len()));
    assert!((2..=5).contains(&reply.class()));
    assert!(reply.lines.iter().all(|l| !l.contains('\n')));
    let _ = reply.text();
    let wire_lines = reply.wire_lines();
    assert_eq!(wire_lines.len(), reply.lines.len());
    // Lossy decoding and CRLF for a bare LF can make the written form longer than what arrived,
    // so the round trip is only promised when the written form is itself within the limits.
    let wire = reply.to_string();
    let fits =
        wire.len() <= MAX_REPLY_BYTES && wire_lines.iter().all(|l| l.len() + 2 <= MAX_LINE_LEN);
    if fits {
        let again = parse_reply(wire.as_bytes())
            .expect("a written reply parses")
            .expect("a written reply is complete");
        assert_eq!(again.consumed, wire.len());
        assert!(!again.bare_lf);
        assert_eq!(&again.reply, reply);
    }
}
