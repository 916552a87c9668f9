//! `smtptls test-smtp`: the shared probe, then AUTH and the envelope, reported stage by stage.

use super::findings::build_report;
use super::options::{probe_options, thresholds, transcript};
use super::{UsageError, certificate_exit, error_exit, print_report, secrets};
use crate::cli::{AuthArg, QuitAfterArg, TestSmtpArgs};
use crate::exit::Exit;
use crate::probe::{self, Outcome, ProbeError, QuitAfter};
use crate::report::Report;
use crate::smtp::auth::Mechanism;
use crate::smtp::command::{Command, validate_address, validate_domain};
use crate::submit::{self, StepResult, SubmitOptions, SubmitResults};

/// `smtptls test-smtp`.
pub fn test_smtp(args: &TestSmtpArgs) -> Result<Exit, UsageError> {
    let quit_after = quit_after(args)?;
    check_addresses(args)?;
    let credential = secrets::credential(args)?;
    let mut opts = probe_options(&args.server, &args.conn)?;
    opts.quit_after = quit_after;
    opts.require_tls = !args.allow_plaintext_auth;
    if args.conn.domain.is_none() {
        if let Some(domain) = from_domain(args.from.as_deref()) {
            opts.ehlo_name = Some(domain);
        }
    }
    let submit_opts = SubmitOptions {
        login: args.user.clone().zip(credential),
        mechanism: mechanism(args.auth),
        allow_plaintext_auth: args.allow_plaintext_auth,
        allow_unverified_auth: args.allow_unverified_auth,
        from: args.from.clone(),
        to: args.to.clone(),
        quit_after,
        host: opts.server_name.to_str().into_owned(),
        port: opts.port,
    };
    let mut results = SubmitResults::default();
    let outcome = probe::probe_with(&opts, transcript(&args.conn), |session, findings| {
        submit::run(session, findings, &submit_opts, &mut results)
    });
    if let Some(ProbeError::Config(e)) = &outcome.error {
        return Err(UsageError(e.to_string()));
    }
    let mut report = build_report("test-smtp", &opts, &outcome, thresholds(&args.conn));
    report.auth = results.auth;
    report.envelope = results.envelope;
    let exit = exit_of(&report, &outcome, quit_after);
    report.exit_code = exit.code();
    print_report(&report, &args.conn, false);
    Ok(exit)
}

/// The worst outcome wins: a broken dialogue (3–5), then AUTH (6), then the envelope (7), then
/// the certificate (1, then 8).
fn exit_of(report: &Report, outcome: &Outcome, quit_after: QuitAfter) -> Exit {
    if let Some(error) = &outcome.error {
        return error_exit(error, outcome.findings.captured.is_some());
    }
    if report.auth.as_ref().is_some_and(|a| {
        matches!(
            a.result,
            StepResult::Rejected
                | StepResult::TemporaryFailure
                | StepResult::NotOffered
                | StepResult::Aborted
        )
    }) {
        return Exit::Auth;
    }
    if let Some(envelope) = &report.envelope {
        let refused = |r: &submit::AddressReport| r.result != StepResult::Accepted;
        if envelope.mail_from.as_ref().is_some_and(refused) || envelope.rcpt_to.iter().any(refused)
        {
            return Exit::Envelope;
        }
    }
    if quit_after < QuitAfter::Tls {
        return Exit::Ok;
    }
    match &report.verification {
        Some(_) => certificate_exit(report),
        // STARTTLS was not offered and --allow-plaintext-auth let the test go on without TLS.
        None => Exit::Smtp,
    }
}

/// `--quit-after`, or the last stage the other options ask for; a stage that needs an option
/// that is missing is a usage error.
fn quit_after(args: &TestSmtpArgs) -> Result<QuitAfter, UsageError> {
    if !args.to.is_empty() && args.from.is_none() {
        return Err(UsageError(
            "--to needs --from: RCPT TO follows MAIL FROM (--from '' sends the null sender <>)"
                .into(),
        ));
    }
    let implied = if !args.to.is_empty() {
        QuitAfter::Rcpt
    } else if args.from.is_some() {
        QuitAfter::Mail
    } else if args.user.is_some() {
        QuitAfter::Auth
    } else {
        QuitAfter::Tls
    };
    let Some(asked) = args.quit_after else {
        return Ok(implied);
    };
    let stage = match asked {
        QuitAfterArg::Connect => QuitAfter::Connect,
        QuitAfterArg::Banner => QuitAfter::Banner,
        QuitAfterArg::Ehlo => QuitAfter::Ehlo,
        QuitAfterArg::Tls => QuitAfter::Tls,
        QuitAfterArg::Auth => QuitAfter::Auth,
        QuitAfterArg::Mail => QuitAfter::Mail,
        QuitAfterArg::Rcpt => QuitAfter::Rcpt,
    };
    let missing = match stage {
        QuitAfter::Auth if args.user.is_none() => Some("--quit-after auth needs --user"),
        QuitAfter::Mail if args.from.is_none() => Some("--quit-after mail needs --from"),
        QuitAfter::Rcpt if args.to.is_empty() => Some("--quit-after rcpt needs --to"),
        _ => None,
    };
    match missing {
        Some(why) => Err(UsageError(why.into())),
        None => Ok(stage),
    }
}

fn check_addresses(args: &TestSmtpArgs) -> Result<(), UsageError> {
    let checks = args
        .from
        .iter()
        .map(|a| ("--from", a, Command::MailFrom(a.clone())));
    let checks = checks.chain(
        args.to
            .iter()
            .map(|a| ("--to", a, Command::RcptTo(a.clone()))),
    );
    for (option, address, command) in checks {
        validate_address(address)
            .and_then(|()| command.validate())
            .map_err(|e| UsageError(format!("{option} {address:?}: {e}")))?;
    }
    Ok(())
}

/// The domain of the `--from` address, when it is a valid EHLO name.
fn from_domain(from: Option<&str>) -> Option<String> {
    let domain = from?.rsplit_once('@')?.1.trim_end_matches('>');
    validate_domain(domain).is_ok().then(|| domain.to_owned())
}

fn mechanism(arg: AuthArg) -> Option<Mechanism> {
    match arg {
        AuthArg::Auto => None,
        AuthArg::Login => Some(Mechanism::Login),
        AuthArg::Plain => Some(Mechanism::Plain),
        AuthArg::Xoauth2 => Some(Mechanism::XOAuth2),
        AuthArg::Oauthbearer => Some(Mechanism::OAuthBearer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_domain_becomes_the_ehlo_name() {
        let table = [
            (Some("me@example.com"), Some("example.com")),
            (Some("a@b@mail.example.org"), Some("mail.example.org")),
            (Some(""), None),
            (Some("nodomain"), None),
            (Some("x@bad domain"), None),
            (None, None),
        ];
        for (from, want) in table {
            assert_eq!(from_domain(from).as_deref(), want, "{from:?}");
        }
    }
}
