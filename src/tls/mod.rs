//! The TLS layer: rustls client configuration (trust anchors, version pin), the capturing
//! verifier that lets a probe see certificates that do not verify, the handshake driven within a
//! deadline, and rustls errors rewritten in plain words.

pub mod config;
pub mod explain;
pub mod handshake;
pub mod verifier;

pub use config::{ClientSettings, TlsVersion, Trust, build_client_config};
pub use handshake::{HandshakeError, TlsFacts, handshake};
pub use verifier::{Captured, CapturingVerifier, verify_with_anchor};
