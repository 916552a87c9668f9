//! Exit codes: one enum, one place, documented in README.md. Scripts depend on these numbers; they
//! never change meaning.

use std::process::ExitCode;

/// How a run of smtptls ended, as the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Exit {
    /// 0: done, and the certificate verified.
    Ok,
    /// 1: a certificate was obtained (and saved if asked) but verification failed.
    VerifyFailed,
    /// 2: the command line was wrong.
    Usage,
    /// 3: could not connect: name resolution, refused, unreachable, timeout.
    Connect,
    /// 4: the SMTP dialogue failed: unexpected reply, STARTTLS not offered or refused, injected plaintext.
    Smtp,
    /// 5: the TLS handshake failed.
    Tls,
    /// 6: authentication failed (rejected, not offered, or cancelled).
    Auth,
    /// 7: MAIL FROM or any RCPT TO was rejected.
    Envelope,
    /// 8: verified, but a certificate expires within `--warn-days`.
    ExpiresSoon,
}

impl Exit {
    /// The numeric status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::VerifyFailed => 1,
            Exit::Usage => 2,
            Exit::Connect => 3,
            Exit::Smtp => 4,
            Exit::Tls => 5,
            Exit::Auth => 6,
            Exit::Envelope => 7,
            Exit::ExpiresSoon => 8,
        }
    }

    /// The exit for a numeric status, if it is one of ours.
    pub fn from_code(code: u8) -> Option<Self> {
        [
            Exit::Ok,
            Exit::VerifyFailed,
            Exit::Usage,
            Exit::Connect,
            Exit::Smtp,
            Exit::Tls,
            Exit::Auth,
            Exit::Envelope,
            Exit::ExpiresSoon,
        ]
        .into_iter()
        .find(|e| e.code() == code)
    }

    /// The monitoring-plugin status (`--nagios`): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub fn nagios_code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::ExpiresSoon => 1,
            Exit::Usage => 3,
            _ => 2,
        }
    }

    /// The monitoring-plugin status word.
    pub fn nagios_word(self) -> &'static str {
        match self.nagios_code() {
            0 => "OK",
            1 => "WARNING",
            2 => "CRITICAL",
            _ => "UNKNOWN",
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn nagios_statuses_follow_the_plugin_convention() {
        let table = [
            (Exit::Ok, 0, "OK"),
            (Exit::ExpiresSoon, 1, "WARNING"),
            (Exit::VerifyFailed, 2, "CRITICAL"),
            (Exit::Connect, 2, "CRITICAL"),
            (Exit::Smtp, 2, "CRITICAL"),
            (Exit::Tls, 2, "CRITICAL"),
            (Exit::Auth, 2, "CRITICAL"),
            (Exit::Envelope, 2, "CRITICAL"),
            (Exit::Usage, 3, "UNKNOWN"),
        ];
        for (exit, code, word) in table {
            assert_eq!(
                (exit.nagios_code(), exit.nagios_word()),
                (code, word),
                "{exit:?}"
            );
        }
    }

    #[test]
    fn codes_are_stable() {
        let table = [
            (Exit::Ok, 0),
            (Exit::VerifyFailed, 1),
            (Exit::Usage, 2),
            (Exit::Connect, 3),
            (Exit::Smtp, 4),
            (Exit::Tls, 5),
            (Exit::Auth, 6),
            (Exit::Envelope, 7),
            (Exit::ExpiresSoon, 8),
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
            assert_eq!(Exit::from_code(code), Some(exit));
        }
        assert_eq!(Exit::from_code(9), None);
    }
}
