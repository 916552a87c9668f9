//! Fuzzes the EHLO path as the probe runs it on server bytes: `parse_reply` (RFC 5321 §4.2), then
//! `Capabilities::from_reply` (§4.1.1.1) and every typed view of it, and
//! `sanitize::for_terminal` on each line, as the transcript and the text report print them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtptls::sanitize::for_terminal;
use smtptls::smtp::ehlo::Capabilities;
use smtptls::smtp::reply::parse_reply;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some(parsed)) = parse_reply(rest) {
        let reply = &parsed.reply;
        let caps = Capabilities::from_reply(reply);
        assert!(caps.extensions.len() < reply.lines.len().max(1));
        let _ = (caps.starttls(), caps.size_limit(), caps.has("AUTH"));
        for mechanism in caps.auth_mechanisms() {
            assert!(!mechanism.is_empty());
            assert_eq!(mechanism, mechanism.to_ascii_uppercase());
        }
        for ext in &caps.extensions {
            assert!(!ext.keyword.is_empty());
            assert!(!ext.keyword.chars().any(|c| c.is_ascii_whitespace()));
            assert!(caps.has(&ext.keyword));
            assert!(caps.params(&ext.keyword).is_some());
        }
        let shown = reply.wire_lines().into_iter().chain(caps.keywords());
        for line in shown.chain(std::iter::once(caps.greeting.clone())) {
            assert_safe(&for_terminal(&line));
        }
        rest = rest.get(parsed.consumed..).unwrap_or_default();
    }
});

/// Nothing that can steer a terminal survives sanitizing: no control character, no bidi
/// embedding, override or isolate.
fn assert_safe(text: &str) {
    assert!(
        !text
            .chars()
            .any(|c| c.is_control()
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')),
        "unsafe character left in {text:?}"
    );
}
