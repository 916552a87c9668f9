//! get-cert over many targets (`--targets FILE`): a bounded pool of probes, JSON Lines or a
//! summary table, certificates into a folder, and the worst exit status.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::sync::Mutex;

use super::get_cert::{output_format, probe_one};
use super::{UsageError, pool};
use crate::check::worse;
use crate::cli::GetCertArgs;
use crate::exit::Exit;
use crate::report::Report;
use crate::sanitize::for_terminal as clean;
use crate::smtp::transcript::Transcript;
use crate::target::{Host, Target};

/// `smtptls get-cert --targets FILE`.
pub fn get_cert_many(args: &GetCertArgs, file: &str) -> Result<Exit, UsageError> {
    let targets = pool::read_targets(file)
        .map_err(UsageError)?
        .into_iter()
        .map(|(line, text)| {
            text.parse::<Target>()
                .map_err(|e| UsageError(format!("--targets {file} line {line}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dir = match args.output.as_deref() {
        Some("-") => {
            return Err(UsageError(
                "with --targets, -o names a folder, not stdout".into(),
            ));
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| UsageError(format!("-o {dir}: {e}")))?;
            Some(dir)
        }
        None => None,
    };
    let bar = pool::progress(targets.len(), "targets probed");
    let stdout = Mutex::new(std::io::stdout());
    let results = pool::run(
        &targets,
        usize::from(args.concurrency),
        |target| {
            let output = match dir {
                Some(dir) => {
                    let path = file_for(dir, target, args);
                    output_format(args, &path).map(|format| Some((path, format)))?
                }
                None => None,
            };
            probe_one(target, args, output.as_ref(), Transcript::default())
        },
        |result| {
            bar.inc(1);
            if let (true, Ok((report, _))) = (args.conn.json, result) {
                let line = serde_json::to_string(report).unwrap_or_default();
                let mut out = stdout
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = writeln!(out, "{line}");
            }
        },
    );
    bar.finish_and_clear();
    let mut worst = Exit::Ok;
    let mut rows = Vec::new();
    for result in results {
        let (report, exit) = result?;
        worst = worse(worst, exit);
        rows.push(report);
    }
    if !args.conn.json {
        let text = summary(&rows, worst);
        super::stdout(&super::colored(
            &text,
            &args.conn,
            std::io::stdout().is_terminal(),
        ));
    }
    Ok(worst)
}

/// `DIR/host_port.pem` (or `.der`), with characters a file name should not carry replaced.
fn file_for(dir: &str, target: &Target, args: &GetCertArgs) -> String {
    let host = match &target.host {
        Host::Name(name) => name.clone(),
        Host::Ip(ip) => ip.to_string().replace(':', "_"),
    };
    let port = target.port.or(args.conn.port).unwrap_or(587);
    let ext = match args.format {
        Some(crate::cli::FormatArg::Der) => "der",
        _ => "pem",
    };
    Path::new(dir)
        .join(format!("{host}_{port}.{ext}"))
        .to_string_lossy()
        .into_owned()
}

/// The table printed after all targets: one row each, in the order given.
fn summary(rows: &[Report], worst: Exit) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:<5} {:<8} {:<10} result",
        "target", "exit", "TLS", "days left"
    );
    for r in rows {
        let target = format!("{}:{}", r.target.host, r.target.port);
        let tls = r.tls.as_ref().map_or("-", |t| t.version.as_str());
        let days = r
            .verification
            .as_ref()
            .and_then(|v| v.expiry.as_ref())
            .map_or_else(|| "-".to_owned(), |e| e.min_days_left.to_string());
        let result = match (&r.error, &r.verification) {
            (Some(e), _) => clean(&e.message).into_owned(),
            (None, Some(v)) if v.verified => "verified".to_owned(),
            (None, Some(v)) => v.reasons.first().map_or_else(
                || "NOT verified".to_owned(),
                |x| clean(&x.message).into_owned(),
            ),
            (None, None) => "no certificate".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<40} {:<5} {tls:<8} {days:<10} {result}",
            clean(&target),
            r.exit_code
        );
    }
    let _ = writeln!(out, "{} target(s); worst exit {}", rows.len(), worst.code());
    out
}
