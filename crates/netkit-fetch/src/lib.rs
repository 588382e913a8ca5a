//! Bun's `fetch` as a sans-IO client.
//!
//! [`Client`] holds the connection pool and every request in flight; the
//! driver opens transports when told ([`Action::Connect`]: TCP through the
//! connect plan, or a Unix socket), moves bytes, and sleeps until
//! [`Client::poll_timeout`]. Everything else is decided here: the route
//! (proxy selection, [`proxy`]), the stack of layers on a connection (TLS to
//! a proxy, a CONNECT tunnel, the origin's TLS, each a value in [`layers`]),
//! the pool (keep-alive reuse per route, idle expiry, a cap on connections
//! with queueing, never more connections than requests for a route), a retry
//! on a fresh connection when a reused one fails before any response byte,
//! redirects, the whole-request timeout, content decoding and a curl-style
//! trace.

mod client;
mod decode;
pub mod layers;
pub mod proxy;

pub use client::{
    Action, BODY_PIECE, Body, Client, ClientConfig, ConnId, Delivery, Event, ReqId, Request,
    Response, Target,
};
pub use decode::ACCEPT_ENCODING;
pub use netkit_http1::{Fields, Head};
pub use url::Url;

use std::time::Duration;

/// A failed fetch. Each displays with the kind first, as `netkit fetch`
/// prints it after `netkit: error: `.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A transport failure, with node's errno name (`ECONNREFUSED: connect
    /// 127.0.0.1:9`, `ENOTFOUND`, `ECONNRESET`, `ENOENT`...), from the driver.
    #[error("{code}: {message}")]
    Io {
        /// The errno name.
        code: String,
        /// What failed, e.g. `connect 127.0.0.1:9`.
        message: String,
    },
    /// TLS failed (with the proxy or the origin).
    #[error("tls: {0}")]
    Tls(netkit_tls::Error),
    /// A malformed, oversized or truncated response, or a request that
    /// cannot be written.
    #[error("http: {0}")]
    Http(#[from] netkit_http1::Error),
    /// A body that does not decode under its `Content-Encoding`.
    #[error("http: {0}")]
    Decode(String),
    /// A URL that cannot be fetched.
    #[error("http: {0}")]
    Url(String),
    /// More redirects than allowed (the count is the one that was refused).
    #[error("http: too many redirects ({0})")]
    TooManyRedirects(u32),
    /// A proxy's refusal, or a bad proxy setting.
    #[error("proxy: {0}")]
    Proxy(String),
    /// The whole-request timeout expired.
    #[error("ETIMEDOUT: request timed out after {}", fmt_secs(*.0))]
    Timeout(Duration),
    /// The request was cancelled.
    #[error("ECANCELED: request cancelled")]
    Cancelled,
    /// A streamed request body that could not be read, or would have to be
    /// sent twice.
    #[error("http: request body: {0}")]
    Body(String),
    /// A body that is not the JSON asked for (`json()` in the drivers).
    #[error("http: invalid JSON body: {0}")]
    Json(String),
}

fn fmt_secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

impl From<netkit_tls::Error> for Error {
    fn from(e: netkit_tls::Error) -> Self {
        Self::Tls(e)
    }
}

impl From<&netkit_tls::SocketError> for Error {
    /// A transport failure as the drivers report it (`ECONNREFUSED: connect
    /// 127.0.0.1:9`), keeping node's errno name and the detail.
    fn from(e: &netkit_tls::SocketError) -> Self {
        match e {
            netkit_tls::SocketError::Os { code, message, .. } => Self::Io {
                code: (*code).to_owned(),
                message: message.clone(),
            },
            other => Self::Io {
                code: other.code().to_owned(),
                message: other.to_string(),
            },
        }
    }
}

impl Error {
    /// The stable kind the CLI and tests key on: the errno name, or `tls`,
    /// `http`, `proxy`.
    #[must_use]
    pub fn kind(&self) -> &str {
        match self {
            Self::Io { code, .. } => code,
            Self::Tls(_) => "tls",
            Self::Http(_)
            | Self::Decode(_)
            | Self::Url(_)
            | Self::TooManyRedirects(_)
            | Self::Body(_)
            | Self::Json(_) => "http",
            Self::Proxy(_) => "proxy",
            Self::Timeout(_) => "ETIMEDOUT",
            Self::Cancelled => "ECANCELED",
        }
    }
}

#[cfg(test)]
mod tests;
