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
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }
}
