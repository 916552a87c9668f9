//! Shared support for the end-to-end tests: a fake SMTP server that speaks real TLS
//! ([`server`], with [`session`] for the dialogue and [`record`] for what it saw), a raw server
//! for byte-level misbehaviour ([`raw`]), a test PKI that issues its certificates ([`pki`]), and
//! helpers that run the binary and check its JSON ([`cli`]). Each test binary compiles this module with
//! `mod support;` and uses what it needs.
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

pub mod cli;
pub mod pki;
pub mod raw;
pub mod record;
pub mod server;
pub mod session;

pub use cli::{Fixture, Run, args, assert_get_cert_schema, get_cert, smtptls};
pub use pki::{Leaf, TestPki, pem_certificates, self_signed_leaf};
pub use raw::{RawConn, RawServer};
pub use record::{Event, Log, Received, TlsInfo};
pub use server::FakeSmtp;
pub use session::{Exchange, Flow};
