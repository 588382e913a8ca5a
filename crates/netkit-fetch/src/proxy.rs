//! Proxy selection, pure: from a map of the environment handed in (or the
//! CLI's `--proxy` / `--noproxy`), which proxy a URL goes through.
//!
//! - `http_proxy` for http URLs, `https_proxy` for https URLs, `all_proxy`
//!   when the scheme's own is unset; each lowercase first, then uppercase.
//!   Empty values, `""` and `''` count as unset. Uppercase `HTTP_PROXY` is
//!   ignored when `REQUEST_METHOD` is set (CGI: the httpoxy guard).
//! - `no_proxy`: entries split on commas and whitespace; `*` bypasses all;
//!   `example.com`, `.example.com` and `*.example.com` match the name and
//!   its subdomains on a dot boundary (never `badexample.com`); IP addresses
//!   and CIDR blocks match hosts written as addresses (a name is never
//!   resolved to test them); `host:port` and `[v6]:port` also need the port.
//!   Case-insensitive, one trailing dot ignored.

use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use url::Url;

use crate::Error;

/// A proxy a request goes through.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proxy {
    /// `https://` proxy: TLS to the proxy (and the origin's TLS inside it).
    pub tls: bool,
    /// The proxy's host (no brackets).
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// `Proxy-Authorization` value (`Basic ...`) from the URL's credentials.
    pub authorization: Option<String>,
}

impl Proxy {
    /// Parses a proxy URL: `http://[user:pass@]host[:port]`, `https://...`,
    /// or a bare `host:port` (http). The port defaults to 1080 for http (as
    /// curl) and 443 for https. Credentials are percent-decoded.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let with_scheme = if s.contains("://") {
            s.to_owned()
        } else {
            format!("http://{s}")
        };
        let u = Url::parse(&with_scheme)
            .map_err(|e| Error::Proxy(format!("invalid proxy URL {s:?}: {e}")))?;
        let tls = match u.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(Error::Proxy(format!("unsupported proxy scheme {other:?}"))),
        };
        let host =
            host_of(&u).ok_or_else(|| Error::Proxy(format!("proxy URL {s:?} has no host")))?;
        let port = u.port().unwrap_or(if tls { 443 } else { 1080 });
        let authorization = if u.username().is_empty() && u.password().is_none() {
            None
        } else {
            let dec = |p: &str| percent_encoding::percent_decode_str(p).collect::<Vec<u8>>();
            let mut creds = dec(u.username());
            creds.push(b':');
            creds.extend(dec(u.password().unwrap_or("")));
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(creds)
            ))
        };
        Ok(Self {
            tls,
            host,
            port,
            authorization,
        })
    }
}

/// A URL's host without IPv6 brackets, lower case.
pub(crate) fn host_of(u: &Url) -> Option<String> {
    Some(match u.host()? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    All,
    Net(IpNet, Option<u16>),
    Domain(String, Option<u16>),
}

/// A parsed `NO_PROXY` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy(Vec<Entry>);

impl NoProxy {
    /// Parses the list (entries that mean nothing are skipped, as curl does).
    #[must_use]
    pub fn parse(list: &str) -> Self {
        let mut out = Vec::new();
        for raw in list.split(|c: char| c == ',' || c.is_whitespace()) {
            let e = raw.trim();
            if e.is_empty() {
                continue;
            }
            if e == "*" {
                out.push(Entry::All);
                continue;
            }
            let (host, port) = split_port(e);
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            if let Ok(net) = host.parse::<IpNet>() {
                out.push(Entry::Net(net, port));
            } else if let Ok(ip) = host.parse::<IpAddr>() {
                out.push(Entry::Net(IpNet::from(ip), port));
            } else {
                let d = host
                    .strip_prefix("*.")
                    .or_else(|| host.strip_prefix('.'))
                    .unwrap_or(&host);
                if !d.is_empty() {
                    out.push(Entry::Domain(d.to_owned(), port));
                }
            }
        }
        Self(out)
    }

    /// Whether a request to `host` (lower case, no brackets) on `port`
    /// bypasses the proxy.
    #[must_use]
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        self.0.iter().any(|e| match e {
            Entry::All => true,
            Entry::Net(net, p) => ip.is_some_and(|ip| net.contains(&ip)) && port_ok(p),
            Entry::Domain(d, p) => {
                ip.is_none()
                    && (host == *d
                        || host
                            .strip_suffix(d.as_str())
                            .is_some_and(|rest| rest.ends_with('.')))
                    && port_ok(p)
            }
        })
    }
}

/// `host:port`, `[v6]:port`, `[v6]`, or a bare host / IPv6 address / CIDR.
fn split_port(e: &str) -> (&str, Option<u16>) {
    if let Some(rest) = e.strip_prefix('[') {
        if let Some((h, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h, port);
        }
    }
    match e.rsplit_once(':') {
        Some((h, p))
            if !h.contains(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (h, p.parse().ok())
        }
        _ => (e, None),
    }
}

/// Which proxies apply, from the environment or the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: NoProxy,
}

/// An environment value, `None` when unset or empty (`""` and `''` too).
fn value(v: Option<String>) -> Option<String> {
    let v = v?;
    let t = v.trim();
    (!t.is_empty() && t != "\"\"" && t != "''").then(|| t.to_owned())
}

impl ProxyConfig {
    /// No proxy at all.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// From environment variables, looked up through `env` (the driver
    /// passes `std::env::var`; tests pass a map). A proxy URL that does not
    /// parse is an error.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let cgi = value(env("REQUEST_METHOD")).is_some();
        let pick = |lower: &str, upper: &str, guard: bool| {
            value(env(lower)).or_else(|| if guard { None } else { value(env(upper)) })
        };
        let all = pick("all_proxy", "ALL_PROXY", false);
        let http = pick("http_proxy", "HTTP_PROXY", cgi).or_else(|| all.clone());
        let https = pick("https_proxy", "HTTPS_PROXY", false).or(all);
        let no_proxy = pick("no_proxy", "NO_PROXY", false).unwrap_or_default();
        Ok(Self {
            http: http.as_deref().map(Proxy::parse).transpose()?,
            https: https.as_deref().map(Proxy::parse).transpose()?,
            no_proxy: NoProxy::parse(&no_proxy),
        })
    }

    /// The command line's overrides on top of this: `--proxy URL` for every
    /// scheme (an empty one: none), `--noproxy LIST` for `NO_PROXY`.
    pub fn with_overrides(
        mut self,
        proxy: Option<&str>,
        no_proxy: Option<&str>,
    ) -> Result<Self, Error> {
        if let Some(p) = proxy {
            let p = value(Some(p.to_owned()))
                .as_deref()
                .map(Proxy::parse)
                .transpose()?;
            self.http.clone_from(&p);
            self.https = p;
        }
        if let Some(n) = no_proxy {
            self.no_proxy = NoProxy::parse(n);
        }
        Ok(self)
    }

    /// The proxy for `url`, if any.
    #[must_use]
    pub fn select(&self, url: &Url) -> Option<&Proxy> {
        let proxy = match url.scheme() {
            "http" => self.http.as_ref(),
            "https" => self.https.as_ref(),
            _ => None,
        }?;
        let host = host_of(url)?;
        let port = url.port_or_known_default()?;
        (!self.no_proxy.matches(&host, port)).then_some(proxy)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn chosen(pairs: &[(&str, &str)], url: &str) -> Option<String> {
        let c = ProxyConfig::from_env(env(pairs)).unwrap();
        c.select(&Url::parse(url).unwrap())
            .map(|p| format!("{}:{}", p.host, p.port))
    }

    #[test]
    fn scheme_variables_lowercase_first_then_all_proxy() {
        let e = [
            ("HTTP_PROXY", "up:1"),
            ("http_proxy", "low:2"),
            ("HTTPS_PROXY", "s:3"),
        ];
        assert_eq!(chosen(&e, "http://x/").as_deref(), Some("low:2"));
        assert_eq!(chosen(&e, "https://x/").as_deref(), Some("s:3"));
        let e = [("ALL_PROXY", "all:4"), ("http_proxy", "h:5")];
        assert_eq!(chosen(&e, "http://x/").as_deref(), Some("h:5"));
        assert_eq!(chosen(&e, "https://x/").as_deref(), Some("all:4"));
        assert_eq!(
            chosen(&[("all_proxy", "a:6")], "http://x/").as_deref(),
            Some("a:6")
        );
    }

    #[test]
    fn empty_values_are_unset() {
        for v in ["", "  ", "\"\"", "''"] {
            let e = [("http_proxy", v), ("HTTP_PROXY", "up:1")];
            assert_eq!(chosen(&e, "http://x/").as_deref(), Some("up:1"), "{v:?}");
        }
        assert_eq!(chosen(&[("HTTPS_PROXY", "''")], "https://x/"), None);
    }

    #[test]
    fn cgi_ignores_uppercase_http_proxy() {
        let e = [("HTTP_PROXY", "evil:1"), ("REQUEST_METHOD", "GET")];
        assert_eq!(chosen(&e, "http://x/"), None);
        let e = [("http_proxy", "ok:2"), ("REQUEST_METHOD", "GET")];
        assert_eq!(chosen(&e, "http://x/").as_deref(), Some("ok:2"));
        let e = [("HTTPS_PROXY", "s:3"), ("REQUEST_METHOD", "GET")];
        assert_eq!(chosen(&e, "https://x/").as_deref(), Some("s:3"));
    }

    #[test]
    fn no_proxy_rules() {
        let n = NoProxy::parse(
            "example.com, .dot.org *.star.net 10.0.0.0/8,::1 [fe80::1]:8080 host.test:81, Trail.Ing.",
        );
        let m = |h: &str, p: u16| n.matches(h, p);
        assert!(m("example.com", 80) && m("a.b.example.com", 443) && m("EXAMPLE.COM.", 80));
        assert!(!m("badexample.com", 80));
        assert!(m("dot.org", 80) && m("x.dot.org", 80) && !m("xdot.org", 80));
        assert!(m("star.net", 80) && m("a.star.net", 80));
        assert!(m("10.1.2.3", 80) && !m("11.0.0.1", 80));
        assert!(m("::1", 80) && !m("::2", 80));
        assert!(m("fe80::1", 8080) && !m("fe80::1", 80));
        assert!(m("host.test", 81) && !m("host.test", 80));
        assert!(m("trail.ing", 80));
        assert!(NoProxy::parse("*").matches("anything", 1));
        assert!(!NoProxy::parse("").matches("anything", 1));
        // A name is never resolved to test a CIDR block.
        assert!(!NoProxy::parse("127.0.0.0/8").matches("localhost", 80));
    }

    #[test]
    fn no_proxy_applies_with_default_ports() {
        let e = [("http_proxy", "p:1"), ("no_proxy", "a.test:80")];
        assert_eq!(chosen(&e, "http://a.test/"), None);
        assert!(chosen(&e, "http://a.test:8080/").is_some());
        let e = [("https_proxy", "p:1"), ("NO_PROXY", "[::1]")];
        assert_eq!(chosen(&e, "https://[::1]:8443/"), None);
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://us%40er:p%3Ass@proxy.test:3128").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.tls),
            ("proxy.test", 3128, false)
        );
        let want = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
        assert_eq!(p.authorization, Some(format!("Basic {want}")));
        let p = Proxy::parse("proxy.test").unwrap();
        assert_eq!((p.port, p.tls, p.authorization), (1080, false, None));
        let p = Proxy::parse("https://[::1]").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.tls), ("::1", 443, true));
        assert!(matches!(Proxy::parse("socks5://x:1"), Err(Error::Proxy(_))));
        assert!(matches!(Proxy::parse("http://"), Err(Error::Proxy(_))));
        assert!(ProxyConfig::from_env(env(&[("http_proxy", "ftp://x")])).is_err());
    }

    #[test]
    fn overrides() {
        let c = ProxyConfig::from_env(env(&[("http_proxy", "e:1"), ("no_proxy", "*")]))
            .unwrap()
            .with_overrides(Some("http://o:2"), Some("other.test"))
            .unwrap();
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(c.select(&u("http://x/")).map(|p| p.port), Some(2));
        assert_eq!(c.select(&u("https://x/")).map(|p| p.port), Some(2));
        assert_eq!(c.select(&u("http://other.test/")), None);
        let c = c.with_overrides(Some(""), None).unwrap();
        assert_eq!(c.select(&u("http://x/")), None);
    }
}
