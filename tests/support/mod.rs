//! Shared support for the end-to-end tests: a fake SMTP server that speaks real TLS ([`server`],
//! with [`session`] for the dialogue and [`record`] for what it saw), a raw server for byte-level
//! misbehaviour ([`raw`]), a test PKI that issues its certificates ([`pki`]), helpers that run the
//! binary and check its JSON ([`cli`], [`verdict`]; [`check`] for `smtptls check`), an in-process
//! DNS server ([`dns`]) and an HTTPS server for MTA-STS policies ([`https`]). Each test binary
//! compiles this module with `mod support;` and uses what it needs. [`legacy`] makes the weak
//! certificates (RSA-1024, SHA-1) that aws-lc will not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part of the support module"
)]

pub mod check;
pub mod cli;
pub mod dns;
pub mod https;
pub mod legacy;
pub mod pki;
pub mod raw;
pub mod record;
pub mod sasl;
pub mod server;
pub mod session;
pub mod verdict;

pub use cli::{Fixture, Run, args, assert_get_cert_schema, get_cert, smtptls, smtptls_with_env};
pub use pki::{Ca, Leaf, TestPki, pem_certificates, self_signed_leaf};
pub use raw::{RawConn, RawServer};
pub use record::{Event, Log, Received, TlsInfo};
pub use server::FakeSmtp;
pub use session::{Exchange, Flow};
pub use verdict::{assert_reason, assert_verdict, reason_codes};
