//! A readable summary of one X.509 certificate.
//! STUB: interface only; to be implemented.
