//! The SMTP protocol core: replies (RFC 5321 §4.2), commands (§4.1), EHLO capabilities (§4.1.1.1)
//! and the blocking dialogue that drives them, STARTTLS (RFC 3207) included.

pub mod auth;
pub mod command;
pub mod ehlo;
pub mod reply;
pub mod session;
pub mod transcript;
