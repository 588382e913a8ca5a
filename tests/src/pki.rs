//! A test PKI made at run time with rcgen, written as PEM files into a temp dir:
//! a CA, a leaf for `localhost` + 127.0.0.1 + ::1, one for another name, an expired
//! one, a self-signed one, a client certificate (clientAuth), and a second,
//! untrusted CA with a client certificate of its own (for mTLS refusals).

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    date_time_ymd,
};

use crate::peer::TempDir;

/// PEM files of one identity.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// The files of a test PKI; removed on drop.
#[derive(Debug)]
pub struct Pki {
    /// The CA certificate that signs every leaf but `self_signed`.
    pub ca: PathBuf,
    /// `localhost`, `127.0.0.1` and `::1`.
    pub localhost: Identity,
    /// `other.test` only.
    pub other: Identity,
    /// `localhost`, expired in 2020.
    pub expired: Identity,
    /// `localhost`, self-signed.
    pub self_signed: Identity,
    /// A client certificate (CN `netkit test client`, clientAuth) signed by `ca`.
    pub client: Identity,
    /// A second CA that nothing trusts.
    pub untrusted_ca: PathBuf,
    /// A client certificate (clientAuth) signed by `untrusted_ca`.
    pub untrusted_client: Identity,
    path: PathBuf,
    _dir: Option<TempDir>,
}

impl Pki {
    /// Makes the PKI in a temporary directory, removed on drop.
    pub fn new() -> Self {
        let dir = TempDir::new("netkit-pki").expect("temp dir");
        let path = dir.path().to_path_buf();
        let mut pki = Self::make(&path);
        pki._dir = Some(dir);
        pki
    }

    /// Makes the PKI in `dir`, which is kept.
    pub fn in_dir(dir: &std::path::Path) -> Self {
        std::fs::create_dir_all(dir).expect("create PKI dir");
        Self::make(dir)
    }

    fn make(dir: &std::path::Path) -> Self {
        // Each PKI's CA has its own name, so a chain from another test PKI is an
        // unknown issuer rather than a bad signature under a name we trust.
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ca = make_ca(&format!("netkit test CA {}-{n}", std::process::id()));
        let write = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("write PEM");
            p
        };
        let ca_path = write("ca.pem", ca.pem());
        let leaf = |name: &str, sans: &[&str], expired: bool| {
            let key = KeyPair::generate().expect("key");
            let mut params =
                CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .expect("params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, sans[0]);
            if expired {
                params.not_before = date_time_ymd(2019, 1, 1);
                params.not_after = date_time_ymd(2020, 1, 1);
            }
            let cert = params.signed_by(&key, &ca).expect("sign");
            Identity {
                cert: write(&format!("{name}.pem"), cert.pem()),
                key: write(&format!("{name}.key"), key.serialize_pem()),
            }
        };
        let localhost = leaf("localhost", &["localhost", "127.0.0.1", "::1"], false);
        let other = leaf("other", &["other.test"], false);
        let expired = leaf("expired", &["localhost"], true);
        let ss_key = KeyPair::generate().expect("key");
        let ss = CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&ss_key)
            .expect("self-signed");
        let self_signed = Identity {
            cert: write("self.pem", ss.pem()),
            key: write("self.key", ss_key.serialize_pem()),
        };
        let untrusted = make_ca("netkit untrusted CA");
        let client_of = |name: &str, issuer: &CertifiedIssuer<'static, KeyPair>| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "netkit test client");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, issuer).expect("sign");
            Identity {
                cert: write(&format!("{name}.pem"), cert.pem()),
                key: write(&format!("{name}.key"), key.serialize_pem()),
            }
        };
        let client = client_of("client", &ca);
        let untrusted_client = client_of("untrusted-client", &untrusted);
        Self {
            ca: ca_path,
            client,
            untrusted_ca: write("untrusted-ca.pem", untrusted.pem()),
            untrusted_client,
            localhost,
            other,
            expired,
            self_signed,
            path: dir.to_path_buf(),
            _dir: None,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &std::path::Path {
        &self.path
    }
}

fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// PEM of self-signed CA certificates, unrelated to any test chain, whose DER
/// adds up to at least `min_der_bytes`: appended to a real chain, they make its
/// Certificate message as large as wanted without changing what verifies.
/// Returns the PEM and the number of certificates.
pub fn padding_certificates(min_der_bytes: usize) -> (String, usize) {
    let key = KeyPair::generate().expect("key");
    let (mut pem, mut der, mut n) = (String::new(), 0, 0);
    while der < min_der_bytes {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("netkit padding CA {n}"));
        let cert = params.self_signed(&key).expect("self-signed");
        der += cert.der().len();
        pem.push_str(&cert.pem());
        n += 1;
    }
    (pem, n)
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}
