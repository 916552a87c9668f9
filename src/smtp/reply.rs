//! SMTP replies (RFC 5321 §4.2): the `Reply` value and a sans-IO parser with hard limits.
//! STUB: interface only; to be implemented.

use serde::Serialize;

/// Longest single reply line accepted, in bytes, line ending included.
pub const MAX_LINE_LEN: usize = 8 * 1024;
/// Most lines accepted in one (multi-line) reply.
pub const MAX_REPLY_LINES: usize = 1000;
/// Most bytes accepted for one whole reply.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// One complete server reply: a three-digit code and the text of each line (without code,
/// separator or line ending; decoded lossily from whatever bytes the server sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// The reply code, 200..=599.
    pub code: u16,
    /// The text of each line, in order.
    pub lines: Vec<String>,
}

/// Why bytes could not be parsed as a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A placeholder.
    #[error("stub")]
    Stub,
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
pub fn parse_reply(_buf: &[u8]) -> Result<Option<Parsed>, ParseError> {
    Ok(None)
}
