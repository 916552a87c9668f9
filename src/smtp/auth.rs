//! SASL for SMTP AUTH (RFC 4954) as pure functions: mechanism choice and the exact bytes of LOGIN,
//! PLAIN (RFC 4616), XOAUTH2 (Google's and Microsoft's protocol) and OAUTHBEARER (RFC 7628). Every
//! value that carries a credential is a [`Secret`]; nothing here does I/O.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::secret::Secret;

/// A SASL mechanism smtptls speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Mechanism {
    /// `LOGIN`: user name and password, each prompted for in base64.
    #[serde(rename = "LOGIN")]
    Login,
    /// `PLAIN` (RFC 4616): one message with user name and password.
    #[serde(rename = "PLAIN")]
    Plain,
    /// `XOAUTH2`: user name and OAuth 2.0 bearer token (Gmail, Microsoft 365).
    #[serde(rename = "XOAUTH2")]
    XOAuth2,
    /// `OAUTHBEARER` (RFC 7628): the standard form of the same.
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
}

impl Mechanism {
    /// The name on the wire and in EHLO.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Login => "LOGIN",
            Mechanism::Plain => "PLAIN",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Whether it takes a bearer token rather than a password.
    pub fn uses_token(self) -> bool {
        matches!(self, Mechanism::XOAuth2 | Mechanism::OAuthBearer)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user gave to authenticate with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A password.
    Password(Secret),
    /// An OAuth 2.0 bearer token.
    Token(Secret),
}

impl Credential {
    /// The secret inside.
    pub fn secret(&self) -> &Secret {
        match self {
            Credential::Password(s) | Credential::Token(s) => s,
        }
    }
}

/// The mechanism `auto` picks: the best one the server advertises that `credential` can serve —
/// OAUTHBEARER, then XOAUTH2 for a token; PLAIN, then LOGIN for a password.
pub fn choose(advertised: &[String], credential: &Credential) -> Option<Mechanism> {
    let preference: &[Mechanism] = match credential {
        Credential::Token(_) => &[Mechanism::OAuthBearer, Mechanism::XOAuth2],
        Credential::Password(_) => &[Mechanism::Plain, Mechanism::Login],
    };
    preference
        .iter()
        .copied()
        .find(|m| advertised.iter().any(|a| a.eq_ignore_ascii_case(m.name())))
}

/// PLAIN's message (RFC 4616 §2): `authzid NUL authcid NUL passwd`, base64, with an empty authzid.
pub fn plain(user: &str, password: &Secret) -> Secret {
    let raw = Secret::new(format!("\0{user}\0{}", password.expose()));
    Secret::new(B64.encode(raw.expose()))
}

/// XOAUTH2's message: `user=USER ^A auth=Bearer TOKEN ^A ^A`, base64.
pub fn xoauth2(user: &str, token: &Secret) -> Secret {
    let raw = Secret::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ));
    Secret::new(B64.encode(raw.expose()))
}

/// OAUTHBEARER's client response (RFC 7628 §3.1): GS2 header `n,a=USER,` then `host`, `port` and
/// `auth` key-value pairs, each ended by ^A, and a final ^A; base64. `,` and `=` in the user name
/// are escaped as RFC 5801 §4 requires.
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &Secret) -> Secret {
    let authzid = user.replace('=', "=3D").replace(',', "=2C");
    let raw = Secret::new(format!(
        "n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ));
    Secret::new(B64.encode(raw.expose()))
}

/// The reply a client sends to abort after an OAUTHBEARER error challenge (RFC 7628 §3.2.3): `^A`.
pub const OAUTHBEARER_ABORT: &str = "AQ==";

/// What a LOGIN server asks for in a 334 challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginPrompt {
    /// "Username:" (or "User Name").
    Username,
    /// "Password:".
    Password,
    /// Something else, decoded.
    Other(String),
}

/// Reads a LOGIN challenge (base64 "Username:" / "Password:").
pub fn login_prompt(challenge: &str) -> LoginPrompt {
    let text = decode_challenge(challenge);
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("user") {
        LoginPrompt::Username
    } else if lower.starts_with("pass") {
        LoginPrompt::Password
    } else {
        LoginPrompt::Other(text)
    }
}

/// A 334 challenge decoded for people: base64 decoded lossily, or as sent when it is not base64.
pub fn decode_challenge(challenge: &str) -> String {
    match B64.decode(challenge.trim()) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => challenge.to_owned(),
    }
}

/// Base64 of a plain value (a LOGIN user name, which is not secret).
pub fn encode(value: &str) -> String {
    B64.encode(value)
}

/// Every form in which `secret` could appear in what a server echoes back: the value itself and
/// its base64 (as sent alone by LOGIN). Used to scrub server text before it is shown or stored.
pub fn exposed_forms(secret: &Secret) -> Vec<String> {
    let mut forms = vec![secret.expose().to_owned(), B64.encode(secret.expose())];
    forms.retain(|f| f.len() >= 3);
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn plain_matches_rfc_4616() {
        // RFC 4616 §4, without authzid: "\0tim\0tanstaaftanstaaf".
        let got = plain("tim", &Secret::new("tanstaaftanstaaf"));
        assert_eq!(got.expose(), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    }

    #[test]
    fn xoauth2_matches_the_provider_example() {
        // Google's XOAUTH2 protocol page, SMTP example.
        let got = xoauth2(
            "someuser@example.com",
            &Secret::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
        );
        assert_eq!(
            got.expose(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
    }

    #[test]
    fn oauthbearer_matches_rfc_7628() {
        // RFC 7628 §4.1.
        let got = oauthbearer(
            "user@example.com",
            "server.example.com",
            143,
            &Secret::new("vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg=="),
        );
        let decoded = String::from_utf8(B64.decode(got.expose()).unwrap()).unwrap();
        assert_eq!(
            decoded,
            "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==\x01\x01"
        );
        assert_eq!(
            got.expose(),
            "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2c9PQEB"
        );
    }

    #[test]
    fn oauthbearer_escapes_the_user_name() {
        let got = oauthbearer("a,b=c", "h", 25, &Secret::new("t"));
        let decoded = String::from_utf8(B64.decode(got.expose()).unwrap()).unwrap();
        assert!(decoded.starts_with("n,a=a=2Cb=3Dc,\x01"), "{decoded:?}");
    }

    #[test]
    fn login_prompts_are_decoded() {
        let table = [
            ("VXNlcm5hbWU6", LoginPrompt::Username),
            ("UGFzc3dvcmQ6", LoginPrompt::Password),
            ("dXNlcm5hbWU6", LoginPrompt::Username),
            ("SGVsbG8=", LoginPrompt::Other("Hello".into())),
            ("not base64!", LoginPrompt::Other("not base64!".into())),
        ];
        for (challenge, want) in table {
            assert_eq!(login_prompt(challenge), want, "{challenge}");
        }
    }

    #[test]
    fn auto_picks_the_best_advertised() {
        let pw = Credential::Password(Secret::new("p"));
        let tok = Credential::Token(Secret::new("t"));
        let table = [
            (names(&["LOGIN", "PLAIN"]), &pw, Some(Mechanism::Plain)),
            (names(&["login"]), &pw, Some(Mechanism::Login)),
            (names(&["CRAM-MD5"]), &pw, None),
            (
                names(&["XOAUTH2", "OAUTHBEARER", "PLAIN"]),
                &tok,
                Some(Mechanism::OAuthBearer),
            ),
            (names(&["XOAUTH2", "PLAIN"]), &tok, Some(Mechanism::XOAuth2)),
            (names(&["PLAIN", "LOGIN"]), &tok, None),
            (names(&[]), &pw, None),
        ];
        for (advertised, credential, want) in table {
            assert_eq!(choose(&advertised, credential), want, "{advertised:?}");
        }
    }

    #[test]
    fn exposed_forms_cover_raw_and_base64() {
        let forms = exposed_forms(&Secret::new("hunter2"));
        assert_eq!(forms, vec!["hunter2".to_owned(), "aHVudGVyMg==".to_owned()]);
    }
}
