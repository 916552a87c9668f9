//! EHLO capabilities (RFC 5321 §4.1.1.1): raw lines kept, a typed view beside.
//! STUB: interface only; to be implemented.
