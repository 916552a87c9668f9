//! The command line (clap derive). Options shared by every probing subcommand are defined once in
//! [`ConnectionArgs`] and flattened into each; nothing here runs a probe.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::target::Target;

const GET_CERT_EXAMPLES: &str = "\
Examples:
  smtptls get-cert smtp.gmail.com --domain example.com -o gmail.cer
  smtptls get-cert mail.example.com:25 --chain -o mx-chain.pem
  smtptls get-cert smtp.example.com --port 465 -o - | openssl x509 -noout -text
  smtptls get-cert 192.0.2.10:25 --sni mx.example.com --ca-file internal-ca.pem --json
  smtptls get-cert --targets relays.txt --concurrency 32 --json > results.jsonl
  smtptls get-cert --targets relays.txt -o certs/ --warn-days 21";

const TEST_SMTP_EXAMPLES: &str = "\
Examples:
  smtptls test-smtp smtp.office365.com --domain example.com --user me@example.com --from me@example.com --to you@example.com
  SMTP_PW=... smtptls test-smtp mail.example.com --user me --password-env SMTP_PW --auth plain
  smtptls test-smtp smtp.gmail.com --user me@gmail.com --auth xoauth2 --token-file token.txt
  smtptls test-smtp mx.example.com -p 25 --from probe@example.com --to postmaster@example.com --quit-after rcpt

No message is ever sent: DATA is never issued; the envelope ends with RSET and QUIT.";

const CHECK_EXAMPLES: &str = "\
Examples:
  smtptls check example.com
  smtptls check example.com example.org --json
  smtptls check example.com --warn-days 21 --nagios
  smtptls check example.com --resolver 127.0.0.1 --concurrency 8
  smtptls check --targets domains.txt --json > domains.jsonl

Each MX host is verified against its own name on port 25 (--port overrides); --sni, --no-sni and
--verify-name do not apply.";

/// Tell the truth about an SMTP server's TLS: STARTTLS or implicit TLS, the certificate chain it
/// presents, and whether that chain verifies.
#[derive(Debug, Parser)]
#[command(name = "smtptls", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Connect, upgrade to TLS, show the certificate chain and its verdict, and save it.
    #[command(after_help = GET_CERT_EXAMPLES)]
    GetCert(GetCertArgs),
    /// Connect, upgrade to TLS, then test AUTH and the envelope (MAIL FROM, RCPT TO) — never DATA.
    #[command(after_help = TEST_SMTP_EXAMPLES)]
    TestSmtp(TestSmtpArgs),
    /// Is inbound mail to DOMAIN protected? Every MX, every address, STARTTLS, DANE, MTA-STS, TLS-RPT.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  smtptls completions bash > ~/.local/share/bash-completion/completions/smtptls"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one page per subcommand into a folder.
    #[command(
        after_help = "Examples:\n  smtptls man | man -l -\n  smtptls man --out-dir /usr/local/share/man/man1"
    )]
    Man {
        /// Write smtptls.1 and smtptls-SUBCOMMAND.1 into this folder instead of printing smtptls.1.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// How TLS starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsChoice {
    /// STARTTLS on every port.
    Starttls,
    /// Implicit TLS (TLS from the first byte) on every port.
    Implicit,
    /// Implicit TLS on port 465, STARTTLS elsewhere.
    Auto,
}

/// When to colour the text report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Trust stores for `--trust`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrustArg {
    /// Mozilla's root program (webpki-roots, built in).
    Mozilla,
    /// The operating system's store (e.g. /etc/ssl/certs; honours SSL_CERT_FILE / SSL_CERT_DIR).
    System,
    /// Both.
    Both,
}

/// A TLS version to pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsVersionArg {
    /// TLS 1.2 only.
    #[value(name = "1.2")]
    V1_2,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    V1_3,
}

/// Certificate file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Binary DER: exactly one certificate.
    Der,
    /// Base64 PEM blocks: one or more certificates.
    Pem,
}

/// Options every probing subcommand shares.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Port to connect to [default: 587, or the port given in SERVER].
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// The EHLO name [default: this machine's fully-qualified host name, else its address literal].
    #[arg(short, long, value_name = "NAME")]
    pub domain: Option<String>,

    /// How TLS starts: STARTTLS, implicit TLS, or auto (implicit on 465, STARTTLS elsewhere).
    #[arg(long, value_enum, default_value_t = TlsChoice::Auto, value_name = "MODE")]
    pub tls: TlsChoice,

    /// The name sent as SNI and checked against the certificate [default: SERVER when it is a name].
    #[arg(long, value_name = "NAME", conflicts_with = "no_sni")]
    pub sni: Option<String>,

    /// Send no SNI (the certificate is still checked against SERVER).
    #[arg(long)]
    pub no_sni: bool,

    /// A PEM bundle of extra trust anchors (repeatable); Mozilla's roots are always trusted.
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,

    /// Allow only this TLS version.
    #[arg(long, value_enum, value_name = "VERSION")]
    pub tls_version: Option<TlsVersionArg>,

    /// Use IPv4 addresses only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Use IPv6 addresses only.
    #[arg(short = '6')]
    pub ipv6: bool,

    /// Connect through a SOCKS5 proxy: socks5://[USER@]HOST[:PORT] (smtptls resolves the server's name) or socks5h://… (the proxy does) [default port: 1080]; the password comes from SMTPTLS_PROXY_PASSWORD.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Seconds allowed for the connect, for each reply, and for the TLS handshake.
    #[arg(long, default_value_t = 20, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,

    /// Which trust store to use besides --ca-file: Mozilla's roots, the system's, or both.
    #[arg(long, value_enum, default_value_t = TrustArg::Mozilla, value_name = "STORE")]
    pub trust: TrustArg,

    /// Check the certificate against NAME instead of the SNI name (or SERVER).
    #[arg(long, value_name = "NAME")]
    pub verify_name: Option<String>,

    /// Warn (exit 8) when any certificate sent expires within DAYS days.
    #[arg(long, value_name = "DAYS")]
    pub warn_days: Option<u32>,

    /// Fail verification (exit 1) when any certificate sent expires within DAYS days.
    #[arg(long, value_name = "DAYS")]
    pub crit_days: Option<u32>,

    /// Print the report as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,

    /// Monitoring-plugin output: one status line with performance data; exit 0/1/2/3 for OK/WARNING/CRITICAL/UNKNOWN.
    #[arg(long, conflicts_with = "json")]
    pub nagios: bool,

    /// Do not show the transcript on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Colour in the text report: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto, value_name = "WHEN")]
    pub color: ColorArg,
}

/// `smtptls get-cert`.
#[derive(Debug, Args)]
pub struct GetCertArgs {
    /// The server: a host name, an IPv4 address or a bracketed IPv6 address, optionally with :PORT.
    #[arg(
        value_name = "SERVER",
        required_unless_present = "targets",
        conflicts_with = "targets"
    )]
    pub server: Option<Target>,

    /// Shared connection options.
    #[command(flatten)]
    pub conn: ConnectionArgs,

    /// Probe every target listed in FILE ("-": stdin), one host[:port] a line, `#` comments.
    #[arg(long, value_name = "FILE")]
    pub targets: Option<String>,

    /// With --targets: how many targets to probe at once.
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Write the certificate to FILE ("-" for stdout); with --targets, a folder that gets one file per target.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<String>,

    /// Format of the file [default: PEM for .pem/.crt names and stdout, DER otherwise].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FormatArg>,

    /// Write every certificate the server sent, in the order sent (PEM).
    #[arg(long)]
    pub chain: bool,
}

/// SASL mechanisms for `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// The best the server advertises that the given secret can serve.
    Auto,
    /// LOGIN (user name and password prompted in base64).
    Login,
    /// PLAIN (RFC 4616).
    Plain,
    /// XOAUTH2 (Gmail, Microsoft 365) with a bearer token.
    Xoauth2,
    /// OAUTHBEARER (RFC 7628) with a bearer token.
    Oauthbearer,
}

/// Stages for `--quit-after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QuitAfterArg {
    /// After the TCP connection is made.
    Connect,
    /// After the greeting.
    Banner,
    /// After EHLO in plaintext.
    Ehlo,
    /// After STARTTLS, the handshake and EHLO inside TLS.
    Tls,
    /// After AUTH.
    Auth,
    /// After MAIL FROM.
    Mail,
    /// After RCPT TO.
    Rcpt,
}

/// `smtptls test-smtp`.
#[derive(Debug, Args)]
pub struct TestSmtpArgs {
    /// The server: a host name, an IPv4 address or a bracketed IPv6 address, optionally with :PORT.
    #[arg(value_name = "SERVER")]
    pub server: Target,

    /// Shared connection options.
    #[command(flatten)]
    pub conn: ConnectionArgs,

    /// The user name to authenticate as.
    #[arg(short, long, value_name = "NAME")]
    pub user: Option<String>,

    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", requires = "user", conflicts_with_all = ["password_file", "token_env", "token_file"])]
    pub password_env: Option<String>,

    /// Read the password from the first line of FILE ("-": stdin).
    #[arg(long, value_name = "FILE", requires = "user", conflicts_with_all = ["token_env", "token_file"])]
    pub password_file: Option<PathBuf>,

    /// Read an OAuth 2.0 bearer token from this environment variable.
    #[arg(
        long,
        value_name = "VAR",
        requires = "user",
        conflicts_with = "token_file"
    )]
    pub token_env: Option<String>,

    /// Read an OAuth 2.0 bearer token from the first line of FILE ("-": stdin).
    #[arg(long, value_name = "FILE", requires = "user")]
    pub token_file: Option<PathBuf>,

    /// The SASL mechanism.
    #[arg(long, value_enum, default_value_t = AuthArg::Auto, value_name = "MECHANISM")]
    pub auth: AuthArg,

    /// Go on without TLS when STARTTLS is not offered, and send AUTH in plaintext (RFC 8314 advises against it).
    #[arg(long)]
    pub allow_plaintext_auth: bool,

    /// Send credentials even when the server's certificate does not verify.
    #[arg(long)]
    pub allow_unverified_auth: bool,

    /// The envelope sender: MAIL FROM:<ADDR> ("" for the null sender <>). Its domain is the EHLO name when --domain is absent.
    #[arg(short, long, value_name = "ADDR")]
    pub from: Option<String>,

    /// A recipient: RCPT TO:<ADDR> (repeatable; each reply is reported on its own).
    #[arg(short, long = "to", value_name = "ADDR")]
    pub to: Vec<String>,

    /// Stop after this stage [default: the last stage the other options ask for].
    #[arg(long, value_enum, value_name = "STAGE")]
    pub quit_after: Option<QuitAfterArg>,
}

/// `smtptls check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The mail domains to check.
    #[arg(
        value_name = "DOMAIN",
        required_unless_present = "targets",
        conflicts_with = "targets"
    )]
    pub domains: Vec<String>,

    /// Check every domain listed in FILE ("-": stdin), one a line, `#` comments; with --json, one JSON object a line.
    #[arg(long, value_name = "FILE")]
    pub targets: Option<String>,

    /// Shared connection options (--port defaults to 25 here).
    #[command(flatten)]
    pub conn: ConnectionArgs,

    /// How many addresses to probe at once.
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// The DNS server to ask [default: the system's resolver configuration].
    #[arg(long, value_name = "IP[:PORT]")]
    pub resolver: Option<String>,

    /// The HTTPS port of the MTA-STS policy host (tests only).
    #[arg(long, hide = true, default_value_t = 443)]
    pub mta_sts_port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_documentation() {
        let cli = Cli::try_parse_from(["smtptls", "get-cert", "mx.example.com"]).unwrap();
        let Commands::GetCert(args) = cli.command else {
            panic!("parsed as another subcommand");
        };
        assert_eq!(args.conn.port, None);
        assert_eq!(args.conn.tls, TlsChoice::Auto);
        assert_eq!(args.conn.timeout, 20);
        assert!(!args.chain && args.output.is_none() && args.format.is_none());
    }

    #[test]
    fn refuses_contradictions() {
        let table: &[&[&str]] = &[
            &["smtptls", "get-cert", "h", "-4", "-6"],
            &["smtptls", "get-cert", "h", "--sni", "a", "--no-sni"],
            &["smtptls", "get-cert", "h", "--timeout", "0"],
            &["smtptls", "get-cert", "h", "--port", "0"],
            &["smtptls", "get-cert", "h", "--tls-version", "1.1"],
            &["smtptls", "get-cert", "bad host"],
        ];
        for args in table {
            assert!(Cli::try_parse_from(*args).is_err(), "{args:?}");
        }
    }
}
