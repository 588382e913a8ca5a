//! `s3://bucket/key` URLs as ordinary HTTP requests, signed with AWS
//! Signature Version 4.
//!
//! Sans-IO like every crate here: the environment arrives as a lookup
//! function, the wall clock as an argument (a [`Duration`] since the Unix
//! epoch: the driver reads the clock), and the result is a
//! [`netkit_fetch::Request`] any driver sends. [`S3Config::from_env`] reads
//! Bun's variables (`S3_*` before `AWS_*`); [`S3Config::request`] maps an
//! object operation (`GET`, `HEAD`, `PUT`, `DELETE`) onto a path-style URL
//! (`{endpoint}/{bucket}/{key}`, the key URI-encoded once) and signs it.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use netkit_s3::S3Config;
//!
//! let env = |k: &str| match k {
//!     "S3_ACCESS_KEY_ID" => Some("AKID".to_owned()),
//!     "S3_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
//!     "S3_ENDPOINT" => Some("http://127.0.0.1:9000".to_owned()),
//!     _ => None,
//! };
//! let s3 = S3Config::from_env(env)?;
//! let now = Duration::from_secs(1_700_000_000); // since the Unix epoch
//! let req = s3.request("GET", "s3://bucket/a b+c.txt", None, now)?;
//! assert_eq!(req.url.as_str(), "http://127.0.0.1:9000/bucket/a%20b%2Bc.txt");
//! let auth = req.headers.iter().find(|(n, _)| n == "authorization").unwrap();
//! assert!(auth.1.starts_with(b"AWS4-HMAC-SHA256 Credential=AKID/20231114/auto/s3/aws4_request"));
//! # Ok::<(), netkit_s3::Error>(())
//! ```

mod sigv4;

pub use sigv4::{PayloadHasher, Signer, amz_date, hex_sha256};

use std::time::Duration;

use netkit_fetch::{Request, Url};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The SHA-256 of an empty payload, as SigV4 writes it.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Everything but SigV4's unreserved characters (`A-Z a-z 0-9 - _ . ~`) is
/// encoded in a key; `/` separates its segments and stays.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Why an `s3://` request cannot be made. Each displays as `netkit fetch`
/// prints it after `netkit: error: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No access key or no secret key in the environment.
    #[error(
        "s3: no credentials: set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (or the AWS_ names)"
    )]
    NoCredentials,
    /// The endpoint is not an `http://` or `https://` URL.
    #[error("s3: invalid endpoint {0:?}: {1}")]
    Endpoint(String, String),
    /// Not `s3://bucket/key`.
    #[error("s3: invalid URL {0:?}: {1}")]
    Url(String, &'static str),
    /// A method that is not an object operation.
    #[error("s3: unsupported method {0} (use GET, HEAD, PUT or DELETE)")]
    Method(String),
}

/// Where and as whom to send S3 requests.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The access key ID.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// A session token (temporary credentials), sent as `x-amz-security-token`.
    pub session_token: Option<String>,
    /// The region signed for.
    pub region: String,
    /// The service's base URL; buckets are addressed under its path.
    pub endpoint: Url,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_str())
            .finish()
    }
}

impl S3Config {
    /// Reads the configuration as Bun does, from `get` (the driver passes
    /// `std::env::var`): for each of `ACCESS_KEY_ID`, `SECRET_ACCESS_KEY`,
    /// `SESSION_TOKEN`, `REGION` the `S3_` name wins over the `AWS_` one;
    /// the endpoint is `S3_ENDPOINT`, then `AWS_ENDPOINT_URL` (the SDKs'),
    /// then `AWS_ENDPOINT` (Bun's). Empty values count as unset. Without an
    /// endpoint the service is AWS's in the region; without a region it is
    /// guessed from an AWS endpoint (`s3.<region>.amazonaws.com`), else
    /// `auto` for another endpoint, else `us-east-1`. An endpoint without a
    /// scheme is `https://`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let var = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| get(n))
                .map(|v| v.trim().to_owned())
                .find(|v| !v.is_empty())
        };
        let (Some(access_key_id), Some(secret_access_key)) = (
            var(&["S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"]),
            var(&["S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"]),
        ) else {
            return Err(Error::NoCredentials);
        };
        let session_token = var(&["S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"]);
        let endpoint = var(&["S3_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]);
        let region = var(&["S3_REGION", "AWS_REGION"]);
        let endpoint_url = match &endpoint {
            Some(e) => parse_endpoint(e)?,
            None => {
                let r = region.as_deref().unwrap_or("us-east-1");
                parse_endpoint(&format!("https://s3.{r}.amazonaws.com"))?
            }
        };
        let region = region.unwrap_or_else(|| match &endpoint {
            None => "us-east-1".to_owned(),
            Some(_) => endpoint_url
                .host_str()
                .and_then(aws_region)
                .unwrap_or("auto")
                .to_owned(),
        });
        Ok(Self {
            access_key_id,
            secret_access_key,
            session_token,
            region,
            endpoint: endpoint_url,
        })
    }

    /// The HTTP URL of `s3://bucket/key` (path style, the key URI-encoded
    /// once: `s3://b/a b+c.txt` is `{endpoint}/b/a%20b%2Bc.txt`).
    pub fn url(&self, s3_url: &str) -> Result<Url, Error> {
        let (bucket, key) = split(s3_url)?;
        let mut path = self.endpoint.path().trim_end_matches('/').to_owned();
        path.push('/');
        path.extend(utf8_percent_encode(bucket, KEY));
        path.push('/');
        path.extend(utf8_percent_encode(key, KEY));
        let mut url = self.endpoint.clone();
        url.set_path(&path);
        url.set_query(None);
        Ok(url)
    }

    /// The signed request for one object operation on `s3://bucket/key`:
    /// `GET`, `HEAD`, `PUT` (with `body`, empty without) or `DELETE`,
    /// signed at `now` (the wall clock, since the Unix epoch) with `host`, `x-amz-content-sha256`, `x-amz-date`
    /// (and `x-amz-security-token`) as the signed headers and the payload's
    /// SHA-256. Headers added afterwards are sent unsigned.
    pub fn request(
        &self,
        method: &str,
        s3_url: &str,
        body: Option<Vec<u8>>,
        now: Duration,
    ) -> Result<Request, Error> {
        let method = method.to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "HEAD" | "PUT" | "DELETE") {
            return Err(Error::Method(method));
        }
        let body = match method.as_str() {
            "PUT" => Some(body.unwrap_or_default()),
            _ => None,
        };
        let payload = body
            .as_deref()
            .map_or_else(|| EMPTY_SHA256.to_owned(), hex_sha256);
        let mut req = self.signed(&method, s3_url, &payload, now)?;
        req.body = body.map(netkit_fetch::Body::Bytes);
        Ok(req)
    }

    /// The signed `PUT` of a body the caller streams (a file, read as the
    /// connection takes it, never held whole): `payload_sha256` is its hex
    /// SHA-256, from a [`PayloadHasher`] fed the same bytes beforehand. The
    /// request has no body of its own; the driver attaches the stream
    /// (`Body::Stream`), and a body that changed since it was hashed is
    /// refused by the server (its signature no longer matches).
    pub fn put_streamed(
        &self,
        s3_url: &str,
        payload_sha256: &str,
        now: Duration,
    ) -> Result<Request, Error> {
        self.signed("PUT", s3_url, payload_sha256, now)
    }

    fn signed(
        &self,
        method: &str,
        s3_url: &str,
        payload: &str,
        now: Duration,
    ) -> Result<Request, Error> {
        let url = self.url(s3_url)?;
        let mut req = Request::new(method, url);
        req.headers =
            self.signer(now)
                .sign(method, &req.url, self.session_token.as_deref(), payload);
        // The object comes back as stored: one saved with a
        // `Content-Encoding` (a gzip file, say) is not decoded on the way.
        req.decompress = false;
        Ok(req)
    }

    /// A signer for this configuration's credentials and region at `now`
    /// (the wall clock, since the Unix epoch).
    #[must_use]
    pub fn signer(&self, now: Duration) -> Signer<'_> {
        Signer {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            region: &self.region,
            service: "s3",
            amz_date: amz_date(now),
        }
    }
}

fn parse_endpoint(e: &str) -> Result<Url, Error> {
    let with_scheme = if e.contains("://") {
        e.to_owned()
    } else {
        format!("https://{e}")
    };
    let url = Url::parse(&with_scheme).map_err(|err| Error::Endpoint(e.into(), err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Endpoint(
            e.into(),
            "not an http(s) URL with a host".into(),
        ));
    }
    Ok(url)
}

/// The region of an AWS endpoint host (`s3.<region>.amazonaws.com`,
/// `s3-<region>.amazonaws.com`, or a bucket's virtual host before them).
fn aws_region(host: &str) -> Option<&str> {
    let rest = host.strip_suffix(".amazonaws.com")?;
    let label = rest.rsplit('.').next()?;
    if let Some(r) = label.strip_prefix("s3-") {
        return Some(r);
    }
    if label == "s3" {
        return None; // the global endpoint: no region in it
    }
    // `s3.<region>` or `bucket.s3.<region>`: the region is the last label,
    // after an `s3` label.
    let mut labels = rest.rsplit('.');
    let region = labels.next()?;
    (labels.next()? == "s3").then_some(region)
}

/// `s3://bucket/key` → (bucket, key), the key as written (not decoded).
fn split(s3_url: &str) -> Result<(&str, &str), Error> {
    let rest = s3_url
        .strip_prefix("s3://")
        .ok_or_else(|| Error::Url(s3_url.into(), "not an s3:// URL"))?;
    let (bucket, key) = rest
        .split_once('/')
        .ok_or_else(|| Error::Url(s3_url.into(), "no key after the bucket"))?;
    if bucket.is_empty() {
        return Err(Error::Url(s3_url.into(), "no bucket"));
    }
    if key.is_empty() {
        return Err(Error::Url(s3_url.into(), "no key after the bucket"));
    }
    if bucket.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(Error::Url(
            s3_url.into(),
            "a bucket name with spaces or control characters",
        ));
    }
    if key.split('/').any(|seg| seg == "." || seg == "..") {
        // A URL resolves dot segments away (encoded ones too), so the
        // request would name another object: refuse rather than alter it.
        return Err(Error::Url(s3_url.into(), "a key with . or .. segments"));
    }
    Ok((bucket, key))
}

#[cfg(test)]
mod tests;
