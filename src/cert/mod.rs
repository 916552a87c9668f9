//! Certificates as the server presented them: a readable summary of each (x509-parser) and export
//! of the leaf or the whole chain as DER or PEM.

pub mod export;
pub mod summary;
