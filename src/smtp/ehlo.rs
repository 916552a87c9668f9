//! EHLO capabilities (RFC 5321 §4.1.1.1): raw lines kept, a typed view beside.
//!
//! The first line of a 250 reply to EHLO is the server's greeting; every later line names one
//! service extension (RFC 5321 §4.1.1.1, §2.2.2): a keyword, then parameters separated by spaces.
//! Every extension is kept, known or not, with its line as sent, so a report can show exactly what
//! the server announced; the typed helpers (STARTTLS, RFC 3207; AUTH, RFC 4954; SIZE, RFC 1870) read
//! from the same list.

use serde::Serialize;

use super::reply::Reply;

/// What a server announced in its EHLO reply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Capabilities {
    /// The first line of the EHLO reply, usually the server's name and a greeting.
    pub greeting: String,
    /// One entry per later line that carries a keyword, in the order sent.
    pub extensions: Vec<Extension>,
}

/// One EHLO line: a service extension keyword and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extension {
    /// The keyword, ASCII-uppercased (`"STARTTLS"`, `"AUTH"`, or a legacy `"AUTH=LOGIN"`).
    pub keyword: String,
    /// The parameters after the keyword, as sent.
    pub params: Vec<String>,
    /// The line as sent (the reply text, without code and separator).
    pub raw: String,
}

impl Extension {
    /// Reads one EHLO line; `None` when it holds no keyword (empty, or only whitespace).
    fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_ascii_whitespace();
        let keyword = words.next()?.to_ascii_uppercase();
        Some(Self {
            keyword,
            params: words.map(str::to_owned).collect(),
            raw: line.to_owned(),
        })
    }
}

impl Capabilities {
    /// Reads the capabilities from an EHLO reply: the first line is the greeting, the later lines
    /// are extensions. Unknown keywords are kept; lines without any keyword are skipped.
    pub fn from_reply(reply: &Reply) -> Self {
        let mut lines = reply.lines.iter();
        let greeting = lines.next().cloned().unwrap_or_default();
        let extensions = lines.filter_map(|line| Extension::parse(line)).collect();
        Self {
            greeting,
            extensions,
        }
    }

    /// The first extension whose keyword is `keyword`, compared case-insensitively.
    fn find(&self, keyword: &str) -> Option<&Extension> {
        self.extensions
            .iter()
            .find(|ext| ext.keyword.eq_ignore_ascii_case(keyword))
    }

    /// Whether the server announced `keyword` (case-insensitive).
    pub fn has(&self, keyword: &str) -> bool {
        self.find(keyword).is_some()
    }

    /// The parameters of the first `keyword` line (case-insensitive), if announced.
    pub fn params(&self, keyword: &str) -> Option<&[String]> {
        self.find(keyword).map(|ext| ext.params.as_slice())
    }

    /// Whether the server offers STARTTLS (RFC 3207).
    pub fn starttls(&self) -> bool {
        self.has("STARTTLS")
    }

    /// The SASL mechanisms offered (RFC 4954), uppercased and without duplicates, in the order
    /// first seen; read from `AUTH PLAIN LOGIN` lines and from legacy `AUTH=LOGIN PLAIN` lines.
    pub fn auth_mechanisms(&self) -> Vec<String> {
        let mut mechanisms: Vec<String> = Vec::new();
        for ext in &self.extensions {
            let legacy = ext.keyword.strip_prefix("AUTH=");
            if ext.keyword != "AUTH" && legacy.is_none() {
                continue;
            }
            for name in legacy
                .into_iter()
                .chain(ext.params.iter().map(String::as_str))
            {
                let name = name.to_ascii_uppercase();
                if !name.is_empty() && !mechanisms.contains(&name) {
                    mechanisms.push(name);
                }
            }
        }
        mechanisms
    }

    /// The largest message size the server accepts (RFC 1870 SIZE), in bytes.
    ///
    /// `None` when the server sets no fixed maximum: no SIZE line, SIZE without a number, a
    /// number that does not parse, or `SIZE 0` (which RFC 1870 §4 defines as "no fixed maximum").
    pub fn size_limit(&self) -> Option<u64> {
        let limit = self.params("SIZE")?.first()?.parse().ok()?;
        (limit > 0).then_some(limit)
    }

    /// The extension lines as sent, for reports.
    pub fn keywords(&self) -> Vec<String> {
        self.extensions.iter().map(|ext| ext.raw.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(lines: &[&str]) -> Capabilities {
        let lines = lines.iter().map(ToString::to_string).collect();
        Capabilities::from_reply(&Reply { code: 250, lines })
    }

    #[test]
    fn reads_a_typical_reply() {
        let c = caps(&[
            "mx.example Hello [192.0.2.7]",
            "PIPELINING",
            "SIZE 35882577",
            "STARTTLS",
            "AUTH PLAIN LOGIN",
            "8BITMIME",
            "X-UNKNOWN-THING a b",
        ]);
        assert_eq!(c.greeting, "mx.example Hello [192.0.2.7]");
        assert_eq!(c.extensions.len(), 6);
        assert!(c.starttls());
        assert_eq!(c.auth_mechanisms(), ["PLAIN", "LOGIN"]);
        assert_eq!(c.size_limit(), Some(35_882_577));
        assert!(c.has("x-unknown-thing"));
        assert_eq!(
            c.params("X-Unknown-Thing"),
            Some(&["a".into(), "b".into()][..])
        );
        assert_eq!(c.keywords()[5], "X-UNKNOWN-THING a b");
        let ext = &c.extensions[1];
        assert_eq!(
            (ext.keyword.as_str(), ext.raw.as_str()),
            ("SIZE", "SIZE 35882577")
        );
    }

    #[test]
    fn table() {
        // (EHLO lines after the greeting, starttls, auth mechanisms, size limit, keywords)
        type Case<'a> = (
            &'a [&'a str],
            bool,
            &'a [&'a str],
            Option<u64>,
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            (&[], false, &[], None, &[]),
            (
                &["starttls", "size 1000"],
                true,
                &[],
                Some(1000),
                &["STARTTLS", "SIZE"],
            ),
            (&["StartTLS"], true, &[], None, &["STARTTLS"]),
            (
                &["AUTH=LOGIN PLAIN"],
                false,
                &["LOGIN", "PLAIN"],
                None,
                &["AUTH=LOGIN"],
            ),
            (&["auth=login"], false, &["LOGIN"], None, &["AUTH=LOGIN"]),
            (
                &[
                    "AUTH PLAIN LOGIN CRAM-MD5",
                    "AUTH=LOGIN",
                    "auth plain xoauth2",
                ],
                false,
                &["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
                None,
                &["AUTH", "AUTH=LOGIN", "AUTH"],
            ),
            (&["AUTH"], false, &[], None, &["AUTH"]),
            (&["AUTH="], false, &[], None, &["AUTH="]),
            (&["AUTHX PLAIN"], false, &[], None, &["AUTHX"]),
            (
                &["  SIZE \t 2048  ", "\tSTARTTLS"],
                true,
                &[],
                Some(2048),
                &["SIZE", "STARTTLS"],
            ),
            (
                &["", "   ", "\t", "STARTTLS"],
                true,
                &[],
                None,
                &["STARTTLS"],
            ),
            (&["SIZE"], false, &[], None, &["SIZE"]),
            (&["SIZE 0"], false, &[], None, &["SIZE"]),
            (&["SIZE lots"], false, &[], None, &["SIZE"]),
            (&["SIZE -1"], false, &[], None, &["SIZE"]),
            (
                &["SIZE 99999999999999999999999"],
                false,
                &[],
                None,
                &["SIZE"],
            ),
            (
                &["SIZE 10", "SIZE 20"],
                false,
                &[],
                Some(10),
                &["SIZE", "SIZE"],
            ),
            (
                &["\u{fffd}\x1b[31m odd"],
                false,
                &[],
                None,
                &["\u{fffd}\x1b[31M"],
            ),
            (&["STARTTLSX"], false, &[], None, &["STARTTLSX"]),
        ];
        for (lines, starttls, auth, size, keywords) in cases {
            let mut all = vec!["greeting"];
            all.extend_from_slice(lines);
            let c = caps(&all);
            assert_eq!(c.greeting, "greeting");
            assert_eq!(c.starttls(), *starttls, "{lines:?}");
            assert_eq!(c.auth_mechanisms(), *auth, "{lines:?}");
            assert_eq!(c.size_limit(), *size, "{lines:?}");
            let got: Vec<&str> = c.extensions.iter().map(|e| e.keyword.as_str()).collect();
            assert_eq!(got, *keywords, "{lines:?}");
            let raw: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| !l.trim().is_empty())
                .collect();
            assert_eq!(c.keywords(), raw, "{lines:?}");
        }
    }

    #[test]
    fn tolerates_odd_replies() {
        let empty = Capabilities::from_reply(&Reply {
            code: 250,
            lines: vec![],
        });
        assert_eq!(empty, Capabilities::default());
        let only_greeting = caps(&[""]);
        assert_eq!(only_greeting, Capabilities::default());
        assert!(!only_greeting.has(""));
        assert_eq!(only_greeting.params("SIZE"), None);
        // A greeting line that looks like an extension is still the greeting.
        let c = caps(&["STARTTLS"]);
        assert!(!c.starttls());
        assert_eq!(c.params("STARTTLS"), None);
        assert_eq!(caps(&["g", "STARTTLS"]).params("starttls"), Some(&[][..]));
    }

    use crate::smtp::reply::parse_reply;
    use proptest::prelude::*;

    /// Every typed view of `caps`, exercised; checks what holds for any reply.
    fn check_views(caps: &Capabilities, line_count: usize) {
        assert!(caps.extensions.len() < line_count.max(1));
        let _ = (caps.starttls(), caps.size_limit(), caps.keywords());
        for mechanism in caps.auth_mechanisms() {
            assert!(!mechanism.is_empty() && mechanism == mechanism.to_ascii_uppercase());
        }
        for ext in &caps.extensions {
            assert!(!ext.keyword.is_empty() && caps.has(&ext.keyword));
            assert!(caps.params(&ext.keyword).is_some());
        }
    }

    /// One EHLO line as RFC 5321 §4.1.1.1 shapes it: `ehlo-keyword *( SP ehlo-param )`.
    fn extension_line() -> impl Strategy<Value = (String, Vec<String>)> {
        let keyword = "[A-Za-z0-9][A-Za-z0-9-]{0,15}";
        let params = proptest::collection::vec("[!-~]{1,12}", 0..4);
        (keyword, params)
    }

    proptest! {
        #[test]
        fn any_reply_lines_never_panic(
            code in 200u16..=599,
            lines in proptest::collection::vec(any::<String>(), 0..12),
        ) {
            let caps = Capabilities::from_reply(&Reply { code, lines: lines.clone() });
            check_views(&caps, lines.len());
        }

        #[test]
        fn any_bytes_through_the_parser_never_panic(
            buf in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            if let Ok(Some(parsed)) = parse_reply(&buf) {
                let caps = Capabilities::from_reply(&parsed.reply);
                check_views(&caps, parsed.reply.lines.len());
            }
        }

        #[test]
        fn keywords_round_trip(
            greeting in "[ -~]{0,40}",
            extensions in proptest::collection::vec(extension_line(), 0..12),
        ) {
            let lines: Vec<String> = extensions
                .iter()
                .map(|(kw, params)| std::iter::once(kw.clone()).chain(params.iter().cloned()).collect::<Vec<_>>().join(" "))
                .collect();
            let reply = Reply {
                code: 250,
                lines: std::iter::once(greeting.clone()).chain(lines.iter().cloned()).collect(),
            };
            let caps = Capabilities::from_reply(&reply);
            prop_assert_eq!(&caps.greeting, &greeting);
            prop_assert_eq!(caps.keywords(), lines);
            let keywords: Vec<String> = extensions.iter().map(|(kw, _)| kw.to_ascii_uppercase()).collect();
            let got: Vec<String> = caps.extensions.iter().map(|e| e.keyword.clone()).collect();
            prop_assert_eq!(got, keywords);
            for (ext, (kw, params)) in caps.extensions.iter().zip(&extensions) {
                prop_assert_eq!(&ext.params, params);
                prop_assert!(caps.has(&kw.to_ascii_lowercase()));
            }
            // The same capabilities come back from the reply's wire form.
            let wire = reply.to_string();
            let parsed = parse_reply(wire.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(Capabilities::from_reply(&parsed.reply), caps);
        }
    }
}
