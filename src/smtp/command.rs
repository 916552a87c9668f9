//! SMTP commands as values whose `Display` is their wire form (RFC 5321 §4.1).
//! STUB: interface only; to be implemented.
