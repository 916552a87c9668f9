//! SMTP replies (RFC 5321 §4.2): the `Reply` value and a sans-IO parser with hard limits.
//!
//! [`parse_reply`] takes whatever bytes have arrived and either returns one complete reply from the
//! front of the buffer, asks for more bytes (`Ok(None)`), or rejects the input. It never reads a
//! socket, so the same code serves the plaintext and the TLS phase, and tests need no server.
//!
//! The server is not trusted: lines may end in CRLF or a bare LF (reported, not refused), text is
//! decoded lossily, and the limits [`MAX_LINE_LEN`], [`MAX_REPLY_LINES`] and [`MAX_REPLY_BYTES`] are
//! enforced on incomplete input too, so a hostile server cannot make the caller buffer without end.
//! A 4xx or 5xx reply is data, not an error: the probe reports it.

use std::fmt;

use serde::Serialize;

use crate::sanitize::for_terminal;

/// Longest single reply line accepted, in bytes, line ending included.
pub const MAX_LINE_LEN: usize = 8 * 1024;
/// Most lines accepted in one (multi-line) reply.
pub const MAX_REPLY_LINES: usize = 1000;
/// Most bytes accepted for one whole reply.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// How many characters of an offending line an error keeps.
const SHOWN_LINE_CHARS: usize = 200;

/// One complete server reply: a three-digit code and the text of each line (without code,
/// separator or line ending; decoded lossily from whatever bytes the server sent).
///
/// The text is the server's, unfiltered: pass it through [`for_terminal`] before printing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// The reply code, 200..=599.
    pub code: u16,
    /// The text of each line, in order.
    pub lines: Vec<String>,
}

impl Reply {
    /// The first digit of the code: 2 positive, 3 intermediate, 4 transient, 5 permanent.
    pub fn class(&self) -> u8 {
        u8::try_from(self.code / 100).unwrap_or(u8::MAX)
    }

    /// Whether this is a positive completion reply (2xx).
    pub fn is_positive(&self) -> bool {
        self.class() == 2
    }

    /// Whether this is a positive intermediate reply (3xx), such as 354 after DATA.
    pub fn is_intermediate(&self) -> bool {
        self.class() == 3
    }

    /// Whether this is a transient negative reply (4xx): the same command may succeed later.
    pub fn is_transient(&self) -> bool {
        self.class() == 4
    }

    /// Whether this is a permanent negative reply (5xx).
    pub fn is_permanent(&self) -> bool {
        self.class() == 5
    }

    /// The text of all lines joined with `"\n"`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The lines as the server sent them, without line endings: `["250-mx.example", "250 SIZE 1000"]`.
    ///
    /// A last line with empty text renders as the bare code, and so does a reply with no lines.
    pub fn wire_lines(&self) -> Vec<String> {
        let code = self.code;
        let Some((last, init)) = self.lines.split_last() else {
            return vec![code.to_string()];
        };
        let last = if last.is_empty() {
            code.to_string()
        } else {
            format!("{code} {last}")
        };
        init.iter()
            .map(|line| format!("{code}-{line}"))
            .chain(std::iter::once(last))
            .collect()
    }
}

/// The wire form, every line ending in CRLF; [`parse_reply`] reads it back.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.wire_lines() {
            write!(f, "{line}\r\n")?;
        }
        Ok(())
    }
}

/// Why bytes could not be parsed as a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A line does not have the shape `ddd`, `ddd text` or `ddd-text`.
    #[error("malformed reply line \"{}\": {fault}", for_terminal(.line))]
    Malformed {
        /// The offending line, decoded lossily and cut to about 200 characters.
        line: String,
        /// What is wrong with it.
        fault: LineFault,
    },
    /// A line of a multi-line reply carries another code than the first line.
    #[error(
        "reply line \"{}\" has code {found}, but the reply began with code {expected}",
        for_terminal(.line)
    )]
    CodeMismatch {
        /// The code of the reply's first line.
        expected: u16,
        /// The code of the offending line.
        found: u16,
        /// The offending line, decoded lossily and cut to about 200 characters.
        line: String,
    },
    /// A line, complete or not, is longer than [`MAX_LINE_LEN`].
    #[error("reply line longer than {} bytes", MAX_LINE_LEN)]
    LineTooLong,
    /// The reply has more than [`MAX_REPLY_LINES`] lines.
    #[error("reply has more than {} lines", MAX_REPLY_LINES)]
    TooManyLines,
    /// The reply runs past [`MAX_REPLY_BYTES`] without ending.
    #[error("reply longer than {} bytes", MAX_REPLY_BYTES)]
    ReplyTooLong,
}

/// What is wrong with a malformed reply line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFault {
    /// The line is empty.
    Empty,
    /// The line does not start with three digits.
    NotThreeDigits,
    /// The first digit is not 2, 3, 4 or 5.
    FirstDigit,
    /// The second digit is not 0..=5.
    SecondDigit,
    /// The code is followed by something other than a space, a hyphen or the line ending.
    Separator,
}

impl fmt::Display for LineFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "the line is empty",
            Self::NotThreeDigits => "the reply code must be three digits",
            Self::FirstDigit => "the first digit of the reply code must be 2, 3, 4 or 5",
            Self::SecondDigit => "the second digit of the reply code must be 0 to 5",
            Self::Separator => {
                "the reply code must be followed by a space, a hyphen or the end of the line"
            }
        })
    }
}

/// A reply parsed from the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The reply.
    pub reply: Reply,
    /// How many bytes of the buffer it used.
    pub consumed: usize,
    /// Whether any of its lines ended in a bare LF instead of CRLF.
    pub bare_lf: bool,
}

/// Parses one reply from the front of `buf`: `Ok(None)` when more bytes are needed.
///
/// Bytes after the reply's last line (pipelined data, the next reply) are left alone; `consumed`
/// says where they start. The limits are checked before the reply is complete, so the caller can
/// stop reading as soon as an error comes back.
pub fn parse_reply(buf: &[u8]) -> Result<Option<Parsed>, ParseError> {
    let mut code = None;
    let mut lines = Vec::new();
    let mut bare_lf = false;
    let mut consumed = 0;
    for chunk in buf.split_inclusive(|&b| b == b'\n') {
        let Some(line) = chunk.strip_suffix(b"\n") else {
            // An unterminated line: the rest of the buffer.
            return check_partial(chunk.len(), consumed).map(|()| None);
        };
        if chunk.len() > MAX_LINE_LEN {
            return Err(ParseError::LineTooLong);
        }
        let line = line.strip_suffix(b"\r").unwrap_or_else(|| {
            bare_lf = true;
            line
        });
        let (found, last, text) = parse_line(line)?;
        let expected = *code.get_or_insert(found);
        if found != expected {
            return Err(ParseError::CodeMismatch {
                expected,
                found,
                line: shown(line),
            });
        }
        lines.push(String::from_utf8_lossy(text).into_owned());
        consumed += chunk.len();
        if lines.len() > MAX_REPLY_LINES {
            return Err(ParseError::TooManyLines);
        }
        if consumed > MAX_REPLY_BYTES {
            return Err(ParseError::ReplyTooLong);
        }
        if last {
            let reply = Reply {
                code: expected,
                lines,
            };
            return Ok(Some(Parsed {
                reply,
                consumed,
                bare_lf,
            }));
        }
    }
    // The buffer is empty or ends right after a continuation line.
    Ok(None)
}

/// Checks the limits for an unterminated line of `len` bytes after `consumed` bytes of the reply.
fn check_partial(len: usize, consumed: usize) -> Result<(), ParseError> {
    if len > MAX_LINE_LEN {
        Err(ParseError::LineTooLong)
    } else if consumed + len > MAX_REPLY_BYTES {
        Err(ParseError::ReplyTooLong)
    } else {
        Ok(())
    }
}

/// Splits one line (without line ending) into code, whether it is the last line, and text.
fn parse_line(line: &[u8]) -> Result<(u16, bool, &[u8]), ParseError> {
    let malformed = |fault| ParseError::Malformed {
        line: shown(line),
        fault,
    };
    if line.is_empty() {
        return Err(malformed(LineFault::Empty));
    }
    let Some((&[d1, d2, d3], rest)) = line.split_at_checked(3) else {
        return Err(malformed(LineFault::NotThreeDigits));
    };
    if ![d1, d2, d3].iter().all(u8::is_ascii_digit) {
        return Err(malformed(LineFault::NotThreeDigits));
    }
    if !(b'2'..=b'5').contains(&d1) {
        return Err(malformed(LineFault::FirstDigit));
    }
    if !(b'0'..=b'5').contains(&d2) {
        return Err(malformed(LineFault::SecondDigit));
    }
    let code = [d1, d2, d3]
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match rest.split_first() {
        None => Ok((code, true, rest)),
        Some((b' ', text)) => Ok((code, true, text)),
        Some((b'-', text)) => Ok((code, false, text)),
        Some(_) => Err(malformed(LineFault::Separator)),
    }
}

/// An offending line for an error message: decoded lossily, cut to [`SHOWN_LINE_CHARS`] characters.
fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    match text.char_indices().nth(SHOWN_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or_default()),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Outcome = Result<Option<Parsed>, ParseError>;

    fn ok(code: u16, lines: &[&str], consumed: usize, bare_lf: bool) -> Outcome {
        let lines = lines.iter().map(ToString::to_string).collect();
        let reply = Reply { code, lines };
        Ok(Some(Parsed {
            reply,
            consumed,
            bare_lf,
        }))
    }

    fn malformed(line: &str, fault: LineFault) -> Outcome {
        let line = line.to_string();
        Err(ParseError::Malformed { line, fault })
    }

    #[test]
    fn parses_table() {
        use LineFault::*;
        let multi = b"250-mx.example\r\n250-SIZE 1000\r\n250 STARTTLS\r\n";
        let cases: &[(&[u8], Outcome)] = &[
            (
                b"220 mx.example ESMTP\r\n",
                ok(220, &["mx.example ESMTP"], 22, false),
            ),
            (
                multi,
                ok(250, &["mx.example", "SIZE 1000", "STARTTLS"], 45, false),
            ),
            (b"220 hi\n", ok(220, &["hi"], 7, true)),
            (
                b"250-a\r\n250-b\n250 c\r\n",
                ok(250, &["a", "b", "c"], 20, true),
            ),
            (b"250\r\n", ok(250, &[""], 5, false)),
            (b"250 \r\n", ok(250, &[""], 6, false)),
            (b"250-\r\n250\n", ok(250, &["", ""], 10, true)),
            (b"250  two spaces\r\n", ok(250, &[" two spaces"], 17, false)),
            (b"250 a\rb\r\n", ok(250, &["a\rb"], 9, false)),
            (b"250 a\r\r\n", ok(250, &["a\r"], 8, false)),
            (b"554 no\r\n", ok(554, &["no"], 8, false)),
            // Pipelined bytes after the reply stay in the buffer.
            (b"220 hi\r\n250 next\r\n", ok(220, &["hi"], 8, false)),
            (b"220 hi\r\nEHLO", ok(220, &["hi"], 8, false)),
            // Invalid UTF-8 and escape sequences survive, lossily.
            (
                b"220 caf\xc3\xa9 \xff\x1b[31m\r\n",
                ok(220, &["caf\u{e9} \u{fffd}\x1b[31m"], 18, false),
            ),
            // Incomplete.
            (b"", Ok(None)),
            (b"2", Ok(None)),
            (b"99", Ok(None)),
            (b"220 hi", Ok(None)),
            (b"220 hi\r", Ok(None)),
            (b"250-a\r\n", Ok(None)),
            (b"250-a\r\n250 b", Ok(None)),
            // Mismatched codes.
            (
                b"250-a\r\n251 b\r\n",
                Err(ParseError::CodeMismatch {
                    expected: 250,
                    found: 251,
                    line: "251 b".into(),
                }),
            ),
            // Malformed lines.
            (b"2x0 x\r\n", malformed("2x0 x", NotThreeDigits)),
            (b"99\r\n", malformed("99", NotThreeDigits)),
            (b"\r\n", malformed("", Empty)),
            (b"\n", malformed("", Empty)),
            (b"250x\r\n", malformed("250x", Separator)),
            (b"2500\r\n", malformed("2500", Separator)),
            (b"250\tx\r\n", malformed("250\tx", Separator)),
            (b"600 x\r\n", malformed("600 x", FirstDigit)),
            (b"199 x\r\n", malformed("199 x", FirstDigit)),
            (b"260 x\r\n", malformed("260 x", SecondDigit)),
            (b" 250 x\r\n", malformed(" 250 x", NotThreeDigits)),
            (
                b"HTTP/1.1 400 Bad\r\n",
                malformed("HTTP/1.1 400 Bad", NotThreeDigits),
            ),
            (b"250-a\r\nxyz\r\n", malformed("xyz", NotThreeDigits)),
            (
                b"\xff\xfe\r\n",
                malformed("\u{fffd}\u{fffd}", NotThreeDigits),
            ),
        ];
        for (input, want) in cases {
            let text = String::from_utf8_lossy(input);
            assert_eq!(&parse_reply(input), want, "input {text:?}");
        }
    }

    /// `count` copies of `line`, optionally followed by `tail`.
    fn repeat(line: &[u8], count: usize, tail: &[u8]) -> Vec<u8> {
        let mut buf = line.repeat(count);
        buf.extend_from_slice(tail);
        buf
    }

    #[test]
    fn limits_table() {
        use ParseError::*;
        let fill = |n: usize| "a".repeat(n);
        let line = |sep: &str, len: usize, end: &str| format!("250{sep}{}{end}", fill(len));
        let longest = line(" ", MAX_LINE_LEN - 6, "\r\n");
        let longest_lf = line(" ", MAX_LINE_LEN - 5, "\n");
        let too_long = line(" ", MAX_LINE_LEN - 5, "\r\n");
        let long_cont = line("-", 1000, "\r\n");
        // 65 lines of 1006 bytes and a last line of 146 bytes: exactly MAX_REPLY_BYTES.
        let fullest = format!("{}{}", long_cont.repeat(65), line(" ", 140, "\r\n"));
        let overfull = format!("{}{}", long_cont.repeat(65), line(" ", 141, "\r\n"));
        let cont = b"250-\r\n".as_slice();
        // Expected: Ok(Some(number of lines)), Ok(None) or the error.
        type Case = (&'static str, Vec<u8>, Result<Option<usize>, ParseError>);
        let cases: Vec<Case> = vec![
            ("longest line", longest.into(), Ok(Some(1))),
            ("longest line, bare LF", longest_lf.into(), Ok(Some(1))),
            ("overlong line", too_long.into(), Err(LineTooLong)),
            ("partial at limit", vec![b'2'; MAX_LINE_LEN], Ok(None)),
            (
                "overlong partial",
                vec![b'2'; MAX_LINE_LEN + 1],
                Err(LineTooLong),
            ),
            (
                "overlong partial text",
                line(" ", MAX_LINE_LEN, "").into(),
                Err(LineTooLong),
            ),
            (
                "most lines",
                repeat(cont, MAX_REPLY_LINES - 1, b"250\r\n"),
                Ok(Some(MAX_REPLY_LINES)),
            ),
            (
                "most lines, open",
                repeat(cont, MAX_REPLY_LINES, b""),
                Ok(None),
            ),
            (
                "endless continuation",
                repeat(cont, MAX_REPLY_LINES + 1, b""),
                Err(TooManyLines),
            ),
            (
                "too many lines, ended",
                repeat(cont, MAX_REPLY_LINES, b"250\r\n"),
                Err(TooManyLines),
            ),
            ("largest reply", fullest.into(), Ok(Some(66))),
            (
                "reply one byte too large",
                overfull.into(),
                Err(ReplyTooLong),
            ),
            (
                "endless long continuation",
                long_cont.repeat(70).into(),
                Err(ReplyTooLong),
            ),
            (
                "long reply, partial tail",
                repeat(long_cont.as_bytes(), 65, &[b'a'; 1000]),
                Err(ReplyTooLong),
            ),
        ];
        for (name, input, want) in cases {
            let got = parse_reply(&input).map(|p| p.map(|p| p.reply.lines.len()));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn error_messages_are_plain_words() {
        let msg = |input: &[u8]| parse_reply(input).unwrap_err().to_string();
        assert_eq!(
            msg(b"2x0 hi\r\n"),
            "malformed reply line \"2x0 hi\": the reply code must be three digits"
        );
        assert_eq!(
            msg(b"250-a\r\n251 b\r\n"),
            "reply line \"251 b\" has code 251, but the reply began with code 250"
        );
        assert_eq!(
            msg(&[b'2'; MAX_LINE_LEN + 1]),
            "reply line longer than 8192 bytes"
        );
        assert_eq!(
            msg(&b"250-\r\n".repeat(1001)),
            "reply has more than 1000 lines"
        );
        // The server's bytes are escaped in the message, and long lines are cut.
        assert_eq!(
            msg(b"\x1b[2J\r\n"),
            "malformed reply line \"\\x1b[2J\": the reply code must be three digits"
        );
        let long = format!("x{}\r\n", "y".repeat(500));
        let ParseError::Malformed { line, .. } = parse_reply(long.as_bytes()).unwrap_err() else {
            panic!("expected Malformed");
        };
        assert_eq!(line.chars().count(), SHOWN_LINE_CHARS + 1);
        assert!(line.ends_with("y…"));
    }

    #[test]
    fn reply_views() {
        let reply = |code, lines: &[&str]| Reply {
            code,
            lines: lines.iter().map(ToString::to_string).collect(),
        };
        // (reply, class, [positive, intermediate, transient, permanent], wire lines, text)
        type Case<'a> = (Reply, u8, [bool; 4], &'a [&'a str], &'a str);
        let cases: &[Case] = &[
            (
                reply(250, &["mx.example", "SIZE 1000"]),
                2,
                [true, false, false, false],
                &["250-mx.example", "250 SIZE 1000"],
                "mx.example\nSIZE 1000",
            ),
            (
                reply(354, &["go ahead"]),
                3,
                [false, true, false, false],
                &["354 go ahead"],
                "go ahead",
            ),
            (
                reply(421, &["busy"]),
                4,
                [false, false, true, false],
                &["421 busy"],
                "busy",
            ),
            (
                reply(554, &[]),
                5,
                [false, false, false, true],
                &["554"],
                "",
            ),
            (
                reply(250, &["a", ""]),
                2,
                [true, false, false, false],
                &["250-a", "250"],
                "a\n",
            ),
        ];
        for (r, class, kinds, wire, text) in cases {
            assert_eq!(r.class(), *class, "{r:?}");
            let got = [
                r.is_positive(),
                r.is_intermediate(),
                r.is_transient(),
                r.is_permanent(),
            ];
            assert_eq!(&got, kinds, "{r:?}");
            assert_eq!(r.wire_lines(), *wire, "{r:?}");
            assert_eq!(r.text(), *text, "{r:?}");
            let want: String = wire.iter().map(|l| format!("{l}\r\n")).collect();
            assert_eq!(r.to_string(), want);
        }
        assert_eq!(reply(65535, &[]).class(), u8::MAX);
    }

    /// A valid reply: code 200..=599 with a second digit 0..=5, 1..20 lines without CR or LF.
    fn valid_reply() -> impl Strategy<Value = Reply> {
        let code = (2u16..=5, 0u16..=5, 0u16..=9).prop_map(|(a, b, c)| a * 100 + b * 10 + c);
        let lines = proptest::collection::vec("[^\r\n]{0,60}", 1..20);
        (code, lines).prop_map(|(code, lines)| Reply { code, lines })
    }

    /// Bytes that look a bit like SMTP: codes, separators, line endings and noise.
    fn smtp_ish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"250".to_vec()),
            Just(b"-".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        proptest::collection::vec(piece, 0..64).prop_map(|pieces| pieces.concat())
    }

    fn check_invariants(buf: &[u8]) {
        if let Ok(Some(parsed)) = parse_reply(buf) {
            assert!(parsed.consumed <= buf.len() && parsed.consumed <= MAX_REPLY_BYTES);
            assert!((1..=MAX_REPLY_LINES).contains(&parsed.reply.lines.len()));
            assert!((200..=599).contains(&parsed.reply.code));
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..4096)) {
            check_invariants(&buf);
        }

        #[test]
        fn smtp_ish_bytes_never_panic(buf in smtp_ish()) {
            check_invariants(&buf);
        }

        #[test]
        fn display_round_trips(reply in valid_reply(), tail in "[ -~]{0,10}") {
            let wire = reply.to_string();
            let parsed = parse_reply(wire.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(parsed.consumed, wire.len());
            prop_assert!(!parsed.bare_lf);
            prop_assert_eq!(&parsed.reply, &reply);
            // Whatever follows is left alone.
            let pipelined = format!("{wire}{tail}");
            let parsed = parse_reply(pipelined.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(parsed.consumed, wire.len());
        }

        #[test]
        fn strict_prefixes_need_more(reply in valid_reply()) {
            let wire = reply.to_string().into_bytes();
            for end in 0..wire.len() {
                prop_assert_eq!(parse_reply(&wire[..end]), Ok(None), "prefix {}", end);
            }
        }
    }
}
