//! Server-supplied text made safe for a terminal.
//!
//! Banners, EHLO lines (RFC 5321 §4.2, §4.1.1.1) and certificate subjects are chosen by whoever runs
//! the server. Printed raw, they could move the cursor, recolour or clear the screen, ring the bell,
//! forge extra report lines, or reorder text with Unicode bidirectional overrides (CVE-2021-42574,
//! "Trojan Source"). [`for_terminal`] replaces every such character with a visible escape.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Returns `s` with every character that could steer a terminal replaced by a visible escape.
///
/// Escaped: C0 controls (`\t`, `\r`, `\n`, others as `\x1b`), DEL (`\x7f`), C1 controls
/// (`\u{9b}`) and the bidirectional embedding, override and isolate characters U+202A..=U+202E and
/// U+2066..=U+2069 (`\u{202e}`). A backslash is left as it is, and so is U+FFFD from lossy
/// decoding. Borrows `s` when nothing needs escaping.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for ch in s.chars() {
        if needs_escape(ch) {
            push_escape(&mut out, ch);
        } else {
            out.push(ch);
        }
    }
    Cow::Owned(out)
}

/// Whether `ch` is a control character (C0, DEL, C1) or a bidi embedding/override/isolate.
fn needs_escape(ch: char) -> bool {
    ch.is_control() || matches!(ch, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Appends the visible escape for `ch` to `out`.
fn push_escape(out: &mut String, ch: char) {
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = match ch {
        '\t' => out.write_str("\\t"),
        '\r' => out.write_str("\\r"),
        '\n' => out.write_str("\\n"),
        c if c.is_ascii() => write!(out, "\\x{:02x}", u32::from(c)),
        c => write!(out, "\\u{{{:x}}}", u32::from(c)),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_can_steer_a_terminal() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("mx.example ESMTP ready", "mx.example ESMTP ready"),
            ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
            ("tab\there", "tab\\there"),
            ("line\r\nforged: OK", "line\\r\\nforged: OK"),
            ("bell\x07", "bell\\x07"),
            ("nul\0", "nul\\x00"),
            ("del\x7f", "del\\x7f"),
            ("csi\u{9b}31m", "csi\\u{9b}31m"),
            ("c1 first\u{80}last\u{9f}", "c1 first\\u{80}last\\u{9f}"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            (
                "\u{202a}\u{202b}\u{202c}\u{202d}",
                "\\u{202a}\\u{202b}\\u{202c}\\u{202d}",
            ),
            (
                "\u{2066}x\u{2067}\u{2068}\u{2069}",
                "\\u{2066}x\\u{2067}\\u{2068}\\u{2069}",
            ),
            ("back\\slash", "back\\slash"),
            ("lossy \u{fffd} kept", "lossy \u{fffd} kept"),
            ("café 日本 \u{a0}nbsp", "café 日本 \u{a0}nbsp"),
            (
                "\u{200f}rlm is not an override",
                "\u{200f}rlm is not an override",
            ),
        ];
        for &(input, want) in cases {
            assert_eq!(for_terminal(input), want, "input {input:?}");
        }
    }

    #[test]
    fn borrows_when_nothing_changes() {
        for input in ["", "plain text", "back\\slash \\x1b", "\u{fffd}", "日本語"] {
            assert!(
                matches!(for_terminal(input), Cow::Borrowed(s) if s == input),
                "input {input:?}"
            );
        }
        assert!(matches!(for_terminal("\x1b"), Cow::Owned(_)));
    }

    #[test]
    fn output_never_contains_a_control_or_bidi_char() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!for_terminal(&all).chars().any(needs_escape));
    }
}
