//! smtptls: tell a mail administrator the truth about an SMTP server's TLS.
//!
//! The library holds the protocol core (SMTP replies, commands, EHLO capabilities, the blocking
//! dialogue), the TLS layer with its capturing verifier, certificate summaries and export, and the
//! report model. The binary (`src/main.rs`) adds the command line on top.
#![forbid(unsafe_code)]

pub mod app;
pub mod cert;
pub mod check;
pub mod cli;
pub mod exit;
pub mod net;
pub mod probe;
pub mod proxy;
pub mod report;
pub mod sanitize;
pub mod secret;
pub mod smtp;
pub mod submit;
pub mod target;
pub mod tls;
pub mod verdict;
