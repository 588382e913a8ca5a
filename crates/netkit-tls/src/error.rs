//! The crate's error type.

/// What went wrong with TLS, worded so a user can act on it. `Display` is the
/// detail that follows `tls: ` in the CLI's error line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PEM input was unusable: `source` names it (usually the file path).
    #[error("bad PEM in {file}: {problem}")]
    BadPem {
        /// Where the PEM came from (a file path, or a label).
        file: String,
        /// What was wrong with it.
        problem: String,
    },
    /// The configuration was refused (e.g. a key that does not match its certificate).
    #[error("bad configuration: {0}")]
    Config(String),
    /// A server name that is neither a DNS name nor an IP address.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// The TLS protocol failed: certificate verification, handshake, alerts.
    /// Displays as rustls words it (e.g. `invalid peer certificate: UnknownIssuer`).
    #[error("{0}")]
    Protocol(rustls::Error),
    /// The peer closed the connection without sending `close_notify`: the data
    /// may be truncated (distinct from a clean close).
    #[error("peer closed connection without sending TLS close_notify: the data may be truncated")]
    Truncated,
    /// The peer closed the connection before the handshake finished.
    #[error("connection closed during the TLS handshake")]
    HandshakeEof,
    /// Plaintext was written after `close()` or after the peer's `close_notify`.
    #[error("TLS session is closed")]
    Closed,
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Self::Protocol(e)
    }
}

impl Error {
    /// Whether this is a certificate-verification failure (unknown issuer,
    /// expired, wrong name...).
    #[must_use]
    pub fn is_certificate_error(&self) -> bool {
        matches!(
            self,
            Self::Protocol(rustls::Error::InvalidCertificate(_))
                | Self::Protocol(rustls::Error::AlertReceived(
                    rustls::AlertDescription::BadCertificate
                        | rustls::AlertDescription::UnknownCA
                        | rustls::AlertDescription::CertificateExpired
                        | rustls::AlertDescription::CertificateUnknown
                        | rustls::AlertDescription::CertificateRequired
                ))
        )
    }
}
