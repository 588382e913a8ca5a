//! AWS Signature Version 4 (header form): the canonical request, the string
//! to sign, the HMAC key chain and the `Authorization` header.

use std::fmt::Write as _;
use std::time::Duration;

use hmac::{Hmac, Mac};
use netkit_fetch::Url;
use sha2::{Digest, Sha256};

/// Signs requests as one principal, for one region and service, at one time.
#[derive(Clone)]
pub struct Signer<'a> {
    /// The access key ID (named in the credential scope).
    pub access_key_id: &'a str,
    /// The secret access key (the root of the key chain).
    pub secret_access_key: &'a str,
    /// The region of the credential scope.
    pub region: &'a str,
    /// The service of the credential scope (`s3`).
    pub service: &'a str,
    /// The request time, `YYYYMMDDTHHMMSSZ` ([`amz_date`]).
    pub amz_date: String,
}

impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("amz_date", &self.amz_date)
            .finish_non_exhaustive()
    }
}

impl Signer<'_> {
    /// The headers of a request to `url` signed with `payload` (the body's
    /// hex SHA-256, or `UNSIGNED-PAYLOAD`): `host`, `x-amz-content-sha256`,
    /// `x-amz-date`, `x-amz-security-token` when `token` is given, and
    /// `authorization` over all of them.
    #[must_use]
    pub fn sign(
        &self,
        method: &str,
        url: &Url,
        token: Option<&str>,
        payload: &str,
    ) -> Vec<(String, Vec<u8>)> {
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        };
        let mut headers = vec![
            ("host".to_owned(), host),
            ("x-amz-content-sha256".to_owned(), payload.to_owned()),
            ("x-amz-date".to_owned(), self.amz_date.clone()),
        ];
        if let Some(t) = token {
            headers.push(("x-amz-security-token".to_owned(), t.to_owned()));
        }
        let signed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let auth = self.authorization(
            method,
            url.path(),
            url.query().unwrap_or(""),
            &signed,
            payload,
        );
        headers.push(("authorization".to_owned(), auth));
        headers
            .into_iter()
            .map(|(n, v)| (n, v.into_bytes()))
            .collect()
    }

    /// The `Authorization` value for a request whose canonical URI is `path`
    /// (already URI-encoded, as sent), whose query is `query` (as sent),
    /// signing `headers` (name, value; any case and order), with `payload`
    /// as the hashed payload.
    #[must_use]
    pub fn authorization(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        payload: &str,
    ) -> String {
        let mut hs: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), squash(v)))
            .collect();
        hs.sort();
        let signed_headers = hs
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let mut canonical = String::with_capacity(256);
        let _ = write!(
            canonical,
            "{method}\n{}\n{}\n",
            if path.is_empty() { "/" } else { path },
            canonical_query(query)
        );
        for (n, v) in &hs {
            let _ = writeln!(canonical, "{n}:{v}");
        }
        let _ = write!(canonical, "\n{signed_headers}\n{payload}");
        let date = &self.amz_date[..self.amz_date.len().min(8)];
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            self.amz_date,
            hex_sha256(canonical.as_bytes())
        );
        let mut key = hmac(
            format!("AWS4{}", self.secret_access_key).as_bytes(),
            date.as_bytes(),
        );
        for part in [self.region, self.service, "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex(&hmac(&key, to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key_id
        )
    }
}

/// A header value as SigV4 canonicalizes it: trimmed, inner runs of spaces
/// squashed to one.
fn squash(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The query's `name=value` pairs sorted by name then value (as sent: the
/// URL carries them encoded already); a bare name gets an empty value.
fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts a key of any length: new_from_slice cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The hex SHA-256 of `data` (SigV4's payload hash).
#[must_use]
pub fn hex_sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// SigV4's payload hash of a body fed in pieces (a file read in chunks, so
/// it is never held whole): the same as [`hex_sha256`] of the pieces joined.
#[derive(Debug, Clone, Default)]
pub struct PayloadHasher(Sha256);

impl PayloadHasher {
    /// A hasher that has seen nothing (its hash is `EMPTY_SHA256`).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece of the body.
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// The hex SHA-256 of everything fed.
    #[must_use]
    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

/// Writing feeds the hasher (so `std::io::copy` can hash a reader); it
/// takes every byte and never fails.
impl std::io::Write for PayloadHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A wall-clock time, given as its distance from the Unix epoch, in SigV4's
/// `YYYYMMDDTHHMMSSZ` form (UTC).
#[must_use]
pub fn amz_date(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
