//! Shared support for the end-to-end tests: a fake SMTP server that speaks real TLS, and a test
//! PKI that issues its certificates. Each test binary compiles this module with `mod support;`
//! and uses what it needs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]

pub mod pki;
pub mod server;

#[allow(
    unused_imports,
    reason = "each test binary uses a different part of the support module"
)]
pub use pki::{Leaf, TestPki, self_signed_leaf};
#[allow(
    unused_imports,
    reason = "each test binary uses a different part of the support module"
)]
pub use server::{Event, Exchange, FakeSmtp, Flow, Log, Received, TlsInfo};
