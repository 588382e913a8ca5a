//! Configuration from Bun's options: PEM in (handed over as bytes: this crate
//! never reads files), rustls configs out, with an explicit crypto provider.

use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::time_provider::TimeProvider;
use rustls::{DigitallySignedStruct, DistinguishedName, KeyLog, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::Error;

/// Largest PEM input accepted (a CA bundle is ~250 KiB; this bounds allocation).
pub const MAX_PEM_BYTES: usize = 4 * 1024 * 1024;

/// PEM text and where it came from (a file path, for error messages).
#[derive(Clone, PartialEq, Eq)]
pub struct Pem {
    /// Where the text came from, e.g. `/etc/ssl/key.pem`.
    pub source: String,
    /// The PEM text.
    pub data: Vec<u8>,
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Pem")
            .field("source", &self.source)
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl Pem {
    /// PEM `data` read from `source`.
    pub fn new(source: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self {
            source: source.into(),
            data: data.into(),
        }
    }

    fn bad(&self, problem: impl Into<String>) -> Error {
        Error::BadPem {
            file: self.source.clone(),
            problem: problem.into(),
        }
    }

    fn check_size(&self) -> Result<(), Error> {
        if self.data.len() > MAX_PEM_BYTES {
            return Err(self.bad(format!(
                "{} bytes is over the {MAX_PEM_BYTES}-byte limit",
                self.data.len()
            )));
        }
        Ok(())
    }

    /// The certificates in this PEM, in order. Errors if there are none.
    pub fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        self.check_size()?;
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&self.data)
            .collect::<Result<_, _>>()
            .map_err(|e| self.bad(format!("unreadable certificate: {e}")))?;
        if certs.is_empty() {
            return Err(self.bad(if self.data.iter().all(u8::is_ascii_whitespace) {
                "the file is empty"
            } else {
                "no CERTIFICATE section found"
            }));
        }
        Ok(certs)
    }

    /// The first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) in this PEM.
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, Error> {
        self.check_size()?;
        // rustls-pki-types skips encrypted keys silently: say so instead.
        if contains(&self.data, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(self.bad(
                "the private key is encrypted (passphrase-protected keys are not supported; \
                 decrypt it with `openssl pkey -in KEY -out KEY.plain`)",
            ));
        }
        PrivateKeyDer::from_pem_slice(&self.data).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                self.bad(if self.data.iter().all(u8::is_ascii_whitespace) {
                    "the file is empty"
                } else {
                    "no PRIVATE KEY section found (is this a certificate?)"
                })
            }
            other => self.bad(format!("unreadable private key: {other}")),
        })
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The crypto provider chosen at build time: aws-lc-rs (rustls's default) when
/// its feature is on, else ring. Configs are always built with it explicitly,
/// never through rustls's process-wide default, so both features can coexist.
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    {
        Arc::new(rustls::crypto::ring::default_provider())
    }
    #[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
    compile_error!("netkit-tls needs a crypto provider: enable `aws-lc-rs` or `ring`");
}

/// Server options (Bun's `tls: { key, cert, ca, requestCert, rejectUnauthorized, ALPNProtocols }`).
#[derive(Clone)]
pub struct ServerOptions {
    /// The certificate chain, leaf first.
    pub cert: Pem,
    /// The private key of the leaf.
    pub key: Pem,
    /// CAs that client certificates must chain to (with `request_cert`).
    pub ca: Option<Pem>,
    /// Ask clients for a certificate (mTLS).
    pub request_cert: bool,
    /// With `request_cert`: refuse clients without a valid certificate. When
    /// `false`, any client certificate (or none) is accepted and the session
    /// reports whether it verified.
    pub reject_unauthorized: bool,
    /// ALPN protocols, in preference order. A client offering none of them is
    /// refused with `no_application_protocol`; a client offering no ALPN is fine.
    pub alpn: Vec<Vec<u8>>,
    /// Where to log session secrets (`SSLKEYLOGFILE`); the driver supplies it.
    pub key_log: Option<Arc<dyn KeyLog>>,
    /// The wall clock for certificate validity and ticket lifetimes. Required:
    /// the crate reads no clock (the drivers' `netkit_sys::tls` functions
    /// supply the system's).
    pub time: Option<Arc<dyn TimeProvider>>,
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("ca", &self.ca)
            .field("request_cert", &self.request_cert)
            .field("reject_unauthorized", &self.reject_unauthorized)
            .field("alpn", &self.alpn)
            .finish_non_exhaustive()
    }
}

impl ServerOptions {
    /// A server with this certificate chain and key, and the defaults.
    #[must_use]
    pub fn new(cert: Pem, key: Pem) -> Self {
        Self {
            cert,
            key,
            ca: None,
            request_cert: false,
            reject_unauthorized: true,
            alpn: Vec::new(),
            key_log: None,
            time: None,
        }
    }
}

/// Client options (Bun's `tls: { ca, rejectUnauthorized, serverName, cert, key }`).
#[derive(Clone)]
pub struct ClientOptions {
    /// Trusted CAs, replacing the built-in roots (Mozilla's, via webpki-roots).
    pub ca: Option<Pem>,
    /// Verify the server's certificate (default). When `false`, any chain is
    /// accepted but the handshake signatures are still checked, and the session
    /// reports the verification result (`authorized`, `authorization_error`).
    pub reject_unauthorized: bool,
    /// ALPN protocols to offer.
    pub alpn: Vec<Vec<u8>>,
    /// A client certificate chain and key for mTLS.
    pub identity: Option<(Pem, Pem)>,
    /// Resume sessions (TLS 1.3 tickets, 1.2 session IDs) with servers seen
    /// before through this configuration: on by default.
    pub session_resumption: bool,
    /// Where to log session secrets (`SSLKEYLOGFILE`); the driver supplies it.
    pub key_log: Option<Arc<dyn KeyLog>>,
    /// The wall clock for certificate validity and ticket lifetimes. Required:
    /// the crate reads no clock (the drivers' `netkit_sys::tls` functions
    /// supply the system's).
    pub time: Option<Arc<dyn TimeProvider>>,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("ca", &self.ca)
            .field("reject_unauthorized", &self.reject_unauthorized)
            .field("alpn", &self.alpn)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca: None,
            reject_unauthorized: true,
            alpn: Vec::new(),
            identity: None,
            session_resumption: true,
            key_log: None,
            time: None,
        }
    }
}

/// A ready client configuration: share it (it is cheap to clone) across sessions
/// so that session resumption works.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub(crate) rustls: Arc<rustls::ClientConfig>,
    /// The real verifier, also run after a permissive handshake to report
    /// `authorized`.
    pub(crate) verifier: Arc<WebPkiServerVerifier>,
    pub(crate) time: Arc<dyn TimeProvider>,
    /// rustls itself verified the chain: a finished handshake means authorized.
    pub(crate) verified_in_handshake: bool,
}

/// A ready server configuration (share it across sessions).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub(crate) rustls: Arc<rustls::ServerConfig>,
    pub(crate) client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    pub(crate) time: Arc<dyn TimeProvider>,
    /// rustls itself verified client certificates (mandatory mTLS).
    pub(crate) verified_in_handshake: bool,
}

impl ClientConfig {
    /// The underlying rustls configuration.
    #[must_use]
    pub fn rustls(&self) -> &Arc<rustls::ClientConfig> {
        &self.rustls
    }
}

impl ServerConfig {
    /// The underlying rustls configuration.
    #[must_use]
    pub fn rustls(&self) -> &Arc<rustls::ServerConfig> {
        &self.rustls
    }
}

fn roots(ca: Option<&Pem>) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    match ca {
        Some(pem) => {
            for cert in pem.certificates()? {
                store
                    .add(cert)
                    .map_err(|e| pem.bad(format!("unusable CA certificate: {e}")))?;
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(store)
}

/// The configured wall clock; this crate reads none of its own (time comes
/// from the driver, like everything else from outside).
fn clock(time: &Option<Arc<dyn TimeProvider>>) -> Result<Arc<dyn TimeProvider>, Error> {
    time.clone().ok_or_else(|| {
        Error::Config(
            "no wall clock: set `time` (netkit_sys::tls::client_config and \
             server_config supply the system's)"
                .into(),
        )
    })
}

fn config_error(e: rustls::Error) -> Error {
    match e {
        rustls::Error::InconsistentKeys(_) => {
            Error::Config("the private key does not match the certificate".into())
        }
        other => Error::Config(other.to_string()),
    }
}

/// Builds a client configuration.
pub fn client_config(opts: &ClientOptions) -> Result<ClientConfig, Error> {
    let provider = provider();
    let time = clock(&opts.time)?;
    let store = Arc::new(roots(opts.ca.as_ref())?);
    let verifier = WebPkiServerVerifier::builder_with_provider(store, provider.clone())
        .build()
        .map_err(|e| Error::Config(e.to_string()))?;
    let builder = rustls::ClientConfig::builder_with_details(provider.clone(), time.clone())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let builder = if opts.reject_unauthorized {
        builder.with_webpki_verifier(verifier.clone())
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServer {
                signatures: Signatures(provider),
            }))
    };
    let mut config = match &opts.identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(cert.certificates()?, key.private_key()?)
            .map_err(config_error)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = opts.alpn.clone();
    if !opts.session_resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    if let Some(k) = &opts.key_log {
        config.key_log = k.clone();
    }
    Ok(ClientConfig {
        rustls: Arc::new(config),
        verifier,
        time,
        verified_in_handshake: opts.reject_unauthorized,
    })
}

/// Builds a server configuration.
pub fn server_config(opts: &ServerOptions) -> Result<ServerConfig, Error> {
    let provider = provider();
    let time = clock(&opts.time)?;
    let chain = opts.cert.certificates()?;
    let key = opts.key.private_key()?;
    let builder = rustls::ServerConfig::builder_with_details(provider.clone(), time.clone())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let mut client_verifier: Option<Arc<dyn ClientCertVerifier>> = None;
    let builder = if opts.request_cert {
        let ca = opts.ca.as_ref().ok_or_else(|| {
            Error::Config("request_cert needs `ca`: the CAs client certificates chain to".into())
        })?;
        let store = Arc::new(roots(Some(ca))?);
        let webpki = WebPkiClientVerifier::builder_with_provider(store, provider.clone())
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        client_verifier = Some(webpki.clone());
        if opts.reject_unauthorized {
            builder.with_client_cert_verifier(webpki)
        } else {
            builder.with_client_cert_verifier(Arc::new(AcceptAnyClient {
                signatures: Signatures(provider),
                hints: webpki.root_hint_subjects().to_vec(),
            }))
        }
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key).map_err(config_error)?;
    config.alpn_protocols = opts.alpn.clone();
    if let Some(k) = &opts.key_log {
        config.key_log = k.clone();
    }
    Ok(ServerConfig {
        rustls: Arc::new(config),
        client_verifier,
        time,
        verified_in_handshake: opts.request_cert && opts.reject_unauthorized,
    })
}

/// Parses a server name for SNI and verification: DNS name or IP address (IPv6
/// with or without brackets). No SNI is sent for an IP address.
pub fn server_name(name: &str) -> Result<ServerName<'static>, Error> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_string()).map_err(|_| Error::ServerName(name.to_string()))
}

/// `rejectUnauthorized: false` on a client: any chain is accepted, the handshake
/// signatures are still verified.
#[derive(Debug)]
struct AcceptAnyServer {
    signatures: Signatures,
}

/// Handshake-signature checks with the provider's algorithms: what the permissive
/// verifiers still do.
#[derive(Debug)]
struct Signatures(Arc<CryptoProvider>);

impl Signatures {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}

/// `requestCert` with `rejectUnauthorized: false` on a server: any client
/// certificate, or none, is accepted; signatures are still verified.
#[derive(Debug)]
struct AcceptAnyClient {
    signatures: Signatures,
    hints: Vec<DistinguishedName>,
}

impl ClientCertVerifier for AcceptAnyClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}
